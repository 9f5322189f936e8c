import { describe, expect, it } from 'vitest';
import { UUID_PATTERN, feedbackFingerprint, idempotencyRecordId, newPredictionId, uuidv7 } from './ids.js';

describe('ids', () => {
  it('makes RFC 9562 version 7 UUIDs carrying the time, in time order', () => {
    const id = uuidv7(0x0123456789ab, new Uint8Array(10).fill(0xff));
    expect(id).toBe('01234567-89ab-7fff-bfff-ffffffffffff');
    expect(id).toMatch(UUID_PATTERN);
    const a = uuidv7(1000);
    const b = uuidv7(2000);
    expect(a < b).toBe(true);
    expect(newPredictionId()).not.toBe(newPredictionId());
    expect(newPredictionId()[14]).toBe('7');
  });

  it('keys idempotency records by user and key, with no collision across users', () => {
    expect(idempotencyRecordId('u1', 'k')).toMatch(/^[0-9a-f]{64}$/);
    expect(idempotencyRecordId('u1', 'k')).toBe(idempotencyRecordId('u1', 'k'));
    expect(idempotencyRecordId('u1', 'k')).not.toBe(idempotencyRecordId('u2', 'k'));
    // The separator keeps ('ab','c') and ('a','bc') apart.
    expect(idempotencyRecordId('ab', 'c')).not.toBe(idempotencyRecordId('a', 'bc'));
  });

  it('fingerprints feedback by target and label', () => {
    const f = feedbackFingerprint({ predictionId: 'p1' }, 'spam');
    expect(f).toBe(feedbackFingerprint({ predictionId: 'p1' }, 'spam'));
    expect(f).not.toBe(feedbackFingerprint({ predictionId: 'p1' }, 'ham'));
    expect(f).not.toBe(feedbackFingerprint({ predictionId: 'p2' }, 'spam'));
    expect(f).not.toBe(feedbackFingerprint({ inputHash: 'p1' }, 'spam'));
  });
});
