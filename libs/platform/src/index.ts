// Public API of @aimass/platform. Everything a service may use is listed here by name.

// Configuration
export { loadConfig, type LoadConfigOptions } from './config/load-config.js';
export { ConfigError, type ConfigProblem } from './config/config-error.js';
export { EX_CONFIG, configOrExit, failFast, type FailFastIo } from './config/fail-fast.js';
export { envVarName } from './config/env.js';
export {
  baseConfigSchema,
  baseConfigShape,
  grpcConfigSchema,
  logConfigSchema,
  pseudonymConfigSchema,
  telemetryConfigSchema,
  type BaseConfig,
  type GrpcConfig,
  type LogConfig,
  type PseudonymConfig,
  type TelemetryConfig,
} from './config/base-schema.js';

// Logging
export { LOG_LEVELS, createLogger, type CreateLoggerOptions, type LogLevel, type LogPseudonymizer, type Logger } from './logging/logger.js';
export {
  CONTENT_KEYS,
  IDENTIFIER_KEYS,
  REDACTED,
  SECRET_KEYS,
  isSensitiveKey,
  redactSensitive,
  type RedactOptions,
} from './logging/redact.js';

// Pseudonyms
export { PSEUDONYM_LENGTH, PSEUDONYM_PATTERN, pseudonymize, type SecretInput } from './pseudonym/pseudonymize.js';
export { EMBEDDED_SECRET_FILE, embeddedSecretFile, type EmbeddedSecret } from './pseudonym/embedded-secret.js';
export { embeddedConfig, type EmbeddedOptions, type EmbeddedRunning } from './config/embedded.js';

// Ids
export { UUID_PATTERN, uuidv7, uuidv8FromDigest } from './ids/uuid.js';
export {
  MIN_ROOT_SECRET_BYTES,
  Pseudonymizer,
  type PseudonymSecretSource,
  type PseudonymizerOptions,
} from './pseudonym/pseudonymizer.js';

// Errors
export {
  AlreadyExistsError,
  CancelledError,
  ConflictError,
  DeadlineExceededError,
  DomainError,
  FailedPreconditionError,
  InternalError,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
  ResourceExhaustedError,
  UnauthenticatedError,
  UnavailableError,
  UnimplementedError,
  isDomainError,
  type DomainErrorKind,
  type RetryAfterOptions,
} from './errors/domain-errors.js';
export {
  ERROR_REF_KEY,
  INVALID_FIELD_KEY,
  RETRY_AFTER_MS_KEY,
  fromGrpcError,
  toGrpcStatus,
  type GrpcStatus,
  type ToGrpcStatusOptions,
} from './errors/grpc-mapping.js';

// gRPC
export {
  createGrpcServer,
  type BoundAddress,
  type CreateGrpcServerOptions,
  type GrpcServer,
  type GrpcServerConfig,
  type GrpcServiceRegistration,
} from './grpc/server.js';
export {
  DEFAULT_FLOW_CONTROL_WINDOWS,
  HTTP2_DEFAULT_WINDOW_BYTES,
  HTTP2_MAX_WINDOW_BYTES,
  widenFlowControlWindows,
  type FlowControlWindows,
} from './grpc/flow-control.js';
export { serverStreaming, unary, type ServerStreamingHandler, type UnaryHandler } from './grpc/handlers.js';
export type { CallContext } from './grpc/call-context.js';
export { DEADLINE_REQUIRED_MESSAGE, DRAINING_MESSAGE } from './grpc/call-policy.js';
export { EXEMPT_SERVICE_PREFIXES } from './grpc/rpc-names.js';
export {
  callUnary,
  createClient,
  defaultDeadlineInterceptor,
  tracingClientInterceptor,
  type ClientConstructor,
  type CreateClientOptions,
  type RetryOptions,
  type UnaryCallOptions,
  type UnaryMethod,
} from './grpc/client.js';
export { installSignalHandlers, type InstallSignalHandlersOptions, type SignalHandlers } from './grpc/signals.js';
export {
  defaultClientSecurity,
  resetDefaultClientSecurity,
  setDefaultClientSecurity,
  type ClientSecurity,
} from './grpc/client-defaults.js';
export {
  CLIENT_AUTH_MODES,
  checkPemFile,
  clientCredentialsFromConfig,
  clientSecurityFromConfig,
  grpcClientTlsConfigSchema,
  grpcServerTlsConfigSchema,
  pemFileSchema,
  serverCredentialsFromConfig,
  type ClientAuthMode,
  type GrpcClientTlsConfig,
  type GrpcServerTlsConfig,
  type PemKind,
} from './grpc/tls.js';

// Tenancy
export {
  TENANT_ID_PATTERN,
  TENANT_METADATA_KEY,
  assertTenantId,
  isValidTenantId,
  tenantFromMetadata,
  tenantIfValid,
  tenantMetadata,
} from './tenancy/tenant.js';

// Quotas
export { TokenBucket } from './quota/token-bucket.js';
export { ConcurrencyLimiter, type Release } from './quota/concurrency-limiter.js';
export {
  quotaLimitsSchema,
  quotasConfigSchema,
  quotasLimitAnything,
  type QuotaLimitsConfig,
  type QuotasConfig,
  type QuotasConfigInput,
} from './quota/config.js';
export {
  TenantQuotas,
  UNLIMITED,
  limitsFromConfig,
  type Admission,
  type QuotaLimitKind,
  type QuotaLimits,
  type QuotaLimitsSource,
  type TenantQuotasOptions,
  type TenantQuotasStats,
} from './quota/tenant-quotas.js';
export { quotaInterceptor, type QuotaInterceptorOptions } from './quota/quota-interceptor.js';

// Telemetry
export {
  TRACER_NAME,
  platformTracer,
  startServiceTelemetry,
  startTelemetry,
  type StartTelemetryOptions,
  type Telemetry,
  type TelemetryExporter,
} from './telemetry/telemetry.js';
export { extractTraceContext, injectTraceHeaders, type TraceHeaders } from './telemetry/propagation.js';
