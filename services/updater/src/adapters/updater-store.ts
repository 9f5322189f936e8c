/**
 * The updater's documents in a DocumentStore (SQLite embedded, MongoDB in a cluster). Per tenant,
 * every user document owned by the user's pseudonym (`user`) so erasure finds it:
 *
 * - `feedback_history`, id = the FeedbackRecorded event id: one entry per distinct event, written
 *   with `expectedVersion: 'absent'`, so a redelivered or republished event (same event id, any
 *   stream sequence) is a no-op. Sealed payloads are kept as they came. `applied` is a hint the
 *   applier sets once personal-model confirmed a watermark at or above the entry's sequence; the
 *   watermark, not the hint, decides what is applied.
 * - `training_state`, id = pseudonym: the pending mark (see domain/pending.ts).
 * - `refit_jobs`, id = job id.
 * - `erasure_tombstones`, id = pseudonym: the user was erased (erasure id, time). Not owned by the
 *   user, so the erasure's `deleteByUser` leaves it. Every write that could bring the user's data
 *   back (a history entry, a pending mark, an `applied` hint) carries a check that it is absent.
 *
 * In the reserved tenant `_global`: `updater_tenants` (tenants with feedback, for the sweep and
 * tenant-wide refits) and `updater_general` (the general model version last seen served).
 */
import { UnavailableError } from '@aimass/platform';
import { StoreUnavailableError, TENANT_TOMBSTONES, TenantTombstones, VersionConflictError, type Collection, type DocumentStore, type StoredDocument, type WriteOp } from '@aimass/storage';
import type { HistoryEntry, SealedPayload } from '../domain/feedback.js';
import type { GeneralRef } from '../domain/ids.js';
import type { JobState, RefitJob } from '../domain/jobs.js';
import { markPending, type TrainingState } from '../domain/pending.js';
import { GroupedWrites, type GroupedWriteStats } from './grouped-writes.js';

export const COLLECTIONS = Object.freeze({
  history: 'feedback_history',
  state: 'training_state',
  jobs: 'refit_jobs',
  tenants: 'updater_tenants',
  general: 'updater_general',
  tombstones: 'erasure_tombstones',
});

/** The erasure id of the tombstone every user of a deleted tenant has (see `tombstone`). */
export const TENANT_DELETED_ERASURE_ID = 'tenant-deleted';

/** The reserved tenant of records that belong to no tenant. */
export const GLOBAL_TENANT = '_global';

/** Largest page the store serves. */
const PAGE = 1000;

interface SealedDoc {
  key_id: string;
  algorithm: string;
  nonce: Uint8Array;
  ciphertext: Uint8Array;
}

interface HistoryDoc {
  event_id: string;
  sequence: number;
  label: string;
  occurred_at: Date;
  prediction_id: string;
  general_model?: { name: string; version: string } | undefined;
  input: SealedDoc;
  general_output?: SealedDoc | undefined;
  sparse_features?: SealedDoc | undefined;
  applied: boolean;
  /** Why personal-model refused the entry (it is then never applied). */
  rejected?: string | undefined;
}

interface StateDoc {
  pending: boolean;
  marked_sequence: number;
  events: number;
  last_event_at: Date;
  cleared_at?: Date | undefined;
}

interface JobDoc {
  kind: 'user' | 'all';
  pseudonym?: string | undefined;
  only_stale: boolean;
  target: { name: string; version: string };
  state: JobState;
  users_total: number;
  users_done: number;
  users_failed: number;
  cursor: string;
  created_at: Date;
  started_at?: Date | undefined;
  finished_at?: Date | undefined;
  heartbeat_at: Date;
  owner: string;
  error?: string | undefined;
}

interface TenantDoc {
  tenant: string;
}

interface GeneralDoc {
  name: string;
  version: string;
}

interface TombstoneDoc {
  erasure_id: string;
  erased_at: Date;
}

/** The updater's record that a user was erased. */
export interface UpdaterTombstone {
  readonly erasureId: string;
  readonly erasedAt: Date;
}

/** A history entry with what the store knows about it. */
export interface StoredEntry extends HistoryEntry {
  readonly applied: boolean;
  readonly rejected: string | undefined;
  /** The store's version of the entry when read: a delete conditional on it misses a concurrent change. */
  readonly revision: number;
}

export interface StateRecord {
  readonly state: TrainingState;
  /** The store's version of the record: the compare-and-set token of a clear. */
  readonly version: number;
  readonly updatedAt: Date;
}

/** A refit job with the store's version of its record. */
export interface JobRecord {
  readonly job: RefitJob;
  readonly version: number;
}

const sealedDoc = (p: SealedPayload): SealedDoc => ({ key_id: p.keyId, algorithm: p.algorithm, nonce: p.nonce, ciphertext: p.ciphertext });
const sealedOf = (d: SealedDoc): SealedPayload => ({ keyId: d.key_id, algorithm: d.algorithm, nonce: d.nonce, ciphertext: d.ciphertext });

function historyDoc(e: HistoryEntry, applied: boolean, rejected: string | undefined): HistoryDoc {
  return {
    event_id: e.eventId,
    sequence: e.sequence,
    label: e.label,
    occurred_at: e.occurredAt,
    prediction_id: e.predictionId,
    general_model: e.generalModel ? { name: e.generalModel.name, version: e.generalModel.version } : undefined,
    input: sealedDoc(e.input),
    general_output: e.generalOutput ? sealedDoc(e.generalOutput) : undefined,
    sparse_features: e.sparseFeatures ? sealedDoc(e.sparseFeatures) : undefined,
    applied,
    rejected,
  };
}

function entryOf(doc: StoredDocument<HistoryDoc>): StoredEntry {
  const d = doc.data;
  return {
    tenant: doc.tenant,
    pseudonym: doc.user ?? '',
    eventId: d.event_id,
    sequence: d.sequence,
    label: d.label,
    occurredAt: d.occurred_at,
    predictionId: d.prediction_id,
    generalModel: d.general_model ? { name: d.general_model.name, version: d.general_model.version } : undefined,
    input: sealedOf(d.input),
    generalOutput: d.general_output ? sealedOf(d.general_output) : undefined,
    sparseFeatures: d.sparse_features ? sealedOf(d.sparse_features) : undefined,
    applied: d.applied,
    rejected: d.rejected,
    revision: doc.version,
  };
}

function stateDoc(s: TrainingState): StateDoc {
  return { pending: s.pending, marked_sequence: s.markedSequence, events: s.events, last_event_at: s.lastEventAt, cleared_at: s.clearedAt };
}

function stateOf(d: StateDoc): TrainingState {
  return { pending: d.pending, markedSequence: d.marked_sequence, events: d.events, lastEventAt: d.last_event_at, clearedAt: d.cleared_at };
}

function jobDoc(j: RefitJob): JobDoc {
  return {
    kind: j.kind,
    pseudonym: j.pseudonym,
    only_stale: j.onlyStale,
    target: { name: j.target.name, version: j.target.version },
    state: j.state,
    users_total: j.usersTotal,
    users_done: j.usersDone,
    users_failed: j.usersFailed,
    cursor: j.cursor,
    created_at: j.createdAt,
    started_at: j.startedAt,
    finished_at: j.finishedAt,
    heartbeat_at: j.heartbeatAt,
    owner: j.owner,
    error: j.error,
  };
}

function jobOf(id: string, d: JobDoc): RefitJob {
  return {
    jobId: id,
    kind: d.kind,
    pseudonym: d.pseudonym,
    onlyStale: d.only_stale,
    target: { name: d.target.name, version: d.target.version },
    state: d.state,
    usersTotal: d.users_total,
    usersDone: d.users_done,
    usersFailed: d.users_failed,
    cursor: d.cursor,
    createdAt: d.created_at,
    startedAt: d.started_at,
    finishedAt: d.finished_at,
    heartbeatAt: d.heartbeat_at,
    owner: d.owner,
    error: d.error,
  };
}

/** A write refused because the user was erased meanwhile: the caller stops working on the user. */
export class UserErasedError extends Error {
  override readonly name = 'UserErasedError';
}

/** A store that cannot answer is a retryable condition for callers; anything else stays as it is. */
export function storeUnavailable(err: unknown): never {
  if (err instanceof StoreUnavailableError) throw new UnavailableError(`the updater's store is unavailable: ${err.message}`, { cause: err, retryAfterMs: 1000 });
  throw err;
}

/**
 * Entries rewritten per atomic write of hints: with their guards (at most one per user and per
 * tenant) and a cleared mark, well within the store's 500 operations.
 */
const MARK_CHUNK = 400;

/** Attempts of a mark whose compare-and-set lost to a concurrent mark of the same user. */
const MAX_MARK_ATTEMPTS = 16;

export class UpdaterStore {
  readonly #knownTenants = new Set<string>();
  /** The intake's appends and the applier's hints, committed together when they coincide. */
  readonly #writes: GroupedWrites;

  private constructor(
    readonly store: DocumentStore,
    private readonly entries: Collection<HistoryDoc>,
    private readonly states: Collection<StateDoc>,
    private readonly jobs: Collection<JobDoc>,
    private readonly tenantDocs: Collection<TenantDoc>,
    private readonly general: Collection<GeneralDoc>,
    private readonly tombstones: Collection<TombstoneDoc>,
    private readonly tenantTombstones: TenantTombstones,
  ) {
    this.#writes = new GroupedWrites(store);
  }

  /** How many of the grouped writes (appends, hints) shared a transaction. */
  writeStats(): GroupedWriteStats {
    return this.#writes.stats();
  }

  /** Opens (creating when needed) the collections and their indexes. */
  static async open(store: DocumentStore): Promise<UpdaterStore> {
    const history = await store.collection<HistoryDoc>({
      name: COLLECTIONS.history,
      indexes: [{ fields: ['user', 'sequence'] }, { fields: ['user', 'applied', 'sequence'] }, { fields: ['applied'] }],
    });
    const states = await store.collection<StateDoc>({ name: COLLECTIONS.state, indexes: [{ fields: ['pending', 'updatedAt'] }] });
    const jobs = await store.collection<JobDoc>({ name: COLLECTIONS.jobs, indexes: [{ fields: ['state'] }, { fields: ['createdAt'] }] });
    const tenants = await store.collection<TenantDoc>({ name: COLLECTIONS.tenants });
    const general = await store.collection<GeneralDoc>({ name: COLLECTIONS.general });
    const tombstones = await store.collection<TombstoneDoc>({ name: COLLECTIONS.tombstones });
    return new UpdaterStore(store, history, states, jobs, tenants, general, tombstones, await TenantTombstones.open(store));
  }

  /**
   * Appends an entry to its user's history and marks the user pending, in one atomic write.
   * `duplicate` when the event id is already in the user's history, `other-user` when it is in
   * another user's, `erased` when the user has a tombstone (nothing is written in these cases).
   */
  async append(entry: HistoryEntry, now: Date): Promise<'appended' | 'duplicate' | 'other-user' | 'erased'> {
    const { tenant, pseudonym: user } = entry;
    for (let attempt = 1; ; attempt++) {
      const current = await this.states.get(tenant, user);
      const marked = markPending(current ? stateOf(current.data) : undefined, entry.sequence, now);
      try {
        await this.#writes.write([
          this.entries.putOp(tenant, entry.eventId, historyDoc(entry, false, undefined), { expectedVersion: 'absent', user }),
          this.states.putOp(tenant, user, stateDoc(marked), { expectedVersion: current?.version ?? 'absent', user }),
          this.tombstones.checkOp(tenant, user, 'absent'),
          this.tenantTombstones.checkOp(tenant),
        ]);
        return 'appended';
      } catch (err) {
        if (!(err instanceof VersionConflictError)) throw err;
        if (err.collection === COLLECTIONS.tombstones || err.collection === TENANT_TOMBSTONES) return 'erased';
        if (err.collection === COLLECTIONS.history) {
          const existing = await this.entries.get(tenant, entry.eventId);
          if (existing && existing.user !== user) return 'other-user';
          return 'duplicate';
        }
        // A concurrent mark of the same user (two replicas on one partition during a lease hand-over).
        if (attempt >= MAX_MARK_ATTEMPTS) throw err;
      }
    }
  }

  async state(tenant: string, user: string): Promise<StateRecord | undefined> {
    const doc = await this.states.get(tenant, user);
    return doc ? { state: stateOf(doc.data), version: doc.version, updatedAt: doc.updatedAt } : undefined;
  }

  /** Writes the cleared state if the record is still at `version`; false when a mark came in meanwhile. */
  async clearPending(tenant: string, user: string, cleared: TrainingState, version: number): Promise<boolean> {
    try {
      await this.states.put(tenant, user, stateDoc(cleared), { expectedVersion: version, user });
      return true;
    } catch (err) {
      if (err instanceof VersionConflictError) return false;
      throw err;
    }
  }

  /** The user's entries not yet confirmed applied, oldest first. */
  async unapplied(tenant: string, user: string, limit: number): Promise<StoredEntry[]> {
    return (await this.unappliedBatch(tenant, user, limit)).entries;
  }

  /**
   * As `unapplied`, and whether these were all of them when read (`complete`): what the applier
   * needs to know before it may clear the mark together with the hints (`markAppliedAndClear`).
   */
  async unappliedBatch(tenant: string, user: string, limit: number): Promise<{ entries: StoredEntry[]; complete: boolean }> {
    const page = await this.entries.query(tenant, { user, where: { applied: false }, orderBy: { field: 'sequence' }, limit: Math.min(limit, PAGE) });
    return { entries: page.items.map(entryOf), complete: page.nextCursor === undefined };
  }

  /** Entries of the user (or of the tenant) not yet confirmed applied. */
  async countUnapplied(tenant: string, user?: string): Promise<number> {
    return this.entries.count(tenant, { user, where: { applied: false } });
  }

  /**
   * The user's history that can be learnt from (refused entries left out), oldest first: the most
   * recent `max` entries when there are more.
   */
  async history(tenant: string, user: string, max: number): Promise<StoredEntry[]> {
    const newestFirst: StoredEntry[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.entries.query(tenant, { user, orderBy: { field: 'sequence', direction: 'desc' }, limit: PAGE, cursor });
      for (const doc of page.items) {
        if (doc.data.rejected === undefined) newestFirst.push(entryOf(doc));
        if (newestFirst.length >= max) break;
      }
      cursor = page.nextCursor;
    } while (cursor && newestFirst.length < max);
    return newestFirst.reverse();
  }

  /**
   * The user's whole history, refused entries included, oldest first: at most `max` entries, and
   * how many the user has in all.
   */
  async exportHistory(tenant: string, user: string, max: number): Promise<{ entries: StoredEntry[]; total: number }> {
    const entries: StoredEntry[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.entries.query(tenant, { user, orderBy: { field: 'sequence' }, limit: Math.min(PAGE, max - entries.length), cursor });
      entries.push(...page.items.map(entryOf));
      cursor = page.nextCursor;
    } while (cursor && entries.length < max);
    const total = cursor ? await this.entries.count(tenant, { user }) : entries.length;
    return { entries, total: Math.max(total, entries.length) };
  }

  /**
   * Removes entries that will not be trained on (the user withdrew training consent), each only if
   * it is still as it was read: an entry another replica marked meanwhile is left alone. Returns
   * the entries removed.
   */
  async removeUnapplied(entries: readonly StoredEntry[]): Promise<number> {
    let removed = 0;
    for (const e of entries) {
      try {
        if (await this.entries.delete(e.tenant, e.eventId, { expectedVersion: e.revision })) removed++;
      } catch (err) {
        if (!(err instanceof VersionConflictError)) throw err;
      }
    }
    return removed;
  }

  /**
   * Sets the `applied` hint on entries personal-model has confirmed (or refused: `rejected` says
   * why). Entries already marked are skipped. UserErasedError when the user has a tombstone.
   */
  async markApplied(entries: readonly StoredEntry[], rejected: ReadonlyMap<string, string> = new Map()): Promise<void> {
    const marked = entries.filter((e) => !e.applied || rejected.has(e.eventId));
    for (let i = 0; i < marked.length; i += MARK_CHUNK) await this.#writeMarks(this.#markOps(marked.slice(i, i + MARK_CHUNK), rejected));
  }

  /**
   * `markApplied(entries)` and `clearPending(tenant, user, cleared, version)` in one write, for the
   * applier's last batch of a run: one transaction instead of two, and no further pass to find
   * there is nothing left. The clear is the same compare-and-set as `clearPending`'s: when a mark
   * came in meanwhile the hints are still written (in a write of their own) and false is returned,
   * the mark stays. UserErasedError when the user has a tombstone.
   */
  async markAppliedAndClear(entries: readonly StoredEntry[], tenant: string, user: string, cleared: TrainingState, version: number): Promise<boolean> {
    const marked = entries.filter((e) => !e.applied);
    if (marked.length > MARK_CHUNK) {
      await this.markApplied(entries);
      return this.clearPending(tenant, user, cleared, version);
    }
    try {
      await this.#writeMarks([...this.#markOps(marked, new Map()), this.states.putOp(tenant, user, stateDoc(cleared), { expectedVersion: version, user })]);
      return true;
    } catch (err) {
      if (!(err instanceof VersionConflictError && err.collection === COLLECTIONS.state)) throw err;
    }
    await this.markApplied(entries);
    return false;
  }

  /** The rewrites of `chunk` with the hint set, after the guards that keep an erased user's entries deleted. */
  #markOps(chunk: readonly StoredEntry[], rejected: ReadonlyMap<string, string>): WriteOp[] {
    if (chunk.length === 0) return [];
    // The rewrite would re-create entries an erasure deleted meanwhile: not once the user is erased.
    const owners = new Map(chunk.map((e) => [`${e.tenant}/${e.pseudonym}`, e]));
    const guards = [...owners.values()].map((e) => this.tombstones.checkOp(e.tenant, e.pseudonym, 'absent'));
    for (const tenant of new Set(chunk.map((e) => e.tenant))) guards.push(this.tenantTombstones.checkOp(tenant));
    const puts = chunk.map((e) => this.entries.putOp(e.tenant, e.eventId, historyDoc(e, true, rejected.get(e.eventId) ?? e.rejected), { user: e.pseudonym }));
    return [...guards, ...puts];
  }

  async #writeMarks(ops: readonly WriteOp[]): Promise<void> {
    if (ops.length === 0) return;
    try {
      await this.#writes.write(ops);
    } catch (err) {
      if (err instanceof VersionConflictError && err.collection === COLLECTIONS.tombstones) throw new UserErasedError(`user ${err.id} was erased`, { cause: err });
      if (err instanceof VersionConflictError && err.collection === TENANT_TOMBSTONES) throw new UserErasedError(`tenant ${err.id} was deleted`, { cause: err });
      throw err;
    }
  }

  /** Users marked pending, least recently marked first. */
  async pendingUsers(tenant: string, cursor?: string): Promise<{ users: Array<{ pseudonym: string; updatedAt: Date }>; nextCursor: string | undefined }> {
    const page = await this.states.query(tenant, { where: { pending: true }, orderBy: { field: 'updatedAt' }, limit: PAGE, cursor });
    return { users: page.items.map((d) => ({ pseudonym: d.id, updatedAt: d.updatedAt })), nextCursor: page.nextCursor };
  }

  /** Users with history, in pseudonym order, after `after`. */
  async *usersAfter(tenant: string, after: string): AsyncGenerator<string> {
    let cursor: string | undefined;
    do {
      const page = await this.states.query(tenant, { limit: PAGE, cursor });
      for (const doc of page.items) if (doc.id > after) yield doc.id;
      cursor = page.nextCursor;
    } while (cursor);
  }

  async countUsers(tenant: string): Promise<number> {
    return this.states.count(tenant);
  }

  /** Records a tenant that has feedback (once per process; the write itself is idempotent). */
  async rememberTenant(tenant: string): Promise<void> {
    if (this.#knownTenants.has(tenant)) return;
    try {
      // Not for a deleted tenant: its entry went with its data.
      await this.store.writeAtomic([this.tenantDocs.putOp(GLOBAL_TENANT, tenant, { tenant }, { expectedVersion: 'absent' }), this.tenantTombstones.checkOp(tenant)]);
    } catch (err) {
      if (!(err instanceof VersionConflictError)) throw err;
      if (err.collection === TENANT_TOMBSTONES) return;
    }
    this.#knownTenants.add(tenant);
  }

  async tenants(): Promise<string[]> {
    const out: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.tenantDocs.query(GLOBAL_TENANT, { limit: PAGE, cursor });
      for (const doc of page.items) out.push(doc.id);
      cursor = page.nextCursor;
    } while (cursor);
    return out;
  }

  /** Creates a job; false when one with that id exists already. */
  async createJob(tenant: string, job: RefitJob): Promise<boolean> {
    try {
      await this.jobs.put(tenant, job.jobId, jobDoc(job), { expectedVersion: 'absent', user: job.pseudonym });
      return true;
    } catch (err) {
      if (err instanceof VersionConflictError) return false;
      throw err;
    }
  }

  async job(tenant: string, jobId: string): Promise<JobRecord | undefined> {
    const doc = await this.jobs.get(tenant, jobId);
    return doc ? { job: jobOf(doc.id, doc.data), version: doc.version } : undefined;
  }

  /** Rewrites a job if it is still at `version`; the new version, or undefined when another writer got there first. */
  async writeJob(tenant: string, job: RefitJob, version: number): Promise<number | undefined> {
    try {
      const doc = await this.jobs.put(tenant, job.jobId, jobDoc(job), { expectedVersion: version });
      return doc.version;
    } catch (err) {
      if (err instanceof VersionConflictError) return undefined;
      throw err;
    }
  }

  /** Queued and running jobs. */
  async activeJobs(tenant: string): Promise<JobRecord[]> {
    const out: JobRecord[] = [];
    for (const state of ['queued', 'running'] as const) {
      let cursor: string | undefined;
      do {
        const page = await this.jobs.query(tenant, { where: { state }, limit: PAGE, cursor });
        for (const doc of page.items) out.push({ job: jobOf(doc.id, doc.data), version: doc.version });
        cursor = page.nextCursor;
      } while (cursor);
    }
    return out;
  }

  /** The most recently created jobs. */
  async recentJobs(tenant: string, limit: number): Promise<RefitJob[]> {
    const page = await this.jobs.query(tenant, { orderBy: { field: 'createdAt', direction: 'desc' }, limit });
    return page.items.map((d) => jobOf(d.id, d.data));
  }

  /**
   * The user's tombstone, when the user was erased; for every user of a deleted tenant, one naming
   * the tenant deletion (its users count as erased: nothing of theirs is kept or trained).
   */
  async tombstone(tenant: string, user: string): Promise<UpdaterTombstone | undefined> {
    const doc = await this.tombstones.get(tenant, user);
    if (doc) return { erasureId: doc.data.erasure_id, erasedAt: doc.data.erased_at };
    return (await this.tenantTombstones.deleted(tenant)) ? { erasureId: TENANT_DELETED_ERASURE_ID, erasedAt: new Date(0) } : undefined;
  }

  /** Writes the tenant's tombstone unless one exists: from then on nothing of the tenant is written. */
  async writeTenantTombstone(tenant: string, reason: string, now: Date): Promise<void> {
    await this.tenantTombstones.write(tenant, reason, now);
  }

  /**
   * Tenant deletion: every history entry, training state, refit job and user tombstone of the
   * tenant, and its entry in the tenant list. Returns the documents deleted.
   */
  async deleteTenant(tenant: string): Promise<number> {
    let deleted = 0;
    for (const c of [this.entries, this.states, this.jobs, this.tombstones] as Collection<never>[]) deleted += await c.deleteByTenant(tenant);
    if (await this.tenantDocs.delete(GLOBAL_TENANT, tenant)) deleted++;
    this.#knownTenants.delete(tenant);
    return deleted;
  }

  /** Writes the user's tombstone unless one exists (a repeated erasure keeps the first). */
  async writeTombstone(tenant: string, user: string, erasureId: string, now: Date): Promise<void> {
    try {
      await this.tombstones.put(tenant, user, { erasure_id: erasureId, erased_at: now }, { expectedVersion: 'absent' });
    } catch (err) {
      if (!(err instanceof VersionConflictError)) throw err;
    }
  }

  /** Erasure: the user's history, training state and refit jobs. Returns the documents deleted. */
  async eraseUser(tenant: string, user: string): Promise<number> {
    const counts = await Promise.all([this.entries.deleteByUser(tenant, user), this.states.deleteByUser(tenant, user), this.jobs.deleteByUser(tenant, user)]);
    return counts.reduce((a, b) => a + b, 0);
  }

  /** The general model version last recorded as served for `name`. */
  async servedRecord(name: string): Promise<{ general: GeneralRef; version: number } | undefined> {
    const doc = await this.general.get(GLOBAL_TENANT, name || '(default)');
    return doc ? { general: { name: doc.data.name, version: doc.data.version }, version: doc.version } : undefined;
  }

  /** Records the served version with a compare-and-set; false when another replica recorded first. */
  async recordServed(name: string, general: GeneralRef, expected: number | 'absent'): Promise<boolean> {
    try {
      await this.general.put(GLOBAL_TENANT, name || '(default)', { name: general.name, version: general.version }, { expectedVersion: expected });
      return true;
    } catch (err) {
      if (err instanceof VersionConflictError) return false;
      throw err;
    }
  }
}
