import type { ConsentPurpose } from '@aimass/consent';
import { ConflictError, FailedPreconditionError, InvalidArgumentError, type Logger } from '@aimass/platform';
import { VersionConflictError, type WriteOp } from '@aimass/storage';
import type { CallBounds, ConsentEvents } from '../adapters/consent-events.js';
import type { ConsentStore, OutboxEntry, VersionedHead } from '../adapters/consent-store.js';
import { TenantDeletedError } from '../adapters/tenant-guard.js';
import { hashMatches, isChange, verifyChain, type ChainOwner, type ConsentRecord } from '../domain/chain.js';
import {
  advanceHead,
  changeFingerprint,
  currentDecisions,
  nextRecord,
  sameAsCurrent,
  type ConsentChange,
  type ConsentDefaults,
  type CurrentDecision,
} from '../domain/decisions.js';

export interface ConsentServiceOptions {
  readonly store: ConsentStore;
  readonly events: ConsentEvents;
  /** The defaults in force (configured, with the tenants' stored ones); may throw UNAVAILABLE. */
  readonly defaults: () => ConsentDefaults;
  /** Appends that lost a compare-and-set to a concurrent one and start again, before ABORTED. */
  readonly maxAppendAttempts: number;
  readonly logger: Logger;
  readonly now?: (() => Date) | undefined;
  /** Erased users: their consent is neither recorded nor reported any more (see ErasureService). */
  readonly erasure?: ErasureCheck | undefined;
}

/** What consent needs to know about erasures (ErasureStore provides it). */
export interface ErasureCheck {
  /** The user has a tombstone (or the tenant was deleted). */
  isErased(tenant: string, pseudonym: string): Promise<boolean>;
  /** The tenant was deleted: tells the two refusals apart. */
  isTenantDeleted?(tenant: string): Promise<boolean>;
  /** A write condition that fails once the user has a tombstone. */
  absentOp(tenant: string, pseudonym: string): WriteOp;
}

/** SetConsent for a user who was erased. */
export function erasedError(): FailedPreconditionError {
  return new FailedPreconditionError('the user is erased: consent cannot be recorded for an erased user (GetErasureReceipt shows the erasure; Erase answers its id again)');
}

/**
 * SetConsent of a deleted tenant: the same answer whether the deletion came before the call or
 * while it was writing (its users' erasures went with the tenant, so "the user is erased" would
 * send the caller to a receipt that no longer exists).
 */
export function tenantDeletedError(): FailedPreconditionError {
  return new FailedPreconditionError("the tenant was deleted: consent cannot be recorded for its users, whose data was erased with it (the tenant's deletion receipt shows the deletion)");
}

export interface SetResult {
  readonly record: ConsentRecord;
  /** The record changed the purpose's state (ConsentChanged was published for it). */
  readonly changed: boolean;
  /** The idempotency key had been applied before. */
  readonly duplicate: boolean;
}

export type Decision = CurrentDecision & { readonly record?: ConsentRecord | undefined };

/** The history was altered outside this service: the caller must not rely on it. */
function tampered(owner: ChainOwner, logger: Logger, firstBad: number, reason: string): FailedPreconditionError {
  // Logged as an error: someone wrote to the store around this service, an operator must look.
  logger.error({ tenant: owner.tenant, pseudonym: owner.userPseudonym, firstBad, reason }, 'consent history fails verification');
  return new FailedPreconditionError(`the consent history fails verification at record ${firstBad}: ${reason}. It was altered outside the privacy service; do not rely on it`);
}

/**
 * Consent decisions of users: appending to each user's hash chain, announcing changes, reading
 * the current decisions and the verified history.
 */
export class ConsentService {
  readonly #o: ConsentServiceOptions;
  readonly #now: () => Date;

  constructor(options: ConsentServiceOptions) {
    this.#o = options;
    this.#now = options.now ?? (() => new Date());
  }

  /**
   * Records a decision and announces it before answering. A retry converges: the same idempotency
   * key answers with its record (duplicate), and without a key a decision the purpose already has
   * (same state, same policy version) appends nothing. Either way, whatever is still unannounced
   * for the user is published before the answer, so a call that failed on the bus is completed by
   * its retry.
   */
  async set(owner: ChainOwner, change: ConsentChange, idempotencyKey: string, bounds: CallBounds): Promise<SetResult> {
    try {
      return await this.#set(owner, change, idempotencyKey, bounds);
    } catch (err) {
      // The tenant was deleted, before the call or after the tombstone check passed and before the
      // write: the write was refused by the tenant tombstone's condition either way.
      if (err instanceof TenantDeletedError) throw tenantDeletedError();
      throw err;
    }
  }

  async #set(owner: ChainOwner, change: ConsentChange, idempotencyKey: string, bounds: CallBounds): Promise<SetResult> {
    const { store } = this.#o;
    const { tenant, userPseudonym } = owner;
    const fingerprint = changeFingerprint(change);
    for (let attempt = 1; attempt <= this.#o.maxAppendAttempts; attempt++) {
      // Checked on every attempt: a write that lost to the erasure's tombstone comes back here.
      if (await this.#erased(owner)) throw await this.#erasedRefusal(owner);
      const [current, held, outbox] = await Promise.all([
        store.head(tenant, userPseudonym),
        idempotencyKey ? store.key(tenant, userPseudonym, idempotencyKey) : undefined,
        store.outboxEntry(tenant, userPseudonym),
      ]);

      if (held) {
        if (held.fingerprint !== fingerprint) {
          throw new InvalidArgumentError('idempotency_key was already used for another decision (purpose, state, policy version, source or time differ): use a new key for a new decision', {
            field: 'idempotency_key',
          });
        }
        const record = await this.#existing(owner, held.sequence);
        await this.publishPending(owner, bounds);
        return { record, changed: held.appended && isChange(record), duplicate: true };
      }

      const same = sameAsCurrent(current?.head, change);
      if (same) {
        const record = await this.#existing(owner, same.sequence);
        if (idempotencyKey && !(await store.claimKey(tenant, userPseudonym, idempotencyKey, { sequence: same.sequence, fingerprint }, this.#o.erasure?.absentOp(tenant, userPseudonym)))) continue;
        await this.publishPending(owner, bounds);
        return { record, changed: false, duplicate: false };
      }

      const record = nextRecord(owner, current?.head, change, this.#now());
      const changed = isChange(record);
      try {
        await store.append(tenant, userPseudonym, {
          headVersion: current?.version ?? 'absent',
          head: advanceHead(current?.head, record),
          record,
          key: idempotencyKey ? { key: idempotencyKey, fingerprint } : undefined,
          outbox: changed ? { before: outbox } : undefined,
          guard: this.#o.erasure?.absentOp(tenant, userPseudonym),
        });
      } catch (err) {
        // Another append (or a publisher clearing the outbox, or an erasure) won: read the new head and start again.
        if (err instanceof VersionConflictError) continue;
        throw err;
      }
      this.#o.logger.info({ tenant, pseudonym: userPseudonym, sequence: record.sequence, purpose: record.purpose, state: record.state, changed }, 'consent recorded');
      await this.publishPending(owner, bounds);
      return { record, changed, duplicate: false };
    }
    throw new ConflictError(`the user's consent changed ${this.#o.maxAppendAttempts} times while this decision was being recorded: retry`);
  }

  /** The current decision for each purpose, with the record it rests on (each record's hash checked). */
  async current(owner: ChainOwner, purposes: readonly ConsentPurpose[]): Promise<Decision[]> {
    const { store } = this.#o;
    const defaults = this.#o.defaults();
    // Not the tenant default (which may grant): an erased user has consented to nothing.
    if (await this.#erased(owner)) return purposes.map((purpose) => ({ purpose, state: 'denied', isDefault: false, sequence: 0 }));
    const current = await store.head(owner.tenant, owner.userPseudonym);
    if (!current && (await store.hasRecords(owner.tenant, owner.userPseudonym))) {
      throw tampered(owner, this.#o.logger, 1, 'the history has records but no head: the head was removed');
    }
    const decisions = currentDecisions(current?.head, purposes, defaults, owner.tenant);
    const out: Decision[] = [];
    for (const d of decisions) out.push(d.isDefault ? d : { ...d, record: await this.#checkedLatest(owner, current!, d.purpose, d.sequence) });
    if (current) {
      // The head's own link: a history cut short at its end is caught here too, one read away.
      const last = out.find((d) => d.record?.sequence === current.head.sequence)?.record ?? (await store.record(owner.tenant, owner.userPseudonym, current.head.sequence));
      if (!last || last.hash !== current.head.hash) {
        throw tampered(owner, this.#o.logger, current.head.sequence, `record ${current.head.sequence} is not the one the head names: records at the end were removed or replaced`);
      }
    }
    return out;
  }

  /** The whole history, oldest first, after verifying the chain (FAILED_PRECONDITION when it does not verify). */
  async history(owner: ChainOwner): Promise<ConsentRecord[]> {
    const { store } = this.#o;
    let current = await store.head(owner.tenant, owner.userPseudonym);
    let records = await store.history(owner.tenant, owner.userPseudonym);
    const tip = current?.head.sequence ?? 0;
    if ((records.at(-1)?.sequence ?? 0) > tip) {
      // An append landed between the two reads, or records lie beyond the head: the head read
      // again tells which.
      const again = await store.head(owner.tenant, owner.userPseudonym);
      if (again && again.head.sequence >= (records.at(-1)?.sequence ?? 0)) records = records.filter((r) => r.sequence <= tip);
      else current = again;
    }
    const result = verifyChain(owner, records, current?.head);
    if (!result.ok) throw tampered(owner, this.#o.logger, result.firstBad, result.reason);
    return records;
  }

  /**
   * Publishes the user's changes that may not have been announced yet, then clears the outbox
   * entry. Returns the events published (0 when nothing was pending).
   */
  async publishPending(owner: ChainOwner, bounds: CallBounds = {}): Promise<number> {
    const entry = await this.#o.store.outboxEntry(owner.tenant, owner.userPseudonym);
    return entry?.pending ? this.#drain(entry, bounds) : 0;
  }

  /**
   * Announces what calls that failed or crashed after recording left unannounced. Entries younger
   * than `graceMs` are left to the call that wrote them (it is publishing them right now).
   */
  async sweep(graceMs: number, bounds: CallBounds = {}): Promise<number> {
    const before = this.#now().getTime() - graceMs;
    let published = 0;
    let cursor: string | undefined;
    do {
      const page = await this.#o.store.pendingOutbox(cursor);
      for (const entry of page.entries) {
        if (entry.updatedAt.getTime() > before) return published;
        published += await this.#drain(entry, bounds);
      }
      cursor = page.nextCursor;
    } while (cursor);
    return published;
  }

  async #drain(entry: OutboxEntry, bounds: CallBounds): Promise<number> {
    const { store, events } = this.#o;
    const owner = { tenant: entry.tenant, userPseudonym: entry.pseudonym };
    const current = await store.head(owner.tenant, owner.userPseudonym);
    let published = 0;
    for (let sequence = entry.fromSequence; sequence <= (current?.head.sequence ?? 0); sequence++) {
      const record = await this.#existing(owner, sequence);
      if (!isChange(record)) continue;
      await events.publish(owner, record, bounds);
      published++;
    }
    await store.clearOutbox(entry);
    return published;
  }

  /** A record the head or a key names; its absence or a broken hash means the history was altered. */
  async #existing(owner: ChainOwner, sequence: number): Promise<ConsentRecord> {
    const record = await this.#o.store.record(owner.tenant, owner.userPseudonym, sequence);
    if (!record) {
      // An erasure that ran meanwhile removed it: that is no tampering.
      if (await this.#erased(owner)) throw await this.#erasedRefusal(owner);
      throw tampered(owner, this.#o.logger, sequence, `record ${sequence} is missing: records were removed`);
    }
    if (record.sequence !== sequence || !hashMatches(owner, record)) throw tampered(owner, this.#o.logger, sequence, `record ${sequence} does not match its hash: its content was modified`);
    return record;
  }

  async #erasedRefusal(owner: ChainOwner): Promise<FailedPreconditionError> {
    return (await this.#o.erasure?.isTenantDeleted?.(owner.tenant)) ? tenantDeletedError() : erasedError();
  }

  async #erased(owner: ChainOwner): Promise<boolean> {
    return (await this.#o.erasure?.isErased(owner.tenant, owner.userPseudonym)) ?? false;
  }

  async #checkedLatest(owner: ChainOwner, current: VersionedHead, purpose: ConsentPurpose, sequence: number): Promise<ConsentRecord> {
    const record = await this.#existing(owner, sequence);
    const latest = current.head.purposes[purpose];
    if (record.purpose !== purpose || record.state !== latest?.state) {
      throw tampered(owner, this.#o.logger, sequence, `record ${sequence} is not the ${purpose} decision the head names (${latest?.state ?? 'none'}): the head or the record was changed`);
    }
    return record;
  }
}
