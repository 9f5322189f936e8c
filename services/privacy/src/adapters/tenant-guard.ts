/**
 * The deleted-tenant condition privacy's writes carry. A tenant deletion writes the tenant's
 * tombstone and then deletes the tenant's documents (runtime/tenant-deletion.ts); a call that
 * checked for the tombstone just before it was written could otherwise write its documents just
 * after the deletes ran, and leave data of a deleted tenant behind. Every write that creates a
 * document of a tenant therefore has the check "no tenant tombstone" in its own transaction (the
 * stores serialise it against the tombstone's write): a write that commits before the tombstone is
 * found by the deletion, one that would commit after is refused with TenantDeletedError.
 */
import { TENANT_TOMBSTONES, VersionConflictError } from '@aimass/storage';

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
