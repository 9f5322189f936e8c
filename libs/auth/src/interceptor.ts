import {
  Metadata,
  ServerInterceptingCall,
  status as Status,
  type ServerInterceptingCallInterface,
  type ServerInterceptor,
} from '@grpc/grpc-js';
import { TENANT_METADATA_KEY, isDomainError, type Logger } from '@aimass/platform';
import type { Authenticator, Principal } from './authenticator.js';
import { accessFor, isExemptMethod, type MethodAccess } from './scopes.js';

export const AUTHORIZATION_METADATA_KEY = 'authorization';

// Keyed by the request Metadata object, which grpc-js hands unchanged from the interceptor to
// the handler's `call.metadata` (the platform's call context relies on the same).
const principals = new WeakMap<Metadata, Principal>();

/** The principal the interceptor authenticated for this call; undefined when authentication is off. */
export function principalOf(metadata: Metadata): Principal | undefined {
  return principals.get(metadata);
}

export interface AuthInterceptorOptions {
  readonly authenticator: Authenticator;
  readonly logger?: Logger | undefined;
  /** The access rule of a method; the shared table (`accessFor`) by default. */
  readonly accessFor?: ((path: string) => MethodAccess | undefined) | undefined;
}

function text(value: string | Buffer | undefined): string | undefined {
  if (value === undefined) return undefined;
  return typeof value === 'string' ? value : value.toString('utf8');
}

const CODES = { unauthenticated: Status.UNAUTHENTICATED, permission_denied: Status.PERMISSION_DENIED, unavailable: Status.UNAVAILABLE } as const;

/**
 * A grpc-js server interceptor (give it to createGrpcServer's `interceptors`, after which the call
 * policy runs first): authenticates every call but health and reflection, checks the method's
 * access rule, and makes the tenant the credentials' own: `x-aimass-tenant` is overwritten with an
 * API key's tenant (whatever the caller sent), removed for the operator, and kept only for
 * platform service tokens, which forward the tenant they call for. Handlers keep reading the
 * tenant with `tenantFromMetadata`, and the principal with `principalOf`.
 */
export function authInterceptor(options: AuthInterceptorOptions): ServerInterceptor {
  const { authenticator, logger } = options;
  const lookup = options.accessFor ?? accessFor;
  return (methodDescriptor, next: ServerInterceptingCallInterface) => {
    const path = methodDescriptor.path;
    if (isExemptMethod(path)) return new ServerInterceptingCall(next);
    const access = lookup(path);
    return new ServerInterceptingCall(next, {
      start: (startNext) => {
        startNext({
          onReceiveMetadata: (metadata: Metadata, mdNext) => {
            const refuse = (code: Status, details: string) => next.sendStatus({ code, details, metadata: new Metadata() });
            if (!access) {
              refuse(Status.PERMISSION_DENIED, `${path} has no access rule: it is refused until one is added to the auth table`);
              return;
            }
            if (access.open) {
              mdNext(metadata);
              return;
            }
            const authorization = metadata.get(AUTHORIZATION_METADATA_KEY).map((v) => text(v)!);
            const forwarded = metadata.get(TENANT_METADATA_KEY);
            const forwardedTenant = forwarded.length === 1 ? text(forwarded[0]) : undefined;
            authenticator
              .authenticate(authorization, forwardedTenant)
              .then((principal) => {
                authenticator.authorize(principal, access, path);
                if (principal.kind === 'api-key' || principal.kind === 'operator') {
                  metadata.remove(TENANT_METADATA_KEY);
                  if (principal.tenant !== undefined) metadata.set(TENANT_METADATA_KEY, principal.tenant);
                }
                // The credential goes no further than this check (handlers never log it by mistake).
                metadata.remove(AUTHORIZATION_METADATA_KEY);
                principals.set(metadata, principal);
                mdNext(metadata);
              })
              .catch((err: unknown) => {
                if (isDomainError(err) && err.kind in CODES) {
                  logger?.debug({ rpc: path, code: err.kind, reason: err.message }, 'call refused by authentication');
                  refuse(CODES[err.kind as keyof typeof CODES], err.message);
                  return;
                }
                // The credential store could not answer: a retryable status, never a guess.
                logger?.warn({ rpc: path, err }, 'authentication could not be completed');
                refuse(Status.UNAVAILABLE, 'authentication is unavailable for now (the credential store did not answer): retry shortly');
              });
          },
        });
      },
    });
  };
}
