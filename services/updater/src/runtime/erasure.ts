/**
 * The updater's part of an erasure, and the guard that keeps an erased user's model from coming
 * back.
 *
 * The erasure (ErasureRequested, through the shared participant):
 * 1. write the user's tombstone. From then on feedback of the user is dropped at intake, and no
 *    write of the updater can add to the user's history, mark or hints (each carries a check that
 *    the tombstone is absent);
 *    Then what memory holds about the user goes: their data keys (so a destroyed key is not used
 *    from the cache) and their consent (the next check reads the privacy service);
 * 2. with the user held against incremental updates in this replica (an update in progress here
 *    finishes first), delete the history, the training state and the user's refit jobs;
 * 3. call personal-model's DeleteUser, even though personal-model deletes on its own: an update
 *    that trained the model before step 1 (here, or on another replica) may have written a
 *    version after personal-model's own deletion ran;
 * 4. delete the user's FeedbackRecorded events from the feedback stream (their subject carries the
 *    pseudonym, so it is exactly theirs). Crypto-shredding has made them unreadable already; this
 *    removes them instead of leaving them to the stream's retention. A failure fails the step,
 *    which the participant retries, so nothing is confirmed without it. An event still in flight
 *    that lands after it stays until the retention, sealed with the destroyed key, and is dropped
 *    at intake;
 * 5. then confirm (ErasureCompleted for `updater`), counting the events in `items_deleted`.
 *
 * An update running on another replica when the tombstone is written is caught by the guard: the
 * applier and the refitter read the tombstone right before each Train / Refit (not sent once the
 * user is erased) and right after it; a write that found a tombstone afterwards is undone with
 * DeleteUser. A Train that commits after the check before it either finds the tombstone in the
 * check after it, or committed before step 3 and is deleted there. See the README, "Erasure".
 */
import { FEEDBACK_STREAM, feedbackSubject, type ErasureOutcome, type ErasureRequest, type EventBus } from '@aimass/events';
import type { Logger } from '@aimass/platform';
import type { PersonalModelClient } from '../adapters/personal-model-client.js';
import { TENANT_DELETED_ERASURE_ID, type UpdaterStore } from '../adapters/updater-store.js';

export interface UpdaterErasureOptions {
  readonly store: UpdaterStore;
  readonly personal: PersonalModelClient;
  /** The bus whose feedback stream holds the user's events (the one the updater consumes). */
  readonly bus: Pick<EventBus, 'purge'>;
  readonly logger: Logger;
  /** Runs `fn` while no incremental update or refit of the user runs in this replica. */
  readonly exclusive: <T>(tenant: string, pseudonym: string, fn: () => Promise<T>) => Promise<T>;
  /** Drops what memory holds about the user (data keys, consent). */
  readonly forget?: ((tenant: string, pseudonym: string) => void) | undefined;
  readonly now?: (() => Date) | undefined;
}

export class UpdaterErasure {
  readonly #o: UpdaterErasureOptions;
  readonly #now: () => Date;
  #undone = 0;

  constructor(options: UpdaterErasureOptions) {
    this.#o = options;
    this.#now = options.now ?? (() => new Date());
  }

  /** Model writes found to have landed after the user's erasure began, and deleted again. */
  undoneWrites(): number {
    return this.#undone;
  }

  readonly erase = async (r: ErasureRequest): Promise<ErasureOutcome> => {
    const { store, personal } = this.#o;
    await store.writeTombstone(r.tenant, r.userPseudonym, r.erasureId, this.#now());
    this.#o.forget?.(r.tenant, r.userPseudonym);
    return this.#o.exclusive(r.tenant, r.userPseudonym, async () => {
      const items = await store.eraseUser(r.tenant, r.userPseudonym);
      const versions = await personal.deleteUser(r.tenant, r.userPseudonym, r.erasureId);
      if (versions > 0) this.#o.logger.info({ tenant: r.tenant, pseudonym: r.userPseudonym, erasureId: r.erasureId, versions }, 'model versions written during the erasure deleted');
      const { purged } = await this.#o.bus.purge(FEEDBACK_STREAM.name, feedbackSubject(r.tenant, r.userPseudonym));
      return { itemsDeleted: items + purged };
    });
  };

  /** True when the user is erased (or being erased): no model write may be sent for them. */
  async erased(tenant: string, pseudonym: string): Promise<boolean> {
    return (await this.#o.store.tombstone(tenant, pseudonym)) !== undefined;
  }

  /**
   * After a write to the user's model: true when the user was erased meanwhile, in which case the
   * write has been undone (DeleteUser). A failing DeleteUser throws; the update is retried, and
   * its retry starts with `erased` → `undoErased` again.
   */
  async undoIfErased(tenant: string, pseudonym: string): Promise<boolean> {
    const tombstone = await this.#o.store.tombstone(tenant, pseudonym);
    if (!tombstone) return false;
    // A deleted tenant: personal-model refuses every write of it and deleted its models itself; a
    // DeleteUser would only announce a version 0 on the tenant's emptied subjects.
    if (tombstone.erasureId === TENANT_DELETED_ERASURE_ID) return true;
    await this.#o.personal.deleteUser(tenant, pseudonym, tombstone.erasureId);
    this.#undone++;
    this.#o.logger.info({ tenant, pseudonym, erasureId: tombstone.erasureId }, 'a model written while the user was being erased was deleted again');
    return true;
  }
}
