// Public API of @aimass/privacy: what the runner, the services that enforce consent, the CLI and tests use.
export { PRIVACY_GRPC_SERVICES, consentDefaults, startPrivacy, type PrivacyDependencies, type PrivacyStartConfig, type RunningPrivacy } from './service.js';
export {
  KEK_REQUIRED_MESSAGE,
  privacyConfigSchema,
  privacyDataKeysConfigSchema,
  privacyEventsConfigSchema,
  privacyStoreConfigSchema,
  serviceConfigSchema,
  type PrivacyConfig,
  type PrivacyConfigInput,
  type ServiceConfig,
} from './config.js';
export {
  EMBEDDED_KEY_DIRECTORY,
  EMBEDDED_PSEUDONYM_SECRET_FILE,
  PRIVACY_SERVICE_NAME,
  createPrivacyEmbedded,
  privacyEmbedded,
  type PrivacyEmbeddedEnvironment,
  type PrivacyEmbeddedOptions,
  type PrivacyEmbeddedRunning,
} from './embedded.js';
export { COLLECTIONS, GLOBAL_TENANT } from './adapters/consent-store.js';
export { PRIVACY_PRODUCER, consentChangedEvent } from './adapters/consent-events.js';
export {
  CONSENT_RECORD_DOMAIN,
  GENESIS_HASH,
  canonicalRecord,
  recordHash,
  verifyChain,
  type ChainOwner,
  type ChainVerification,
  type ConsentRecord,
  type PreviousState,
} from './domain/chain.js';
export {
  DENY_BY_DEFAULT,
  purposeDefaultsFromSettings,
  withStoredDefaults,
  type ConsentDefaults,
  type DefaultState,
  type PurposeDefaults,
  type StoredConsentDefault,
} from './domain/decisions.js';
export {
  RemoteTenantSettings,
  TenantConsentDefaults,
  type RemoteTenantSettingsOptions,
  type TenantConsentDefaultsOptions,
  type TenantSettingsSource,
} from './adapters/tenant-consent-defaults.js';
export { consentEventId } from './domain/ids.js';
export { ERASURE_COLLECTIONS } from './adapters/erasure-store.js';
export { erasureRequestedEvent } from './adapters/erasure-events.js';
export { DEFAULT_ERASURE_SERVICES, PRIVACY_SERVICE, type ErasureState } from './domain/erasure.js';
export { DATA_KEY_SERVICE_NAME } from './grpc/data-key-service.js';
export {
  type ExportDocument,
  type ExportedConsentRecord,
  type ExportedDecision,
  type ExportedErasure,
  type ExportedErasureService,
  type ExportedFeedbackEntry,
  type ExportedModelRef,
  type ExportedModelVersion,
} from './domain/export.js';
