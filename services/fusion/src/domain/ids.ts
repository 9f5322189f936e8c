import { createHash } from 'node:crypto';
import { UUID_PATTERN, uuidv7, uuidv8FromDigest } from '@aimass/platform';

export { UUID_PATTERN, uuidv7 };

/**
 * Prediction ids are UUID v7 too: unguessable (a prediction id is all Feedback needs to find a
 * stored record, so it must not be enumerable) and ordered by time.
 */
export const newPredictionId = (): string => uuidv7();
export const newEventId = (): string => uuidv7();

/**
 * The store id of a Feedback idempotency record: a hash of the user's pseudonym and the caller's
 * key, so keys of any length and character fit, and two users' identical keys never collide.
 */
export function idempotencyRecordId(pseudonym: string, key: string): string {
  return createHash('sha256').update(pseudonym).update('\0').update(key).digest('hex');
}

/**
 * What makes two Feedback calls "the same": target and label. A retry with the same key but a
 * different label or target is a client bug, reported instead of silently ignored.
 */
export function feedbackFingerprint(target: { predictionId: string } | { inputHash: string }, label: string): string {
  const h = createHash('sha256');
  if ('predictionId' in target) h.update('p\0').update(target.predictionId);
  else h.update('i\0').update(target.inputHash);
  return h.update('\0').update(label).digest('hex').slice(0, 32);
}

/**
 * The event id of feedback sent without an idempotency key: derived from the tenant, the user and
 * the feedback's fingerprint (target and label), so a caller that retries key-less feedback (after
 * a timeout, say) repeats the same event id and the stream's duplicate window, then the trainer's
 * deduplication, keep it to one effect. Formatted as an RFC 9562 version 8 (custom) UUID: the
 * shape every event id has, and never equal to a random v7 id from a claimed key.
 */
export function derivedFeedbackEventId(tenant: string, userPseudonym: string, fingerprint: string): string {
  const digest = createHash('sha256').update('aimass.feedback.event\0').update(tenant).update('\0').update(userPseudonym).update('\0').update(fingerprint).digest();
  return uuidv8FromDigest(digest);
}
