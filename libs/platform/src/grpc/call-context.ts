import type { Metadata, ServerUnaryCall, ServerWritableStream } from '@grpc/grpc-js';
import type { Context } from '@opentelemetry/api';
import { pino, type Logger } from 'pino';
import { CancelledError, DeadlineExceededError } from '../errors/domain-errors.js';

/** What the server wrapper knows about a call; handed from the interceptor to the handler. */
export interface CallScope {
  readonly logger: Logger | undefined;
  readonly otelContext: Context | undefined;
}

/** What a handler written with `unary()` or `serverStreaming()` receives besides the request. */
export interface CallContext {
  /** Incoming metadata (headers). */
  readonly metadata: Metadata;
  /** The caller's deadline; always set when the server requires deadlines. */
  readonly deadline: Date | undefined;
  /**
   * Aborted when the call ends early: the client cancelled (reason: CancelledError) or the
   * deadline passed (reason: DeadlineExceededError). Pass it to anything that can stop early.
   */
  readonly signal: AbortSignal;
  /** The client's address, as grpc-js reports it. Not for logging next to user data. */
  readonly peer: string;
  /** Full method path, e.g. `/aimass.fusion.v1.Fusion/Predict`. */
  readonly method: string;
  /** Logger bound to this call (`rpc`), with trace ids of the call's span. */
  readonly logger: Logger;
  /** Milliseconds left before the deadline (Infinity without one). */
  remainingMs(): number;
}

// Keyed by the request Metadata object, which grpc-js passes unchanged from the interceptor's
// onReceiveMetadata to the handler's `call.metadata`.
const scopesByMetadata = new WeakMap<Metadata, CallScope>();

export function setScopeForMetadata(metadata: Metadata, scope: CallScope): void {
  scopesByMetadata.set(metadata, scope);
}

export function scopeForMetadata(metadata: Metadata): CallScope | undefined {
  return scopesByMetadata.get(metadata);
}

let silent: Logger | undefined;
// Handlers used on a plain grpc.Server (without createGrpcServer) still get a logger.
function silentLogger(): Logger {
  silent ??= pino({ level: 'silent' });
  return silent;
}

function toDate(deadline: Date | number): Date | undefined {
  if (deadline instanceof Date) return deadline;
  return Number.isFinite(deadline) ? new Date(deadline) : undefined;
}

export interface DisposableCallContext extends CallContext {
  dispose(): void;
}

/** The parts of a grpc-js server call every kind of call has. */
export type ServerCall = ServerUnaryCall<unknown, unknown> | ServerWritableStream<unknown, unknown>;

export function createCallContext(call: ServerCall): DisposableCallContext {
  const scope = scopeForMetadata(call.metadata);
  const deadline = toDate(call.getDeadline());
  const controller = new AbortController();
  const onCancelled = () => {
    const expired = deadline !== undefined && Date.now() >= deadline.getTime();
    controller.abort(
      expired ? new DeadlineExceededError('deadline exceeded') : new CancelledError('call cancelled by the client'),
    );
  };
  if (call.cancelled) onCancelled();
  else call.once('cancelled', onCancelled);
  return {
    metadata: call.metadata,
    deadline,
    signal: controller.signal,
    peer: call.getPeer(),
    method: call.getPath(),
    logger: scope?.logger ?? silentLogger(),
    remainingMs: () => (deadline ? Math.max(0, deadline.getTime() - Date.now()) : Infinity),
    dispose: () => call.removeListener('cancelled', onCancelled),
  };
}
