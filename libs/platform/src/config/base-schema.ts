import { z } from 'zod';
import { DEFAULT_FLOW_CONTROL_WINDOWS, HTTP2_DEFAULT_WINDOW_BYTES, HTTP2_MAX_WINDOW_BYTES } from '../grpc/flow-control.js';
import { grpcClientTlsConfigSchema, grpcServerTlsConfigSchema } from '../grpc/tls.js';
import { LOG_LEVELS, type LogLevel } from '../logging/logger.js';

const MIB = 1024 * 1024;

const port = (() => {
  const error = 'expected a port number between 0 and 65535 (0 lets the OS pick)';
  return z.number({ error }).int({ error }).min(0, { error }).max(65535, { error });
})();

const windowBytes = (() => {
  const error = `expected an HTTP/2 window in bytes between ${HTTP2_DEFAULT_WINDOW_BYTES} (the protocol default) and ${HTTP2_MAX_WINDOW_BYTES}`;
  return z.number({ error }).int({ error }).min(HTTP2_DEFAULT_WINDOW_BYTES, { error }).max(HTTP2_MAX_WINDOW_BYTES, { error });
})();

const positiveInt = (what: string) => {
  const error = `expected ${what} (a whole number > 0)`;
  return z.number({ error }).int({ error }).positive({ error });
};

/** `grpc` section: where and how the service listens, and its call policy. */
export const grpcConfigSchema = z.strictObject({
  host: z.string().min(1).default('0.0.0.0'),
  port: port.default(50051),
  maxReceiveMessageBytes: positiveInt('a size in bytes').default(4 * MIB),
  maxSendMessageBytes: positiveInt('a size in bytes').default(4 * MIB),
  /**
   * HTTP/2 receive window per stream and per connection of this server: how much request data a
   * client may send before the server acknowledges it. HTTP/2's 64 KiB default starves a busy
   * server of requests (libs/platform README, "Flow control").
   */
  flowControlWindowBytes: windowBytes.default(DEFAULT_FLOW_CONTROL_WINDOWS.streamBytes),
  connectionFlowControlWindowBytes: windowBytes.default(DEFAULT_FLOW_CONTROL_WINDOWS.connectionBytes),
  /** Deadline given to outgoing calls that have none. */
  defaultDeadlineMs: positiveInt('a duration in milliseconds').default(5_000),
  /** Refuse incoming application calls without a deadline (health and reflection are exempt). */
  requireDeadline: z.boolean().default(true),
  /** Refuse incoming calls whose deadline is further away than this; unset means no limit. */
  maxDeadlineMs: positiveInt('a duration in milliseconds').optional(),
  /** How long a drain waits for in-flight calls before cutting them off. */
  drainTimeoutMs: positiveInt('a duration in milliseconds').default(25_000),
  /**
   * TLS of this server (`AIMASS_GRPC__TLS__CERT_FILE`, `__KEY_FILE`, `__CA_FILE`, `__CLIENT_AUTH`).
   * Unset: plaintext, for the one-process mode and tests; a cluster sets it.
   */
  tls: grpcServerTlsConfigSchema.optional(),
  /**
   * TLS of this process's calls to the other platform services (`AIMASS_GRPC__CLIENT_TLS__CA_FILE`,
   * `__CERT_FILE`, `__KEY_FILE`, `__SERVER_NAME_OVERRIDE`); main installs it as the default of
   * every internal client. Unset: plaintext.
   */
  clientTls: grpcClientTlsConfigSchema.optional(),
});
export type GrpcConfig = z.output<typeof grpcConfigSchema>;

export const logConfigSchema = z.strictObject({
  level: z.enum(LOG_LEVELS as [LogLevel, ...LogLevel[]]).default('info'),
});
export type LogConfig = z.output<typeof logConfigSchema>;

export const telemetryConfigSchema = z.strictObject({
  enabled: z.boolean().default(false),
  exporter: z.enum(['otlp', 'console', 'none', 'memory']).default('otlp'),
  /** Base OTLP/HTTP URL, e.g. `http://otel-collector:4318`; the OTEL_* variables apply when unset. */
  otlpEndpoint: z.url().optional(),
  /** Service name on spans; the service's own name when unset. */
  serviceName: z.string().min(1).optional(),
});
export type TelemetryConfig = z.output<typeof telemetryConfigSchema>;

const secretError = 'expected a secret of at least 32 characters (e.g. `openssl rand -base64 48`)';

/** `pseudonym` section: where the root secret for user pseudonyms comes from. */
export const pseudonymConfigSchema = z
  .strictObject({
    /** The root secret itself (prefer `secretFile` in production). */
    secret: z.string({ error: secretError }).min(32, { error: secretError }).optional(),
    /** A file holding the root secret, e.g. a mounted Kubernetes Secret. */
    secretFile: z.string().min(1).optional(),
    /** Per-tenant secrets that replace the derived ones. */
    tenantSecrets: z.record(z.string(), z.string().min(32, { error: secretError })).optional(),
  })
  .refine((p) => (p.secret === undefined) !== (p.secretFile === undefined), {
    error: 'set exactly one of secret or secretFile',
  });
export type PseudonymConfig = z.output<typeof pseudonymConfigSchema>;

/**
 * The keys every service has. Compose a service's schema by spreading it, adding `pseudonym` when
 * the service handles user ids, and the service's own section:
 *
 * ```ts
 * const schema = z.strictObject({ ...baseConfigShape, pseudonym: pseudonymConfigSchema, fusion: fusionSchema });
 * ```
 */
export const baseConfigShape = {
  serviceName: z.string().min(1).regex(/^[a-z][a-z0-9-]*$/, { error: 'expected a lowercase name like "fusion"' }),
  grpc: grpcConfigSchema.prefault({}),
  log: logConfigSchema.prefault({}),
  telemetry: telemetryConfigSchema.prefault({}),
};

export const baseConfigSchema = z.strictObject(baseConfigShape);
export type BaseConfig = z.output<typeof baseConfigSchema>;
