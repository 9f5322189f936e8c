/**
 * The deleted-tenant condition privacy's writes carry. A tenant deletion writes the tenant's
 * tombstone and then deletes the tenant's documents (runtime/tenant-deletion.ts); a call that
 * checked for the tombstone just before it was written could otherwise write its documents just
 * after the deletes ran, and leave data of a deleted tenant behind. Every write that creates a
 * document of a tenant therefore has the check "no tenant tombstone" in its own transaction (the
 * stores serialise it against the tombstone's write): a write that commits before the tombstone is
 * found by the deletion, one that would commit after is refused with TenantDeletedError. The
 * events such a write announces after it committed are taken back by DeletedTenantEvents.
 */
import type { EventBus } from '@aimass/events';
import type { Logger } from '@aimass/platform';
import { TENANT_TOMBSTONES, VersionConflictError, type TenantTombstones } from '@aimass/storage';

/** A write refused because its tenant was deleted (nothing of it was written). */
export class TenantDeletedError extends Error {
  readonly tenant: string;

  constructor(tenant: string) {
    super(`tenant ${tenant} was deleted: nothing is written for it any more`);
    this.name = 'TenantDeletedError';
    this.tenant = tenant;
  }
}

/** True for the conflict a tenant tombstone's `checkOp` raises once the tenant is deleted. */
export function isTenantDeletedConflict(err: unknown): boolean {
  return err instanceof VersionConflictError && err.collection === TENANT_TOMBSTONES;
}

/**
 * Takes back an event published for a tenant whose deletion ran while it was being published.
 * The write guard above cannot cover events: a SetConsent or Erase that commits just before the
 * tenant tombstone (so the deletion deletes its documents) may store its ConsentChanged or
 * ErasureRequested only after the deletion purged the tenant's subjects, which would leave the
 * tenant id and a user's pseudonym in the stream.
 *
 * So once an event is stored, its publisher reads the tenant tombstone. The deletion writes the
 * tombstone first and purges the subjects the stream holds afterwards: a read that finds no
 * tombstone happened before the tombstone was written, so the event was stored before the
 * deletion's purge lists the subjects, and goes with them; a read that finds it purges the
 * event's subject here. Either way nothing of the tenant stays behind.
 *
 * The cost: one get by id on `tenant_tombstones` per event stored (an indexed point read; privacy
 * publishes only consent changes and erasure rounds, no Predict or Feedback goes through here);
 * a purge only for a deleted tenant.
 */
export class DeletedTenantEvents {
  readonly #tenants: Pick<TenantTombstones, 'deleted'>;
  readonly #bus: Pick<EventBus, 'purge'>;
  readonly #logger: Logger;

  constructor(tenants: Pick<TenantTombstones, 'deleted'>, bus: Pick<EventBus, 'purge'>, logger: Logger) {
    this.#tenants = tenants;
    this.#bus = bus;
    this.#logger = logger;
  }

  /**
   * `publish` (the bus's own, not bounded by a caller's deadline: a publish the caller stopped
   * waiting for is checked whenever it lands), then the check above. It settles as `publish` does.
   * A publish that failed may still have been stored (its confirmation lost): when the tenant is
   * deleted by then, the subject is purged as well.
   */
  async published<T>(tenant: string, stream: string, subject: string, publish: Promise<T>): Promise<T> {
    let result: T;
    try {
      result = await publish;
    } catch (err) {
      await this.#takeBack(tenant, stream, subject);
      throw err;
    }
    await this.#takeBack(tenant, stream, subject);
    return result;
  }

  /**
   * Purges the subject when the tenant is deleted. Never throws: the publish's outcome stands for
   * the caller, and nothing else would come back to purge (the deletion removed the outbox entry
   * or erasure that would make a sweep or a retry publish again), so a failure is logged for an
   * operator with what to remove.
   */
  async #takeBack(tenant: string, stream: string, subject: string): Promise<void> {
    let deleted: boolean;
    try {
      deleted = await this.#tenants.deleted(tenant);
    } catch (err) {
      this.#logger.error({ err, tenant, stream, subject }, `tenant tombstone unreadable after a publish: if tenant ${tenant} was deleted meanwhile, purge ${subject} from ${stream} by hand`);
      return;
    }
    if (!deleted) return;
    try {
      const { purged } = await this.#bus.purge(stream, subject);
      this.#logger.info({ tenant, stream, subject, purged }, 'event of a tenant deleted while it was being published: purged');
    } catch (err) {
      this.#logger.error({ err, tenant, stream, subject }, `event of deleted tenant ${tenant} left in the stream: purge ${subject} from ${stream} by hand`);
    }
  }
}
