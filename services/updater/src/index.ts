// Public API of @aimass/updater: what the runner, the CLI, the benchmark and tests use.
export {
  UPDATER_ERASURE_SERVICE,
  UPDATER_GRPC_SERVICES,
  startUpdater,
  type RunningUpdater,
  type UpdaterDependencies,
  type UpdaterKeySource,
  type UpdaterStartConfig,
  type UpdaterStats,
} from './service.js';
export {
  serviceConfigSchema,
  updaterConfigSchema,
  updaterEventsConfigSchema,
  updaterStoreConfigSchema,
  type ServiceConfig,
  type UpdaterConfig,
  type UpdaterConfigInput,
} from './config.js';
export {
  EMBEDDED_PSEUDONYM_SECRET_FILE,
  UPDATER_SERVICE_NAME,
  createUpdaterEmbedded,
  updaterEmbedded,
  type UpdaterEmbeddedEnvironment,
  type UpdaterEmbeddedOptions,
  type UpdaterEmbeddedRunning,
} from './embedded.js';
export { COLLECTIONS, GLOBAL_TENANT } from './adapters/updater-store.js';
export { PoisonEventError } from './domain/feedback.js';
