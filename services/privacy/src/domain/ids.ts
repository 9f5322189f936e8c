import { createHash } from 'node:crypto';
import { uuidv8FromDigest } from '@aimass/platform';

/** Sequences are zero-padded so ids sort in history order. */
export function recordId(userPseudonym: string, sequence: number): string {
  return `${userPseudonym}:${String(sequence).padStart(12, '0')}`;
}

/** The stored form of an idempotency key: hashed, so a key of any shape makes a valid id. */
export function idempotencyId(userPseudonym: string, key: string): string {
  return createHash('sha256').update(userPseudonym).update('\0').update(key).digest('hex');
}

/**
 * The event id of a record's ConsentChanged: derived from the record's hash, so every publish of
 * one record (a retried SetConsent, the outbox sweep) is the same event, stored once by the stream.
 */
export function consentEventId(recordHash: string): string {
  return uuidv8FromDigest(createHash('sha256').update('aimass/consent-changed/v1\0').update(recordHash).digest());
}

/** The outbox entry of a user, in the reserved tenant: `<tenant>:<pseudonym>`. */
export function outboxId(tenant: string, userPseudonym: string): string {
  return `${tenant}:${userPseudonym}`;
}
