import { createSecretKey, type KeyObject } from 'node:crypto';
import { KEY_BYTES } from '../aes-gcm.js';
import { TenantKeyError } from '../errors.js';

/** A tenant's key-encryption key (KEK) at one version. */
export interface TenantKek {
  /**
   * Opaque version label, stored next to every data key it wraps: `'1'`, `'2'`, ... for the
   * tenant's own keys, `'default-1'`, ... for the shared default, so that a tenant that later gets
   * its own key still unwraps what the default wrapped.
   */
  readonly version: string;
  /** 32 bytes, as a KeyObject so the bytes never end up in a log line or a JSON dump. */
  readonly key: KeyObject;
}

/**
 * Where tenants' key-encryption keys come from. New data keys are wrapped with `currentKey`; a
 * stored data key is unwrapped with `keyVersion(tenant, itsVersion)`, so a tenant's KEK can rotate
 * while keys wrapped under the old version stay readable until they are rewrapped.
 *
 * Implementations here: `tenantKeysFromConfig` (keys in configuration, a default for tenants
 * without their own) and `loadTenantKeyDirectory` (a mounted secret directory). A cloud KMS fits the
 * same interface by keeping each tenant's KEK encrypted under a KMS key and decrypting it on first
 * use (see the README).
 */
export interface TenantKeyProvider {
  /** The version new wraps use. Rejects with `TenantKeyError` (`unknown_tenant`). */
  currentKey(tenant: string): Promise<TenantKek>;
  /** A given version. Rejects with `TenantKeyError` (`unknown_tenant`, `unknown_version`). */
  keyVersion(tenant: string, version: string): Promise<TenantKek>;
}

/** One tenant's (or the default's) keys. */
export interface TenantKeySet {
  readonly current: string;
  readonly keys: ReadonlyMap<string, KeyObject>;
}

/** What a provider holds, without key material: for a start-up log line. */
export interface TenantKeyInventory {
  readonly tenants: ReadonlyArray<{ readonly tenant: string; readonly versions: readonly string[]; readonly current: string }>;
  readonly default: { readonly versions: readonly string[]; readonly current: string } | undefined;
}

export const DEFAULT_VERSION_PREFIX = 'default-';
const VERSION = /^[1-9][0-9]{0,8}$/;
const BASE64_32 = /^[A-Za-z0-9+/]{43}=$/;

/** `1`..`999999999`: a KEK version as written in configuration or as a file name. */
export function isVersionNumber(text: string): boolean {
  return VERSION.test(text);
}

/**
 * A KEK from its base64 text (44 characters, `openssl rand -base64 32`), or from exactly 32 raw
 * bytes (a file). `where` names the setting or file in the error; the value never appears in it.
 */
export function decodeKek(value: string | Uint8Array, where: string, tenant?: string): KeyObject {
  let bytes: Buffer;
  if (typeof value !== 'string' && value.byteLength === KEY_BYTES) {
    bytes = Buffer.from(value);
  } else {
    const text = (typeof value === 'string' ? value : Buffer.from(value).toString('latin1')).trim();
    bytes = Buffer.from(text, 'base64');
    // Canonical form only: Buffer's decoder skips garbage silently, which would turn a typo into another key.
    if (!BASE64_32.test(text) || bytes.toString('base64') !== text) {
      bytes.fill(0);
      const size = typeof value === 'string' ? `${text.length} characters` : `${value.byteLength} bytes`;
      throw new TenantKeyError(
        'invalid_key',
        `${where}: expected a 32-byte key, base64-encoded (44 characters, e.g. \`openssl rand -base64 32\`)${typeof value === 'string' ? '' : ' or exactly 32 raw bytes'}; got ${size} that are not that`,
        { tenant },
      );
    }
  }
  const key = createSecretKey(bytes);
  bytes.fill(0);
  return key;
}

function sortedVersions(keys: ReadonlyMap<string, KeyObject>): string[] {
  return [...keys.keys()].sort((a, b) => versionNumber(a) - versionNumber(b));
}

function versionNumber(version: string): number {
  return Number(version.startsWith(DEFAULT_VERSION_PREFIX) ? version.slice(DEFAULT_VERSION_PREFIX.length) : version);
}

/**
 * Builds a key set: the highest version is current unless `current` holds one back (a new KEK is
 * first rolled out to every replica as unwrap-only, then made current).
 */
export function keySet(keys: ReadonlyMap<string, KeyObject>, current: string | undefined, where: string, tenant?: string): TenantKeySet {
  const versions = sortedVersions(keys);
  const chosen = current ?? versions.at(-1);
  if (chosen === undefined) throw new TenantKeyError('invalid_key', `${where}: no key versions`, { tenant });
  if (!keys.has(chosen)) {
    throw new TenantKeyError('unknown_version', `${where}: the current version ${chosen} is not among the keys (${versions.join(', ')})`, { tenant });
  }
  return { current: chosen, keys };
}

/**
 * A provider over keys held in memory, read once at start (configuration, a mounted directory).
 * `hint` says where an operator adds a missing tenant's key.
 */
export class StaticTenantKeyProvider implements TenantKeyProvider {
  readonly #tenants: ReadonlyMap<string, TenantKeySet>;
  readonly #fallback: TenantKeySet | undefined;
  readonly #hint: (tenant: string) => string;

  constructor(tenants: ReadonlyMap<string, TenantKeySet>, fallback: TenantKeySet | undefined, hint: (tenant: string) => string) {
    this.#tenants = tenants;
    this.#fallback = fallback;
    this.#hint = hint;
  }

  currentKey(tenant: string): Promise<TenantKek> {
    try {
      const own = this.#tenants.get(tenant);
      if (own) return Promise.resolve({ version: own.current, key: own.keys.get(own.current)! });
      const fallback = this.#requireFallback(tenant);
      return Promise.resolve({ version: fallback.current, key: fallback.keys.get(fallback.current)! });
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  keyVersion(tenant: string, version: string): Promise<TenantKek> {
    try {
      const isDefault = version.startsWith(DEFAULT_VERSION_PREFIX);
      const set = isDefault ? this.#fallback : this.#tenants.get(tenant);
      if (set === undefined) {
        const which = isDefault ? 'the default key-encryption key, which is not configured' : `a key-encryption key of tenant ${tenant}, which has none of its own`;
        throw new TenantKeyError(
          isDefault || this.#fallback !== undefined ? 'unknown_version' : 'unknown_tenant',
          `a data key of tenant ${tenant} is wrapped with version ${version} of ${which}: ${isDefault ? 'restore the default key with that version' : this.#hint(tenant)}`,
          { tenant },
        );
      }
      const key = set.keys.get(version);
      if (key === undefined) {
        throw new TenantKeyError(
          'unknown_version',
          `${isDefault ? 'the default key-encryption key' : `tenant ${tenant}`} has no version ${version} (known: ${sortedVersions(set.keys).join(', ')}); a data key of tenant ${tenant} is still wrapped with it: restore that version, or keep it until every key is rewrapped`,
          { tenant },
        );
      }
      return Promise.resolve({ version, key });
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  inventory(): TenantKeyInventory {
    return {
      tenants: [...this.#tenants].map(([tenant, set]) => ({ tenant, versions: sortedVersions(set.keys), current: set.current })),
      default: this.#fallback && { versions: sortedVersions(this.#fallback.keys), current: this.#fallback.current },
    };
  }

  #requireFallback(tenant: string): TenantKeySet {
    if (this.#fallback === undefined) {
      throw new TenantKeyError('unknown_tenant', `no key-encryption key for tenant ${tenant} and no default key: ${this.#hint(tenant)}`, { tenant });
    }
    return this.#fallback;
  }
}
