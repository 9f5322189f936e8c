// Public API of @aimass/auth: what the services (server interceptor, service tokens, the
// credential lookup), fusion's key store, the SDK and the CLI use.
export {
  API_KEY_PATTERN,
  API_KEY_PREFIX,
  KEY_ID_LENGTH,
  KEY_ID_PATTERN,
  SECRET_BYTES,
  generateApiKey,
  hashSecret,
  isKeyId,
  parseApiKey,
  secretMatches,
  type GeneratedApiKey,
  type ParsedApiKey,
} from './api-key.js';
export {
  CLOCK_SKEW_MS,
  MIN_INTERNAL_SECRET_BYTES,
  SERVICE_NAME_PATTERN,
  SERVICE_TOKEN_PREFIX,
  ServiceTokenIssuer,
  issueServiceToken,
  verifyServiceToken,
  type VerifiedServiceToken,
} from './service-token.js';
export {
  ACCESS_TABLE,
  SCOPES,
  accessFor,
  isExemptMethod,
  parseScope,
  scopeFromProto,
  scopeToProto,
  type MethodAccess,
  type Scope,
} from './scopes.js';
export {
  Authenticator,
  DEFAULT_CACHE_MAX_ENTRIES,
  DEFAULT_CACHE_TTL_MS,
  DEFAULT_SERVICE_TOKEN_MAX_AGE_MS,
  DEFAULT_USE_REPORT_INTERVAL_MS,
  MISSING_CREDENTIALS_MESSAGE,
  type AuthenticatorOptions,
  type AuthenticatorStats,
  type CredentialSource,
  type KeyUse,
  type Principal,
  type PrincipalKind,
  type StoredCredential,
  type TenantStateName,
} from './authenticator.js';
export { AUTHORIZATION_METADATA_KEY, authInterceptor, principalOf, type AuthInterceptorOptions } from './interceptor.js';
export {
  MAX_USES_PER_CALL,
  RemoteCredentialSource,
  bearerInterceptor,
  credentialFromLookup,
  serviceTokenInterceptor,
  tenantStateFromProto,
  type RemoteCredentialSourceOptions,
} from './client.js';
export { AUTH_MODES, authConfigSchema, internalSecretOf, operatorHashOf, type AuthConfig, type AuthConfigInput, type AuthMode } from './config.js';
export { AUTH_OFF_WARNING, setupServiceAuth, type ServiceAuth, type SetupServiceAuthOptions } from './setup.js';
