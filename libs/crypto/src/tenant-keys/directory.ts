import { randomBytes, type KeyObject } from 'node:crypto';
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KEY_BYTES } from '../aes-gcm.js';
import { TenantKeyError } from '../errors.js';
import { DEFAULT_VERSION_PREFIX, StaticTenantKeyProvider, decodeKek, isVersionNumber, keySet, type TenantKeySet } from './provider.js';

/** The folder of the default KEK (tenant ids never start with `_`). */
export const DEFAULT_KEY_FOLDER = '_default';
/** Optional file in a tenant's folder naming the current version (otherwise the highest). */
export const CURRENT_VERSION_FILE = 'current';

const KEY_FILE = /^([0-9]+)\.key$/;

function fsCode(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? (err instanceof Error ? err.message : String(err));
}

async function read(path: string, tenant: string | undefined): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new TenantKeyError('unreadable', `cannot read key file ${path} (${fsCode(err)})`, { cause: err, tenant });
  }
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    // stat, not the dirent: a Kubernetes secret volume presents its folders as symbolic links.
    return (await stat(path)).isDirectory();
  } catch (err) {
    throw new TenantKeyError('unreadable', `cannot read ${path} (${fsCode(err)})`, { cause: err });
  }
}

async function list(path: string, tenant?: string): Promise<string[]> {
  try {
    // Dot entries are the volume's own bookkeeping (`..data`, `..2024_...`).
    return (await readdir(path)).filter((name) => !name.startsWith('.')).sort();
  } catch (err) {
    throw new TenantKeyError('unreadable', `cannot read key directory ${path} (${fsCode(err)})`, { cause: err, tenant });
  }
}

async function readFolder(folder: string, prefix: string, tenant: string | undefined): Promise<TenantKeySet> {
  const keys = new Map<string, KeyObject>();
  let current: string | undefined;
  for (const name of await list(folder, tenant)) {
    const path = join(folder, name);
    const match = KEY_FILE.exec(name);
    if (match && isVersionNumber(match[1]!)) {
      const bytes = await read(path, tenant);
      try {
        keys.set(`${prefix}${match[1]!}`, decodeKek(bytes, path, tenant));
      } finally {
        bytes.fill(0);
      }
    } else if (name === CURRENT_VERSION_FILE) {
      const text = (await read(path, tenant)).toString('utf8').trim();
      if (!isVersionNumber(text)) throw new TenantKeyError('invalid_key', `${path}: expected a version number such as 2`, { tenant });
      current = `${prefix}${text}`;
    } else {
      throw new TenantKeyError('invalid_key', `${path}: unexpected file; a tenant's folder holds <version>.key files (1.key, 2.key, ...) and optionally ${CURRENT_VERSION_FILE}`, { tenant });
    }
  }
  if (keys.size === 0) throw new TenantKeyError('invalid_key', `${folder}: no <version>.key file`, { tenant });
  return keySet(keys, current, folder, tenant);
}

/**
 * KEKs from a mounted secret directory, read once now: `<dir>/<tenant>/<version>.key` (base64 text,
 * or exactly 32 raw bytes), `<dir>/_default/<version>.key` for tenants without their own, and an
 * optional `<dir>/<tenant>/current` naming the version new wraps use (the highest otherwise).
 *
 * Files are not watched: a rotation (a new version file, a new `current`) takes effect when the
 * process restarts, which a Kubernetes rollout does. Throws `TenantKeyError` (`unreadable`,
 * `invalid_key`) naming the path, never the content.
 */
export async function loadTenantKeyDirectory(directory: string): Promise<StaticTenantKeyProvider> {
  if (!(await isDirectory(directory))) {
    throw new TenantKeyError('unreadable', `key directory ${directory} is not a directory`);
  }
  const tenants = new Map<string, TenantKeySet>();
  let fallback: TenantKeySet | undefined;
  for (const name of await list(directory)) {
    const path = join(directory, name);
    if (!(await isDirectory(path))) {
      throw new TenantKeyError('invalid_key', `${path}: unexpected file; the key directory holds one folder per tenant (<tenant>/<version>.key) and ${DEFAULT_KEY_FOLDER}/ for the default`);
    }
    if (name === DEFAULT_KEY_FOLDER) fallback = await readFolder(path, DEFAULT_VERSION_PREFIX, undefined);
    else tenants.set(name, await readFolder(path, '', name));
  }
  if (tenants.size === 0 && fallback === undefined) {
    throw new TenantKeyError('invalid_key', `key directory ${directory} holds no keys: expected <tenant>/<version>.key or ${DEFAULT_KEY_FOLDER}/<version>.key`);
  }
  return new StaticTenantKeyProvider(tenants, fallback, (tenant) => `add ${join(directory, tenant, '1.key')}${fallback ? '' : ` or ${join(directory, DEFAULT_KEY_FOLDER, '1.key')}`} and restart`);
}

/**
 * The one-process mode's key directory: creates `<dir>/_default/1.key` with a random key once and
 * keeps it afterwards, so what the embedded services encrypted stays readable across restarts.
 * Losing this file makes every stored payload unreadable, as destroying each user's key would.
 */
export async function ensureEmbeddedKeyDirectory(directory: string): Promise<string> {
  const folder = join(directory, DEFAULT_KEY_FOLDER);
  await mkdir(folder, { recursive: true, mode: 0o700 });
  const key = randomBytes(KEY_BYTES);
  // Exclusive create: two services starting at once must not each write their own key.
  await writeFile(join(folder, '1.key'), key.toString('base64') + '\n', { mode: 0o600, flag: 'wx' }).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
  key.fill(0);
  return directory;
}
