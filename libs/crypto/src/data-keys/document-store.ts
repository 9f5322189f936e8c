import type { StoredWrappedKey, WrappedDataKey, WrappedKeyStore } from './store.js';

/** The document a wrapped key is stored as: id = user pseudonym, owner (`user`) = the pseudonym too. */
export interface WrappedKeyDocument {
  readonly keyId: string;
  readonly kekVersion: string;
  readonly algorithm: string;
  readonly nonce: Uint8Array;
  readonly wrappedKey: Uint8Array;
  readonly createdAt: Date;
}

type ExpectedVersion = number | 'absent' | 'any';

/**
 * The part of an `@aimass/storage` `Collection<WrappedKeyDocument>` this store uses, declared here so
 * this library does not depend on the storage package: pass `store.collection(WRAPPED_KEY_COLLECTION)`.
 */
export interface WrappedKeyCollection {
  get(tenant: string, id: string): Promise<{ readonly version: number; readonly data: WrappedKeyDocument } | undefined>;
  put(
    tenant: string,
    id: string,
    data: WrappedKeyDocument,
    opts?: { readonly expectedVersion?: ExpectedVersion; readonly user?: string },
  ): Promise<{ readonly version: number; readonly data: WrappedKeyDocument }>;
  delete(tenant: string, id: string, opts?: { readonly expectedVersion?: ExpectedVersion }): Promise<boolean>;
}

/**
 * The collection spec: `await store.collection<WrappedKeyDocument>(WRAPPED_KEY_COLLECTION)`. No
 * index: keys are read by id. Documents are owned by the pseudonym, so a `deleteByUser` on this
 * collection during erasure destroys the key as well.
 */
export const WRAPPED_KEY_COLLECTION = { name: 'data_keys' } as const;

/** Storage's `VersionConflictError`, recognised by its stable code (no import of the storage package). */
function isVersionConflict(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 'version_conflict';
}

// A creator that loses the race reads the winner; the winner can be destroyed in between, in which
// case it tries again. Bounded so a pathological create/destroy loop surfaces as an error.
const CREATE_ATTEMPTS = 5;

function toStored(doc: { readonly version: number; readonly data: WrappedKeyDocument }): StoredWrappedKey {
  const d = doc.data;
  const key: WrappedDataKey = {
    keyId: d.keyId,
    kekVersion: d.kekVersion,
    algorithm: d.algorithm,
    nonce: d.nonce,
    wrappedKey: d.wrappedKey,
    createdAt: d.createdAt,
  };
  return { revision: doc.version, key };
}

function toDocument(key: WrappedDataKey): WrappedKeyDocument {
  return { keyId: key.keyId, kekVersion: key.kekVersion, algorithm: key.algorithm, nonce: key.nonce, wrappedKey: key.wrappedKey, createdAt: key.createdAt };
}

/**
 * A `WrappedKeyStore` on a DocumentStore collection: create-if-absent is a put with
 * `expectedVersion: 'absent'` (compare-and-set, across processes), a rewrap a put on the read
 * version, a destroy a delete.
 */
export function documentWrappedKeyStore(collection: WrappedKeyCollection): WrappedKeyStore {
  return {
    async get(tenant, userPseudonym) {
      const doc = await collection.get(tenant, userPseudonym);
      return doc && toStored(doc);
    },

    async createIfAbsent(tenant, userPseudonym, key) {
      for (let attempt = 1; ; attempt++) {
        try {
          return toStored(await collection.put(tenant, userPseudonym, toDocument(key), { expectedVersion: 'absent', user: userPseudonym }));
        } catch (err) {
          if (!isVersionConflict(err)) throw err;
        }
        const winner = await collection.get(tenant, userPseudonym);
        if (winner) return toStored(winner);
        if (attempt >= CREATE_ATTEMPTS) throw new Error(`data key of a user of tenant ${tenant} was created and destroyed ${CREATE_ATTEMPTS} times while creating it`);
      }
    },

    async replace(tenant, userPseudonym, revision, key) {
      try {
        return toStored(await collection.put(tenant, userPseudonym, toDocument(key), { expectedVersion: revision, user: userPseudonym }));
      } catch (err) {
        if (isVersionConflict(err)) return undefined;
        throw err;
      }
    },

    async destroy(tenant, userPseudonym, keyId) {
      if (keyId === undefined) return collection.delete(tenant, userPseudonym);
      for (;;) {
        const doc = await collection.get(tenant, userPseudonym);
        if (!doc || doc.data.keyId !== keyId) return false;
        try {
          return await collection.delete(tenant, userPseudonym, { expectedVersion: doc.version });
        } catch (err) {
          // A rewrap changed the version: read again, it may still be the same key.
          if (!isVersionConflict(err)) throw err;
        }
      }
    },
  };
}
