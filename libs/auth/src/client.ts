import { InterceptingCall, type Interceptor } from '@grpc/grpc-js';
import { NotFoundError, UnavailableError, callUnary, createClient, isDomainError } from '@aimass/platform';
import { v1 } from '@aimass/proto';
import type { CredentialSource, KeyUse, StoredCredential, TenantStateName } from './authenticator.js';
import { AUTHORIZATION_METADATA_KEY } from './interceptor.js';
import { SCOPES, scopeFromProto, type Scope } from './scopes.js';
import type { ServiceTokenIssuer } from './service-token.js';

/**
 * A grpc-js client interceptor that sends a service token on every call made by a platform
 * service (`authorization: Bearer ams_…`). A call that already carries credentials keeps them.
 */
export function serviceTokenInterceptor(issuer: ServiceTokenIssuer): Interceptor {
  return (options, nextCall) =>
    new InterceptingCall(nextCall(options), {
      start: (metadata, listener, next) => {
        if (metadata.get(AUTHORIZATION_METADATA_KEY).length === 0) metadata.set(AUTHORIZATION_METADATA_KEY, `Bearer ${issuer.token()}`);
        next(metadata, listener);
      },
    });
}

/** A grpc-js client interceptor sending a fixed bearer credential (an API key or the operator token). */
export function bearerInterceptor(credential: string): Interceptor {
  return (options, nextCall) =>
    new InterceptingCall(nextCall(options), {
      start: (metadata, listener, next) => {
        if (metadata.get(AUTHORIZATION_METADATA_KEY).length === 0) metadata.set(AUTHORIZATION_METADATA_KEY, `Bearer ${credential}`);
        next(metadata, listener);
      },
    });
}

const TENANT_STATES: Partial<Record<v1.TenantState, TenantStateName>> = {
  [v1.TenantState.TENANT_STATE_ACTIVE]: 'active',
  [v1.TenantState.TENANT_STATE_SUSPENDED]: 'suspended',
  [v1.TenantState.TENANT_STATE_DELETING]: 'deleting',
};

export function tenantStateFromProto(state: v1.TenantState): TenantStateName {
  return TENANT_STATES[state] ?? 'unknown';
}

/** Reads a LookupApiKey answer; scopes this build does not know are dropped (they grant nothing). */
export function credentialFromLookup(res: v1.LookupApiKeyResponse): StoredCredential | undefined {
  const key = res.key;
  if (!key) return undefined;
  const scopes = key.scopes.map(scopeFromProto).filter((s): s is Scope => s !== undefined && SCOPES.includes(s));
  return {
    keyId: key.keyId,
    tenant: key.tenantId,
    scopes,
    secretSha256: Buffer.from(res.secretSha256),
    expiresAt: key.expiresAt,
    revokedAt: key.revokedAt,
    tenantState: tenantStateFromProto(res.tenantState),
  };
}

/** RecordApiKeyUse takes at most this many keys (admin.proto). */
export const MAX_USES_PER_CALL = 10_000;

export interface RemoteCredentialSourceOptions {
  /** fusion's CredentialService. */
  readonly address: string;
  /** Sends this service's token (LookupApiKey accepts service tokens only). */
  readonly interceptors: readonly Interceptor[];
  readonly callTimeoutMs?: number | undefined;
}

/** API keys verified through fusion's CredentialService (privacy, the updater, general-model). */
export class RemoteCredentialSource implements CredentialSource {
  readonly #client: v1.CredentialServiceClient;
  readonly #timeoutMs: number;

  constructor(options: RemoteCredentialSourceOptions) {
    this.#timeoutMs = options.callTimeoutMs ?? 2_000;
    this.#client = createClient(v1.CredentialServiceClient, {
      address: options.address,
      idempotentMethods: ['LookupApiKey', 'RecordApiKeyUse'],
      defaultDeadlineMs: this.#timeoutMs,
      retry: { maxAttempts: 3, initialBackoffMs: 50, maxBackoffMs: 500 },
      interceptors: options.interceptors,
    });
  }

  async lookup(keyId: string): Promise<StoredCredential | undefined> {
    try {
      const res = await callUnary(this.#client.lookupApiKey.bind(this.#client), { keyId }, { deadline: Date.now() + this.#timeoutMs });
      return credentialFromLookup(res);
    } catch (err) {
      if (err instanceof NotFoundError) return undefined;
      // Whatever went wrong between two platform services is not the caller's to fix: retryable.
      const code = isDomainError(err) ? err.kind : 'error';
      throw new UnavailableError(`the credential service could not be asked (${code})`, { cause: err });
    }
  }

  async recordUse(uses: readonly KeyUse[]): Promise<void> {
    for (let i = 0; i < uses.length; i += MAX_USES_PER_CALL) {
      const batch = uses.slice(i, i + MAX_USES_PER_CALL).map((u) => ({ keyId: u.keyId, usedAt: u.at }));
      await callUnary(this.#client.recordApiKeyUse.bind(this.#client), { uses: batch }, { deadline: Date.now() + this.#timeoutMs });
    }
  }

  close(): void {
    this.#client.close();
  }
}
