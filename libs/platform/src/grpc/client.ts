import {
  InterceptingCall,
  Metadata,
  credentials as grpcCredentials,
  status as Status,
  type CallOptions,
  type ChannelCredentials,
  type ChannelOptions,
  type Client,
  type ClientOptions,
  type ClientUnaryCall,
  type Interceptor,
  type ServiceDefinition,
  type ServiceError,
} from '@grpc/grpc-js';
import { SpanKind, SpanStatusCode, context, propagation, trace } from '@opentelemetry/api';
import { fromGrpcError } from '../errors/grpc-mapping.js';
import { metadataSetter } from '../telemetry/propagation.js';
import { TRACER_NAME } from '../telemetry/telemetry.js';
import { defaultClientSecurity } from './client-defaults.js';
import { rpcSpanName, splitPath } from './rpc-names.js';

export interface RetryOptions {
  /** Total attempts including the first; at least 2 to retry at all. Default 4. */
  maxAttempts?: number | undefined;
  /** Default 100 ms. */
  initialBackoffMs?: number | undefined;
  /** Default 2000 ms. */
  maxBackoffMs?: number | undefined;
  /** Default 2. */
  backoffMultiplier?: number | undefined;
  /**
   * Default `[UNAVAILABLE]`. Adding DEADLINE_EXCEEDED retries a server-reported timeout while the
   * caller's own deadline still has time left; the caller's deadline itself ends the call.
   */
  retryableCodes?: readonly Status[] | undefined;
}

export interface CreateClientOptions {
  /** `host:port` or any grpc-js target (`dns:///fusion:50051`). */
  address: string;
  /**
   * When omitted, the process default for platform calls (`setDefaultClientSecurity`: its
   * credentials, plaintext if none, and its interceptors). Given, it is used alone, without the
   * default's interceptors (a client of something outside the platform).
   */
  credentials?: ChannelCredentials | undefined;
  /** Deadline given to calls that set none. Default 5000 ms. */
  defaultDeadlineMs?: number | undefined;
  retry?: RetryOptions | undefined;
  /**
   * Methods safe to repeat, by RPC name as in the .proto (`GetModel`), by client method name
   * (`getModel`) or by full path. Only these are retried; a name the service does not have is an error.
   */
  idempotentMethods?: readonly string[] | undefined;
  maxReceiveMessageBytes?: number | undefined;
  maxSendMessageBytes?: number | undefined;
  /** Added after the platform's interceptors (deadline, tracing) and the default security's. */
  interceptors?: readonly Interceptor[] | undefined;
  channelOptions?: ChannelOptions | undefined;
}

/** A generated grpc-js client class (ts-proto `…Client`, or from `loadPackageDefinition`). */
export interface ClientConstructor<C extends Client> {
  new (address: string, credentials: ChannelCredentials, options?: Partial<ClientOptions>): C;
  service: ServiceDefinition;
}

const DEFAULTS = {
  defaultDeadlineMs: 5_000,
  maxAttempts: 4,
  initialBackoffMs: 100,
  maxBackoffMs: 2_000,
  backoffMultiplier: 2,
  retryableCodes: [Status.UNAVAILABLE] as readonly Status[],
};

const seconds = (ms: number) => `${(ms / 1000).toFixed(3)}s`;

function resolveMethods(definition: ServiceDefinition, names: readonly string[]): Array<{ service: string; method: string }> {
  const entries = Object.entries(definition);
  return names.map((name) => {
    const found = entries.find(
      ([key, m]) => key === name || m.originalName === name || m.path === name || splitPath(m.path).method === name,
    );
    if (!found) {
      const known = entries.map(([, m]) => splitPath(m.path).method).join(', ');
      throw new TypeError(`createClient: idempotent method "${name}" is not in the service (methods: ${known})`);
    }
    const [, m] = found;
    if (m.requestStream) throw new TypeError(`createClient: "${name}" streams requests and cannot be retried`);
    return splitPath(m.path);
  });
}

/** Gives every call a deadline: the caller's, or now + `defaultMs`. */
export function defaultDeadlineInterceptor(defaultMs: number): Interceptor {
  return (options, nextCall) =>
    new InterceptingCall(nextCall(options.deadline === undefined ? { ...options, deadline: Date.now() + defaultMs } : options));
}

/**
 * Starts a client span per call (child of the active span) and sends its context as
 * `traceparent`/`tracestate` metadata. With built-in retries one logical call is one span.
 */
export function tracingClientInterceptor(): Interceptor {
  return (options, nextCall) => {
    const path = options.method_definition.path;
    const { service, method } = splitPath(path);
    const span = trace.getTracer(TRACER_NAME).startSpan(rpcSpanName(path), {
      kind: SpanKind.CLIENT,
      attributes: { 'rpc.system': 'grpc', 'rpc.service': service, 'rpc.method': method },
    });
    const ctx = trace.setSpan(context.active(), span);
    return new InterceptingCall(nextCall(options), {
      start: (metadata, listener, next) => {
        propagation.inject(ctx, metadata, metadataSetter);
        next(metadata, {
          onReceiveStatus: (status, nextStatus) => {
            span.setAttribute('rpc.grpc.status_code', status.code);
            if (status.code !== Status.OK) span.setStatus({ code: SpanStatusCode.ERROR, message: status.details });
            span.end();
            nextStatus(status);
          },
        });
      },
    });
  };
}

/**
 * A client for a generated service class with the platform's policies:
 * - every call has a deadline (`defaultDeadlineMs` when the caller sets none);
 * - methods listed in `idempotentMethods` are retried on the retryable codes (UNAVAILABLE by
 *   default) with exponential backoff and ±20% jitter, within the call's deadline — this is
 *   grpc-js's own retry (gRFC A6) configured through the service config, which also obeys
 *   server pushback and never retries once response data has been received;
 * - other methods are never retried (grpc-js may still transparently retry a call that provably
 *   never reached the server application);
 * - trace context travels in metadata;
 * - without `credentials`, the process's default security for platform calls applies
 *   (`setDefaultClientSecurity`: TLS from `grpc.clientTls`, a service token, ...).
 */
export function createClient<C extends Client>(Ctor: ClientConstructor<C>, options: CreateClientOptions): C {
  const retry = { ...DEFAULTS, ...stripUndefined(options.retry ?? {}) };
  const methods = resolveMethods(Ctor.service, options.idempotentMethods ?? []);
  if (retry.maxAttempts < 1 || !Number.isInteger(retry.maxAttempts)) throw new RangeError('retry.maxAttempts must be an integer >= 1');
  if (retry.initialBackoffMs <= 0 || retry.maxBackoffMs <= 0) throw new RangeError('retry backoffs must be > 0');

  const channelOptions: ChannelOptions = {
    // grpc-js backs off up to 120 s between reconnects: after a peer's restart its callers would
    // keep failing (or falling back) for minutes. Inside a cluster a peer is back in seconds, so
    // reconnect attempts are capped at 2 s apart (still jittered; callers may override).
    'grpc.initial_reconnect_backoff_ms': 250,
    'grpc.max_reconnect_backoff_ms': 2_000,
    ...options.channelOptions,
  };
  // The service config below is the only one: resolvers (DNS TXT records) must not replace it.
  channelOptions['grpc.service_config_disable_resolution'] = 1;
  if (methods.length > 0 && retry.maxAttempts >= 2) {
    channelOptions['grpc.service_config'] = JSON.stringify({
      methodConfig: [
        {
          name: methods,
          retryPolicy: {
            maxAttempts: retry.maxAttempts,
            initialBackoff: seconds(retry.initialBackoffMs),
            maxBackoff: seconds(retry.maxBackoffMs),
            backoffMultiplier: retry.backoffMultiplier,
            retryableStatusCodes: retry.retryableCodes.map((c) => Status[c]),
          },
        },
      ],
    });
    // grpc-js caps attempts at 5 unless told otherwise.
    channelOptions['grpc-node.retry_max_attempts_limit'] = Math.max(5, retry.maxAttempts);
  }
  if (options.maxReceiveMessageBytes !== undefined) channelOptions['grpc.max_receive_message_length'] = options.maxReceiveMessageBytes;
  if (options.maxSendMessageBytes !== undefined) channelOptions['grpc.max_send_message_length'] = options.maxSendMessageBytes;

  const security = options.credentials === undefined ? defaultClientSecurity() : { credentials: options.credentials, interceptors: [] };
  return new Ctor(options.address, security.credentials ?? grpcCredentials.createInsecure(), {
    ...channelOptions,
    interceptors: [
      defaultDeadlineInterceptor(options.defaultDeadlineMs ?? DEFAULTS.defaultDeadlineMs),
      tracingClientInterceptor(),
      ...security.interceptors,
      ...(options.interceptors ?? []),
    ],
  });
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export interface UnaryCallOptions {
  deadline?: Date | number | undefined;
  metadata?: Metadata | undefined;
  /** Cancels the call when aborted (e.g. the incoming call's `ctx.signal`). */
  signal?: AbortSignal | undefined;
}

export type UnaryMethod<Req, Res> = (
  request: Req,
  metadata: Metadata,
  options: Partial<CallOptions>,
  callback: (err: ServiceError | null, response?: Res) => void,
) => ClientUnaryCall;

/**
 * Calls a unary method and returns a promise; a failure rejects with the domain error for its
 * status (`fromGrpcError`). Pass the method bound to its client:
 * `callUnary(client.getModel.bind(client), request, { deadline: ctx.deadline, signal: ctx.signal })`.
 */
export function callUnary<Req, Res>(method: UnaryMethod<Req, Res>, request: Req, options: UnaryCallOptions = {}): Promise<Res> {
  return new Promise<Res>((resolve, reject) => {
    if (options.signal?.aborted) {
      reject(fromGrpcError({ code: Status.CANCELLED, details: 'cancelled before the call started' }));
      return;
    }
    const callOptions: Partial<CallOptions> = options.deadline === undefined ? {} : { deadline: options.deadline };
    const onAbort = () => call.cancel();
    const call = method(request, options.metadata ?? new Metadata(), callOptions, (err, response) => {
      options.signal?.removeEventListener('abort', onAbort);
      if (err) reject(fromGrpcError(err));
      else resolve(response as Res);
    });
    options.signal?.addEventListener('abort', onAbort, { once: true });
  });
}
