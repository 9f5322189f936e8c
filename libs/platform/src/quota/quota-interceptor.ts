import { ServerInterceptingCall, type Metadata, type ServerInterceptingCallInterface, type ServerInterceptor } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { ResourceExhaustedError } from '../errors/domain-errors.js';
import { toGrpcStatus } from '../errors/grpc-mapping.js';
import { isExemptPath } from '../grpc/rpc-names.js';
import { tenantIfValid } from '../tenancy/tenant.js';
import type { QuotaLimitKind, TenantQuotas } from './tenant-quotas.js';

export interface QuotaInterceptorOptions {
  /** Refusals are logged here at debug level (tenant, limit, method). */
  logger?: Logger | undefined;
  /** Told about each refusal (metrics, tests). */
  onRefused?: ((refusal: { tenant: string; limit: QuotaLimitKind; method: string }) => void) | undefined;
  /** Methods (full paths) left alone besides health and reflection, e.g. an admin RPC that must stay reachable. */
  exemptMethods?: readonly string[] | undefined;
  /**
   * A refusal is answered after this many milliseconds (never later than 50 ms before the call's
   * deadline), its retry hint shortened by the time held; 0 answers at once. A client that retries
   * at once, in a closed loop, is then slowed down instead of making the server spend a core on
   * refusing it, which is what the other tenants would pay for.
   */
  holdRefusalsMs?: number | undefined;
  /** Refusals held at once per tenant (default 2048: a held call costs a timer and its stream state, a few KB); beyond them refusals are answered at once. */
  maxHeldPerTenant?: number | undefined;
}

/** Leaves a held refusal enough time to reach the caller before its deadline. */
const HOLD_DEADLINE_MARGIN_MS = 50;

// No tenant, or a malformed one: the handler refuses the call with INVALID_ARGUMENT (or the
// authentication interceptor already did). Quotas have nothing to count it against.
const tenantOrUndefined = (metadata: Metadata): string | undefined => tenantIfValid(metadata);

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
  const holdMs = options.holdRefusalsMs ?? 0;
  const maxHeld = options.maxHeldPerTenant ?? 2048;
  const held = new Map<string, number>();
  return (methodDescriptor, next: ServerInterceptingCallInterface) => {
    const path = methodDescriptor.path;
    if (isExemptPath(path) || exempt.has(path)) return new ServerInterceptingCall(next);
    let release: (() => void) | undefined;
    let holding: { timer: NodeJS.Timeout; tenant: string } | undefined;
    const unhold = () => {
      if (!holding) return;
      clearTimeout(holding.timer);
      const n = (held.get(holding.tenant) ?? 1) - 1;
      if (n > 0) held.set(holding.tenant, n);
      else held.delete(holding.tenant);
      holding = undefined;
    };
    const done = () => {
      unhold();
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
              const deadline = next.getDeadline();
              const at = deadline instanceof Date ? deadline.getTime() : deadline;
              const wait = Math.floor(Math.min(holdMs, Number.isFinite(at) ? at - Date.now() - HOLD_DEADLINE_MARGIN_MS : Infinity));
              const count = held.get(tenant) ?? 0;
              const refuse = (heldMs: number) => {
                const retryAfterMs = Math.max(0, admission.retryAfterMs - heldMs);
                next.sendStatus(toGrpcStatus(new ResourceExhaustedError(heldMs > 0 ? admission.messageWith(retryAfterMs) : admission.message, { retryAfterMs })));
              };
              if (wait <= 0 || count >= maxHeld) {
                refuse(0);
                return;
              }
              held.set(tenant, count + 1);
              holding = {
                tenant,
                timer: setTimeout(() => {
                  unhold();
                  refuse(wait);
                }, wait),
              };
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
