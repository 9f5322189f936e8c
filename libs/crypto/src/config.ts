import { z } from 'zod';
import { TenantKeyError } from './errors.js';
import { loadTenantKeyDirectory } from './tenant-keys/directory.js';
import { tenantKeysFromConfig, type TenantKeySpec } from './tenant-keys/from-config.js';
import { decodeKek, isVersionNumber, type TenantKeyProvider } from './tenant-keys/provider.js';
import { DEFAULT_REMOTE_KEY_CACHE_MAX_ENTRIES, DEFAULT_REMOTE_KEY_CACHE_TTL_MS, DEFAULT_REMOTE_KEY_TIMEOUT_MS } from './data-keys/privacy-source.js';

const positiveInt = (what: string) => {
  const error = `expected ${what} (a whole number > 0)`;
  return z.number({ error }).int({ error }).positive({ error });
};

const keyError = 'expected a base64-encoded 32-byte key (44 characters, e.g. `openssl rand -base64 32`)';
const specError = `${keyError}, or { versions: { "1": <key>, "2": <key> }, current?: <version> }`;

// Shape first, key check after: a union whose options both fail would only report "invalid input".
const keySpec = z
  .union(
    [
      z.string(),
      z.strictObject({
        versions: z.record(z.string(), z.string({ error: keyError })),
        current: z.union([z.number(), z.string()]).optional(),
      }),
    ],
    { error: specError },
  )
  .superRefine((spec, ctx) => {
    const check = (text: string, path: PropertyKey[]) => {
      try {
        decodeKek(text, 'key');
      } catch (err) {
        if (!(err instanceof TenantKeyError)) throw err;
        // Our own words: a library message could quote the value, and the value is a secret.
        ctx.addIssue({ code: 'custom', message: keyError, path });
      }
    };
    if (typeof spec === 'string') return check(spec, []);
    const versions = Object.keys(spec.versions);
    if (versions.length === 0) ctx.addIssue({ code: 'custom', message: 'expected at least one key version', path: ['versions'] });
    for (const version of versions) {
      if (!isVersionNumber(version)) ctx.addIssue({ code: 'custom', message: `version "${version}" is not a whole number from 1`, path: ['versions', version] });
      else check(spec.versions[version]!, ['versions', version]);
    }
    if (spec.current !== undefined && !versions.includes(String(spec.current))) {
      ctx.addIssue({ code: 'custom', message: `current version ${String(spec.current)} is not among the versions (${versions.join(', ')})`, path: ['current'] });
    }
  });

/**
 * The `dataKeys` section of a service that seals or opens users' payloads, or hosts their keys:
 * where tenants' key-encryption keys come from and how long unwrapped data keys stay in memory.
 *
 * - `kekSource: none` (the default): no per-user keys; the service keeps `plaintextSealer`.
 * - `kekSource: config`: `kekSecret.tenants` (tenant → key) and/or `kekSecret.default`
 *   (`AIMASS_DATA_KEYS__KEK_SECRET__DEFAULT`, `AIMASS_DATA_KEYS__KEK_SECRET__TENANTS='{"acme":"..."}'`).
 *   The name ends in "secret" so configuration errors hide the values.
 * - `kekSource: directory`: `kekDirectory`, a mounted secret (`<tenant>/<version>.key`).
 */
export const dataKeysConfigSchema = z
  .strictObject({
    kekSource: z.enum(['none', 'config', 'directory'], { error: 'expected none, config or directory' }).default('none'),
    kekSecret: z
      .strictObject({
        /** Tenant id → its key-encryption key. */
        tenants: z.record(z.string().min(1, { error: 'expected a tenant id' }), keySpec).optional(),
        /** Key of every tenant without its own (development, the one-process mode). */
        default: keySpec.optional(),
      })
      .optional(),
    /** kekSource directory: `<dir>/<tenant>/<version>.key`, `<dir>/_default/<version>.key`. */
    kekDirectory: z.string().min(1, { error: 'expected a directory path' }).optional(),
    /** Unwrapped data keys held in memory (`DataKeyRing` `cacheMaxEntries`). */
    cacheMaxEntries: positiveInt('a number of keys').optional(),
    /** How long an unwrapped key is used from memory before the store is read again. */
    cacheTtlMs: positiveInt('a duration in milliseconds').optional(),
    /** Also open payloads written without encryption (algorithm NONE): only while migrating. */
    allowPlaintext: z.boolean({ error: 'expected true or false' }).default(false),
  })
  .refine((c) => c.kekSource !== 'config' || c.kekSecret?.default !== undefined || Object.keys(c.kekSecret?.tenants ?? {}).length > 0, {
    error: 'set dataKeys.kekSecret.default (AIMASS_DATA_KEYS__KEK_SECRET__DEFAULT) or dataKeys.kekSecret.tenants for dataKeys.kekSource config',
    path: ['kekSecret'],
  })
  .refine((c) => c.kekSource !== 'directory' || c.kekDirectory !== undefined, {
    error: 'set dataKeys.kekDirectory (AIMASS_DATA_KEYS__KEK_DIRECTORY) to the mounted key directory for dataKeys.kekSource directory',
    path: ['kekDirectory'],
  })
  .refine((c) => c.kekSource !== 'none' || (c.kekSecret === undefined && c.kekDirectory === undefined), {
    // A forgotten source would silently run the service without encryption.
    error: 'keys are configured but dataKeys.kekSource is none: set dataKeys.kekSource (AIMASS_DATA_KEYS__KEK_SOURCE) to config or directory, or remove them',
    path: ['kekSource'],
  });

export type DataKeysConfig = z.output<typeof dataKeysConfigSchema>;
export type DataKeysConfigInput = z.input<typeof dataKeysConfigSchema>;

/**
 * The tenant key provider a `dataKeys` section describes, keys read and checked now; undefined for
 * `kekSource: none`. Rejects with `TenantKeyError` naming the setting or file, never a key.
 */
export async function openConfiguredKeyProvider(config: DataKeysConfig): Promise<TenantKeyProvider | undefined> {
  switch (config.kekSource) {
    case 'none':
      return undefined;
    case 'config':
      return tenantKeysFromConfig({
        tenants: config.kekSecret?.tenants as Record<string, TenantKeySpec> | undefined,
        default: config.kekSecret?.default,
        settingName: 'dataKeys.kekSecret',
      });
    case 'directory':
      return loadTenantKeyDirectory(config.kekDirectory!);
  }
}

/**
 * Where a service that seals users' data gets their keys from the privacy service
 * (`PrivacyDataKeySource` options): one definition for fusion, personal-model and the updater.
 */
export const remoteDataKeysConfigSchema = z.strictObject({
  /** Deadline of one GetDataKey, retries included. */
  callTimeoutMs: positiveInt('a duration in milliseconds').default(DEFAULT_REMOTE_KEY_TIMEOUT_MS),
  /**
   * How long a key is used from memory (the privacy service may shorten it). ErasureRequested
   * drops it at once; this bounds how long a destroyed key stays usable here if that event is missed.
   */
  cacheTtlMs: positiveInt('a duration in milliseconds').default(DEFAULT_REMOTE_KEY_CACHE_TTL_MS),
  /** Users whose keys are held in memory; the least recently used is dropped beyond it. */
  cacheMaxEntries: positiveInt('a number of entries').default(DEFAULT_REMOTE_KEY_CACHE_MAX_ENTRIES),
});

export type RemoteDataKeysConfig = z.output<typeof remoteDataKeysConfigSchema>;
