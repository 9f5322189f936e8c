import {
  Metadata,
  ServerInterceptingCall,
  status as Status,
  type ServerInterceptingCallInterface,
  type ServerInterceptor,
} from '@grpc/grpc-js';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, context, propagation, trace, type Context, type Span } from '@opentelemetry/api';
import type { Logger } from 'pino';
import { metadataGetter } from '../telemetry/propagation.js';
import { TRACER_NAME } from '../telemetry/telemetry.js';
import { setScopeForMetadata } from './call-context.js';
import { isExemptPath, rpcSpanName, splitPath } from './rpc-names.js';

export const DEADLINE_REQUIRED_MESSAGE =
  'deadline required: set a deadline on the call (e.g. grpcurl -max-time 5, or grpc-js { deadline: Date.now() + 5000 })';
export const DRAINING_MESSAGE = 'server is draining';

export interface CallPolicyOptions {
  logger: Logger;
  requireDeadline: boolean;
  maxDeadlineMs?: number | undefined;
}

// Server spans mark these as errors, per the OpenTelemetry RPC conventions; others (NOT_FOUND,
// INVALID_ARGUMENT, …) are the caller's problem and leave the span status unset.
const SERVER_ERROR_CODES = new Set<Status>([
  Status.UNKNOWN,
  Status.DEADLINE_EXCEEDED,
  Status.UNIMPLEMENTED,
  Status.INTERNAL,
  Status.UNAVAILABLE,
  Status.DATA_LOSS,
]);

interface OpenCall {
  readonly path: string;
  readonly exempt: boolean;
  /** Ends the call from the server side (used for exempt streams at shutdown). */
  readonly end: (code: Status, details: string) => void;
}

/**
 * The server-wide rules every call passes through, as a grpc-js server interceptor: refuse calls
 * without a deadline (or with one too far away), refuse new calls while draining, count calls in
 * flight, and run each application call in a server span whose parent comes from the incoming
 * `traceparent`.
 */
export class CallPolicy {
  readonly #options: CallPolicyOptions;
  readonly #open = new Set<OpenCall>();
  #draining = false;
  #idleWaiters: Array<() => void> = [];

  constructor(options: CallPolicyOptions) {
    this.#options = options;
  }

  get draining(): boolean {
    return this.#draining;
  }

  /** Application calls in flight (health and reflection not counted). */
  get inFlight(): number {
    let n = 0;
    for (const c of this.#open) if (!c.exempt) n++;
    return n;
  }

  startDraining(): void {
    this.#draining = true;
    this.#notifyIfIdle();
  }

  /** Resolves true once no application call is in flight, false if `timeoutMs` passes first. */
  waitIdle(timeoutMs: number): Promise<boolean> {
    if (this.inFlight === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#idleWaiters = this.#idleWaiters.filter((w) => w !== done);
        resolve(false);
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        resolve(true);
      };
      this.#idleWaiters.push(done);
    });
  }

  /** Ends the long-lived exempt calls (health Watch, reflection streams) so shutdown need not wait for them. */
  endExemptCalls(): void {
    for (const c of [...this.#open]) if (c.exempt) c.end(Status.UNAVAILABLE, 'server is shutting down');
  }

  /**
   * Ends every open call with UNAVAILABLE (drain timed out). Clients see a retryable status
   * instead of the CANCELLED a torn-down connection would give them; handlers see their signal abort.
   */
  endAllCalls(details: string): number {
    const open = [...this.#open];
    for (const c of open) c.end(Status.UNAVAILABLE, details);
    return open.filter((c) => !c.exempt).length;
  }

  #notifyIfIdle(): void {
    if (this.inFlight > 0) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }

  #refusal(path: string, deadline: Date | number): { code: Status; details: string } | undefined {
    if (isExemptPath(path)) return undefined;
    if (this.#draining) return { code: Status.UNAVAILABLE, details: DRAINING_MESSAGE };
    const at = deadline instanceof Date ? deadline.getTime() : deadline;
    if (this.#options.requireDeadline && !Number.isFinite(at)) {
      return { code: Status.INVALID_ARGUMENT, details: DEADLINE_REQUIRED_MESSAGE };
    }
    const max = this.#options.maxDeadlineMs;
    if (max !== undefined && Number.isFinite(at) && at - Date.now() > max) {
      return { code: Status.INVALID_ARGUMENT, details: `deadline too far away: at most ${max} ms is accepted` };
    }
    return undefined;
  }

  readonly interceptor: ServerInterceptor = (methodDescriptor, next: ServerInterceptingCallInterface) => {
    const path = methodDescriptor.path;
    const exempt = isExemptPath(path);
    const started = performance.now();
    let span: Span | undefined;
    let otelContext: Context | undefined;
    let record: OpenCall | undefined;
    let finished = false;

    const finish = (code: Status, details: string) => {
      if (finished) return;
      finished = true;
      if (record) {
        this.#open.delete(record);
        if (!exempt) this.#notifyIfIdle();
      }
      if (span) {
        span.setAttribute('rpc.grpc.status_code', code);
        if (SERVER_ERROR_CODES.has(code)) span.setStatus({ code: SpanStatusCode.ERROR, message: details });
        span.end();
      }
      if (!exempt) {
        const log = () =>
          this.#options.logger.debug(
            { rpc: path, code: Status[code] ?? code, durationMs: Math.round(performance.now() - started) },
            'call finished',
          );
        if (otelContext) context.with(otelContext, log);
        else log();
      }
    };

    const call: ServerInterceptingCall = new ServerInterceptingCall(next, {
      start: (startNext) => {
        startNext({
          onReceiveMetadata: (metadata: Metadata, mdNext) => {
            if (!exempt) {
              const { service, method } = splitPath(path);
              const parent = propagation.extract(ROOT_CONTEXT, metadata, metadataGetter);
              span = trace.getTracer(TRACER_NAME).startSpan(
                rpcSpanName(path),
                { kind: SpanKind.SERVER, attributes: { 'rpc.system': 'grpc', 'rpc.service': service, 'rpc.method': method } },
                parent,
              );
              otelContext = trace.setSpan(parent, span);
              const logger = this.#options.logger.child({ rpc: path });
              setScopeForMetadata(metadata, { logger, otelContext });
            }
            const refusal = this.#refusal(path, next.getDeadline());
            if (refusal) {
              finish(refusal.code, refusal.details);
              next.sendStatus({ ...refusal, metadata: new Metadata() });
              return;
            }
            record = {
              path,
              exempt,
              end: (code, details) => call.sendStatus({ code, details, metadata: new Metadata() }),
            };
            this.#open.add(record);
            mdNext(metadata);
          },
          onCancel: () => {
            const at = next.getDeadline();
            const ms = at instanceof Date ? at.getTime() : at;
            const expired = Number.isFinite(ms) && Date.now() >= ms;
            finish(expired ? Status.DEADLINE_EXCEEDED : Status.CANCELLED, expired ? 'deadline exceeded' : 'cancelled');
          },
        });
      },
      sendStatus: (status, statusNext) => {
        finish(status.code ?? Status.UNKNOWN, status.details ?? '');
        statusNext(status);
      },
    });
    return call;
  };
}
