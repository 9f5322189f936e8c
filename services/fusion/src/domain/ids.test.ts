import { describe, expect, it } from 'vitest';
import { UUID_PATTERN, derivedFeedbackEventId, feedbackFingerprint, idempotencyRecordId, newPredictionId, uuidv7 } from './ids.js';

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

  it('derives the event id of key-less feedback from tenant, user and fingerprint, as a version 8 UUID', () => {
    const f = feedbackFingerprint({ predictionId: 'p1' }, 'spam');
    const id = derivedFeedbackEventId('acme', 'u1', f);
    expect(id).toMatch(UUID_PATTERN);
    expect(id[14]).toBe('8');
    expect('89ab').toContain(id[19]);
    // A retry of the same feedback repeats the id (the stream and the trainer deduplicate by it)...
    expect(derivedFeedbackEventId('acme', 'u1', feedbackFingerprint({ predictionId: 'p1' }, 'spam'))).toBe(id);
    // ...anything else that differs gives another.
    expect(derivedFeedbackEventId('acme', 'u1', feedbackFingerprint({ predictionId: 'p1' }, 'ham'))).not.toBe(id);
    expect(derivedFeedbackEventId('acme', 'u2', f)).not.toBe(id);
    expect(derivedFeedbackEventId('other-co', 'u1', f)).not.toBe(id);
    expect(derivedFeedbackEventId('acme', 'u1', feedbackFingerprint({ inputHash: 'p1' }, 'spam'))).not.toBe(id);
    // The separator keeps ('ab', 'c') and ('a', 'bc') apart.
    expect(derivedFeedbackEventId('ab', 'c', f)).not.toBe(derivedFeedbackEventId('a', 'bc', f));
    // Pinned, so a change of derivation (which would let retries across a deploy apply twice) is deliberate.
    expect(id).toBe('f27ef7a4-844a-874a-8772-85016088da77');
  });
});
