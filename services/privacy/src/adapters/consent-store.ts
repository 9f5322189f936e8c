/**
 * The privacy service's consent documents in a DocumentStore (SQLite embedded, MongoDB in a
 * cluster). Every document about a user is owned by the user's pseudonym (`user`), so erasure
 * finds it; the raw user id is never stored.
 *
 * Per tenant:
 * - `consent_records`, id `<pseudonym>:<sequence, 12 digits>`: the history, one document per
 *   record, created with `expectedVersion: 'absent'` and never rewritten.
 * - `consent_heads`, id = pseudonym: the chain's head (last sequence and hash, latest record per
 *   purpose). Replaced by compare-and-set on every append.
 * - `consent_keys`, id = SHA-256(pseudonym, idempotency key): the record a key resolved to.
 *
 * In the reserved tenant `_global`:
 * - `consent_outbox`, id `<tenant>:<pseudonym>`: while `pending`, the user has records whose
 *   ConsentChanged may not be published yet, from `from_sequence` on. Set in the same transaction
 *   as the record, cleared once the events are stored, so a change recorded just before a crash or
 *   a bus outage is still announced (the sweep finds it).
 *
 * An append writes the new head, the record, the key and the outbox entry in one `writeAtomic`,
 * conditioned on the head version read before: of two appends on the same head one wins, the other
 * gets a VersionConflictError and starts again from the new head.
 *
 * Every write that creates documents also carries the check that the tenant has no tenant
 * tombstone (tenant-guard.ts): a SetConsent racing the tenant's deletion either commits before the
 * tombstone, and the deletion finds what it wrote, or is refused with TenantDeletedError.
 */
import type { ConsentPurpose, ConsentStateName } from '@aimass/consent';
import { UnavailableError } from '@aimass/platform';
import { StoreUnavailableError, TenantTombstones, VersionConflictError, type Collection, type DocumentStore, type StoredDocument, type WriteOp } from '@aimass/storage';
import type { ConsentRecord, PreviousState } from '../domain/chain.js';
import type { ConsentHead, HeadPurpose } from '../domain/decisions.js';
import { idempotencyId, outboxId, recordId } from '../domain/ids.js';
import { TenantDeletedError, isTenantDeletedConflict } from './tenant-guard.js';

export const COLLECTIONS = Object.freeze({
  records: 'consent_records',
  heads: 'consent_heads',
  keys: 'consent_keys',
  outbox: 'consent_outbox',
});

/** The reserved tenant of records that belong to no tenant. */
export const GLOBAL_TENANT = '_global';

/** Largest page the store serves. */
const PAGE = 1000;

interface RecordDoc {
  sequence: number;
  purpose: ConsentPurpose;
  state: ConsentStateName;
  previous_state: PreviousState;
  policy_version: string;
  source: string;
  decided_at: Date;
  recorded_at: Date;
  prev_hash: string;
  hash: string;
}

interface HeadPurposeDoc {
  sequence: number;
  state: ConsentStateName;
  policy_version: string;
}

interface HeadDoc {
  sequence: number;
  hash: string;
  purposes: Partial<Record<ConsentPurpose, HeadPurposeDoc>>;
}

interface KeyDoc {
  sequence: number;
  fingerprint: string;
  /** False when the key's request matched the current decision and appended nothing. */
  appended: boolean;
}

interface OutboxDoc {
  tenant: string;
  pseudonym: string;
  /** Records from `from_sequence` on may be unannounced. */
  pending: boolean;
  from_sequence: number;
}

export interface VersionedHead {
  readonly version: number;
  readonly head: ConsentHead;
}

export interface HeldKey {
  readonly sequence: number;
  readonly fingerprint: string;
  readonly appended: boolean;
}

export interface OutboxEntry {
  readonly version: number;
  readonly tenant: string;
  readonly pseudonym: string;
  readonly pending: boolean;
  readonly fromSequence: number;
  readonly updatedAt: Date;
}

export interface Append {
  /** Version of the head the record was built on; 'absent' for the first record. */
  readonly headVersion: number | 'absent';
  readonly head: ConsentHead;
  readonly record: ConsentRecord;
  /** Claimed in the same write (the record answers for it from then on). */
  readonly key?: { readonly key: string; readonly fingerprint: string } | undefined;
  /**
   * The outbox entry as read before (undefined: there was none). Given when the record is a change
   * that must be published; its version is a condition of the write, so an entry a publisher is
   * removing meanwhile cannot swallow this record.
   */
  readonly outbox?: { readonly before: OutboxEntry | undefined } | undefined;
  /** A condition of the write (the user has no erasure tombstone), checked in the same transaction. */
  readonly guard?: WriteOp | undefined;
}

/** The store's own failure as the caller sees it: UNAVAILABLE, with a hint to retry. */
export function storeUnavailable(err: unknown): never {
  if (err instanceof StoreUnavailableError) throw new UnavailableError(`the consent store is unavailable: ${err.message}`, { cause: err, retryAfterMs: 1000 });
  throw err;
}

function toRecord(d: RecordDoc): ConsentRecord {
  return {
    sequence: d.sequence,
    purpose: d.purpose,
    state: d.state,
    previousState: d.previous_state,
    policyVersion: d.policy_version,
    source: d.source,
    decidedAt: d.decided_at,
    recordedAt: d.recorded_at,
    prevHash: d.prev_hash,
    hash: d.hash,
  };
}

function toRecordDoc(r: ConsentRecord): RecordDoc {
  return {
    sequence: r.sequence,
    purpose: r.purpose,
    state: r.state,
    previous_state: r.previousState,
    policy_version: r.policyVersion,
    source: r.source,
    decided_at: r.decidedAt,
    recorded_at: r.recordedAt,
    prev_hash: r.prevHash,
    hash: r.hash,
  };
}

function toOutbox(doc: StoredDocument<OutboxDoc>): OutboxEntry {
  const d = doc.data;
  return { version: doc.version, tenant: d.tenant, pseudonym: d.pseudonym, pending: d.pending, fromSequence: d.from_sequence, updatedAt: doc.updatedAt };
}

function toHead(d: HeadDoc): ConsentHead {
  const purposes: Partial<Record<ConsentPurpose, HeadPurpose>> = {};
  for (const [purpose, p] of Object.entries(d.purposes) as [ConsentPurpose, HeadPurposeDoc][]) {
    purposes[purpose] = { sequence: p.sequence, state: p.state, policyVersion: p.policy_version };
  }
  return { sequence: d.sequence, hash: d.hash, purposes };
}

function toHeadDoc(h: ConsentHead): HeadDoc {
  const purposes: Partial<Record<ConsentPurpose, HeadPurposeDoc>> = {};
  for (const [purpose, p] of Object.entries(h.purposes) as [ConsentPurpose, HeadPurpose][]) {
    purposes[purpose] = { sequence: p.sequence, state: p.state, policy_version: p.policyVersion };
  }
  return { sequence: h.sequence, hash: h.hash, purposes };
}

export class ConsentStore {
  private constructor(
    readonly store: DocumentStore,
    private readonly records: Collection<RecordDoc>,
    private readonly heads: Collection<HeadDoc>,
    private readonly keys: Collection<KeyDoc>,
    private readonly outbox: Collection<OutboxDoc>,
    private readonly tenants: TenantTombstones,
  ) {}

  static async open(store: DocumentStore): Promise<ConsentStore> {
    const [records, heads, keys, outbox, tenants] = await Promise.all([
      store.collection<RecordDoc>({ name: COLLECTIONS.records, indexes: [{ fields: ['user', 'sequence'] }] }),
      store.collection<HeadDoc>({ name: COLLECTIONS.heads }),
      store.collection<KeyDoc>({ name: COLLECTIONS.keys }),
      store.collection<OutboxDoc>({ name: COLLECTIONS.outbox, indexes: [{ fields: ['pending', 'updatedAt'] }] }),
      TenantTombstones.open(store),
    ]);
    return new ConsentStore(store, records, heads, keys, outbox, tenants);
  }

  /**
   * Tenant deletion: every consent record, head and idempotency key of the tenant, and its users'
   * outbox entries (in `_global`, found through the heads, so they go before the heads do).
   * Returns the documents deleted. Idempotent.
   */
  async deleteTenant(tenant: string): Promise<number> {
    let deleted = 0;
    let cursor: string | undefined;
    do {
      const page = await this.heads.query(tenant, { limit: PAGE, ...(cursor ? { cursor } : {}) }).catch(storeUnavailable);
      for (const head of page.items) if (await this.outbox.delete(GLOBAL_TENANT, outboxId(tenant, head.id)).catch(storeUnavailable)) deleted++;
      cursor = page.nextCursor;
    } while (cursor);
    for (const c of [this.records, this.keys, this.heads] as Collection<never>[]) deleted += await c.deleteByTenant(tenant).catch(storeUnavailable);
    return deleted;
  }

  async head(tenant: string, pseudonym: string): Promise<VersionedHead | undefined> {
    const doc = await this.heads.get(tenant, pseudonym).catch(storeUnavailable);
    return doc && { version: doc.version, head: toHead(doc.data) };
  }

  async record(tenant: string, pseudonym: string, sequence: number): Promise<ConsentRecord | undefined> {
    const doc = await this.records.get(tenant, recordId(pseudonym, sequence)).catch(storeUnavailable);
    return doc && toRecord(doc.data);
  }

  async key(tenant: string, pseudonym: string, key: string): Promise<HeldKey | undefined> {
    const doc = await this.keys.get(tenant, idempotencyId(pseudonym, key)).catch(storeUnavailable);
    return doc && { sequence: doc.data.sequence, fingerprint: doc.data.fingerprint, appended: doc.data.appended };
  }

  /**
   * Binds a key to an existing record (a request that changed nothing). False when another call
   * claimed the key first: the caller reads it again. TenantDeletedError once the tenant is deleted.
   */
  async claimKey(tenant: string, pseudonym: string, key: string, held: Omit<HeldKey, 'appended'>, guard?: WriteOp): Promise<boolean> {
    try {
      const put = this.keys.putOp(tenant, idempotencyId(pseudonym, key), { sequence: held.sequence, fingerprint: held.fingerprint, appended: false }, { expectedVersion: 'absent', user: pseudonym });
      await this.store.writeAtomic([this.tenants.checkOp(tenant), ...(guard ? [guard] : []), put]);
      return true;
    } catch (err) {
      if (isTenantDeletedConflict(err)) throw new TenantDeletedError(tenant);
      if (err instanceof VersionConflictError) return false;
      return storeUnavailable(err);
    }
  }

  async outboxEntry(tenant: string, pseudonym: string): Promise<OutboxEntry | undefined> {
    const doc = await this.outbox.get(GLOBAL_TENANT, outboxId(tenant, pseudonym)).catch(storeUnavailable);
    return doc && toOutbox(doc);
  }

  /**
   * Appends one record. Throws VersionConflictError when another append (or publisher) got there
   * first, TenantDeletedError once the tenant is deleted.
   */
  async append(tenant: string, pseudonym: string, a: Append): Promise<void> {
    const ops: WriteOp[] = [
      // First, so a deleted tenant is reported as such whatever else changed meanwhile.
      this.tenants.checkOp(tenant),
      this.heads.putOp(tenant, pseudonym, toHeadDoc(a.head), { expectedVersion: a.headVersion, user: pseudonym }),
      this.records.putOp(tenant, recordId(pseudonym, a.record.sequence), toRecordDoc(a.record), { expectedVersion: 'absent', user: pseudonym }),
    ];
    if (a.key) ops.push(this.keys.putOp(tenant, idempotencyId(pseudonym, a.key.key), { sequence: a.record.sequence, fingerprint: a.key.fingerprint, appended: true }, { expectedVersion: 'absent', user: pseudonym }));
    if (a.guard) ops.push(a.guard);
    if (a.outbox) {
      const before = a.outbox.before;
      const data: OutboxDoc = { tenant, pseudonym, pending: true, from_sequence: before?.pending ? before.fromSequence : a.record.sequence };
      ops.push(this.outbox.putOp(GLOBAL_TENANT, outboxId(tenant, pseudonym), data, { expectedVersion: before?.version ?? 'absent', user: pseudonym }));
    }
    try {
      await this.store.writeAtomic(ops);
    } catch (err) {
      if (isTenantDeletedConflict(err)) throw new TenantDeletedError(tenant);
      storeUnavailable(err);
    }
  }

  /**
   * Marks the outbox entry done once its events are stored, unless it changed since it was read (an
   * append added a record meanwhile: that append publishes it, and clears the entry then). The
   * entry is kept, not deleted, so its version only grows: a delete would restart it at 1, and a
   * publisher holding an old read could then clear an entry that a newer append wrote.
   */
  async clearOutbox(entry: OutboxEntry): Promise<boolean> {
    try {
      await this.outbox.put(
        GLOBAL_TENANT,
        outboxId(entry.tenant, entry.pseudonym),
        { tenant: entry.tenant, pseudonym: entry.pseudonym, pending: false, from_sequence: 0 },
        { expectedVersion: entry.version, user: entry.pseudonym },
      );
      return true;
    } catch (err) {
      if (err instanceof VersionConflictError) return false;
      return storeUnavailable(err);
    }
  }

  /** Pending outbox entries of every tenant, oldest change first. */
  async pendingOutbox(cursor?: string): Promise<{ entries: OutboxEntry[]; nextCursor: string | undefined }> {
    const page = await this.outbox
      .query(GLOBAL_TENANT, { where: { pending: true }, orderBy: { field: 'updatedAt' }, limit: 100, ...(cursor ? { cursor } : {}) })
      .catch(storeUnavailable);
    return { entries: page.items.map(toOutbox), nextCursor: page.nextCursor };
  }

  /** The whole history as stored, ordered by the sequence each record carries. */
  async history(tenant: string, pseudonym: string): Promise<ConsentRecord[]> {
    const out: ConsentRecord[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.records.query(tenant, { user: pseudonym, orderBy: { field: 'sequence' }, limit: PAGE, ...(cursor ? { cursor } : {}) }).catch(storeUnavailable);
      for (const d of page.items) out.push(toRecord(d.data));
      cursor = page.nextCursor;
    } while (cursor);
    return out;
  }

  /**
   * Erasure: deletes the user's records, head and idempotency keys, and the outbox entry (nothing
   * is announced for an erased user any more). Returns the documents deleted.
   */
  async eraseUser(tenant: string, pseudonym: string): Promise<number> {
    try {
      const counts = await Promise.all([this.records.deleteByUser(tenant, pseudonym), this.heads.deleteByUser(tenant, pseudonym), this.keys.deleteByUser(tenant, pseudonym)]);
      const outbox = await this.outbox.delete(GLOBAL_TENANT, outboxId(tenant, pseudonym));
      return counts.reduce((a, b) => a + b, 0) + (outbox ? 1 : 0);
    } catch (err) {
      return storeUnavailable(err);
    }
  }

  /** True when any record of the user is stored (a history whose head is gone). */
  async hasRecords(tenant: string, pseudonym: string): Promise<boolean> {
    return (await this.records.count(tenant, { user: pseudonym }).catch(storeUnavailable)) > 0;
  }
}
