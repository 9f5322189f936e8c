import { EXEMPT_SERVICE_PREFIXES } from '@aimass/platform';
import { SERVICE_NAMES, v1 } from '@aimass/proto';

/** What an API key may do (admin.proto ApiKeyScope). */
export const SCOPES = ['predict', 'feedback', 'consent', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

const TO_PROTO: Record<Scope, v1.ApiKeyScope> = {
  predict: v1.ApiKeyScope.API_KEY_SCOPE_PREDICT,
  feedback: v1.ApiKeyScope.API_KEY_SCOPE_FEEDBACK,
  consent: v1.ApiKeyScope.API_KEY_SCOPE_CONSENT,
  admin: v1.ApiKeyScope.API_KEY_SCOPE_ADMIN,
};

export function scopeToProto(scope: Scope): v1.ApiKeyScope {
  return TO_PROTO[scope];
}

export function scopeFromProto(value: v1.ApiKeyScope): Scope | undefined {
  return SCOPES.find((s) => TO_PROTO[s] === value);
}

/** `predict`, `PREDICT`, `API_KEY_SCOPE_PREDICT` → `predict`. */
export function parseScope(value: string): Scope | undefined {
  const lower = value.trim().toLowerCase().replace(/^api_key_scope_/, '');
  return (SCOPES as readonly string[]).includes(lower) ? (lower as Scope) : undefined;
}

/**
 * Who may call a method:
 * - `scope`: an API key holding that scope (its tenant becomes the call's tenant);
 * - `service`: a platform service token (platform-internal callers);
 * - `operator`: the operator token (cross-tenant administration);
 * - `open`: anyone (liveness probes of the KServe protocol, which reveal nothing).
 */
export interface MethodAccess {
  readonly scope?: Scope;
  readonly service?: boolean;
  readonly operator?: boolean;
  readonly open?: boolean;
}

const apiKey = (scope: Scope): MethodAccess => ({ scope });
const apiKeyOrService = (scope: Scope): MethodAccess => ({ scope, service: true });
const internal: MethodAccess = { service: true };
const admin: MethodAccess = { scope: 'admin', operator: true };

/**
 * The access table, by service then RPC name, from the proto comments. A method missing here is
 * refused (fail closed); a test checks every method of every served service is listed.
 */
export const ACCESS_TABLE: Readonly<Record<string, Readonly<Record<string, MethodAccess>>>> = {
  // Public: the enterprise backends' API.
  [SERVICE_NAMES.predict]: {
    Predict: apiKey('predict'),
    PredictBatch: apiKey('predict'),
    PredictStream: apiKey('predict'),
    Feedback: apiKey('feedback'),
  },
  // Public for consent management; GetConsent is also how fusion, personal-model and the updater
  // read a user's consent (service token).
  [SERVICE_NAMES.privacy]: {
    SetConsent: apiKey('consent'),
    GetConsent: apiKeyOrService('consent'),
    GetConsentHistory: apiKey('consent'),
    Erase: apiKey('consent'),
    GetErasureReceipt: apiKey('consent'),
    Export: apiKey('consent'),
  },
  // Cross-tenant parts are for the operator; a tenant admin key is confined to its own tenant by
  // fusion's handlers.
  [SERVICE_NAMES.tenantAdmin]: {
    CreateTenant: admin,
    GetTenant: admin,
    ListTenants: admin,
    UpdateTenant: admin,
    SuspendTenant: admin,
    ResumeTenant: admin,
    DeleteTenant: admin,
    CreateApiKey: admin,
    ListApiKeys: admin,
    RevokeApiKey: admin,
    RotateApiKey: admin,
  },
  [SERVICE_NAMES.updaterAdmin]: {
    RefitUser: apiKey('admin'),
    RefitAll: apiKey('admin'),
    GetTrainingState: apiKey('admin'),
    // Privacy's Export gathers a user's feedback history here.
    ExportFeedback: internal,
  },
  // Called by fusion and the updater; a tenant with a predict key may also call it directly.
  [SERVICE_NAMES.generalModel]: {
    Classify: apiKeyOrService('predict'),
    Embed: apiKeyOrService('predict'),
    ListModels: apiKeyOrService('predict'),
  },
  [SERVICE_NAMES.inference]: {
    ServerLive: { open: true },
    ServerReady: { open: true },
    ModelReady: apiKeyOrService('predict'),
    ServerMetadata: apiKeyOrService('predict'),
    ModelMetadata: apiKeyOrService('predict'),
    ModelInfer: apiKeyOrService('predict'),
    RepositoryIndex: apiKeyOrService('admin'),
    // Loading and unloading models changes what every tenant is served: platform only.
    RepositoryModelLoad: internal,
    RepositoryModelUnload: internal,
    // Counts every tenant's requests together: one tenant's key must not read the others' volume.
    ModelStatistics: internal,
  },
  // Internal only: a pod that is not ours cannot reach users' models, keys or credentials.
  [SERVICE_NAMES.personalModel]: {
    Score: internal,
    Train: internal,
    GetModel: internal,
    ListVersions: internal,
    Rollback: internal,
    DeleteUser: internal,
    Refit: internal,
  },
  [SERVICE_NAMES.dataKeys]: { GetDataKey: internal },
  [SERVICE_NAMES.credentials]: { LookupApiKey: internal, ListTenantSettings: internal, RecordApiKeyUse: internal },
};

/** Health and reflection need no credentials (probes and tools send none). */
export function isExemptMethod(path: string): boolean {
  return EXEMPT_SERVICE_PREFIXES.some((p) => path.startsWith(p));
}

/** The access rule of a full method path (`/aimass.v1.InferenceService/Predict`); undefined: not listed. */
export function accessFor(path: string): MethodAccess | undefined {
  const trimmed = path.startsWith('/') ? path.slice(1) : path;
  const slash = trimmed.lastIndexOf('/');
  if (slash < 0) return undefined;
  return ACCESS_TABLE[trimmed.slice(0, slash)]?.[trimmed.slice(slash + 1)];
}
