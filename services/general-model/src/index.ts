// Public API of @aimass/general-model: what the runner, the benchmark and tests use.
export {
  GENERAL_MODEL_GRPC_SERVICES,
  SERVER_NAME,
  SERVER_VERSION,
  startGeneralModel,
  type GeneralModelStats,
  type RunningGeneralModel,
} from './service.js';
export {
  generalModelConfigSchema,
  serviceConfigSchema,
  type GeneralModelConfig,
  type GeneralModelConfigInput,
  type ServiceConfig,
} from './config.js';
export {
  createGeneralModelEmbedded,
  generalModelEmbedded,
  type GeneralModelEmbeddedEnvironment,
  type GeneralModelEmbeddedOptions,
  type GeneralModelEmbeddedRunning,
} from './embedded.js';
export { EXECUTION_PROVIDER_HEADER, PLATFORM } from './grpc/inference-service.js';
export { DynamicBatcher, type BatchExecutor, type BatchItem, type BatcherOptions, type BatcherStats } from './domain/batcher.js';
export {
  ModelConfigError,
  parseModelConfigJson,
  parseModelConfigPbtxt,
  parseVersionPolicy,
  selectVersions,
  type ModelConfig,
  type VersionPolicy,
} from './domain/model-config.js';
export { parsePbtxt, PbtxtError, type PbMessage, type PbValue } from './domain/pbtxt.js';
export type { PoolStats } from './adapters/worker-pool.js';
