/**
 * privacy's part of a tenant deletion (TenantDeleted, through the shared participant):
 *
 * 1. the tenant's tombstone: from then on no data key is created or served for the tenant
 *    (GetDataKey answers FAILED_PRECONDITION "user is erased" for a user's current key, NOT_FOUND
 *    for a key id, so nothing new can be sealed for it), SetConsent is refused (FAILED_PRECONDITION,
 *    as for an erased user) and so is Erase (FAILED_PRECONDITION: the tenant was deleted).
 *    A call that checked for the tombstone just before it was written cannot leave anything behind
 *    either: every consent and erasure write carries the check "no tenant tombstone" in its own
 *    transaction (adapters/tenant-guard.ts), so it either commits before the tombstone and is
 *    deleted below, or is refused with the answer above; a data key is checked for again once
 *    stored (the ring's `mayCreate`) and destroyed by its creator if the tombstone came meanwhile;
 * 2. **crypto-shredding**: every wrapped data key of the tenant is deleted (`data_keys`), and every
 *    unwrapped key held in memory dropped, so whatever the tenant's keys sealed anywhere (feedback
 *    events in stream retention, dead letters, backups) is unreadable before anything else goes.
 *    The tenant's KEK comes from configuration (`dataKeys.kekSecret` / `kekDirectory`): privacy
 *    cannot delete it, the operator removes it (nothing it wrapped is left once this step ran);
 * 3. the tenant's consent records, heads, idempotency keys and outbox entries, and its erasure
 *    records (tombstones, receipts, open entries): the tenant's proof of erasure goes with the
 *    tenant, whose deletion receipt (fusion) replaces it;
 * 4. its events in the streams privacy owns: ConsentChanged (`aimass.<tenant>.consent.changed.*`)
 *    and the erasure saga's (`aimass.<tenant>.erasure.>`), erased one by one per subject. A call
 *    that committed before the tombstone but stores its event only after this purge takes the
 *    event back itself: every publisher reads the tenant tombstone once its event is stored
 *    (adapters/tenant-guard.ts, DeletedTenantEvents);
 * 5. then the participant confirms (TenantDeletionCompleted for `privacy`).
 *
 * A late ErasureCompleted of the tenant finds no erasure and is dropped (logged).
 */
import { CONSENT_STREAM, ERASURE_STREAM, type EventBus, type TenantDeletionOutcome, type TenantDeletionRequest } from '@aimass/events';
import type { Collection } from '@aimass/storage';
import type { ConsentStore } from '../adapters/consent-store.js';
import type { ErasureStore } from '../adapters/erasure-store.js';
import type { TenantTombstones } from '@aimass/storage';

export interface PrivacyTenantDeletionOptions {
  readonly tombstones: TenantTombstones;
  readonly consent: ConsentStore;
  readonly erasure: ErasureStore;
  /** The wrapped data keys (the DataKeyRing's collection). */
  readonly wrappedKeys: Pick<Collection, 'deleteByTenant'>;
  /** Drops every unwrapped key held in memory (the ring keeps no per-tenant index). */
  readonly forgetKeys: () => void;
  readonly bus: Pick<EventBus, 'purgeMatching'>;
  readonly now?: (() => Date) | undefined;
}

/** The participant's `deleteTenant`. Idempotent: a repeat keeps the first tombstone and finds nothing. */
export function privacyTenantDeletion(o: PrivacyTenantDeletionOptions): (r: TenantDeletionRequest) => Promise<TenantDeletionOutcome> {
  const now = o.now ?? (() => new Date());
  return async (r) => {
    const { tenant } = r;
    await o.tombstones.write(tenant, r.reason, now());
    o.forgetKeys();
    let deleted = await o.wrappedKeys.deleteByTenant(tenant);
    // A key read that started before the delete must not stay in memory.
    o.forgetKeys();
    deleted += await o.consent.deleteTenant(tenant);
    deleted += await o.erasure.deleteTenant(tenant);
    deleted += (await o.bus.purgeMatching(CONSENT_STREAM.name, `aimass.${tenant}.consent.changed.*`)).purged;
    deleted += (await o.bus.purgeMatching(ERASURE_STREAM.name, `aimass.${tenant}.erasure.>`)).purged;
    return { itemsDeleted: deleted };
  };
}
