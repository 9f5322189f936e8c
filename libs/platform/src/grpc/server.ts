import {
  Server,
  ServerCredentials,
  type ChannelOptions,
  type ServerInterceptor,
  type ServiceDefinition,
  type UntypedHandleCall,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { loadFileDescriptorSetFromBuffer, loadSync, type PackageDefinition } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { context } from '@opentelemetry/api';
import { HealthImplementation, protoPath as healthProtoPath, type ServingStatus } from 'grpc-health-check';
import type { Logger } from 'pino';
import { toGrpcStatus } from '../errors/grpc-mapping.js';
import { scopeForMetadata, type ServerCall } from './call-context.js';
import { CallPolicy } from './call-policy.js';
import { rejectMalformedRequests, tolerantDefinition } from './malformed.js';
import { widenFlowControlWindows } from './flow-control.js';
import { splitPath } from './rpc-names.js';
import { serverCredentialsFromConfig, type GrpcServerTlsConfig } from './tls.js';

/** The `grpc` configuration keys the server uses (a `GrpcConfig` fits). */
export interface GrpcServerConfig {
  host: string;
  port: number;
  maxReceiveMessageBytes: number;
  maxSendMessageBytes: number;
  requireDeadline: boolean;
  maxDeadlineMs?: number | undefined;
  drainTimeoutMs: number;
  /** HTTP/2 receive windows (see `widenFlowControlWindows`); unset: HTTP/2's 64 KiB defaults. */
  flowControlWindowBytes?: number | undefined;
  connectionFlowControlWindowBytes?: number | undefined;
  /** TLS (and mTLS) from certificate files; plaintext when unset. */
  tls?: GrpcServerTlsConfig | undefined;
}

export interface GrpcServiceRegistration {
  definition: ServiceDefinition;
  implementation: UntypedServiceImplementation;
}

export interface CreateGrpcServerOptions {
  config: GrpcServerConfig;
  logger: Logger;
  services: readonly GrpcServiceRegistration[];
  /**
   * A serialized FileDescriptorSet (e.g. `buf build -o set.binpb`) describing the services;
   * enables server reflection (grpcurl without .proto files). Health is added to it.
   */
  descriptorSet?: Uint8Array | undefined;
  /** Wins over `config.tls`; plaintext when neither is set. */
  credentials?: ServerCredentials | undefined;
  /** Extra grpc-js server options (keepalive, …). */
  channelOptions?: ChannelOptions | undefined;
  /**
   * Run after the platform's call policy (deadline, drain, trace span), in this order: e.g.
   * authentication, which decides the call's tenant, then per-tenant quotas, which need it.
   */
  interceptors?: readonly ServerInterceptor[] | undefined;
}

export interface BoundAddress {
  host: string;
  port: number;
  /** `host:port`, usable as a client target. */
  address: string;
}

export interface GrpcServer {
  /** Binds and starts serving; health turns SERVING. */
  start(): Promise<BoundAddress>;
  /**
   * Graceful stop: health turns NOT_SERVING, new application calls get UNAVAILABLE "server is
   * draining", calls in flight finish (for up to `drainTimeoutMs`, then they are ended with
   * UNAVAILABLE), then the server closes. Idempotent: later calls return the same promise.
   */
  drain(): Promise<void>;
  /** Cuts every call and closes at once. */
  forceShutdown(): void;
  /** Sets the health status of one service (fully qualified name) or of the server (`''`). */
  setServingStatus(service: string, status: 'SERVING' | 'NOT_SERVING'): void;
  /** Called when a drain begins, e.g. to stop consuming events. */
  onDrain(listener: () => void): void;
  readonly draining: boolean;
  /** Application calls in flight. */
  readonly inFlight: number;
  /** The underlying grpc-js server, for what this wrapper does not cover. */
  readonly server: Server;
}

// After a drain timeout, how long the final statuses get to be flushed before connections are cut.
const FLUSH_GRACE_MS = 1_000;

const LOADER_OPTIONS = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true } as const;

function serviceNameOf(definition: ServiceDefinition): string {
  const first = Object.values(definition)[0];
  if (!first) throw new TypeError('createGrpcServer: a service definition has no methods');
  return splitPath(first.path).service;
}

type AnyHandler = (call: ServerCall, callback?: (...args: unknown[]) => void) => unknown;

/**
 * Runs each handler in its call's trace context (set up by the policy interceptor), and turns a
 * synchronous throw from a hand-written grpc-js handler into a status instead of a crash.
 */
function wrapImplementation(
  definition: ServiceDefinition,
  implementation: UntypedServiceImplementation,
  logger: Logger,
): UntypedServiceImplementation {
  const wrapped: UntypedServiceImplementation = {};
  for (const [name, method] of Object.entries(definition)) {
    const original = (implementation[name] ?? (method.originalName ? implementation[method.originalName] : undefined)) as
      | AnyHandler
      | undefined;
    if (typeof original !== 'function') continue; // grpc-js answers UNIMPLEMENTED
    const handler: AnyHandler = (call, callback) => {
      const scope = scopeForMetadata(call.metadata);
      const run = () => {
        try {
          return original.call(implementation, call, callback);
        } catch (err) {
          const status = toGrpcStatus(err, { logger: scope?.logger ?? logger, method: method.path });
          const response = Object.assign(new Error(status.details), status);
          if (callback) callback(response);
          else call.emit('error', response);
          return undefined;
        }
      };
      return scope?.otelContext ? context.with(scope.otelContext, run) : run();
    };
    wrapped[name] = handler as unknown as UntypedHandleCall;
  }
  return wrapped;
}

/**
 * A grpc-js server with the platform's policies: health (`grpc.health.v1.Health`, per service and
 * overall `""`), optional reflection, message size limits, required deadlines (health and
 * reflection exempt), trace context from incoming metadata, and graceful drain.
 */
export function createGrpcServer(options: CreateGrpcServerOptions): GrpcServer {
  const { config, logger } = options;
  // Read here, at startup: a certificate file that has gone since the configuration was loaded is
  // a ConfigError (exit 78), not a failure at the first handshake.
  const credentials = options.credentials ?? (config.tls ? serverCredentialsFromConfig(config.tls) : ServerCredentials.createInsecure());
  const policy = new CallPolicy({ logger, requireDeadline: config.requireDeadline, maxDeadlineMs: config.maxDeadlineMs });
  const server = new Server({
    ...options.channelOptions,
    'grpc.max_receive_message_length': config.maxReceiveMessageBytes,
    'grpc.max_send_message_length': config.maxSendMessageBytes,
    // Outermost: the status for an undecodable request passes every other interceptor.
    interceptors: [policy.interceptor, ...(options.interceptors ?? []), rejectMalformedRequests],
  });

  const serviceNames = options.services.map((s) => serviceNameOf(s.definition));
  const initial: Record<string, ServingStatus> = { '': 'NOT_SERVING' };
  for (const name of serviceNames) initial[name] = 'NOT_SERVING';
  const health = new HealthImplementation(initial);
  health.addToServer(server);

  for (const { definition, implementation } of options.services) {
    server.addService(tolerantDefinition(definition), wrapImplementation(definition, implementation, logger));
  }

  if (options.descriptorSet) {
    const app = loadFileDescriptorSetFromBuffer(Buffer.from(options.descriptorSet), LOADER_OPTIONS);
    const healthPkg = loadSync(healthProtoPath, LOADER_OPTIONS);
    const merged: PackageDefinition = { ...healthPkg, ...app };
    // @grpc/reflection is typed against its own copy of proto-loader; the data is the same.
    new ReflectionService(merged as ConstructorParameters<typeof ReflectionService>[0]).addToServer(server);
  }

  const drainListeners: Array<() => void> = [];
  let drainPromise: Promise<void> | undefined;
  let started = false;

  const setAll = (status: ServingStatus) => {
    for (const name of ['', ...serviceNames]) health.setStatus(name, status);
  };

  const closeGracefully = (timeoutMs: number) =>
    new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), Math.max(0, timeoutMs));
      server.tryShutdown(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });

  const drain = async () => {
    const startedAt = Date.now();
    policy.startDraining();
    setAll('NOT_SERVING');
    for (const listener of drainListeners) {
      try {
        listener();
      } catch (err) {
        logger.error({ err }, 'drain listener failed');
      }
    }
    logger.info({ inFlight: policy.inFlight, drainTimeoutMs: config.drainTimeoutMs }, 'draining');
    const idle = await policy.waitIdle(config.drainTimeoutMs);
    if (idle) {
      policy.endExemptCalls();
    } else {
      const cut = policy.endAllCalls('server shut down before the call finished');
      logger.warn({ cut }, 'drain timed out: ended calls still in flight with UNAVAILABLE');
    }
    // Let statuses already handed to grpc-js reach the clients before connections close.
    const closed = await closeGracefully(Math.max(FLUSH_GRACE_MS, config.drainTimeoutMs - (Date.now() - startedAt)));
    if (!closed) server.forceShutdown();
    logger.info({ durationMs: Date.now() - startedAt, timedOut: !idle }, 'drained');
  };

  return {
    server,
    get draining() {
      return policy.draining;
    },
    get inFlight() {
      return policy.inFlight;
    },
    async start() {
      if (started) throw new Error('server already started');
      started = true;
      const host = config.host.includes(':') && !config.host.startsWith('[') ? `[${config.host}]` : config.host;
      const port = await new Promise<number>((resolve, reject) =>
        server.bindAsync(`${host}:${config.port}`, credentials, (err, p) => (err ? reject(err) : resolve(p))),
      );
      const streamBytes = config.flowControlWindowBytes;
      const connectionBytes = config.connectionFlowControlWindowBytes ?? streamBytes;
      if (streamBytes !== undefined && connectionBytes !== undefined) {
        if (!widenFlowControlWindows(server, { streamBytes, connectionBytes })) {
          logger.warn(
            { streamBytes, connectionBytes },
            'could not widen the HTTP/2 flow-control windows (this grpc-js version keeps its http2 servers elsewhere): they stay at 64 KiB',
          );
        }
      }
      setAll('SERVING');
      const transport = options.credentials ? 'custom credentials' : config.tls ? 'tls' : 'plaintext';
      logger.info({ host: config.host, port, services: serviceNames, transport, clientAuth: config.tls?.clientAuth }, 'gRPC server listening');
      return { host: config.host, port, address: `${host}:${port}` };
    },
    drain() {
      drainPromise ??= drain();
      return drainPromise;
    },
    forceShutdown() {
      policy.startDraining();
      setAll('NOT_SERVING');
      server.forceShutdown();
    },
    setServingStatus(service, status) {
      health.setStatus(service, status);
    },
    onDrain(listener) {
      drainListeners.push(listener);
    },
  };
}

