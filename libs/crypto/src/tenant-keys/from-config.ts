import type { KeyObject } from 'node:crypto';
import { TenantKeyError } from '../errors.js';
import { DEFAULT_VERSION_PREFIX, StaticTenantKeyProvider, decodeKek, isVersionNumber, keySet, type TenantKeySet } from './provider.js';

/**
 * One tenant's KEK in configuration: its base64 text (version 1), or several versions
 * (`{ versions: { "1": "...", "2": "..." } }`, the highest current unless `current` says otherwise).
 */
export type TenantKeySpec =
  | string
  | {
      readonly versions: Readonly<Record<string, string>>;
      readonly current?: number | string | undefined;
    };

export interface TenantKeysFromConfigOptions {
  /** Tenant id → its KEK. */
  readonly tenants?: Readonly<Record<string, TenantKeySpec>> | undefined;
  /**
   * The KEK of every tenant without its own: for development and the one-process mode. Data keys
   * it wraps record a `default-<n>` version, so they stay readable after the tenant gets its own.
   */
  readonly default?: TenantKeySpec | undefined;
  /** Names the settings in messages, e.g. `dataKeys.kekSecret`. */
  readonly settingName?: string | undefined;
}

function specToSet(spec: TenantKeySpec, prefix: string, where: string, tenant?: string): TenantKeySet {
  if (typeof spec === 'string') return keySet(new Map([[`${prefix}1`, decodeKek(spec, where, tenant)]]), undefined, where, tenant);
  const keys = new Map<string, KeyObject>();
  for (const [version, text] of Object.entries(spec.versions)) {
    if (!isVersionNumber(version)) {
      throw new TenantKeyError('invalid_key', `${where}.versions: version "${version}" is not a whole number from 1`, { tenant });
    }
    keys.set(`${prefix}${version}`, decodeKek(text, `${where}.versions.${version}`, tenant));
  }
  const current = spec.current === undefined ? undefined : `${prefix}${String(spec.current)}`;
  return keySet(keys, current, where, tenant);
}

/**
 * KEKs from configuration, validated now (a wrong key fails the start, not the first request).
 * Throws `TenantKeyError` (`invalid_key`) naming the setting, never the value.
 */
export function tenantKeysFromConfig(options: TenantKeysFromConfigOptions): StaticTenantKeyProvider {
  const name = options.settingName ?? 'tenant keys';
  const tenants = new Map<string, TenantKeySet>();
  for (const [tenant, spec] of Object.entries(options.tenants ?? {})) {
    tenants.set(tenant, specToSet(spec, '', `${name}.tenants.${tenant}`, tenant));
  }
  const fallback = options.default === undefined ? undefined : specToSet(options.default, DEFAULT_VERSION_PREFIX, `${name}.default`);
  return new StaticTenantKeyProvider(tenants, fallback, (tenant) => `add the tenant's key to ${name}.tenants.${tenant}${fallback ? '' : `, or set ${name}.default`}`);
}
