// Public API of @aimass/sdk, the client external backends use. It depends on @aimass/proto and
// @grpc/grpc-js only: nothing of the platform's server side comes along.
export { SDK_VERSION, TENANT_METADATA_KEY, type CallOptions, type ConnectionOptions } from './caller.js';
export {
  AiMassClient,
  PredictStream,
  type AiMassClientOptions,
  type BatchItem,
  type FeedbackRequest,
  type FeedbackResult,
  type ItemResult,
  type PredictOptions,
  type PredictSettings,
  type PredictStreamOptions,
  type StreamItem,
} from './client.js';
export {
  AiMassError,
  CancelledError,
  DeadlineExceededError,
  ERROR_REF_KEY,
  FailedPreconditionError,
  INVALID_FIELD_KEY,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
  RETRY_AFTER_MS_KEY,
  ResourceExhaustedError,
  UnauthenticatedError,
  UnavailableError,
  toAiMassError,
  type AiMassErrorOptions,
  type StatusName,
} from './errors.js';
export { toInputPayload, type Input, type MailInput } from './input.js';
export {
  STRATEGIES,
  strategyCode,
  strategyName,
  toPredictionResult,
  type ClassProbability,
  type ComponentResult,
  type Fallback,
  type FallbackReason,
  type ModelRef,
  type ModelRole,
  type ModelUsage,
  type PredictionResult,
  type Provenance,
  type Stage,
  type Strategy,
} from './results.js';
export { DEFAULT_RETRY, backoffMs, type RetryInfo, type RetryOptions } from './retry.js';
// grpc-js's credential factories, so a backend builds TLS credentials (credentials.createSsl(ca))
// from the same grpc-js copy the client uses, without depending on grpc-js itself.
export { credentials, type ChannelCredentials } from '@grpc/grpc-js';
export {
  TrainingAdminClient,
  type GeneralModelRef,
  type RefitJob,
  type RefitJobState,
  type TrainingState,
  type UserTrainingState,
} from './training.js';
export {
  PrivacyClient,
  type ConsentHistoryOptions,
  type EraseOptions,
  type GrantOptions,
  type PrivacyClientOptions,
} from './privacy-client.js';
export {
  CONSENT_PURPOSES,
  CONSENT_STATES,
  ErasureTimeoutError,
  pendingServices,
  type ConsentDecision,
  type ConsentHistory,
  type ConsentPurpose,
  type ConsentRecord,
  type ConsentState,
  type EraseResult,
  type ErasureConfirmation,
  type ErasureReceipt,
  type ErasureStatus,
  type ExportResult,
  type SetConsentInput,
  type SetConsentResult,
  type WaitForErasureOptions,
} from './privacy.js';
export { TenantAdminClient, type TenantAdminClientOptions, type UpdateTenantInput } from './admin-client.js';
export {
  API_KEY_SCOPES,
  type ApiKey,
  type ApiKeyScope,
  type ConsentDefault,
  type CreatedApiKey,
  type Page,
  type PageOptions,
  type Quota,
  type RotatedApiKey,
  type Tenant,
  type TenantDeletionReceipt,
  type TenantSettings,
  type TenantState,
} from './admin.js';
