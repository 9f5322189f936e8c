/**
 * personal-model's part of a tenant deletion (TenantDeleted, through the shared participant):
 *
 * 1. the tenant's tombstone: from then on no version of the tenant can be written (every write
 *    carries a check that it is absent), so a Train already in flight fails instead of bringing a
 *    model back;
 * 2. what memory holds for the tenant: its cached models, its users' consent, the data keys (all
 *    of them: the key clients keep no per-tenant index, and a deletion is rare);
 * 3. every pointer, version and idempotency record of the tenant (`deleteByTenant`);
 * 4. its PersonalModelUpdated events in AIMASS_MODELS (subjects `aimass.<tenant>.model.updated.*`:
 *    pseudonyms and versions), erased one by one as for a user;
 * 5. then the participant confirms (TenantDeletionCompleted for `personal-model`).
 *
 * Other replicas hear TenantDeleted live (`forgetTenantLive`) and drop their cached copies at once.
 */
import { ALL_TENANT_DELETED, MODEL_EVENTS_STREAM, type EventBus, type LiveEvent, type Subscription, type TenantDeletionOutcome, type TenantDeletionRequest } from '@aimass/events';
import type { Logger } from '@aimass/platform';
import type { PersonalModelStore } from '../adapters/model-store.js';
import type { TenantTombstones } from '@aimass/storage';
import type { PersonalModels } from './personal-models.js';

export interface PersonalModelTenantDeletionOptions {
  readonly store: PersonalModelStore;
  readonly tombstones: TenantTombstones;
  readonly models: PersonalModels;
  readonly bus: Pick<EventBus, 'purgeMatching'>;
  /** Drops what memory holds of the tenant besides its models (consent, data keys). */
  readonly forget: (tenant: string) => void;
}

/** The participant's `deleteTenant`. Idempotent: a repeat writes no tombstone and finds nothing. */
export function personalModelTenantDeletion(o: PersonalModelTenantDeletionOptions): (r: TenantDeletionRequest) => Promise<TenantDeletionOutcome> {
  return async (r) => {
    await o.tombstones.write(r.tenant, r.reason);
    o.forget(r.tenant);
    o.models.forgetTenant(r.tenant);
    const documents = await o.store.deleteTenant(r.tenant);
    // A load that started before the deletion may have filled the cache meanwhile.
    o.models.forgetTenant(r.tenant);
    const { purged } = await o.bus.purgeMatching(MODEL_EVENTS_STREAM.name, `aimass.${r.tenant}.model.updated.*`);
    return { itemsDeleted: documents + purged };
  };
}

/**
 * Every replica drops a deleted tenant's cached models and consent at once (one replica of the
 * consumer group runs the deletion; the others would serve their copies until `revalidateMs`).
 */
export async function forgetTenantLive(bus: EventBus, forget: (tenant: string) => void, logger: Logger): Promise<Subscription> {
  return bus.subscribe(ALL_TENANT_DELETED, (event: LiveEvent) => {
    const tenant = event.subject.split('.')[1];
    if (tenant) forget(tenant);
  }, { onError: (err) => logger.warn({ err }, 'TenantDeleted heard but not applied to the caches') });
}
