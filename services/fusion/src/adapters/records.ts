import { MAX_ATOMIC_OPS, VersionConflictError, type Collection, type DocumentStore, type StoredDocument } from '@aimass/storage';

/**
 * Records fusion keeps for a while: predictions (so Feedback can name one by id) and Feedback
 * idempotency keys. Each carries `expiresAt` (indexed) and is owned by the user's pseudonym, so
 * an erasure (`deleteByUser`) removes it too.
 */
export interface Expiring {
  expiresAt: Date;
}

/** Reserved tenant holding store-wide bookkeeping (the tenants fusion has seen, for the prune). */
export const GLOBAL_TENANT = '_global';

/** The collection of tenants fusion has written records for. */
export class KnownTenants {
  readonly #collection: Collection<{ firstSeenAt: Date }>;
  readonly #seen = new Set<string>();

  private constructor(collection: Collection<{ firstSeenAt: Date }>) {
    this.#collection = collection;
  }

  static async open(store: DocumentStore): Promise<KnownTenants> {
    return new KnownTenants(await store.collection({ name: 'tenants' }));
  }

  /** Remembers a tenant (one write per tenant and process). */
  async remember(tenant: string): Promise<void> {
    if (this.#seen.has(tenant)) return;
    if (!(await this.#collection.get(GLOBAL_TENANT, tenant))) {
      await this.#collection.put(GLOBAL_TENANT, tenant, { firstSeenAt: new Date() });
    }
    this.#seen.add(tenant);
  }

  async list(): Promise<string[]> {
    const tenants: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.#collection.query(GLOBAL_TENANT, { limit: 1000, ...(cursor ? { cursor } : {}) });
      tenants.push(...page.items.map((d) => d.id));
      cursor = page.nextCursor;
    } while (cursor);
    return tenants;
  }
}

export const EXPIRING_INDEXES = [{ fields: ['expiresAt'] }] as const;

/** Deletes a tenant's records whose `expiresAt` is at or before `now`, oldest first, in atomic chunks. */
export async function pruneExpired<T extends Expiring>(store: DocumentStore, collection: Collection<T>, tenant: string, now: Date): Promise<number> {
  let deleted = 0;
  for (;;) {
    const page = await collection.query(tenant, { orderBy: { field: 'expiresAt', direction: 'asc' }, limit: Math.min(MAX_ATOMIC_OPS, 500) });
    const expired = page.items.filter((d) => d.data.expiresAt.getTime() <= now.getTime());
    if (expired.length === 0) return deleted;
    // Conditioned on the version read, so a record rewritten meanwhile (a key reused after expiry) survives.
    try {
      await store.writeAtomic(expired.map((d) => collection.deleteOp(tenant, d.id, { expectedVersion: d.version })));
    } catch (err) {
      if (!(err instanceof VersionConflictError)) throw err;
      for (const d of expired) {
        await collection.delete(tenant, d.id, { expectedVersion: d.version }).catch((e: unknown) => {
          if (!(e instanceof VersionConflictError)) throw e;
          return false;
        });
      }
    }
    deleted += expired.length;
    if (expired.length < page.items.length || !page.nextCursor) return deleted;
  }
}

export function isLive<T extends Expiring>(doc: StoredDocument<T> | undefined, now: Date): doc is StoredDocument<T> {
  return doc !== undefined && doc.data.expiresAt.getTime() > now.getTime();
}

/** Float32 values as bytes (the store keeps typed arrays as Uint8Array). */
export function floatsToBytes(values: readonly number[]): Uint8Array {
  const f = Float32Array.from(values);
  return new Uint8Array(f.buffer, f.byteOffset, f.byteLength);
}

export function bytesToFloats(bytes: Uint8Array): number[] {
  // Copied: a view of a store buffer may not be 4-byte aligned.
  const copy = new Uint8Array(bytes);
  return Array.from(new Float32Array(copy.buffer, 0, copy.byteLength >>> 2));
}

export function uintsToBytes(values: readonly number[]): Uint8Array {
  const u = Uint32Array.from(values);
  return new Uint8Array(u.buffer, u.byteOffset, u.byteLength);
}

export function bytesToUints(bytes: Uint8Array): number[] {
  const copy = new Uint8Array(bytes);
  return Array.from(new Uint32Array(copy.buffer, 0, copy.byteLength >>> 2));
}
