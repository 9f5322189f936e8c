import { ServerInterceptingCall, type Metadata, type ServerInterceptingCallInterface, type ServerInterceptor } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { ResourceExhaustedError } from '../errors/domain-errors.js';
import { toGrpcStatus } from '../errors/grpc-mapping.js';
import { isExemptPath } from '../grpc/rpc-names.js';
import { tenantFromMetadata } from '../tenancy/tenant.js';
import type { QuotaLimitKind, TenantQuotas } from './tenant-quotas.js';

export interface QuotaInterceptorOptions {
  /** Refusals are logged here at debug level (tenant, limit, method). */
  logger?: Logger | undefined;
  /** Told about each refusal (metrics, tests). */
  onRefused?: ((refusal: { tenant: string; limit: QuotaLimitKind; method: string }) => void) | undefined;
  /** Methods (full paths) left alone besides health and reflection, e.g. an admin RPC that must stay reachable. */
  exemptMethods?: readonly string[] | undefined;
}

function tenantOrUndefined(metadata: Metadata): string | undefined {
  try {
    return tenantFromMetadata(metadata);
  } catch {
    // No tenant, or a malformed one: the handler refuses the call with INVALID_ARGUMENT (or the
    // authentication interceptor already did). Quotas have nothing to count it against.
    return undefined;
  }
}

/**
 * Per-tenant quotas as a grpc-js server interceptor, for `createGrpcServer({ interceptors })`
 * after authentication (which sets the tenant from the API key). A call over the tenant's rate or
 * concurrency quota ends with RESOURCE_EXHAUSTED, a message naming the limit and its figures, and
 * `retry-after-ms` metadata; it never reaches the handler. An admitted call holds a concurrency slot
 * until it ends, however it ends: a status sent (OK or an error), a cancellation, a deadline, a
 * cut connection. Health and reflection are exempt; calls without a valid tenant pass through.
 */
export function quotaInterceptor(quotas: TenantQuotas, options: QuotaInterceptorOptions = {}): ServerInterceptor {
  const exempt = new Set(options.exemptMethods ?? []);
  return (methodDescriptor, next: ServerInterceptingCallInterface) => {
    const path = methodDescriptor.path;
    if (isExemptPath(path) || exempt.has(path)) return new ServerInterceptingCall(next);
    let release: (() => void) | undefined;
    const done = () => {
      const r = release;
      release = undefined;
      r?.();
    };
    return new ServerInterceptingCall(next, {
      start: (startNext) => {
        startNext({
          onReceiveMetadata: (metadata, mdNext) => {
            const tenant = tenantOrUndefined(metadata);
            if (tenant === undefined) {
              mdNext(metadata);
              return;
            }
            const admission = quotas.admit(tenant);
            if (!admission.ok) {
              options.logger?.debug({ rpc: path, tenant, limit: admission.limit, retryAfterMs: admission.retryAfterMs }, 'call refused by a quota');
              options.onRefused?.({ tenant, limit: admission.limit, method: path });
              next.sendStatus(toGrpcStatus(new ResourceExhaustedError(admission.message, { retryAfterMs: admission.retryAfterMs })));
              return;
            }
            release = admission.release;
            mdNext(metadata);
          },
          // grpc-js reports every end of the stream here (a cancel, a deadline, a cut connection,
          // and the close after a status), so a slot cannot outlive its call.
          onCancel: done,
        });
      },
      sendStatus: (status, statusNext) => {
        done();
        statusNext(status);
      },
    });
  };
}
