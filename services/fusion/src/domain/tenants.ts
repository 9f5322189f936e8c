import { InvalidArgumentError } from '@aimass/platform';
import { v1 } from '@aimass/proto';

/** Tenant lifecycle, as stored (names, so a renumbered enum cannot change a stored state). */
export type TenantState = 'active' | 'suspended' | 'deleting' | 'deleted';

export const TENANT_STATE_TO_PROTO: Record<TenantState, v1.TenantState> = {
  active: v1.TenantState.TENANT_STATE_ACTIVE,
  suspended: v1.TenantState.TENANT_STATE_SUSPENDED,
  deleting: v1.TenantState.TENANT_STATE_DELETING,
  deleted: v1.TenantState.TENANT_STATE_DELETED,
};

/** One service's confirmation that it deleted the tenant's data. */
export interface DeletionConfirmation {
  readonly service: string;
  readonly confirmedAt: Date;
  readonly itemsDeleted: number;
}

/** A tenant's deletion receipt (see the README, "Tenants and API keys"). */
export interface TenantDeletion {
  readonly requestedAt: Date;
  /** The services expected to confirm. */
  readonly services: readonly string[];
  readonly confirmations: readonly DeletionConfirmation[];
  readonly completedAt: Date | undefined;
  /** TenantDeleted rounds published (the current one is `rounds - 1`). */
  readonly rounds: number;
  /** When the current round was started. */
  readonly roundAt: Date;
}

/** A new receipt: nothing confirmed, round 0 about to be published. */
export function newDeletion(services: readonly string[], now: Date): TenantDeletion {
  return { requestedAt: now, services: [...new Set(services)], confirmations: [], completedAt: undefined, rounds: 1, roundAt: now };
}

/**
 * The receipt with one more confirmation (the first one of a service is kept), completed once every
 * expected service confirmed; undefined when nothing changes.
 */
export function withDeletionConfirmation(d: TenantDeletion, c: DeletionConfirmation): TenantDeletion | undefined {
  if (d.confirmations.some((x) => x.service === c.service)) return undefined;
  const confirmations = [...d.confirmations, c];
  const done = d.services.every((s) => confirmations.some((x) => x.service === s));
  return { ...d, confirmations, completedAt: d.completedAt ?? (done ? c.confirmedAt : undefined) };
}

/** The services that have not confirmed yet. */
export function missingConfirmations(d: TenantDeletion): string[] {
  return d.services.filter((s) => !d.confirmations.some((x) => x.service === s));
}

export const MAX_DISPLAY_NAME_CHARS = 200;
export const MAX_KEY_NAME_CHARS = 200;
export const MAX_MODEL_NAME_CHARS = 256;

/**
 * What UpdateTenant's mask may name (proto field paths). Parents replace all their children;
 * `settings.quota.rate_per_second` replaces one value.
 */
export const UPDATABLE_PATHS = [
  'display_name',
  'settings',
  'settings.default_strategy',
  'settings.consent_defaults',
  'settings.quota',
  'settings.quota.rate_per_second',
  'settings.quota.burst',
  'settings.quota.max_concurrency',
  'settings.general_model_name',
  'settings.interpolation_weight',
  'settings.override_threshold',
] as const;

const camelToSnake = (path: string) => path.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** Full settings with every default filled (a request may leave any of it unset). */
export function fullSettings(settings: Partial<v1.TenantSettings> | undefined): v1.TenantSettings {
  const s = v1.TenantSettings.fromPartial(settings ?? {});
  return { ...s, quota: v1.Quota.fromPartial(s.quota ?? {}) };
}

function unit(value: number, field: string): void {
  if (!Number.isFinite(value) || value < 0 || value > 1) throw new InvalidArgumentError(`${field} must be in [0, 1] (0: the service default)`, { field });
}

/** Checks settings; a bad value is INVALID_ARGUMENT naming the field. */
export function validateSettings(settings: v1.TenantSettings, prefix = 'settings'): v1.TenantSettings {
  const strategies = Object.values(v1.FusionStrategy).filter((v): v is number => typeof v === 'number' && v >= 0);
  if (!strategies.includes(settings.defaultStrategy)) {
    throw new InvalidArgumentError(`${prefix}.default_strategy ${settings.defaultStrategy} is not a known strategy`, { field: `${prefix}.default_strategy` });
  }
  const seen = new Set<v1.Purpose>();
  settings.consentDefaults.forEach((d, i) => {
    const field = `${prefix}.consent_defaults[${i}]`;
    if (d.purpose === v1.Purpose.PURPOSE_UNSPECIFIED || !Object.values(v1.Purpose).includes(d.purpose)) {
      throw new InvalidArgumentError(`${field}.purpose must be a known purpose`, { field: `${field}.purpose` });
    }
    if (d.state !== v1.ConsentState.CONSENT_STATE_GRANTED && d.state !== v1.ConsentState.CONSENT_STATE_DENIED) {
      throw new InvalidArgumentError(`${field}.state must be GRANTED or DENIED`, { field: `${field}.state` });
    }
    if (seen.has(d.purpose)) throw new InvalidArgumentError(`${field}: purpose listed twice`, { field: `${field}.purpose` });
    seen.add(d.purpose);
  });
  const quota = settings.quota ?? v1.Quota.fromPartial({});
  if (!Number.isFinite(quota.ratePerSecond) || quota.ratePerSecond < 0) {
    throw new InvalidArgumentError(`${prefix}.quota.rate_per_second must be a finite number >= 0 (0: unlimited)`, { field: `${prefix}.quota.rate_per_second` });
  }
  if ([...settings.generalModelName].length > MAX_MODEL_NAME_CHARS) {
    throw new InvalidArgumentError(`${prefix}.general_model_name is longer than ${MAX_MODEL_NAME_CHARS} characters`, { field: `${prefix}.general_model_name` });
  }
  unit(settings.interpolationWeight, `${prefix}.interpolation_weight`);
  unit(settings.overrideThreshold, `${prefix}.override_threshold`);
  return settings;
}

/** C0 controls and DEL: they would garble listings and logs. */
export function hasControlCharacters(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

export function validateDisplayName(name: string, field = 'display_name'): string {
  const trimmed = name.trim();
  if ([...trimmed].length > MAX_DISPLAY_NAME_CHARS) throw new InvalidArgumentError(`${field} is longer than ${MAX_DISPLAY_NAME_CHARS} characters`, { field });
  if (hasControlCharacters(trimmed)) throw new InvalidArgumentError(`${field} must not contain control characters`, { field });
  return trimmed;
}

export interface TenantFields {
  readonly displayName: string;
  readonly settings: v1.TenantSettings;
}

/**
 * Applies UpdateTenant: each path of the mask takes its value from the request (unset values
 * mean the default). An empty mask changes what the request sets: a non-empty display name,
 * and the settings when present.
 */
export function applyTenantUpdate(current: TenantFields, req: v1.UpdateTenantRequest): TenantFields {
  const given = fullSettings(req.settings);
  let paths = (req.updateMask ?? []).map((p) => camelToSnake(p.trim()));
  if (paths.length === 0) {
    paths = [];
    if (req.displayName !== '') paths.push('display_name');
    if (req.settings) paths.push('settings');
    if (paths.length === 0) throw new InvalidArgumentError('nothing to update: name fields in update_mask (e.g. display_name, settings.quota)', { field: 'update_mask' });
  }
  let displayName = current.displayName;
  const settings = fullSettings(current.settings);
  const quota = { ...settings.quota! };
  for (const path of paths) {
    switch (path) {
      case 'display_name':
        displayName = validateDisplayName(req.displayName);
        break;
      case 'settings':
        Object.assign(settings, given);
        Object.assign(quota, given.quota);
        break;
      case 'settings.default_strategy':
        settings.defaultStrategy = given.defaultStrategy;
        break;
      case 'settings.consent_defaults':
        settings.consentDefaults = given.consentDefaults;
        break;
      case 'settings.quota':
        Object.assign(quota, given.quota);
        break;
      case 'settings.quota.rate_per_second':
        quota.ratePerSecond = given.quota!.ratePerSecond;
        break;
      case 'settings.quota.burst':
        quota.burst = given.quota!.burst;
        break;
      case 'settings.quota.max_concurrency':
        quota.maxConcurrency = given.quota!.maxConcurrency;
        break;
      case 'settings.general_model_name':
        settings.generalModelName = given.generalModelName;
        break;
      case 'settings.interpolation_weight':
        settings.interpolationWeight = given.interpolationWeight;
        break;
      case 'settings.override_threshold':
        settings.overrideThreshold = given.overrideThreshold;
        break;
      default:
        throw new InvalidArgumentError(`update_mask path "${path.slice(0, 80)}" cannot be updated: use one of ${UPDATABLE_PATHS.join(', ')}`, { field: 'update_mask' });
    }
  }
  settings.quota = quota;
  return { displayName, settings: validateSettings(settings) };
}

/** Page size of the List calls: 0 means the default. */
export function pageSize(page: v1.PageRequest | undefined, defaultSize = 100, max = 1000): number {
  const size = page?.pageSize ?? 0;
  if (size < 0) throw new InvalidArgumentError('page.page_size must be >= 0', { field: 'page.page_size' });
  return size === 0 ? defaultSize : Math.min(size, max);
}

/**
 * What a tenant's stored settings change in its fusion policy: only what they set (0 and
 * UNSPECIFIED mean "the service default", as admin.proto says), laid over the configuration.
 */
export function policyOverridesFromSettings(settings: v1.TenantSettings): {
  strategy?: v1.FusionStrategy;
  interpolation?: { maxWeight: number };
  override?: { threshold: number };
} {
  return {
    ...(settings.defaultStrategy !== v1.FusionStrategy.FUSION_STRATEGY_UNSPECIFIED ? { strategy: settings.defaultStrategy } : {}),
    ...(settings.interpolationWeight > 0 ? { interpolation: { maxWeight: settings.interpolationWeight } } : {}),
    ...(settings.overrideThreshold > 0 ? { override: { threshold: settings.overrideThreshold } } : {}),
  };
}

/** A tenant's stored quota, or undefined when it sets none (every figure 0: the configured quota applies). */
export function quotaFromSettings(settings: v1.TenantSettings): { ratePerSecond: number; burst: number; maxConcurrency: number } | undefined {
  const q = settings.quota;
  if (!q || (q.ratePerSecond === 0 && q.maxConcurrency === 0)) return undefined;
  return { ratePerSecond: q.ratePerSecond, burst: q.burst, maxConcurrency: q.maxConcurrency };
}
