import { v1 } from '@aimass/proto';
import { purposeCode, purposeName, type ConsentPurpose } from './privacy.js';
import { STRATEGIES, strategyCode, type Strategy } from './results.js';

/** What an API key may do. */
export type ApiKeyScope = 'predict' | 'feedback' | 'consent' | 'admin';
export const API_KEY_SCOPES: readonly ApiKeyScope[] = ['predict', 'feedback', 'consent', 'admin'];

export type TenantState = 'active' | 'suspended' | 'deleting' | 'deleted' | 'unspecified';

export interface Quota {
  /** Sustained requests per second; 0 means unlimited. */
  ratePerSecond: number;
  /** Requests allowed in a burst above the rate. */
  burst: number;
  /** Requests in flight at once; 0 means unlimited. */
  maxConcurrency: number;
}

export interface ConsentDefault {
  purpose: ConsentPurpose;
  state: 'granted' | 'denied';
}

export interface TenantSettings {
  /** Strategy of requests that choose none; undefined: the service default. */
  defaultStrategy: Strategy | undefined;
  /** Consent assumed until the user decides; purposes not listed default to denied. */
  consentDefaults: ConsentDefault[];
  quota: Quota;
  /** General model of the tenant's requests; empty: the platform default. */
  generalModelName: string;
  /** Personal weight under interpolate, in [0, 1]; 0: the service default. */
  interpolationWeight: number;
  /** Minimum personal confidence for override, in [0, 1]; 0: the service default. */
  overrideThreshold: number;
}

export interface Tenant {
  tenantId: string;
  displayName: string;
  state: TenantState;
  settings: TenantSettings;
  /** Incremented on every change; pass it as `expectedRevision` to update safely. */
  revision: number;
  createdAt: Date | undefined;
  updatedAt: Date | undefined;
  /** The deletion's receipt, once DeleteTenant ran: which services confirmed, and when. */
  deletion: TenantDeletionReceipt | undefined;
}

export interface TenantDeletionReceipt {
  requestedAt: Date | undefined;
  /** The services expected to confirm. */
  services: string[];
  confirmations: Array<{ service: string; confirmedAt: Date | undefined; itemsDeleted: number }>;
  /** When the last expected service confirmed (the tenant turned `deleted`). */
  completedAt: Date | undefined;
  /** How many times the deletion was announced to the services. */
  rounds: number;
}

/** An API key without its secret. */
export interface ApiKey {
  /** Public: the `amk_<keyId>_…` part of the key, safe to log. */
  keyId: string;
  tenantId: string;
  name: string;
  scopes: ApiKeyScope[];
  createdAt: Date | undefined;
  expiresAt: Date | undefined;
  revokedAt: Date | undefined;
  /** When a call it authenticated last arrived (reported by the services about every 30 s); undefined if never. */
  lastUsedAt: Date | undefined;
}

export interface CreatedApiKey {
  key: ApiKey;
  /** The whole key, to send as `apiKey`. Shown only now: it cannot be read again. */
  secret: string;
}

export interface RotatedApiKey extends CreatedApiKey {
  /** The replaced key, still valid until revoked (or until `revokeOldAfterMs` passed). */
  oldKey: ApiKey;
}

export interface Page<T> {
  items: T[];
  /** Pass as `pageToken` for the next page; empty on the last page. */
  nextPageToken: string;
}

export interface PageOptions {
  pageSize?: number | undefined;
  pageToken?: string | undefined;
}

const SCOPE_CODE: Record<ApiKeyScope, v1.ApiKeyScope> = {
  predict: v1.ApiKeyScope.API_KEY_SCOPE_PREDICT,
  feedback: v1.ApiKeyScope.API_KEY_SCOPE_FEEDBACK,
  consent: v1.ApiKeyScope.API_KEY_SCOPE_CONSENT,
  admin: v1.ApiKeyScope.API_KEY_SCOPE_ADMIN,
};

export function scopeCode(scope: ApiKeyScope): v1.ApiKeyScope {
  const code = SCOPE_CODE[scope];
  if (code === undefined) throw new TypeError(`unknown scope "${String(scope)}" (known: ${API_KEY_SCOPES.join(', ')})`);
  return code;
}

const STATE_NAME: Partial<Record<v1.TenantState, TenantState>> = {
  [v1.TenantState.TENANT_STATE_ACTIVE]: 'active',
  [v1.TenantState.TENANT_STATE_SUSPENDED]: 'suspended',
  [v1.TenantState.TENANT_STATE_DELETING]: 'deleting',
  [v1.TenantState.TENANT_STATE_DELETED]: 'deleted',
};

function strategyOf(code: v1.FusionStrategy): Strategy | undefined {
  return STRATEGIES.find((s) => strategyCode(s) === code);
}

export function toTenantSettings(s: v1.TenantSettings | undefined): TenantSettings {
  const full = v1.TenantSettings.fromPartial(s ?? {});
  return {
    defaultStrategy: strategyOf(full.defaultStrategy),
    consentDefaults: full.consentDefaults.map((d) => ({
      purpose: purposeName(d.purpose) as ConsentPurpose,
      state: d.state === v1.ConsentState.CONSENT_STATE_GRANTED ? 'granted' : 'denied',
    })),
    quota: { ...v1.Quota.fromPartial(full.quota ?? {}) },
    generalModelName: full.generalModelName,
    interpolationWeight: full.interpolationWeight,
    overrideThreshold: full.overrideThreshold,
  };
}

export function fromTenantSettings(s: Partial<TenantSettings> | undefined): v1.TenantSettings | undefined {
  if (!s) return undefined;
  return v1.TenantSettings.fromPartial({
    defaultStrategy: strategyCode(s.defaultStrategy),
    consentDefaults: (s.consentDefaults ?? []).map((d) => ({
      purpose: purposeCode(d.purpose),
      state: d.state === 'granted' ? v1.ConsentState.CONSENT_STATE_GRANTED : v1.ConsentState.CONSENT_STATE_DENIED,
    })),
    quota: s.quota,
    generalModelName: s.generalModelName,
    interpolationWeight: s.interpolationWeight,
    overrideThreshold: s.overrideThreshold,
  });
}

export function toTenant(t: v1.Tenant | undefined): Tenant {
  if (!t) throw new TypeError('the server answered without a tenant');
  return {
    tenantId: t.tenantId,
    displayName: t.displayName,
    state: STATE_NAME[t.state] ?? 'unspecified',
    settings: toTenantSettings(t.settings),
    revision: Number(t.revision),
    createdAt: t.createdAt,
    updatedAt: t.updatedAt,
    deletion: t.deletion
      ? {
          requestedAt: t.deletion.requestedAt,
          services: [...t.deletion.services],
          confirmations: t.deletion.confirmations.map((c) => ({ service: c.service, confirmedAt: c.confirmedAt, itemsDeleted: Number(c.itemsDeleted) })),
          completedAt: t.deletion.completedAt,
          rounds: Number(t.deletion.rounds),
        }
      : undefined,
  };
}

export function toApiKey(k: v1.ApiKey | undefined): ApiKey {
  if (!k) throw new TypeError('the server answered without an API key');
  return {
    keyId: k.keyId,
    tenantId: k.tenantId,
    name: k.name,
    scopes: k.scopes.map((code) => API_KEY_SCOPES.find((s) => SCOPE_CODE[s] === code)).filter((s): s is ApiKeyScope => s !== undefined),
    createdAt: k.createdAt,
    expiresAt: k.expiresAt,
    revokedAt: k.revokedAt,
    lastUsedAt: k.lastUsedAt,
  };
}
