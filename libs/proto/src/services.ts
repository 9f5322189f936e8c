/**
 * Fully-qualified gRPC service names, as used by health checks (grpc.health.v1), reflection
 * and metadata-based routing.
 */
export const SERVICE_NAMES = {
  /** Open Inference Protocol, served by general-model. */
  inference: 'inference.GRPCInferenceService',
  /** Public prediction API, served by fusion. */
  predict: 'aimass.v1.InferenceService',
  /** General model task API, served by general-model. */
  generalModel: 'aimass.v1.GeneralModelService',
  /** Personal models, served by personal-model. */
  personalModel: 'aimass.v1.PersonalModelService',
  /** Consent, erasure, export, served by privacy. */
  privacy: 'aimass.v1.PrivacyService',
  /** Users' data keys for the platform's own services (internal), served by privacy. */
  dataKeys: 'aimass.v1.DataKeyService',
  /** Tenants and API keys, served by fusion. */
  tenantAdmin: 'aimass.v1.TenantAdminService',
  /** API key lookups for the platform's own services (internal), served by fusion. */
  credentials: 'aimass.v1.CredentialService',
  /** Training control, served by updater. */
  updaterAdmin: 'aimass.v1.UpdaterAdminService',
} as const;

/** A key of SERVICE_NAMES. */
export type ServiceKey = keyof typeof SERVICE_NAMES;
