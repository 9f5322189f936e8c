// Public API of @aimass/personal-model: what the runner, fusion's tests, the benchmark and tools use.
export {
  PERSONAL_MODEL_GRPC_SERVICES,
  startPersonalModel,
  type ForgettableDataKeySource,
  type PersonalModelDependencies,
  type RunningPersonalModel,
} from './service.js';
export {
  learnerConfigSchema,
  personalModelConfigSchema,
  serviceConfigSchema,
  personalModelStoreConfigSchema,
  privacyConfigSchema,
  type PersonalModelConfig,
  type PersonalModelConfigInput,
  type ServiceConfig,
} from './config.js';
export {
  PERSONAL_MODEL_SERVICE_NAME,
  createPersonalModelEmbedded,
  personalModelEmbedded,
  type PersonalModelEmbeddedEnvironment,
  type PersonalModelEmbeddedOptions,
  type PersonalModelEmbeddedRunning,
} from './embedded.js';
export { createPersonalModelService, type PersonalModelServiceOptions } from './grpc/personal-model-service.js';
export {
  COLLECTIONS,
  PersonalModelStore,
  UnreadableModelError,
  WriteConflict,
  type CurrentState,
  type NewVersion,
  type ParametersEncryption,
  type PersonalModelStoreOptions,
  type StoredVersion,
} from './adapters/model-store.js';
export {
  PersonalModels,
  cacheKey,
  type ExampleInput,
  type LoadedModel,
  type ModelChange,
  type ModelChangeAnnouncer,
  type PersonalModelAccess,
  type PersonalModelsOptions,
  type PersonalModelsStats,
  type WriteOptions,
  type WriteResult,
} from './runtime/personal-models.js';
export { ConsentCheckingModels, type ConsentEnforcementStats } from './runtime/consent-checking-models.js';
export { personalizationWithheld, trainingRefusal, type WithheldReason } from './domain/consent.js';
export { ModelEvents, modelEventId, modelUpdatedEvent } from './runtime/model-events.js';
export { advanceWatermark, alreadyApplied, unseenExamples } from './domain/watermark.js';
export { ByteLruCache, type CacheStats } from './domain/cache.js';
export { parametersAssociatedData, retention, type CurrentPointer, type GeneralModelRef, type UpdateKindName, type VersionInfo } from './domain/versions.js';
