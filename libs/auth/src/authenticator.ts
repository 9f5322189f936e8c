import { createHash, timingSafeEqual } from 'node:crypto';
import { PermissionDeniedError, UnauthenticatedError, isValidTenantId } from '@aimass/platform';
import { API_KEY_PREFIX, parseApiKey, secretMatches } from './api-key.js';
import type { MethodAccess, Scope } from './scopes.js';
import { SERVICE_TOKEN_PREFIX, verifyServiceToken } from './service-token.js';

export type PrincipalKind = 'api-key' | 'service' | 'operator';

/** Who is calling, as the credentials say. */
export interface Principal {
  readonly kind: PrincipalKind;
  /** The tenant of an API key; for a service token, the tenant the call is made for (forwarded metadata); none for the operator. */
  readonly tenant: string | undefined;
  /** The API key's id (public); undefined for other kinds. */
  readonly keyId: string | undefined;
  readonly scopes: readonly Scope[];
  /** For a service token, the calling service. */
  readonly service: string | undefined;
}

export type TenantStateName = 'active' | 'suspended' | 'deleting' | 'unknown';

/** An API key as its store holds it (never the secret). */
export interface StoredCredential {
  readonly keyId: string;
  readonly tenant: string;
  readonly scopes: readonly Scope[];
  readonly secretSha256: Uint8Array;
  readonly expiresAt: Date | undefined;
  readonly revokedAt: Date | undefined;
  readonly tenantState: TenantStateName;
}

/** A key's latest successful use seen here. */
export interface KeyUse {
  readonly keyId: string;
  readonly at: Date;
}

/** Where API keys are looked up: fusion's own store, or fusion's CredentialService for the other services. */
export interface CredentialSource {
  /** The key with that id; undefined when there is none. Throws (e.g. UnavailableError) when it cannot tell. */
  lookup(keyId: string): Promise<StoredCredential | undefined>;
  /** Records keys' latest uses (ApiKey.last_used_at); absent where nothing keeps them. */
  recordUse?(uses: readonly KeyUse[]): Promise<unknown>;
}

export interface AuthenticatorOptions {
  /** API keys; without a source, API keys are refused (a service that accepts service tokens only). */
  readonly credentials?: CredentialSource | undefined;
  /** The platform's internal token secret; without it, service tokens are refused. */
  readonly internalSecret?: Uint8Array | undefined;
  /** Age bound of service tokens. Default 300 s. */
  readonly serviceTokenMaxAgeMs?: number | undefined;
  /** SHA-256 of the operator token; without it there is no operator. */
  readonly operatorTokenSha256?: Uint8Array | undefined;
  /**
   * How long a looked-up key is reused before it is read again: the bound on how late a
   * revocation or suspension made in another process takes effect. Default 5 s. Expiry is checked
   * on every call against the cached expiry, so it is exact.
   */
  readonly cacheTtlMs?: number | undefined;
  /** Keys held; the least recently used is dropped beyond it. Default 10 000. */
  readonly cacheMaxEntries?: number | undefined;
  /**
   * How often keys' uses are reported to the source (`recordUse`), in one batch: a key's
   * last_used_at is at most this late, and a busy key costs one write per interval, not one per
   * call. Default 30 s; 0 reports nothing.
   */
  readonly useReportIntervalMs?: number | undefined;
  /** A report that failed (its uses are kept for the next one). */
  readonly onUseReportError?: ((err: unknown) => void) | undefined;
  readonly now?: (() => number) | undefined;
}

export const DEFAULT_CACHE_TTL_MS = 5_000;
export const DEFAULT_CACHE_MAX_ENTRIES = 10_000;
export const DEFAULT_SERVICE_TOKEN_MAX_AGE_MS = 300_000;
export const DEFAULT_USE_REPORT_INTERVAL_MS = 30_000;
/** Uses held between reports at most (one per key); beyond it a report is made at once. */
const MAX_PENDING_USES = 10_000;

export interface AuthenticatorStats {
  readonly lookups: number;
  readonly cacheHits: number;
  readonly entries: number;
}

interface CacheEntry {
  readonly credential: StoredCredential | undefined;
  readonly at: number;
}

const BEARER = /^Bearer[ \t]+(\S+)[ \t]*$/i;

export const MISSING_CREDENTIALS_MESSAGE =
  `credentials required: send the metadata header "authorization: Bearer ${API_KEY_PREFIX}…" with an API key of your tenant (aimass keys create)`;

/**
 * Turns an `authorization` header into a Principal: API keys (`amk_…`, checked against their
 * stored hash), service tokens (`ams_…`, HMAC with the internal secret) and the operator token.
 * Failures are UNAUTHENTICATED (no, malformed, unknown, revoked or expired credentials) or
 * PERMISSION_DENIED (the tenant is suspended), each saying which and what to do.
 */
export class Authenticator {
  readonly #options: AuthenticatorOptions;
  readonly #ttlMs: number;
  readonly #maxEntries: number;
  readonly #now: () => number;
  readonly #cache = new Map<string, CacheEntry>();
  readonly #inflight = new Map<string, Promise<StoredCredential | undefined>>();
  #lookups = 0;
  #hits = 0;
  // Bumped by every invalidation, so a lookup that was in flight meanwhile is not cached.
  #generation = 0;
  // Keys used since the last report, each with its latest use.
  #uses = new Map<string, number>();
  #reportTimer: NodeJS.Timeout | undefined;
  #reporting: Promise<void> | undefined;
  #closed = false;

  constructor(options: AuthenticatorOptions) {
    this.#options = options;
    this.#ttlMs = options.cacheTtlMs ?? DEFAULT_CACHE_TTL_MS;
    this.#maxEntries = options.cacheMaxEntries ?? DEFAULT_CACHE_MAX_ENTRIES;
    this.#now = options.now ?? Date.now;
  }

  /** The bound on how late a change made elsewhere (revocation, suspension) is seen here. */
  get cacheTtlMs(): number {
    return this.#ttlMs;
  }

  stats(): AuthenticatorStats {
    return { lookups: this.#lookups, cacheHits: this.#hits, entries: this.#cache.size };
  }

  /** Drops a key from the cache (revoked, rotated or its tenant changed in this process). */
  invalidate(keyId: string): void {
    this.#generation++;
    this.#cache.delete(keyId);
  }

  /** Drops every cached key (a tenant was suspended or deleted in this process). */
  invalidateAll(): void {
    this.#generation++;
    this.#cache.clear();
  }

  /**
   * Authenticates the `authorization` values of a call. `forwardedTenant` is the tenant metadata
   * the caller sent: only a service token may speak for a tenant that way.
   */
  async authenticate(authorization: readonly string[], forwardedTenant?: string): Promise<Principal> {
    if (authorization.length === 0) throw new UnauthenticatedError(MISSING_CREDENTIALS_MESSAGE);
    if (authorization.length > 1) throw new UnauthenticatedError(`exactly one "authorization" header expected, got ${authorization.length}`);
    const match = BEARER.exec(authorization[0]!);
    if (!match) throw new UnauthenticatedError(`malformed "authorization" header: expected "Bearer <key>" (e.g. Bearer ${API_KEY_PREFIX}…)`);
    const token = match[1]!;
    if (token.startsWith(SERVICE_TOKEN_PREFIX)) return this.#service(token, forwardedTenant);
    if (token.startsWith(API_KEY_PREFIX)) return this.#apiKey(token);
    if (this.#options.operatorTokenSha256 && this.#isOperator(token)) {
      return { kind: 'operator', tenant: undefined, keyId: undefined, scopes: ['admin'], service: undefined };
    }
    // parseApiKey explains what an API key looks like, without repeating the value.
    parseApiKey(token);
    throw new UnauthenticatedError('unrecognised credentials');
  }

  /** Throws unless the principal may call a method with this access rule. */
  authorize(principal: Principal, access: MethodAccess, method: string): void {
    switch (principal.kind) {
      case 'service':
        if (access.service) return;
        throw new PermissionDeniedError(`${method} is not open to platform service tokens: call it with an API key`);
      case 'operator':
        if (access.operator) return;
        throw new PermissionDeniedError(`the operator token only administers tenants: call ${method} with an API key of the tenant`);
      case 'api-key':
        if (access.scope && principal.scopes.includes(access.scope)) return;
        if (!access.scope) throw new PermissionDeniedError(`${method} is internal to the platform: API keys cannot call it`);
        throw new PermissionDeniedError(
          `API key ${principal.keyId} lacks the "${access.scope}" scope that ${method} needs: create a key with it (aimass keys create --scope ${access.scope})`,
        );
    }
  }

  #service(token: string, forwardedTenant: string | undefined): Principal {
    const secret = this.#options.internalSecret;
    if (!secret) throw new UnauthenticatedError('service tokens are not accepted here: auth.internalTokenSecret is not configured');
    const verified = verifyServiceToken(secret, token, this.#options.serviceTokenMaxAgeMs ?? DEFAULT_SERVICE_TOKEN_MAX_AGE_MS, this.#now());
    const tenant = forwardedTenant !== undefined && isValidTenantId(forwardedTenant) ? forwardedTenant : undefined;
    return { kind: 'service', tenant, keyId: undefined, scopes: [], service: verified.service };
  }

  #isOperator(token: string): boolean {
    const expected = this.#options.operatorTokenSha256!;
    const actual = createHash('sha256').update(token, 'utf8').digest();
    return expected.length === actual.length && timingSafeEqual(actual, expected);
  }

  async #apiKey(token: string): Promise<Principal> {
    const { keyId, secret } = parseApiKey(token);
    const credential = await this.#credential(keyId);
    // The same message for unknown and wrong-secret keys: which key ids exist is not revealed.
    if (!credential || !secretMatches(secret, credential.secretSha256)) {
      throw new UnauthenticatedError(`unknown API key ${keyId}: check it was copied whole, or create one (aimass keys create)`);
    }
    const now = this.#now();
    if (credential.revokedAt) {
      throw new UnauthenticatedError(`API key ${keyId} was revoked at ${credential.revokedAt.toISOString()}: use its replacement or create a new key`);
    }
    if (credential.expiresAt && credential.expiresAt.getTime() <= now) {
      throw new UnauthenticatedError(`API key ${keyId} expired at ${credential.expiresAt.toISOString()}: rotate it (aimass keys rotate) or create a new key`);
    }
    switch (credential.tenantState) {
      case 'active':
        break;
      case 'suspended':
        throw new PermissionDeniedError(`tenant ${credential.tenant} is suspended: its keys are refused until a platform operator resumes it`);
      case 'deleting':
        throw new UnauthenticatedError(`tenant ${credential.tenant} is being deleted: its keys no longer work`);
      default:
        throw new UnauthenticatedError(`API key ${keyId} belongs to no known tenant: create a key for an existing tenant`);
    }
    this.#noteUse(keyId, now);
    return { kind: 'api-key', tenant: credential.tenant, keyId, scopes: credential.scopes, service: undefined };
  }

  #noteUse(keyId: string, at: number): void {
    const interval = this.#options.useReportIntervalMs ?? DEFAULT_USE_REPORT_INTERVAL_MS;
    if (interval <= 0 || this.#closed || !this.#options.credentials?.recordUse) return;
    this.#uses.set(keyId, Math.max(at, this.#uses.get(keyId) ?? 0));
    if (this.#uses.size >= MAX_PENDING_USES) {
      void this.reportUses();
      return;
    }
    if (!this.#reportTimer) {
      this.#reportTimer = setTimeout(() => {
        this.#reportTimer = undefined;
        void this.reportUses();
      }, interval);
      this.#reportTimer.unref();
    }
  }

  /** Reports the uses noted since the last report now (the timer does it every `useReportIntervalMs`). */
  reportUses(): Promise<void> {
    const source = this.#options.credentials;
    if (!source?.recordUse || this.#uses.size === 0) return this.#reporting ?? Promise.resolve();
    const previous = this.#reporting ?? Promise.resolve();
    const batch = this.#uses;
    this.#uses = new Map();
    const uses = [...batch].map(([keyId, at]) => ({ keyId, at: new Date(at) }));
    const run: Promise<void> = previous
      .then(async () => {
        await source.recordUse!(uses);
      })
      .catch((err: unknown) => {
        // Kept for the next report (a later use of the same key wins), unless closed meanwhile.
        if (!this.#closed) for (const [keyId, at] of batch) this.#uses.set(keyId, Math.max(at, this.#uses.get(keyId) ?? 0));
        this.#options.onUseReportError?.(err);
      })
      .finally(() => {
        if (this.#reporting === run) this.#reporting = undefined;
      });
    this.#reporting = run;
    return run;
  }

  /** Stops reporting (uses noted since the last report are dropped: at most one interval's worth). */
  close(): void {
    this.#closed = true;
    if (this.#reportTimer) clearTimeout(this.#reportTimer);
    this.#reportTimer = undefined;
    this.#uses.clear();
  }

  async #credential(keyId: string): Promise<StoredCredential | undefined> {
    const source = this.#options.credentials;
    if (!source) throw new UnauthenticatedError('API keys are not accepted here: this service takes platform service tokens only');
    const now = this.#now();
    const cached = this.#cache.get(keyId);
    if (cached && now - cached.at < this.#ttlMs && now >= cached.at) {
      this.#hits++;
      // Most recently used last, so eviction drops the least recently used.
      this.#cache.delete(keyId);
      this.#cache.set(keyId, cached);
      return cached.credential;
    }
    // Concurrent calls with the same key share one lookup.
    let pending = this.#inflight.get(keyId);
    if (!pending) {
      this.#lookups++;
      const generation = this.#generation;
      pending = source.lookup(keyId).finally(() => this.#inflight.delete(keyId));
      this.#inflight.set(keyId, pending);
      const credential = await pending;
      if (generation !== this.#generation) return credential;
      this.#cache.delete(keyId);
      this.#cache.set(keyId, { credential, at: now });
      while (this.#cache.size > this.#maxEntries) {
        const oldest = this.#cache.keys().next().value;
        if (oldest === undefined) break;
        this.#cache.delete(oldest);
      }
      return credential;
    }
    return pending;
  }
}
