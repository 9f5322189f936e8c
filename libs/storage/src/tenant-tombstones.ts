import { VersionConflictError } from './errors.js';
import type { Collection, DocumentStore, WriteOp } from './types.js';

/** The reserved store tenant of the tombstones: a deleted tenant's own partition is emptied. */
const TOMBSTONE_PARTITION = '_global';

/** `tenant_tombstones`, id = tenant id: the tenant was deleted (TenantDeleted), and when. */
export const TENANT_TOMBSTONES = 'tenant_tombstones';

interface TenantTombstoneDoc {
  deleted_at: Date;
  reason: string;
}

/**
 * Deleted tenants, shared by every service that holds a tenant's data (personal-model, the
 * updater, privacy), like the user tombstones of an erasure one level up: written before the
 * tenant's data is deleted and never removed, so what arrives for the tenant later (redelivered
 * events, a write already in flight) is dropped instead of bringing its data back. It holds the
 * tenant id and a time only.
 */
export class TenantTombstones {
  readonly #docs: Collection<TenantTombstoneDoc>;

  private constructor(docs: Collection<TenantTombstoneDoc>) {
    this.#docs = docs;
  }

  static async open(store: DocumentStore): Promise<TenantTombstones> {
    return new TenantTombstones(await store.collection<TenantTombstoneDoc>({ name: TENANT_TOMBSTONES }));
  }

  /** Writes the tombstone unless there is one (a repeated deletion keeps the first time). */
  async write(tenant: string, reason: string, now = new Date()): Promise<void> {
    try {
      await this.#docs.put(TOMBSTONE_PARTITION, tenant, { deleted_at: now, reason: reason.slice(0, 500) }, { expectedVersion: 'absent' });
    } catch (err) {
      if (!(err instanceof VersionConflictError)) throw err;
    }
  }

  async deleted(tenant: string): Promise<boolean> {
    return (await this.#docs.get(TOMBSTONE_PARTITION, tenant)) !== undefined;
  }

  /** A condition for `writeAtomic`: the batch applies only while the tenant has no tombstone. */
  checkOp(tenant: string): WriteOp {
    return this.#docs.checkOp(TOMBSTONE_PARTITION, tenant, 'absent');
  }
}
