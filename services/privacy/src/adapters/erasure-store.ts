/**
 * Erasure documents in the privacy service's DocumentStore.
 *
 * Per tenant:
 * - `erasure_tombstones`, id = pseudonym: the tombstone (erasure id, times, reason, expected
 *   services, confirmations, the current round of ErasureRequested, when the data key was destroyed). Deliberately **not owned by
 *   the user** (`user` unset): it is the proof of erasure, and a `deleteByUser` of the user's data
 *   must not take it along. Index `erasure_id` (unique) for GetErasureReceipt.
 *
 * In the reserved tenant `_global`:
 * - `erasure_open`, id `<tenant>:<pseudonym>`: `open` while some expected service has not
 *   confirmed; the sweep reads these (index `open,updatedAt`) to publish rounds a call could not
 *   publish and to ask again. Created with the tombstone, closed in the write that completes it.
 *
 * The consent documents a SetConsent writes carry a `check` that the tombstone is absent, so no
 * consent record can be written once the tombstone exists (see ConsentService).
 *
 * One level up, every write here carries the check that the tenant has no tenant tombstone
 * (tenant-guard.ts): an Erase, a confirmation or a sweep racing the tenant's deletion cannot leave a
 * tombstone or an open entry of the deleted tenant behind.
 */
import { UnavailableError } from '@aimass/platform';
import { StoreUnavailableError, TenantTombstones, VersionConflictError, type Collection, type DocumentStore, type WriteOp } from '@aimass/storage';
import type { Confirmation, Tombstone } from '../domain/erasure.js';
import { GLOBAL_TENANT } from './consent-store.js';
import { TenantDeletedError, isTenantDeletedConflict } from './tenant-guard.js';

export const ERASURE_COLLECTIONS = Object.freeze({
  tombstones: 'erasure_tombstones',
  open: 'erasure_open',
});

interface ConfirmationDoc {
  service: string;
  status: 'completed' | 'failed';
  confirmed_at: Date;
  items_deleted: number;
  detail: string;
}

interface TombstoneDoc {
  erasure_id: string;
  requested_at: Date;
  reason: string;
  services: string[];
  confirmations: ConfirmationDoc[];
  round: number;
  round_published: boolean;
  round_at: Date;
  completed_at?: Date | undefined;
  key_destroyed_at?: Date | undefined;
}

interface OpenDoc {
  tenant: string;
  pseudonym: string;
  open: boolean;
}

export interface VersionedTombstone {
  readonly tombstone: Tombstone;
  readonly version: number;
}

function storeUnavailable(err: unknown): never {
  if (err instanceof StoreUnavailableError) throw new UnavailableError(`the privacy store is unavailable: ${err.message}`, { cause: err, retryAfterMs: 1000 });
  throw err;
}

const openId = (tenant: string, pseudonym: string) => `${tenant}:${pseudonym}`;

function toDoc(t: Tombstone): TombstoneDoc {
  return {
    erasure_id: t.erasureId,
    requested_at: t.requestedAt,
    reason: t.reason,
    services: [...t.services],
    confirmations: t.confirmations.map((c) => ({ service: c.service, status: c.status, confirmed_at: c.confirmedAt, items_deleted: c.itemsDeleted, detail: c.detail })),
    round: t.round,
    round_published: t.roundPublished,
    round_at: t.roundAt,
    completed_at: t.completedAt,
    key_destroyed_at: t.keyDestroyedAt,
  };
}

function toTombstone(tenant: string, pseudonym: string, d: TombstoneDoc): Tombstone {
  return {
    tenant,
    pseudonym,
    erasureId: d.erasure_id,
    requestedAt: d.requested_at,
    reason: d.reason,
    services: d.services,
    confirmations: d.confirmations.map((c): Confirmation => ({ service: c.service, status: c.status, confirmedAt: c.confirmed_at, itemsDeleted: c.items_deleted, detail: c.detail })),
    round: d.round,
    roundPublished: d.round_published,
    roundAt: d.round_at,
    completedAt: d.completed_at ?? undefined,
    keyDestroyedAt: d.key_destroyed_at ?? undefined,
  };
}

export class ErasureStore {
  private constructor(
    private readonly store: DocumentStore,
    private readonly tombstones: Collection<TombstoneDoc>,
    private readonly open: Collection<OpenDoc>,
    private readonly tenants: TenantTombstones,
  ) {}

  static async open(store: DocumentStore): Promise<ErasureStore> {
    const [tombstones, open, tenants] = await Promise.all([
      store.collection<TombstoneDoc>({ name: ERASURE_COLLECTIONS.tombstones, indexes: [{ fields: ['erasure_id'], unique: true }] }),
      store.collection<OpenDoc>({ name: ERASURE_COLLECTIONS.open, indexes: [{ fields: ['open', 'updatedAt'] }] }),
      TenantTombstones.open(store),
    ]);
    return new ErasureStore(store, tombstones, open, tenants);
  }

  /**
   * Tenant deletion: every erasure record of the tenant (tombstones and receipts) and their entries
   * in the open list (`_global`, found through the tombstones, so they go first). Returns the
   * documents deleted. Idempotent.
   */
  async deleteTenant(tenant: string): Promise<number> {
    let deleted = 0;
    let cursor: string | undefined;
    do {
      const page = await this.tombstones.query(tenant, { limit: 1000, ...(cursor ? { cursor } : {}) }).catch(storeUnavailable);
      for (const t of page.items) if (await this.open.delete(GLOBAL_TENANT, openId(tenant, t.id)).catch(storeUnavailable)) deleted++;
      cursor = page.nextCursor;
    } while (cursor);
    return deleted + (await this.tombstones.deleteByTenant(tenant).catch(storeUnavailable));
  }

  async get(tenant: string, pseudonym: string): Promise<VersionedTombstone | undefined> {
    const doc = await this.tombstones.get(tenant, pseudonym).catch(storeUnavailable);
    return doc && { tombstone: toTombstone(tenant, pseudonym, doc.data), version: doc.version };
  }

  async isErased(tenant: string, pseudonym: string): Promise<boolean> {
    return (await this.tombstones.get(tenant, pseudonym).catch(storeUnavailable)) !== undefined;
  }

  async byErasureId(tenant: string, erasureId: string): Promise<Tombstone | undefined> {
    const page = await this.tombstones.query(tenant, { where: { erasure_id: erasureId }, limit: 1 }).catch(storeUnavailable);
    const doc = page.items[0];
    return doc && toTombstone(tenant, doc.id, doc.data);
  }

  /**
   * Writes a new tombstone and its open entry; false when the user already has one,
   * TenantDeletedError when the tenant was deleted.
   */
  async create(t: Tombstone): Promise<boolean> {
    try {
      await this.store.writeAtomic([
        // First, so a deleted tenant is reported as such (its users' tombstones may still be there
        // while the deletion runs).
        this.tenants.checkOp(t.tenant),
        this.tombstones.putOp(t.tenant, t.pseudonym, toDoc(t), { expectedVersion: 'absent' }),
        this.open.putOp(GLOBAL_TENANT, openId(t.tenant, t.pseudonym), { tenant: t.tenant, pseudonym: t.pseudonym, open: true }),
      ]);
      return true;
    } catch (err) {
      if (isTenantDeletedConflict(err)) throw new TenantDeletedError(t.tenant);
      if (err instanceof VersionConflictError) return false;
      return storeUnavailable(err);
    }
  }

  /**
   * Replaces the tombstone if it is still at `version` (undefined otherwise); when `next` completes
   * the erasure, its open entry is closed in the same write. TenantDeletedError when the tenant
   * was deleted: the deletion may have removed the open entry already, and the write would bring
   * it back after the tombstone is gone.
   */
  async replace(next: Tombstone, version: number, completes: boolean): Promise<number | undefined> {
    const ops: WriteOp[] = [this.tombstones.putOp(next.tenant, next.pseudonym, toDoc(next), { expectedVersion: version }), this.tenants.checkOp(next.tenant)];
    if (completes) ops.push(this.open.putOp(GLOBAL_TENANT, openId(next.tenant, next.pseudonym), { tenant: next.tenant, pseudonym: next.pseudonym, open: false }));
    try {
      const [written] = await this.store.writeAtomic(ops);
      return written?.type === 'put' ? written.document.version : undefined;
    } catch (err) {
      if (isTenantDeletedConflict(err)) throw new TenantDeletedError(next.tenant);
      if (err instanceof VersionConflictError) return undefined;
      return storeUnavailable(err);
    }
  }

  /**
   * Closes an open entry the sweep found without an open erasure behind it (its tombstone complete
   * or removed by hand). Nothing for a deleted tenant: the put would re-create an entry its deletion
   * removed.
   */
  async close(tenant: string, pseudonym: string): Promise<void> {
    try {
      await this.store.writeAtomic([this.tenants.checkOp(tenant), this.open.putOp(GLOBAL_TENANT, openId(tenant, pseudonym), { tenant, pseudonym, open: false })]);
    } catch (err) {
      if (isTenantDeletedConflict(err)) return;
      storeUnavailable(err);
    }
  }

  /** Open erasures of every tenant, least recently touched first. */
  async openErasures(cursor?: string): Promise<{ entries: Array<{ tenant: string; pseudonym: string }>; nextCursor: string | undefined }> {
    const page = await this.open
      .query(GLOBAL_TENANT, { where: { open: true }, orderBy: { field: 'updatedAt' }, limit: 100, ...(cursor ? { cursor } : {}) })
      .catch(storeUnavailable);
    return { entries: page.items.map((d) => ({ tenant: d.data.tenant, pseudonym: d.data.pseudonym })), nextCursor: page.nextCursor };
  }

  /** A write condition: the user has no tombstone (consent writes carry it). */
  absentOp(tenant: string, pseudonym: string): WriteOp {
    return this.tombstones.checkOp(tenant, pseudonym, 'absent');
  }

  /** True for the conflict `absentOp` raises once the user is erased. */
  isTombstoneConflict(err: unknown): boolean {
    return err instanceof VersionConflictError && err.collection === ERASURE_COLLECTIONS.tombstones;
  }
}
