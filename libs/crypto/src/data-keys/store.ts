/**
 * A user's data key as kept at rest: only ever wrapped (AES-256-GCM under the tenant's KEK, with
 * tenant, pseudonym and key id as associated data).
 */
export interface WrappedDataKey {
  /** Public id, written into every payload the key seals. */
  readonly keyId: string;
  /** The tenant KEK version that wraps it (`TenantKek.version`). */
  readonly kekVersion: string;
  /** `AES-256-GCM`. */
  readonly algorithm: string;
  /** 12 bytes. */
  readonly nonce: Uint8Array;
  /** The encrypted 32-byte key followed by the 16-byte tag. */
  readonly wrappedKey: Uint8Array;
  readonly createdAt: Date;
}

/** A stored record and its revision, which `replace` compares. */
export interface StoredWrappedKey {
  readonly revision: number;
  readonly key: WrappedDataKey;
}

/**
 * Where wrapped data keys are kept: one record per (tenant, user pseudonym). Implementations:
 * `documentWrappedKeyStore` over a `DocumentStore` collection (the privacy service, the
 * one-process mode), `InMemoryWrappedKeyStore` (tests).
 */
export interface WrappedKeyStore {
  get(tenant: string, userPseudonym: string): Promise<StoredWrappedKey | undefined>;
  /**
   * Stores `key` only if the user has none, atomically: of any number of concurrent creators, across
   * processes, exactly one stores its key and every one of them gets that stored record back.
   */
  createIfAbsent(tenant: string, userPseudonym: string, key: WrappedDataKey): Promise<StoredWrappedKey>;
  /** Replaces the record if it is still at `revision` (a rewrap); undefined when it changed or is gone. */
  replace(tenant: string, userPseudonym: string, revision: number, key: WrappedDataKey): Promise<StoredWrappedKey | undefined>;
  /**
   * Deletes the user's record (crypto-shredding); with `keyId`, only if it is still that key.
   * True when a record was deleted.
   */
  destroy(tenant: string, userPseudonym: string, keyId?: string): Promise<boolean>;
}

function copy(key: WrappedDataKey): WrappedDataKey {
  return { ...key, nonce: Uint8Array.from(key.nonce), wrappedKey: Uint8Array.from(key.wrappedKey), createdAt: new Date(key.createdAt) };
}

/**
 * Wrapped keys in a Map. For tests and for one process that needs no persistence: a restart loses
 * every key, which makes everything sealed before unreadable. Persistent deployments (the
 * one-process mode included) use `documentWrappedKeyStore` on their SQLite file.
 */
export class InMemoryWrappedKeyStore implements WrappedKeyStore {
  readonly #records = new Map<string, StoredWrappedKey>();

  get size(): number {
    return this.#records.size;
  }

  async get(tenant: string, userPseudonym: string): Promise<StoredWrappedKey | undefined> {
    await Promise.resolve();
    const found = this.#records.get(JSON.stringify([tenant, userPseudonym]));
    return found && { revision: found.revision, key: copy(found.key) };
  }

  async createIfAbsent(tenant: string, userPseudonym: string, key: WrappedDataKey): Promise<StoredWrappedKey> {
    // Yield first so concurrent callers interleave as they would against a real store.
    await Promise.resolve();
    const id = JSON.stringify([tenant, userPseudonym]);
    let found = this.#records.get(id);
    if (!found) {
      found = { revision: 1, key: copy(key) };
      this.#records.set(id, found);
    }
    return { revision: found.revision, key: copy(found.key) };
  }

  async replace(tenant: string, userPseudonym: string, revision: number, key: WrappedDataKey): Promise<StoredWrappedKey | undefined> {
    await Promise.resolve();
    const id = JSON.stringify([tenant, userPseudonym]);
    const found = this.#records.get(id);
    if (!found || found.revision !== revision) return undefined;
    const next = { revision: revision + 1, key: copy(key) };
    this.#records.set(id, next);
    return { revision: next.revision, key: copy(next.key) };
  }

  async destroy(tenant: string, userPseudonym: string, keyId?: string): Promise<boolean> {
    await Promise.resolve();
    const id = JSON.stringify([tenant, userPseudonym]);
    const found = this.#records.get(id);
    if (!found || (keyId !== undefined && found.key.keyId !== keyId)) return false;
    return this.#records.delete(id);
  }
}
