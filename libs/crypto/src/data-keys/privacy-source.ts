import { createSecretKey } from 'node:crypto';
import type { SealScope } from '@aimass/events';
import {
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  callUnary,
  createClient,
  tenantMetadata,
  type CreateClientOptions,
} from '@aimass/platform';
import { v1 } from '@aimass/proto';
import { KEY_BYTES } from '../aes-gcm.js';
import { DataKeyError } from '../errors.js';
import type { DataKey, DataKeySource } from './ring.js';

export interface PrivacyDataKeySourceOptions {
  /** host:port of the privacy service (aimass.v1.DataKeyService). */
  readonly address: string;
  /** Deadline of one GetDataKey, retries included. */
  readonly callTimeoutMs?: number | undefined;
  /**
   * Upper bound on how long a key is used from memory; the privacy service's `max_cache_seconds`
   * may shorten it. Together they bound how long a key destroyed at erasure stays usable here when
   * this process missed the ErasureRequested that makes it call `forget`.
   */
  readonly cacheTtlMs?: number | undefined;
  /** Users whose keys are held in memory; the least recently used is dropped beyond it. */
  readonly cacheMaxEntries?: number | undefined;
  /** Channel options (TLS credentials, in issue 7) and client interceptors (the calling service's token). */
  readonly client?: Partial<Pick<CreateClientOptions, 'channelOptions' | 'credentials' | 'interceptors'>> | undefined;
  /** Clock in milliseconds (tests). */
  readonly now?: (() => number) | undefined;
}

export interface PrivacyDataKeySourceStats {
  readonly users: number;
  readonly hits: number;
  /** GetDataKey calls made. */
  readonly fetches: number;
}

export const DEFAULT_REMOTE_KEY_TIMEOUT_MS = 2_000;
export const DEFAULT_REMOTE_KEY_CACHE_TTL_MS = 60_000;
export const DEFAULT_REMOTE_KEY_CACHE_MAX_ENTRIES = 10_000;

interface UserKeys {
  /** The user's current key, when known. */
  current: string | undefined;
  readonly byId: Map<string, { readonly key: DataKey; readonly expiresAt: number }>;
}

const userKey = (tenant: string, pseudonym: string) => JSON.stringify([tenant, pseudonym]);
const flightKey = (tenant: string, pseudonym: string, keyId: string) => JSON.stringify([tenant, pseudonym, keyId]);

/**
 * Users' data keys fetched from the privacy service, which alone holds the tenant KEKs and the
 * wrapped keys. The services that seal or open personal data (fusion, the updater, personal-model)
 * use it behind `AesGcmSealer`, so no KEK has to be mounted in their pods and erasure destroys a
 * key in one place.
 *
 * Keys are held in memory for at most `min(cacheTtlMs, max_cache_seconds)`; `forget` drops a user
 * at once (each service calls it when it hears ErasureRequested). Concurrent asks for the same
 * key share one call. Errors: `DataKeyError` `not_found` (destroyed or never existed: what it
 * sealed is unreadable for good), `creation_refused` (the user is erased), `invalid_scope`;
 * an unreachable privacy service rejects with the platform's `UnavailableError` or
 * `DeadlineExceededError`, which consumers retry rather than treat the data as unreadable.
 */
export class PrivacyDataKeySource implements DataKeySource {
  readonly #client: v1.DataKeyServiceClient;
  readonly #timeoutMs: number;
  readonly #ttlMs: number;
  readonly #maxEntries: number;
  readonly #now: () => number;
  readonly #users = new Map<string, UserKeys>();
  readonly #inflight = new Map<string, Promise<DataKey>>();
  #hits = 0;
  #fetches = 0;

  constructor(options: PrivacyDataKeySourceOptions) {
    this.#timeoutMs = options.callTimeoutMs ?? DEFAULT_REMOTE_KEY_TIMEOUT_MS;
    this.#ttlMs = options.cacheTtlMs ?? DEFAULT_REMOTE_KEY_CACHE_TTL_MS;
    this.#maxEntries = options.cacheMaxEntries ?? DEFAULT_REMOTE_KEY_CACHE_MAX_ENTRIES;
    this.#now = options.now ?? Date.now;
    if (!(this.#timeoutMs > 0)) throw new RangeError('callTimeoutMs must be > 0');
    if (!(this.#ttlMs > 0)) throw new RangeError('cacheTtlMs must be > 0');
    if (!Number.isInteger(this.#maxEntries) || this.#maxEntries < 1) throw new RangeError('cacheMaxEntries must be a whole number >= 1');
    this.#client = createClient(v1.DataKeyServiceClient, {
      address: options.address,
      // Creating the current key is idempotent in effect (one key per user, created once).
      idempotentMethods: ['GetDataKey'],
      defaultDeadlineMs: this.#timeoutMs,
      retry: { maxAttempts: 3, initialBackoffMs: 50, maxBackoffMs: 500 },
      ...options.client,
    });
  }

  async currentKey(scope: SealScope): Promise<DataKey> {
    checkScope(scope);
    const user = this.#users.get(userKey(scope.tenant, scope.userPseudonym));
    const held = user?.current === undefined ? undefined : this.#held(scope, user, user.current);
    return held ?? this.#fetch(scope, '');
  }

  async keyFor(scope: SealScope, keyId: string): Promise<DataKey> {
    checkScope(scope);
    if (keyId.length === 0) throw new DataKeyError('not_found', 'no data key id given');
    const user = this.#users.get(userKey(scope.tenant, scope.userPseudonym));
    const held = user ? this.#held(scope, user, keyId) : undefined;
    return held ?? this.#fetch(scope, keyId);
  }

  /** Drops the user's keys from memory (erasure heard of): the next use asks the privacy service. */
  forget(tenant: string, userPseudonym: string): void {
    this.#users.delete(userKey(tenant, userPseudonym));
    // A fetch in flight finishes for its callers but no longer fills the cache (see #fetch).
    const prefix = userKey(tenant, userPseudonym).slice(0, -1) + ',';
    for (const k of [...this.#inflight.keys()]) if (k.startsWith(prefix)) this.#inflight.delete(k);
  }

  forgetAll(): void {
    this.#users.clear();
    this.#inflight.clear();
  }

  stats(): PrivacyDataKeySourceStats {
    return { users: this.#users.size, hits: this.#hits, fetches: this.#fetches };
  }

  close(): void {
    this.#users.clear();
    this.#inflight.clear();
    this.#client.close();
  }

  #held(scope: SealScope, user: UserKeys, keyId: string): DataKey | undefined {
    const entry = user.byId.get(keyId);
    if (!entry) return undefined;
    if (entry.expiresAt <= this.#now()) {
      user.byId.delete(keyId);
      if (user.current === keyId) user.current = undefined;
      return undefined;
    }
    this.#hits += 1;
    // Most recently used last, for the LRU bound.
    const k = userKey(scope.tenant, scope.userPseudonym);
    this.#users.delete(k);
    this.#users.set(k, user);
    return entry.key;
  }

  #fetch(scope: SealScope, keyId: string): Promise<DataKey> {
    const fk = flightKey(scope.tenant, scope.userPseudonym, keyId);
    const pending = this.#inflight.get(fk);
    if (pending) return pending;
    const tracked: Promise<DataKey> = this.#call(scope, keyId)
      .then((res) => {
        if (res.key.byteLength !== KEY_BYTES) {
          throw new DataKeyError('unwrap_failed', `the privacy service answered a ${res.key.byteLength}-byte data key for ${res.keyId}; AES-256-GCM needs ${KEY_BYTES}`);
        }
        if (keyId.length > 0 && res.keyId !== keyId) {
          throw new DataKeyError('not_found', `asked the privacy service for data key ${keyId} and got ${res.keyId}: the asked key does not exist`);
        }
        const key: DataKey = { keyId: res.keyId, key: createSecretKey(Buffer.from(res.key)) };
        // Still registered means no `forget` (an erasure) came in between: only then cache it.
        if (this.#inflight.get(fk) === tracked) this.#remember(scope, key, keyId.length === 0, res.maxCacheSeconds);
        return key;
      })
      .finally(() => {
        if (this.#inflight.get(fk) === tracked) this.#inflight.delete(fk);
      });
    this.#inflight.set(fk, tracked);
    return tracked;
  }

  #remember(scope: SealScope, key: DataKey, isCurrent: boolean, maxCacheSeconds: number): void {
    const k = userKey(scope.tenant, scope.userPseudonym);
    const ttl = maxCacheSeconds > 0 ? Math.min(this.#ttlMs, maxCacheSeconds * 1000) : this.#ttlMs;
    const user = this.#users.get(k) ?? { current: undefined, byId: new Map() };
    user.byId.set(key.keyId, { key, expiresAt: this.#now() + ttl });
    if (isCurrent) user.current = key.keyId;
    this.#users.delete(k);
    this.#users.set(k, user);
    for (const oldest of this.#users.keys()) {
      if (this.#users.size <= this.#maxEntries) break;
      this.#users.delete(oldest);
    }
  }

  async #call(scope: SealScope, keyId: string): Promise<v1.GetDataKeyResponse> {
    this.#fetches += 1;
    try {
      return await callUnary(
        this.#client.getDataKey.bind(this.#client),
        { userPseudonym: scope.userPseudonym, keyId },
        { deadline: Date.now() + this.#timeoutMs, metadata: tenantMetadata(scope.tenant) },
      );
    } catch (err) {
      if (err instanceof NotFoundError) throw new DataKeyError('not_found', `data key ${keyId}: ${err.message}`, { cause: err });
      if (err instanceof FailedPreconditionError) throw new DataKeyError('creation_refused', err.message, { cause: err });
      if (err instanceof InvalidArgumentError) throw new DataKeyError('invalid_scope', err.message, { cause: err });
      throw err;
    }
  }
}

function checkScope(scope: SealScope): void {
  if (scope.tenant.length === 0 || scope.userPseudonym.length === 0) {
    throw new DataKeyError('invalid_scope', `a data key needs a tenant and a user pseudonym (got ${scope.tenant.length === 0 ? 'no tenant' : 'no pseudonym'})`);
  }
}
