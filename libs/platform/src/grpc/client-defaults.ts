import type { ChannelCredentials, Interceptor } from '@grpc/grpc-js';

/** How a process authenticates its calls to the other platform services. */
export interface ClientSecurity {
  /** Channel credentials, e.g. TLS with this process's client certificate (`clientCredentialsFromConfig`). */
  credentials?: ChannelCredentials | undefined;
  /** Client interceptors, e.g. one that adds a service token to every call. */
  interceptors?: readonly Interceptor[] | undefined;
}

// Process-wide on purpose: a process has one identity towards its peers (its certificate, its
// service token), and the internal clients are created deep inside adapters (consent lookups,
// data keys, model clients) that would otherwise each need the credentials threaded through
// their options. main sets it once from configuration, before the service creates its clients.
let credentials: ChannelCredentials | undefined;
let interceptors: Interceptor[] = [];

/**
 * Sets the security `createClient` uses when its call site passes no `credentials`. Credentials
 * replace the previous ones; interceptors are added after those registered before, so independent
 * parts of the startup (TLS from configuration, a service token) each register their own.
 * Clients take a copy when they are created: set this first.
 */
export function setDefaultClientSecurity(security: ClientSecurity): void {
  if (security.credentials !== undefined) credentials = security.credentials;
  if (security.interceptors !== undefined) interceptors = [...interceptors, ...security.interceptors];
}

/** The current default: credentials (plaintext when undefined) and the interceptors in registration order. */
export function defaultClientSecurity(): { credentials: ChannelCredentials | undefined; interceptors: readonly Interceptor[] } {
  return { credentials, interceptors: [...interceptors] };
}

/** Back to plaintext without interceptors (tests that run several set-ups in one process). */
export function resetDefaultClientSecurity(): void {
  credentials = undefined;
  interceptors = [];
}
