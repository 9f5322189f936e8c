/**
 * The erasure saga, privacy's side:
 *
 * 1. Erase writes the user's **tombstone first** (create-only, so concurrent or repeated calls
 *    meet on one erasure): from then on no consent can be recorded for the user (SetConsent's
 *    writes carry a check that the tombstone is absent), and the erasure id is fixed.
 * 2. The user's **data key is destroyed** (crypto-shredding) and the time recorded in the
 *    tombstone (`keyDestroyedAt`, the first time kept): every copy of what it sealed (events in
 *    stream retention, backups) is unreadable before any service is even asked to delete. A
 *    GetDataKey racing the erasure cannot leave a new key behind: the ring asks "no tombstone?"
 *    before and after it stores one.
 * 3. privacy's own part: the user's consent records, head, idempotency keys and outbox entry are
 *    deleted; the tombstone is what remains (tenant, pseudonym, erasure id, times, reason,
 *    confirmations). privacy confirms itself in the tombstone.
 * 4. ErasureRequested (round 0) is published before Erase answers. If the bus cannot confirm it,
 *    Erase answers UNAVAILABLE with everything above kept; the retry, or the sweep after
 *    `graceMs`, publishes it (same event id: stored once).
 * 5. Every ErasureCompleted (durable consumer) is recorded in the tombstone with its time.
 * 6. While an expected service has not completed, the sweep publishes a new round every
 *    `retryIntervalMs` (a new event id, so the participants' groups receive it again).
 *
 * Each step reads the tombstone and writes it back with a compare-and-set, so replicas and
 * retries cannot lose a confirmation or run a round twice.
 */
import {
  ERASURE_SERVICE_PATTERN,
  MalformedEventError,
  decodeEvent,
  erasureCompletedSubject,
  type DeliveredEvent,
} from '@aimass/events';
import { FailedPreconditionError, NotFoundError, UnavailableError, uuidv7, type Logger } from '@aimass/platform';
import { StoreUnavailableError } from '@aimass/storage';
import { v1 } from '@aimass/proto';
import type { CallBounds } from '../adapters/consent-events.js';
import type { ConsentStore } from '../adapters/consent-store.js';
import type { ErasureEvents } from '../adapters/erasure-events.js';
import type { ErasureStore, VersionedTombstone } from '../adapters/erasure-store.js';
import { TenantDeletedError } from '../adapters/tenant-guard.js';
import type { ChainOwner } from '../domain/chain.js';
import { PRIVACY_SERVICE, confirmationOf, newTombstone, roundDue, withConfirmation, withKeyDestroyed, type Confirmation, type Tombstone } from '../domain/erasure.js';

/** What erasure needs of the users' data keys (the DataKeyRing). */
export interface DataKeyShredder {
  /** Deletes the user's wrapped key (and drops it from memory); resolves also when there was none. */
  destroy(tenant: string, userPseudonym: string): Promise<boolean>;
}

export interface ErasureServiceOptions {
  readonly store: ErasureStore;
  readonly consent: ConsentStore;
  readonly events: ErasureEvents;
  /** Users' data keys: destroyed before anyone is asked to delete. */
  readonly keys: DataKeyShredder;
  /** Services expected to confirm a new erasure (privacy is added when missing). */
  readonly services: readonly string[];
  /** A round whose services have not all completed is followed by a new one after this. */
  readonly retryIntervalMs: number;
  /** An unpublished round younger than this is left to the call that wrote it. */
  readonly graceMs: number;
  readonly logger: Logger;
  readonly now?: (() => Date) | undefined;
}

export interface EraseResult {
  readonly tombstone: Tombstone;
  /** The user had been erased before (any idempotency key): this is that erasure. */
  readonly duplicate: boolean;
}

/**
 * Erase of a user of a deleted tenant: the tenant's deletion erased every user of it (the tenant's
 * deletion receipt in fusion is the proof), so no erasure of its own is recorded. The same answer
 * whether the deletion came before the call or while it was writing.
 */
export function tenantDeletedError(): FailedPreconditionError {
  return new FailedPreconditionError("the tenant was deleted: its users' data was erased with it and no erasure is recorded for it any more (the tenant's deletion receipt shows the deletion)");
}

/** Compare-and-set attempts on one tombstone before giving up (many confirmations at once). */
const MAX_UPDATE_ATTEMPTS = 32;

export class ErasureService {
  readonly #o: ErasureServiceOptions;
  readonly #now: () => Date;
  #confirmationsRecorded = 0;

  constructor(options: ErasureServiceOptions) {
    this.#o = options;
    this.#now = options.now ?? (() => new Date());
  }

  stats(): { confirmationsRecorded: number } {
    return { confirmationsRecorded: this.#confirmationsRecorded };
  }

  async erase(owner: ChainOwner, reason: string, bounds: CallBounds): Promise<EraseResult> {
    const { store, logger } = this.#o;
    const { tenant, userPseudonym: pseudonym } = owner;
    let current = await store.get(tenant, pseudonym);
    const duplicate = current !== undefined;
    if (!current) {
      const now = this.#now();
      const tombstone = newTombstone({ tenant, pseudonym, erasureId: uuidv7(now.getTime()), reason, services: this.#o.services, now });
      if (await this.#create(tombstone)) {
        logger.info({ tenant, pseudonym, erasureId: tombstone.erasureId, services: tombstone.services }, 'erasure requested: tombstone written');
        current = { tombstone, version: 1 };
      } else {
        // A concurrent Erase of the same user wrote it first: this call answers that erasure.
        current = await store.get(tenant, pseudonym);
        if (!current) throw new UnavailableError('the erasure tombstone was written concurrently but cannot be read back: retry', { retryAfterMs: 100 });
      }
    }
    // Every step again on a repeated Erase: each skips what is done, and finishes what a crash or a
    // failed call left undone (a key not yet destroyed, the request not yet published).
    current = await this.#destroyKey(current);
    current = await this.#ownPart(current);
    current = await this.#publishRound(current, bounds);
    return { tombstone: current.tombstone, duplicate };
  }

  /** Writes a new tombstone; false when the user has one. */
  async #create(tombstone: Tombstone): Promise<boolean> {
    try {
      return await this.#o.store.create(tombstone);
    } catch (err) {
      if (err instanceof TenantDeletedError) throw tenantDeletedError();
      throw err;
    }
  }

  /** The erasure with that id in the tenant (NOT_FOUND otherwise). */
  async receipt(tenant: string, erasureId: string): Promise<Tombstone> {
    const t = await this.#o.store.byErasureId(tenant, erasureId);
    if (!t) throw new NotFoundError(`no erasure ${erasureId} in this tenant: use the id Erase answered (Erase for the same user answers it again)`);
    return t;
  }

  /**
   * Records one service's confirmation. 'unknown' when the user has no tombstone or another
   * erasure id (a stray or forged event: it is logged and dropped).
   */
  async confirm(tenant: string, pseudonym: string, erasureId: string, c: Confirmation): Promise<'recorded' | 'unchanged' | 'unknown'> {
    // Set by the last (successful) attempt of the compare-and-set loop.
    const seen = { unknown: false, changed: false, completes: false };
    const written = await this.#update(tenant, pseudonym, (t) => {
      seen.unknown = t.erasureId !== erasureId;
      const next = seen.unknown ? undefined : withConfirmation(t, c);
      seen.changed = next !== undefined;
      seen.completes = next?.completedAt !== undefined && t.completedAt === undefined;
      return next;
    });
    if (!written || seen.unknown) return 'unknown';
    if (!seen.changed) return 'unchanged';
    this.#confirmationsRecorded++;
    const { logger } = this.#o;
    logger.info({ tenant, pseudonym, erasureId, service: c.service, status: c.status, itemsDeleted: c.itemsDeleted }, 'erasure confirmation recorded');
    if (seen.completes) logger.info({ tenant, pseudonym, erasureId, completedAt: written.tombstone.completedAt }, 'erasure complete: every expected service confirmed');
    return 'recorded';
  }

  /** The handler of the ErasureCompleted consumer. */
  readonly handleCompleted = async (event: DeliveredEvent): Promise<void> => {
    const message = decodeEvent('aimass.v1.ErasureCompleted', event.data);
    const { tenant, userPseudonym } = message.envelope;
    const { service } = message;
    if (!ERASURE_SERVICE_PATTERN.test(service)) throw new MalformedEventError(`ErasureCompleted names no service one can read ('${service.slice(0, 64)}')`);
    if (!userPseudonym || event.subject !== erasureCompletedSubject(tenant, service, userPseudonym)) {
      throw new MalformedEventError(`ErasureCompleted on ${event.subject.slice(0, 200)} names another tenant, service or user in its envelope`);
    }
    const status =
      message.status === v1.ErasureStatus.ERASURE_STATUS_COMPLETED ? 'completed' : message.status === v1.ErasureStatus.ERASURE_STATUS_FAILED ? 'failed' : undefined;
    if (!status) throw new MalformedEventError(`ErasureCompleted with status ${message.status}: expected COMPLETED or FAILED`);
    const outcome = await this.confirm(tenant, userPseudonym, message.erasureId, {
      service,
      status,
      confirmedAt: message.envelope.occurredAt ?? event.publishedAt,
      itemsDeleted: message.itemsDeleted,
      detail: message.detail.slice(0, 1024),
    });
    if (outcome === 'unknown') this.#o.logger.warn({ tenant, pseudonym: userPseudonym, service, erasureId: message.erasureId }, 'ErasureCompleted for an erasure this service does not know: dropped');
  };

  /**
   * Looks at every open erasure: finishes privacy's own part where a crash interrupted it,
   * publishes rounds a failed call left unpublished (after `graceMs`), and starts a new round
   * where services have not completed `retryIntervalMs` after the last. Returns the rounds published.
   */
  async sweep(bounds: CallBounds = {}): Promise<number> {
    const { store } = this.#o;
    let published = 0;
    let cursor: string | undefined;
    do {
      const page = await store.openErasures(cursor);
      for (const { tenant, pseudonym } of page.entries) {
        if (bounds.signal?.aborted) return published;
        let current = await store.get(tenant, pseudonym);
        if (!current || current.tombstone.completedAt) {
          await store.close(tenant, pseudonym);
          continue;
        }
        current = await this.#destroyKey(current);
        current = await this.#ownPart(current);
        const due = roundDue(current.tombstone, this.#now(), this.#o);
        if (due === 'next-round') {
          const now = this.#now();
          const round = current.tombstone.round;
          const next = await this.#update(tenant, pseudonym, (t) => (t.round === round && !t.completedAt ? { ...t, round: round + 1, roundPublished: false, roundAt: now } : undefined));
          // Another replica started the round (or the erasure completed) meanwhile.
          if (!next || next.tombstone.round !== round + 1) continue;
          this.#o.logger.info({ tenant, pseudonym, erasureId: next.tombstone.erasureId, round: round + 1 }, 'erasure not confirmed by every service yet: asking again');
          current = next;
        } else if (due !== 'publish') {
          continue;
        }
        await this.#publishRound(current, bounds);
        published++;
      }
      cursor = page.nextCursor;
    } while (cursor);
    return published;
  }

  /**
   * Destroys the user's data key unless the tombstone says it was, then records when. Destroying a
   * key that is already gone is fine (a crash after the delete, before the record): the first
   * recorded time stays.
   */
  async #destroyKey(current: VersionedTombstone): Promise<VersionedTombstone> {
    const t = current.tombstone;
    if (t.keyDestroyedAt) return current;
    let existed: boolean;
    try {
      existed = await this.#o.keys.destroy(t.tenant, t.pseudonym);
    } catch (err) {
      if (err instanceof StoreUnavailableError) {
        throw new UnavailableError(`the user's data key could not be destroyed (the privacy store is unavailable: ${err.message}); the erasure is recorded: retry Erase`, { cause: err, retryAfterMs: 1000 });
      }
      throw err;
    }
    const at = this.#now();
    const next = await this.#update(t.tenant, t.pseudonym, (x) => withKeyDestroyed(x, at));
    this.#o.logger.info({ tenant: t.tenant, pseudonym: t.pseudonym, erasureId: t.erasureId, keyExisted: existed }, "erasure: the user's data key is destroyed");
    return next ?? current;
  }

  /** Deletes privacy's own records of the user (again, if a crash came between) and confirms itself. */
  async #ownPart(current: VersionedTombstone): Promise<VersionedTombstone> {
    const t = current.tombstone;
    if (confirmationOf(t, PRIVACY_SERVICE)?.status === 'completed') return current;
    const items = await this.#o.consent.eraseUser(t.tenant, t.pseudonym);
    const c: Confirmation = { service: PRIVACY_SERVICE, status: 'completed', confirmedAt: this.#now(), itemsDeleted: items, detail: '' };
    const next = await this.#update(t.tenant, t.pseudonym, (x) => withConfirmation(x, c));
    return next ?? current;
  }

  /** Publishes the current round unless it is published; then marks it published. */
  async #publishRound(current: VersionedTombstone, bounds: CallBounds): Promise<VersionedTombstone> {
    const t = current.tombstone;
    if (t.roundPublished) return current;
    await this.#o.events.publish(t, bounds);
    const next = await this.#update(t.tenant, t.pseudonym, (x) => (x.round === t.round && !x.roundPublished ? { ...x, roundPublished: true } : undefined));
    this.#o.logger.info({ tenant: t.tenant, pseudonym: t.pseudonym, erasureId: t.erasureId, round: t.round }, 'ErasureRequested published');
    return next ?? (await this.#o.store.get(t.tenant, t.pseudonym)) ?? current;
  }

  /**
   * Reads the tombstone, applies `change` and writes it back with a compare-and-set, again on a
   * conflict. Returns what was written, the current tombstone when `change` changed nothing, or
   * undefined when there is no tombstone (or its tenant was deleted: the deletion removes it).
   */
  async #update(tenant: string, pseudonym: string, change: (t: Tombstone) => Tombstone | undefined): Promise<VersionedTombstone | undefined> {
    for (let attempt = 1; attempt <= MAX_UPDATE_ATTEMPTS; attempt++) {
      const current = await this.#o.store.get(tenant, pseudonym);
      if (!current) return undefined;
      const next = change(current.tombstone);
      if (!next) return current;
      const completes = next.completedAt !== undefined && current.tombstone.completedAt === undefined;
      let version: number | undefined;
      try {
        version = await this.#o.store.replace(next, current.version, completes);
      } catch (err) {
        if (err instanceof TenantDeletedError) return undefined;
        throw err;
      }
      if (version !== undefined) return { tombstone: next, version };
    }
    throw new UnavailableError(`the erasure record changed ${MAX_UPDATE_ATTEMPTS} times while it was being updated: retrying`, { retryAfterMs: 100 });
  }
}
