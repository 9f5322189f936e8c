// Public API of @aimass/consent: what the services that enforce consent (fusion, personal-model,
// the updater) and the privacy service use.
export {
  CONSENT_PURPOSES,
  CONSENT_STATES,
  consentStateFromProto,
  consentStateToProto,
  purposeFromProto,
  purposeToProto,
  type ConsentPurpose,
  type ConsentStateName,
} from './purposes.js';
export {
  ConsentCache,
  DEFAULT_CONSENT_FAILURE_TTL_MS,
  DEFAULT_CONSENT_MAX_ENTRIES,
  DEFAULT_CONSENT_TTL_MS,
  type ConsentCacheOptions,
  type ConsentCacheStats,
  type ConsentCheck,
  type ConsentDecisionView,
  type ConsentLookup,
} from './cache.js';
export { DEFAULT_LOOKUP_TIMEOUT_MS, PrivacyConsentLookup, type PrivacyConsentLookupOptions } from './privacy-lookup.js';
export { consentCacheConfigSchema, type ConsentCacheConfig } from './config.js';
