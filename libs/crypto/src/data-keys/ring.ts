import { createHash, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import type { SealScope } from '@aimass/events';
import { AES_256_GCM, KEY_BYTES, gcmDecrypt, gcmEncrypt } from '../aes-gcm.js';
import { DataKeyError } from '../errors.js';
import type { TenantKeyProvider } from '../tenant-keys/provider.js';
import type { StoredWrappedKey, WrappedDataKey, WrappedKeyStore } from './store.js';

/** A user's data key, unwrapped. The KeyObject keeps the bytes out of logs and JSON. */
export interface DataKey {
  readonly keyId: string;
  readonly key: KeyObject;
}

/**
 * Where a sealer gets users' data keys. `DataKeyRing` is the one in this library; a client of the
 * privacy service could implement it too, for services that hold no tenant KEKs themselves.
 */
export interface DataKeySource {
  /** The user's current key, created on first use. */
  currentKey(scope: SealScope): Promise<DataKey>;
  /**
   * The user's key with this id. Rejects with `DataKeyError`: `not_found` (destroyed, or never
   * stored), `other_user` (the id is another user's or tenant's), `unwrap_failed`.
   */
  keyFor(scope: SealScope, keyId: string): Promise<DataKey>;
}

export interface DataKeyRingOptions {
  readonly kek: TenantKeyProvider;
  readonly store: WrappedKeyStore;
  /** Unwrapped keys held in memory; the least recently used is dropped beyond it. */
  readonly cacheMaxEntries?: number | undefined;
  /**
   * How long an unwrapped key is used from memory before the store is read again. This bounds how
   * long a key destroyed by another process (the privacy service) stays usable here when this
   * process does not hear of the erasure and call `forget`.
   */
  readonly cacheTtlMs?: number | undefined;
  /**
   * Asked before a key is created and again once it is stored; false refuses the creation
   * (`DataKeyError` `creation_refused`). The privacy service passes "no erasure tombstone for this
   * user". Asking again after the store write closes the race with an erasure that writes its
   * tombstone and then destroys the key: either the second check sees the tombstone and this ring
   * destroys its own key, or the tombstone came later and the erasure's destroy removes the key.
   */
  readonly mayCreate?: ((tenant: string, userPseudonym: string) => boolean | Promise<boolean>) | undefined;
  /** Clock in milliseconds (tests). */
  readonly now?: (() => number) | undefined;
}

export interface DataKeyRingStats {
  /** Keys held unwrapped in memory. */
  readonly entries: number;
  /** Keys served from memory. */
  readonly hits: number;
  /** Reads of the store (each unwraps a key when one exists). */
  readonly loads: number;
  /** Keys this ring stored (lost creation races not counted). */
  readonly creates: number;
}

export type RewrapResult = 'rewrapped' | 'current' | 'absent';

export const DEFAULT_KEY_CACHE_MAX_ENTRIES = 10_000;
export const DEFAULT_KEY_CACHE_TTL_MS = 5 * 60_000;

const WRAP_LABEL = 'aimass/data-key/v1';

interface Held {
  readonly key: DataKey;
  readonly expiresAt: number;
}

function cacheKey(tenant: string, userPseudonym: string): string {
  return JSON.stringify([tenant, userPseudonym]);
}

/**
 * A short public tag of the owner in every key id, so a payload opened for the wrong user is
 * reported as such rather than as a destroyed key. It reveals nothing the key id did not already
 * link: every payload of a user carries the same key id anyway.
 */
function ownerTag(tenant: string, userPseudonym: string): string {
  return createHash('sha256').update(cacheKey(tenant, userPseudonym)).digest().subarray(0, 6).toString('base64url');
}

function newKeyId(tenant: string, userPseudonym: string): string {
  return `${ownerTag(tenant, userPseudonym)}.${randomBytes(16).toString('base64url')}`;
}

/** Associated data of a wrapped key: a record copied to another user, tenant or key id fails to unwrap. */
function wrapAad(tenant: string, userPseudonym: string, keyId: string): Buffer {
  return Buffer.from(JSON.stringify([WRAP_LABEL, tenant, userPseudonym, keyId]), 'utf8');
}

function checkScope(tenant: string, userPseudonym: string): void {
  if (tenant.length === 0 || userPseudonym.length === 0) {
    throw new DataKeyError('invalid_scope', `a data key needs a tenant and a user pseudonym (got ${tenant.length === 0 ? 'no tenant' : 'no pseudonym'})`);
  }
}

/**
 * Users' data keys: one random 32-byte AES key per (tenant, user pseudonym), kept at rest only
 * wrapped by the tenant's KEK, unwrapped on use and held in memory within bounds.
 */
export class DataKeyRing implements DataKeySource {
  readonly #kek: TenantKeyProvider;
  readonly #store: WrappedKeyStore;
  readonly #maxEntries: number;
  readonly #ttlMs: number;
  readonly #mayCreate: DataKeyRingOptions['mayCreate'];
  readonly #now: () => number;
  readonly #held = new Map<string, Held>();
  readonly #loading = new Map<string, Promise<DataKey | undefined>>();
  readonly #creating = new Map<string, Promise<DataKey>>();
  #hits = 0;
  #loads = 0;
  #creates = 0;

  constructor(options: DataKeyRingOptions) {
    this.#kek = options.kek;
    this.#store = options.store;
    this.#maxEntries = options.cacheMaxEntries ?? DEFAULT_KEY_CACHE_MAX_ENTRIES;
    this.#ttlMs = options.cacheTtlMs ?? DEFAULT_KEY_CACHE_TTL_MS;
    this.#mayCreate = options.mayCreate;
    this.#now = options.now ?? Date.now;
    if (!Number.isInteger(this.#maxEntries) || this.#maxEntries < 1) throw new RangeError('cacheMaxEntries must be a whole number >= 1');
    if (!(this.#ttlMs > 0)) throw new RangeError('cacheTtlMs must be > 0');
  }

  async currentKey(scope: SealScope): Promise<DataKey> {
    const { tenant, userPseudonym } = scope;
    checkScope(tenant, userPseudonym);
    const k = cacheKey(tenant, userPseudonym);
    const held = this.#fromMemory(k);
    if (held) return held;
    const loaded = await this.#once(this.#loading, k, () => this.#load(tenant, userPseudonym));
    if (loaded) return loaded;
    return this.#once(this.#creating, k, () => this.#create(tenant, userPseudonym));
  }

  async keyFor(scope: SealScope, keyId: string): Promise<DataKey> {
    const { tenant, userPseudonym } = scope;
    checkScope(tenant, userPseudonym);
    if (keyId.length === 0) throw new DataKeyError('not_found', 'no data key id given');
    if (!keyId.startsWith(`${ownerTag(tenant, userPseudonym)}.`)) {
      throw new DataKeyError('other_user', `data key ${keyId} belongs to another user or tenant than the one it is used for`);
    }
    const k = cacheKey(tenant, userPseudonym);
    const held = this.#fromMemory(k);
    if (held?.keyId === keyId) return held;
    // A different key in memory may be stale (destroyed and re-created by another process): re-read.
    if (held) this.forget(tenant, userPseudonym);
    const loaded = await this.#once(this.#loading, k, () => this.#load(tenant, userPseudonym));
    if (!loaded) {
      throw new DataKeyError('not_found', `data key ${keyId} does not exist: destroyed at the user's erasure (crypto-shredding), or never stored in this key store`);
    }
    if (loaded.keyId !== keyId) {
      throw new DataKeyError('not_found', `data key ${keyId} does not exist any more: it was destroyed (crypto-shredding) and the user now has key ${loaded.keyId}`);
    }
    return loaded;
  }

  /**
   * Crypto-shredding: deletes the user's wrapped key and drops it from memory. Everything it sealed
   * is unreadable from then on, wherever copies are. A later `currentKey` creates a new key (new id)
   * unless `mayCreate` refuses. True when a key existed. Other processes holding the key in memory
   * keep it until they `forget` it or its `cacheTtlMs` runs out.
   */
  async destroy(tenant: string, userPseudonym: string): Promise<boolean> {
    checkScope(tenant, userPseudonym);
    this.forget(tenant, userPseudonym);
    try {
      return await this.#store.destroy(tenant, userPseudonym);
    } finally {
      // A read that started before the delete must not leave the old key in memory.
      this.forget(tenant, userPseudonym);
    }
  }

  /** Drops the user's unwrapped key from memory (erasure heard of; the next use reads the store). */
  forget(tenant: string, userPseudonym: string): void {
    const k = cacheKey(tenant, userPseudonym);
    this.#held.delete(k);
    // A read or creation in flight finishes for its callers but no longer fills the cache.
    this.#loading.delete(k);
    this.#creating.delete(k);
  }

  /** Drops every unwrapped key (shutdown, tenant deletion). */
  forgetAll(): void {
    this.#held.clear();
    this.#loading.clear();
    this.#creating.clear();
  }

  /**
   * Re-wraps the user's key with the tenant's current KEK when an older version wraps it, so the
   * old KEK can be retired once every key is rewrapped. The data key and its id do not change, so
   * sealed payloads stay readable.
   */
  async rewrap(tenant: string, userPseudonym: string): Promise<RewrapResult> {
    checkScope(tenant, userPseudonym);
    for (;;) {
      const stored = await this.#store.get(tenant, userPseudonym);
      if (!stored) return 'absent';
      const kek = await this.#kek.currentKey(tenant);
      if (stored.key.kekVersion === kek.version) return 'current';
      const raw = await this.#unwrapRaw(tenant, userPseudonym, stored);
      try {
        const replaced = await this.#store.replace(tenant, userPseudonym, stored.revision, this.#wrap(tenant, userPseudonym, stored.key.keyId, raw, kek.version, kek.key, stored.key.createdAt));
        if (replaced) return 'rewrapped';
      } finally {
        raw.fill(0);
      }
    }
  }

  stats(): DataKeyRingStats {
    return { entries: this.#held.size, hits: this.#hits, loads: this.#loads, creates: this.#creates };
  }

  #fromMemory(k: string): DataKey | undefined {
    const held = this.#held.get(k);
    if (!held) return undefined;
    if (held.expiresAt <= this.#now()) {
      this.#held.delete(k);
      return undefined;
    }
    // Re-insert: Map order is the recency order the bound evicts by.
    this.#held.delete(k);
    this.#held.set(k, held);
    this.#hits++;
    return held.key;
  }

  #remember(k: string, key: DataKey): void {
    this.#held.delete(k);
    this.#held.set(k, { key, expiresAt: this.#now() + this.#ttlMs });
    while (this.#held.size > this.#maxEntries) this.#held.delete(this.#held.keys().next().value!);
  }

  /** One read or creation per user at a time in this process; its result is cached unless forgotten meanwhile. */
  #once<T extends DataKey | undefined>(map: Map<string, Promise<T>>, k: string, run: () => Promise<T>): Promise<T> {
    const pending = map.get(k);
    if (pending) return pending;
    const promise: Promise<T> = run().then(
      (key) => {
        if (map.get(k) === promise) {
          map.delete(k);
          if (key) this.#remember(k, key);
        }
        return key;
      },
      (err: unknown) => {
        if (map.get(k) === promise) map.delete(k);
        throw err;
      },
    );
    map.set(k, promise);
    return promise;
  }

  async #load(tenant: string, userPseudonym: string): Promise<DataKey | undefined> {
    this.#loads++;
    const stored = await this.#store.get(tenant, userPseudonym);
    if (!stored) return undefined;
    return this.#unwrap(tenant, userPseudonym, stored);
  }

  async #create(tenant: string, userPseudonym: string): Promise<DataKey> {
    await this.#ensureMayCreate(tenant, userPseudonym);
    const kek = await this.#kek.currentKey(tenant);
    const keyId = newKeyId(tenant, userPseudonym);
    const raw = randomBytes(KEY_BYTES);
    try {
      const stored = await this.#store.createIfAbsent(tenant, userPseudonym, this.#wrap(tenant, userPseudonym, keyId, raw, kek.version, kek.key, new Date(this.#now())));
      // Lost the race: another creator's key is the user's key.
      if (stored.key.keyId !== keyId) return await this.#unwrap(tenant, userPseudonym, stored);
      this.#creates++;
      try {
        await this.#ensureMayCreate(tenant, userPseudonym);
      } catch (err) {
        await this.#store.destroy(tenant, userPseudonym, keyId);
        throw err;
      }
      return { keyId, key: createSecretKey(raw) };
    } finally {
      raw.fill(0);
    }
  }

  async #ensureMayCreate(tenant: string, userPseudonym: string): Promise<void> {
    if (this.#mayCreate && !(await this.#mayCreate(tenant, userPseudonym))) {
      throw new DataKeyError('creation_refused', `no new data key for this user of tenant ${tenant}: creation refused (the user is erased)`);
    }
  }

  #wrap(tenant: string, userPseudonym: string, keyId: string, raw: Buffer, kekVersion: string, kek: KeyObject, createdAt: Date): WrappedDataKey {
    const { nonce, ciphertext } = gcmEncrypt(kek, raw, wrapAad(tenant, userPseudonym, keyId));
    return { keyId, kekVersion, algorithm: AES_256_GCM, nonce, wrappedKey: ciphertext, createdAt };
  }

  async #unwrap(tenant: string, userPseudonym: string, stored: StoredWrappedKey): Promise<DataKey> {
    const raw = await this.#unwrapRaw(tenant, userPseudonym, stored);
    try {
      return { keyId: stored.key.keyId, key: createSecretKey(raw) };
    } finally {
      raw.fill(0);
    }
  }

  async #unwrapRaw(tenant: string, userPseudonym: string, stored: StoredWrappedKey): Promise<Buffer> {
    const { keyId, kekVersion, algorithm, nonce, wrappedKey } = stored.key;
    if (algorithm !== AES_256_GCM) {
      throw new DataKeyError('unwrap_failed', `data key ${keyId} is wrapped with ${algorithm || '(no algorithm)'}, expected ${AES_256_GCM}`);
    }
    const kek = await this.#kek.keyVersion(tenant, kekVersion);
    const raw = gcmDecrypt(kek.key, nonce, wrappedKey, wrapAad(tenant, userPseudonym, keyId));
    if (!raw || raw.byteLength !== KEY_BYTES) {
      raw?.fill(0);
      throw new DataKeyError(
        'unwrap_failed',
        `the stored data key ${keyId} does not unwrap with tenant ${tenant}'s key-encryption key version ${kekVersion}: the record was moved from another user or tenant or altered, or the key configured as version ${kekVersion} is not the one that wrapped it`,
      );
    }
    return raw;
  }
}
