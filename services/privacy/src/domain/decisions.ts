import { createHash } from 'node:crypto';
import { CONSENT_PURPOSES, type ConsentPurpose, type ConsentStateName } from '@aimass/consent';
import { recordHash, type ChainOwner, type ConsentRecord } from './chain.js';

/** What a tenant assumes for a user who never decided (aimass.v1.ConsentDefault: GRANTED or DENIED). */
export type DefaultState = Extract<ConsentStateName, 'granted' | 'denied'>;

export type PurposeDefaults = Readonly<Record<ConsentPurpose, DefaultState>>;

export interface ConsentDefaults {
  /** Every tenant's defaults unless it has its own. */
  readonly base: PurposeDefaults;
  /** Per tenant, the purposes it sets differently. */
  readonly tenants: Readonly<Record<string, Partial<PurposeDefaults>>>;
}

/** Not granted until the user opts in. */
export const DENY_BY_DEFAULT: PurposeDefaults = Object.freeze({ personalization: 'denied', training: 'denied' });

export function defaultFor(defaults: ConsentDefaults, tenant: string, purpose: ConsentPurpose): DefaultState {
  return defaults.tenants[tenant]?.[purpose] ?? defaults.base[purpose];
}

/** The latest record of one purpose, as the head remembers it. */
export interface HeadPurpose {
  readonly sequence: number;
  readonly state: ConsentStateName;
  readonly policyVersion: string;
}

/**
 * The head of a user's history: the last record (the link the next one takes and what a truncated
 * history is checked against) and the latest record of each purpose (so the current decision is
 * one read away). Every append replaces it with a compare-and-set, which is what keeps the chain
 * linear when two calls append at once.
 */
export interface ConsentHead {
  readonly sequence: number;
  readonly hash: string;
  readonly purposes: Readonly<Partial<Record<ConsentPurpose, HeadPurpose>>>;
}

/** A decision to record, validated. */
export interface ConsentChange {
  readonly purpose: ConsentPurpose;
  readonly state: ConsentStateName;
  readonly policyVersion: string;
  readonly source: string;
  /** Undefined: now. */
  readonly decidedAt: Date | undefined;
}

/** The user's current decision for a purpose. */
export type CurrentDecision =
  | { readonly purpose: ConsentPurpose; readonly state: DefaultState; readonly isDefault: true }
  | { readonly purpose: ConsentPurpose; readonly state: ConsentStateName; readonly isDefault: false; readonly sequence: number };

/** Current decisions from the head (the tenant's default where the user never decided), in the order asked. */
export function currentDecisions(head: ConsentHead | undefined, purposes: readonly ConsentPurpose[], defaults: ConsentDefaults, tenant: string): CurrentDecision[] {
  return purposes.map((purpose): CurrentDecision => {
    const latest = head?.purposes[purpose];
    if (!latest) return { purpose, state: defaultFor(defaults, tenant, purpose), isDefault: true };
    return { purpose, state: latest.state, isDefault: false, sequence: latest.sequence };
  });
}

/**
 * The latest record of the purpose when it already says what `change` says (same state, same
 * policy version): recording it again would add nothing, and a client retrying without an
 * idempotency key must not add it twice.
 */
export function sameAsCurrent(head: ConsentHead | undefined, change: ConsentChange): HeadPurpose | undefined {
  const latest = head?.purposes[change.purpose];
  return latest && latest.state === change.state && latest.policyVersion === change.policyVersion ? latest : undefined;
}

/** What makes two SetConsent calls under one idempotency key the same request. */
export function changeFingerprint(change: ConsentChange): string {
  return createHash('sha256')
    .update(JSON.stringify([change.purpose, change.state, change.policyVersion, change.source, change.decidedAt?.toISOString() ?? '']))
    .digest('hex');
}

/** The record that appends `change` after `head`, hashed. */
export function nextRecord(owner: ChainOwner, head: ConsentHead | undefined, change: ConsentChange, recordedAt: Date): ConsentRecord {
  const unhashed = {
    sequence: (head?.sequence ?? 0) + 1,
    purpose: change.purpose,
    state: change.state,
    previousState: head?.purposes[change.purpose]?.state ?? ('none' as const),
    policyVersion: change.policyVersion,
    source: change.source,
    decidedAt: change.decidedAt ?? recordedAt,
    recordedAt,
    prevHash: head?.hash ?? '',
  };
  return { ...unhashed, hash: recordHash(owner, unhashed) };
}

/** The head after `record` was appended. */
export function advanceHead(head: ConsentHead | undefined, record: ConsentRecord): ConsentHead {
  return {
    sequence: record.sequence,
    hash: record.hash,
    purposes: { ...head?.purposes, [record.purpose]: { sequence: record.sequence, state: record.state, policyVersion: record.policyVersion } },
  };
}

/** Every purpose when none is named; each named one once, in the order given. */
export function purposesAsked(purposes: readonly ConsentPurpose[]): ConsentPurpose[] {
  return purposes.length === 0 ? [...CONSENT_PURPOSES] : [...new Set(purposes)];
}

/** One stored default as a tenant's settings carry it (aimass.v1.ConsentDefault, already decoded). */
export interface StoredConsentDefault {
  readonly purpose: ConsentPurpose | undefined;
  readonly state: ConsentStateName | undefined;
}

/**
 * A tenant's defaults from its stored settings (the tenant admin API): none when it lists none, so
 * the configuration applies; otherwise every purpose, those it does not list DENIED (admin.proto).
 * Entries this build cannot read (an unknown purpose, a state other than granted or denied, which
 * fusion's validation refuses anyway) are skipped rather than trusted, so they also leave DENIED.
 */
export function purposeDefaultsFromSettings(stored: readonly StoredConsentDefault[]): PurposeDefaults | undefined {
  if (stored.length === 0) return undefined;
  const out: Record<ConsentPurpose, DefaultState> = { ...DENY_BY_DEFAULT };
  for (const d of stored) {
    if (d.purpose === undefined || !CONSENT_PURPOSES.includes(d.purpose)) continue;
    if (d.state === 'granted' || d.state === 'denied') out[d.purpose] = d.state;
  }
  return out;
}

/** The configured defaults with each tenant's stored ones laid over its configured entry. */
export function withStoredDefaults(configured: ConsentDefaults, stored: ReadonlyMap<string, PurposeDefaults>): ConsentDefaults {
  if (stored.size === 0) return configured;
  const tenants: Record<string, Partial<PurposeDefaults>> = { ...configured.tenants };
  for (const [tenant, defaults] of stored) tenants[tenant] = defaults;
  return { base: configured.base, tenants };
}
