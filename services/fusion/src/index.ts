// Public API of @aimass/fusion: what the runner, the SDK's tests, the CLI and the benchmark use.
export {
  FUSION_ERASURE_SERVICE,
  FUSION_GRPC_SERVICES,
  NO_MODEL_TTL_WITH_BUS_MS,
  NO_MODEL_TTL_WITHOUT_BUS_MS,
  startFusion,
  type CoalescingStats,
  type FusionDataKeys,
  type FusionDependencies,
  type FusionStartConfig,
  type NoModelStats,
  type PruneResult,
  type RunningFusion,
} from './service.js';
export {
  fusionConfigSchema,
  serviceConfigSchema,
  fusionStoreConfigSchema,
  type FusionConfig,
  type FusionConfigInput,
  type FusionPolicyConfig,
  type ServiceConfig,
  type TenantPolicyConfig,
} from './config.js';
export {
  EMBEDDED_SECRET_FILE,
  createFusionEmbedded,
  fusionEmbedded,
  type FusionEmbeddedEnvironment,
  type FusionEmbeddedOptions,
  type FusionEmbeddedRunning,
} from './embedded.js';
export { DirectTrainingRecorder, isNotRecorded, notRecorded, type FeedbackRecorder, type FeedbackToRecord } from './adapters/feedback-recorder.js';
export { ConsentCheckingPersonalModel, ConsentCheckingRecorder } from './adapters/consent.js';
export type { ItemScore, PersonalScoreItem, PersonalScorer } from './adapters/personal-model-client.js';
export { personalizationDecision, trainingRefusal, type PersonalizationDecision } from './domain/consent.js';
export { EventFeedbackRecorder, FUSION_PRODUCER, type EventFeedbackRecorderOptions } from './adapters/event-feedback-recorder.js';
export {
  STRATEGIES,
  STRATEGY_NAMES,
  parseStrategyName,
  resolvePolicy,
  strategyName,
  type FusionPolicy,
  type TenantPolicyOverrides,
} from './domain/strategy.js';
export { fuse, overrideApplies, shrinkageWeight, type FusionOutcome, type GeneralComponent, type PersonalOutcome } from './domain/fusion.js';
export { argmax, generalLogits, referenceLogits, softmax } from './domain/logits.js';
export { minimumDeadlineMs, type BudgetConfig } from './domain/budget.js';
export type { CoalescerStats } from './domain/coalescer.js';
export type { PredictionRecordStats } from './adapters/prediction-records.js';
export type { NoModelCacheStats } from './domain/no-model-cache.js';
export type { ModelUpdateStats } from './runtime/model-updates.js';
