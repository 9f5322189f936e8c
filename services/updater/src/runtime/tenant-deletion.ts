/**
 * The updater's part of a tenant deletion (TenantDeleted, through the shared participant):
 *
 * 1. the tenant's tombstone. From then on every user of the tenant counts as erased: feedback of
 *    the tenant is dropped at intake (and its late events purged from the stream), no history
 *    entry, pending mark or tenant-list entry can be written (each write carries a check that it
 *    is absent), and no Train / Refit is sent for it;
 * 2. what memory holds for the tenant: its users' consent and the data keys (all of them: the key
 *    clients keep no per-tenant index, and a deletion is rare);
 * 3. every history entry, training state, refit job and user tombstone of the tenant, and its
 *    entry in the tenant list (`deleteByTenant`);
 * 4. its FeedbackRecorded events in AIMASS_FEEDBACK (`aimass.<tenant>.feedback.>`), erased one by
 *    one per subject as for a user's erasure, so other tenants' unconsumed feedback is untouched;
 * 5. then the participant confirms (TenantDeletionCompleted for `updater`), counting documents
 *    and events in `items_deleted`.
 *
 * personal-model deletes the tenant's models itself; an update of the tenant running here when
 * the tombstone is written gets its Train refused there (its tenant tombstone), and its own
 * writes here are refused by the checks above.
 */
import { FEEDBACK_STREAM, feedbackPrefix, type EventBus, type TenantDeletionOutcome, type TenantDeletionRequest } from '@aimass/events';
import type { UpdaterStore } from '../adapters/updater-store.js';

export interface UpdaterTenantDeletionOptions {
  readonly store: UpdaterStore;
  readonly bus: Pick<EventBus, 'purgeMatching'>;
  /** Drops what memory holds of the tenant (consent, data keys). */
  readonly forget: (tenant: string) => void;
  readonly now?: (() => Date) | undefined;
}

/** The participant's `deleteTenant`. Idempotent: a repeat keeps the first tombstone and finds nothing. */
export function updaterTenantDeletion(o: UpdaterTenantDeletionOptions): (r: TenantDeletionRequest) => Promise<TenantDeletionOutcome> {
  const now = o.now ?? (() => new Date());
  return async (r) => {
    await o.store.writeTenantTombstone(r.tenant, r.reason, now());
    o.forget(r.tenant);
    const documents = await o.store.deleteTenant(r.tenant);
    const { purged } = await o.bus.purgeMatching(FEEDBACK_STREAM.name, `${feedbackPrefix(r.tenant)}.>`);
    return { itemsDeleted: documents + purged };
  };
}
