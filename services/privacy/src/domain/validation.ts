import { CONSENT_PURPOSES, consentStateFromProto, purposeFromProto, purposeToProto, type ConsentPurpose } from '@aimass/consent';
import { InvalidArgumentError, PSEUDONYM_PATTERN } from '@aimass/platform';
import { v1 } from '@aimass/proto';
import type { ConsentChange } from './decisions.js';

export interface RequestLimits {
  readonly maxUserIdBytes: number;
  readonly maxPolicyVersionBytes: number;
  readonly maxSourceBytes: number;
  readonly maxKeyBytes: number;
  /** How far in the future decided_at may lie (clock skew between the caller and us). */
  readonly maxClockSkewMs: number;
}

const PURPOSE_NAMES = CONSENT_PURPOSES.map((p) => v1.Purpose[purposeToProto(p)]).join(' or ');

const utf8Bytes = (s: string) => Buffer.byteLength(s, 'utf8');

function bounded(value: string, field: string, limit: number): string {
  const bytes = utf8Bytes(value);
  if (bytes > limit) throw new InvalidArgumentError(`${field} is ${bytes} bytes, more than the limit of ${limit}`, { field });
  return value;
}

export function validateUserId(userId: string, limits: RequestLimits): string {
  if (userId === '') throw new InvalidArgumentError("user_id is required: the enterprise's id of the user", { field: 'user_id' });
  return bounded(userId, 'user_id', limits.maxUserIdBytes);
}

/** A pseudonym handed over by another service (they only know users by it). */
export function validatePseudonym(value: string, field: string): string {
  if (!PSEUDONYM_PATTERN.test(value)) {
    throw new InvalidArgumentError(`${field} is not a user pseudonym (32 characters a-z and 2-7, as the platform's Pseudonymizer makes them)`, { field });
  }
  return value;
}

/** Longest key id GetDataKey takes (the ring's ids are 31 characters). */
export const MAX_KEY_ID_BYTES = 256;

/** GetDataKey's key_id: empty for the current key; a non-empty id is looked up (unknown ids are NOT_FOUND). */
export function validateKeyId(value: string): string {
  const bytes = utf8Bytes(value);
  if (bytes > MAX_KEY_ID_BYTES) {
    throw new InvalidArgumentError(`key_id is ${bytes} bytes, more than the limit of ${MAX_KEY_ID_BYTES}: send the key_id of the sealed payload, or none for the current key`, { field: 'key_id' });
  }
  return value;
}

/**
 * Whom a GetConsent names: the enterprise's id at the edge, or the pseudonym from the platform's own
 * services (personal-model and the updater never see user ids).
 */
export type UserReference = { readonly userId: string } | { readonly pseudonym: string };

export function validateUserReference(req: Pick<v1.GetConsentRequest, 'userId' | 'userPseudonym'>, limits: RequestLimits): UserReference {
  if (req.userId !== '' && req.userPseudonym !== '') {
    throw new InvalidArgumentError('user_id and user_pseudonym are both set: send exactly one (user_pseudonym is for the platform\'s own services)', { field: 'user_pseudonym' });
  }
  if (req.userPseudonym !== '') return { pseudonym: validatePseudonym(req.userPseudonym, 'user_pseudonym') };
  if (req.userId === '') {
    throw new InvalidArgumentError("user_id is required: the enterprise's id of the user (or user_pseudonym, from the platform's own services)", { field: 'user_id' });
  }
  return { userId: validateUserId(req.userId, limits) };
}

export function validatePurpose(value: v1.Purpose, field = 'purpose'): ConsentPurpose {
  const purpose = purposeFromProto(value);
  if (purpose) return purpose;
  if (value === v1.Purpose.PURPOSE_UNSPECIFIED) throw new InvalidArgumentError(`${field} is required: ${PURPOSE_NAMES}`, { field });
  throw new InvalidArgumentError(`${field} ${value} is not a known purpose: ${PURPOSE_NAMES}`, { field });
}

const STATE_NAMES = 'CONSENT_STATE_GRANTED, CONSENT_STATE_DENIED or CONSENT_STATE_WITHDRAWN';

export function validateSetConsent(req: v1.SetConsentRequest, limits: RequestLimits, now: Date): { userId: string; change: ConsentChange; idempotencyKey: string } {
  const userId = validateUserId(req.userId, limits);
  const purpose = validatePurpose(req.purpose);
  const state = consentStateFromProto(req.state);
  if (!state) {
    if (req.state === v1.ConsentState.CONSENT_STATE_UNSPECIFIED) throw new InvalidArgumentError(`state is required: ${STATE_NAMES}`, { field: 'state' });
    throw new InvalidArgumentError(`state ${req.state} is not a known consent state: ${STATE_NAMES}`, { field: 'state' });
  }
  if (req.policyVersion === '') {
    throw new InvalidArgumentError('policy_version is required: the version of the policy text the user saw', { field: 'policy_version' });
  }
  const policyVersion = bounded(req.policyVersion, 'policy_version', limits.maxPolicyVersionBytes);
  const source = bounded(req.source, 'source', limits.maxSourceBytes);
  const idempotencyKey = bounded(req.idempotencyKey, 'idempotency_key', limits.maxKeyBytes);
  const decidedAt = req.decidedAt;
  if (decidedAt !== undefined) {
    if (Number.isNaN(decidedAt.getTime())) throw new InvalidArgumentError('decided_at is not a valid time', { field: 'decided_at' });
    if (decidedAt.getTime() > now.getTime() + limits.maxClockSkewMs) {
      throw new InvalidArgumentError(`decided_at lies in the future (${decidedAt.toISOString()}, now ${now.toISOString()}): send when the user decided, or leave it out for now`, {
        field: 'decided_at',
      });
    }
  }
  return { userId, change: { purpose, state, policyVersion, source, decidedAt }, idempotencyKey };
}

export function validatePurposes(values: readonly v1.Purpose[]): ConsentPurpose[] {
  return values.map((v, i) => validatePurpose(v, `purposes[${i}]`));
}
