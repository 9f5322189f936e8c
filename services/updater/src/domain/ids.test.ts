import { describe, expect, it } from 'vitest';
import { derivedUuid, generalChangeJobId, generalChangedEventId, refitIdempotencyKey, trainIdempotencyKey, uuidv7 } from './ids.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[78][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const psn = 'abcdefghijklmnopqrstuvwxyz234567';

describe('derived ids', () => {
  it('train keys name the user and the batch, so the same batch gets the same key', () => {
    expect(trainIdempotencyKey(psn, 10, 12)).toBe(`upd-train:${psn}:10-12`);
    expect(trainIdempotencyKey(psn, 10, 12)).not.toBe(trainIdempotencyKey(psn, 10, 13));
    // personal-model accepts keys up to 200 characters.
    expect(trainIdempotencyKey(psn, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER).length).toBeLessThan(200);
  });

  it('refit keys depend on the target version and the last sequence, and stay short for any model name', () => {
    const a = refitIdempotencyKey(psn, { name: 'general', version: '1' }, 40);
    expect(a).toMatch(new RegExp(`^upd-refit:${psn}:[0-9a-f]{16}:40$`));
    expect(refitIdempotencyKey(psn, { name: 'general', version: '2' }, 40)).not.toBe(a);
    expect(refitIdempotencyKey(psn, { name: 'general', version: '1' }, 41)).not.toBe(a);
    expect(refitIdempotencyKey(psn, { name: 'g'.repeat(500), version: '1' }, 40).length).toBeLessThan(200);
  });

  it('a general model change gives the same event and job id on every replica, another for another change', () => {
    const change = { name: 'general', from: '1', to: '2', generation: 3 };
    expect(generalChangedEventId('t1', change)).toBe(generalChangedEventId('t1', { ...change }));
    expect(generalChangedEventId('t1', change)).toMatch(UUID);
    expect(generalChangedEventId('t2', change)).not.toBe(generalChangedEventId('t1', change));
    // The same versions again later (1 → 2 → 1 → 2) are a new change.
    expect(generalChangedEventId('t1', { ...change, generation: 5 })).not.toBe(generalChangedEventId('t1', change));
    expect(generalChangeJobId('t1', change)).not.toBe(generalChangedEventId('t1', change));
  });

  it('derived UUIDs are version 8, random ones version 7 and time-ordered', () => {
    expect(derivedUuid('a')).toMatch(UUID);
    expect(derivedUuid('a')[14]).toBe('8');
    expect(derivedUuid('a', 'b')).not.toBe(derivedUuid('ab'));
    const early = uuidv7(1_000);
    const late = uuidv7(2_000);
    expect(early[14]).toBe('7');
    expect(early < late).toBe(true);
  });
});
