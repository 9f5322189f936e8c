import { context, propagation, trace, type Tracer } from '@opentelemetry/api';
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { ConsoleSpanExporter, InMemorySpanExporter, SimpleSpanProcessor, type SpanProcessor } from '@opentelemetry/sdk-trace-base';

export type TelemetryExporter = 'otlp' | 'console' | 'none' | 'memory';

export const TRACER_NAME = '@aimass/platform';

export interface StartTelemetryOptions {
  serviceName: string;
  /** When false, nothing is exported, but trace context still flows through (see below). */
  enabled?: boolean | undefined;
  /**
   * `otlp`: OTLP over HTTP/protobuf (batched) to `otlpEndpoint`, or to the standard
   * `OTEL_EXPORTER_OTLP_ENDPOINT`/`_PROTOCOL` variables when no endpoint is given.
   * `console`: spans printed to stdout (local debugging). `memory`: kept in `memoryExporter`
   * (tests). `none`: no spans recorded.
   */
  exporter?: TelemetryExporter | undefined;
  /** Base OTLP URL, e.g. `http://otel-collector:4318` (`/v1/traces` is appended). */
  otlpEndpoint?: string | undefined;
}

export interface Telemetry {
  readonly exporter: TelemetryExporter;
  /** Only with `exporter: 'memory'`. */
  readonly memoryExporter: InMemorySpanExporter | undefined;
  /** Exports what is buffered (OTLP batches) now. */
  forceFlush(): Promise<void>;
  /** Flushes and unregisters everything, so telemetry can be started again in the same process. */
  shutdown(): Promise<void>;
}

let running: Telemetry | undefined;

// The OTLP exporters are dependencies of sdk-node, built from the standard environment variables
// when no processor is given. Setting the variables only for the duration of start() passes the
// configured endpoint without a direct dependency on an exporter package.
function withEnv<T>(vars: Record<string, string | undefined>, fn: () => T): T {
  const saved = new Map<string, string | undefined>();
  for (const [k, v] of Object.entries(vars)) {
    if (v === undefined) continue;
    saved.set(k, process.env[k]);
    process.env[k] = v;
  }
  try {
    return fn();
  } finally {
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

/**
 * Starts the OpenTelemetry Node SDK: AsyncLocalStorage context, W3C trace-context and baggage
 * propagation, and the chosen span exporter. Metrics and log exporters are not started.
 *
 * Even with `enabled: false` (or `exporter: 'none'`) the context manager and propagator are
 * registered: spans are not recorded, but an incoming `traceparent` is carried to outgoing calls
 * and to log lines, so a service with telemetry off does not break a trace that passes through it.
 *
 * One instance per process; starting again before `shutdown()` throws.
 */
export function startTelemetry(options: StartTelemetryOptions): Telemetry {
  if (running) throw new Error('telemetry already started in this process; call shutdown() first');
  const exporter: TelemetryExporter = options.enabled === false ? 'none' : (options.exporter ?? 'otlp');
  const memoryExporter = exporter === 'memory' ? new InMemorySpanExporter() : undefined;

  let spanProcessors: SpanProcessor[] | undefined;
  if (exporter === 'none') spanProcessors = [];
  else if (exporter === 'memory') spanProcessors = [new SimpleSpanProcessor(memoryExporter!)];
  else if (exporter === 'console') spanProcessors = [new SimpleSpanProcessor(new ConsoleSpanExporter())];

  const sdk = new NodeSDK({
    serviceName: options.serviceName,
    textMapPropagator: new CompositePropagator({
      propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()],
    }),
    metricReaders: [],
    logRecordProcessors: [],
    ...(spanProcessors ? { spanProcessors } : {}),
  });
  withEnv(
    exporter === 'otlp' ? { OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_ENDPOINT: options.otlpEndpoint } : {},
    () => sdk.start(),
  );

  const flush = async () => {
    const provider = trace.getTracerProvider() as { getDelegate?: () => { forceFlush?: () => Promise<void> } };
    await provider.getDelegate?.().forceFlush?.();
  };

  const handle: Telemetry = {
    exporter,
    memoryExporter,
    forceFlush: flush,
    shutdown: async () => {
      if (running !== handle) return;
      try {
        await sdk.shutdown();
      } finally {
        trace.disable();
        context.disable();
        propagation.disable();
        running = undefined;
      }
    },
  };
  running = handle;
  return handle;
}

/** The tracer the platform's gRPC wrappers use; services may use it or their own. */
export function platformTracer(): Tracer {
  return trace.getTracer(TRACER_NAME);
}

/** The parts of a service's configuration (baseConfigShape) that telemetry reads. */
export interface TelemetryServiceConfig {
  readonly serviceName: string;
  readonly telemetry: { enabled: boolean; exporter: TelemetryExporter; otlpEndpoint?: string | undefined; serviceName?: string | undefined };
}

/** `startTelemetry` from a service's loaded configuration (its `telemetry` section and name). */
export function startServiceTelemetry(config: TelemetryServiceConfig): Telemetry {
  return startTelemetry({
    serviceName: config.telemetry.serviceName ?? config.serviceName,
    enabled: config.telemetry.enabled,
    exporter: config.telemetry.exporter,
    otlpEndpoint: config.telemetry.otlpEndpoint,
  });
}
