import { createHash } from 'node:crypto';
import type { ConsentPurpose, ConsentStateName } from '@aimass/consent';

/**
 * The consent history of one (tenant, user) is a hash chain. Each record's hash covers its own
 * fields, the tenant and the user's pseudonym (so a chain cannot be passed off as another user's)
 * and the previous record's hash:
 *
 *   hash = hex(SHA-256(utf8(prev) ‖ "\n" ‖ utf8(canonical)))
 *   prev = the previous record's hash, or GENESIS_HASH for the first record
 *   canonical = JSON array ["aimass/consent-record/v1", tenant, pseudonym, sequence, purpose,
 *               state, previous state, policy version, source, decided at, recorded at]
 *
 * with the names in lower case ("personalization", "withdrawn", "none" for no previous state) and
 * times as ISO-8601 UTC with milliseconds. A JSON array of strings and integers has exactly one
 * encoding, so the same record always hashes the same. Changing, removing, inserting or reordering
 * a record breaks its own hash or the link of the record after it; removing records at the end is
 * caught against the head, which stores the last sequence and hash.
 */
export const CONSENT_RECORD_DOMAIN = 'aimass/consent-record/v1';

/** What the first record links to. `prev_hash` of the first record reads empty, as the contract says. */
export const GENESIS_HASH = '0'.repeat(64);

/** The state a purpose had before a record: `none` when the user had never decided on it. */
export type PreviousState = ConsentStateName | 'none';

export interface ChainOwner {
  readonly tenant: string;
  readonly userPseudonym: string;
}

/** One entry of a user's consent history. */
export interface ConsentRecord {
  /** Position in the history, from 1. */
  readonly sequence: number;
  readonly purpose: ConsentPurpose;
  readonly state: ConsentStateName;
  readonly previousState: PreviousState;
  readonly policyVersion: string;
  /** Where the decision was made ("web-settings", "support-ticket:4711"); may be empty. */
  readonly source: string;
  /** When the user decided (the request's decided_at, else when it was recorded). */
  readonly decidedAt: Date;
  /** When the privacy service appended it. */
  readonly recordedAt: Date;
  /** The previous record's hash; empty for the first. */
  readonly prevHash: string;
  readonly hash: string;
}

export type UnhashedRecord = Omit<ConsentRecord, 'hash'>;

/** True when the record changes the purpose's state: the records ConsentChanged is published for. */
export function isChange(record: Pick<ConsentRecord, 'state' | 'previousState'>): boolean {
  return record.state !== record.previousState;
}

export function canonicalRecord(owner: ChainOwner, r: UnhashedRecord): string {
  return JSON.stringify([
    CONSENT_RECORD_DOMAIN,
    owner.tenant,
    owner.userPseudonym,
    r.sequence,
    r.purpose,
    r.state,
    r.previousState,
    r.policyVersion,
    r.source,
    r.decidedAt.toISOString(),
    r.recordedAt.toISOString(),
  ]);
}

export function recordHash(owner: ChainOwner, r: UnhashedRecord): string {
  return createHash('sha256')
    .update(r.prevHash === '' ? GENESIS_HASH : r.prevHash, 'utf8')
    .update('\n', 'utf8')
    .update(canonicalRecord(owner, r), 'utf8')
    .digest('hex');
}

/** True when the record's stored hash is the hash of its content. */
export function hashMatches(owner: ChainOwner, r: ConsentRecord): boolean {
  return recordHash(owner, r) === r.hash;
}

/** The last record of a chain as the head document remembers it. */
export interface ChainTip {
  readonly sequence: number;
  readonly hash: string;
}

export type ChainVerification =
  | { readonly ok: true; readonly verified: number }
  | {
      readonly ok: false;
      /** Records before the first bad one, which check out. */
      readonly verified: number;
      /** The sequence (position) of the first record that does not check out. */
      readonly firstBad: number;
      readonly reason: string;
    };

/**
 * Checks a whole history, as stored (ordered by sequence), against the head. The first record
 * that does not check out is named with what is wrong with it.
 */
export function verifyChain(owner: ChainOwner, records: readonly ConsentRecord[], tip: ChainTip | undefined): ChainVerification {
  let prev = '';
  const states = new Map<ConsentPurpose, ConsentStateName>();
  const bad = (index: number, reason: string): ChainVerification => ({ ok: false, verified: index, firstBad: index + 1, reason });
  for (const [i, r] of records.entries()) {
    const position = i + 1;
    if (r.sequence > position) return bad(i, `record ${position} is missing (the next stored record is ${r.sequence}): records were removed`);
    if (r.sequence < position) return bad(i, `record ${r.sequence} appears again at position ${position}: records were inserted or reordered`);
    if (r.prevHash !== prev) {
      return bad(i, `record ${position} does not link to record ${position - 1} (its prev_hash differs): a record was inserted, removed or replaced before it`);
    }
    if (!hashMatches(owner, r)) return bad(i, `record ${position} does not match its hash: its content was modified`);
    const before = states.get(r.purpose) ?? 'none';
    if (r.previousState !== before) {
      return bad(i, `record ${position} says the ${r.purpose} state before it was ${r.previousState}, the history says ${before}`);
    }
    states.set(r.purpose, r.state);
    prev = r.hash;
  }
  const last = records.at(-1);
  if (!tip) {
    if (last) return bad(records.length - 1, `the history has ${records.length} records but no head: the head was removed`);
    return { ok: true, verified: 0 };
  }
  if (!last || last.sequence !== tip.sequence || last.hash !== tip.hash) {
    const at = last?.sequence ?? 0;
    if (at < tip.sequence) return { ok: false, verified: records.length, firstBad: at + 1, reason: `record ${at + 1} is missing: the history ends at record ${at}, its head names record ${tip.sequence} (records at the end were removed)` };
    if (at > tip.sequence) return bad(tip.sequence, `record ${tip.sequence + 1} lies beyond the head (record ${tip.sequence}): records were added outside the privacy service`);
    return bad(records.length - 1, `record ${at} is not the one the head names (the hashes differ): the last record was replaced`);
  }
  return { ok: true, verified: records.length };
}
