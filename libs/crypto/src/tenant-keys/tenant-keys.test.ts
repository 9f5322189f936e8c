import { randomBytes } from 'node:crypto';
import { mkdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir, type TempDir } from '@aimass/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TenantKeyError } from '../errors.js';
import { ensureEmbeddedKeyDirectory, loadTenantKeyDirectory } from './directory.js';
import { tenantKeysFromConfig } from './from-config.js';
import { decodeKek } from './provider.js';

const raw = () => randomBytes(32);

async function failure(run: () => unknown): Promise<TenantKeyError> {
  const err = await Promise.resolve()
    .then(run)
    .then(
      () => undefined,
      (e: unknown) => e,
    );
  expect(err).toBeInstanceOf(TenantKeyError);
  return err as TenantKeyError;
}

describe('decodeKek', () => {
  it('takes base64 text of 32 bytes (surrounding whitespace allowed) or 32 raw bytes', () => {
    const bytes = raw();
    expect(decodeKek(bytes.toString('base64'), 'k').export().equals(bytes)).toBe(true);
    expect(decodeKek(`  ${bytes.toString('base64')}\n`, 'k').export().equals(bytes)).toBe(true);
    expect(decodeKek(bytes, 'k').export().equals(bytes)).toBe(true);
    expect(decodeKek(Buffer.from(bytes.toString('base64') + '\n'), 'k').export().equals(bytes)).toBe(true);
  });

  it('refuses other lengths and non-canonical base64, naming the setting but not the value', async () => {
    const short = randomBytes(16).toString('base64');
    const garbage = `${raw().toString('base64').slice(0, 40)}!!!=`;
    for (const value of [short, garbage, '', raw().toString('base64url') + 'x']) {
      const err = await failure(() => decodeKek(value, 'dataKeys.kekSecret.tenants.acme'));
      expect(err.code).toBe('invalid_key');
      expect(err.message).toContain('dataKeys.kekSecret.tenants.acme');
      if (value.length > 0) expect(err.message).not.toContain(value);
    }
    const rawErr = await failure(() => decodeKek(randomBytes(31), '/keys/acme/1.key'));
    expect(rawErr.message).toMatch(/31 bytes/);
  });
});

describe('tenantKeysFromConfig', () => {
  it('gives each tenant its key, the default to the others, and versions to both', async () => {
    const acme = raw();
    const fallback = raw();
    const keys = tenantKeysFromConfig({ tenants: { acme: acme.toString('base64') }, default: fallback.toString('base64') });
    expect(await keys.currentKey('acme')).toMatchObject({ version: '1' });
    expect((await keys.currentKey('acme')).key.export().equals(acme)).toBe(true);
    expect(await keys.currentKey('globex')).toMatchObject({ version: 'default-1' });
    expect((await keys.keyVersion('acme', 'default-1')).key.export().equals(fallback)).toBe(true);
    expect(keys.inventory()).toEqual({ tenants: [{ tenant: 'acme', versions: ['1'], current: '1' }], default: { versions: ['default-1'], current: 'default-1' } });
  });

  it('makes the highest version current unless current says otherwise', async () => {
    const versions = { '1': raw().toString('base64'), '2': raw().toString('base64'), '10': raw().toString('base64') };
    expect((await tenantKeysFromConfig({ tenants: { acme: { versions } } }).currentKey('acme')).version).toBe('10');
    expect((await tenantKeysFromConfig({ tenants: { acme: { versions, current: 2 } } }).currentKey('acme')).version).toBe('2');
    const err = await failure(() => tenantKeysFromConfig({ tenants: { acme: { versions, current: 3 } } }));
    expect(err).toMatchObject({ code: 'unknown_version', tenant: 'acme' });
    await failure(() => tenantKeysFromConfig({ tenants: { acme: { versions: { v2: raw().toString('base64') } } } }));
    await failure(() => tenantKeysFromConfig({ tenants: { acme: { versions: {} } } }));
  });

  it('says what to do for an unknown tenant without a default, and for an unknown version', async () => {
    const keys = tenantKeysFromConfig({ tenants: { acme: raw().toString('base64') }, settingName: 'dataKeys.kekSecret' });
    const err = await failure(() => keys.currentKey('globex'));
    expect(err).toMatchObject({ code: 'unknown_tenant', tenant: 'globex' });
    expect(err.message).toBe('no key-encryption key for tenant globex and no default key: add the tenant\'s key to dataKeys.kekSecret.tenants.globex, or set dataKeys.kekSecret.default');
    expect(await failure(() => keys.keyVersion('acme', '2'))).toMatchObject({ code: 'unknown_version' });
    expect((await failure(() => keys.keyVersion('acme', 'default-1'))).message).toMatch(/default key-encryption key, which is not configured/);
    expect(await failure(() => keys.keyVersion('globex', '1'))).toMatchObject({ code: 'unknown_tenant' });
  });

  it('names the bad setting and never its value', async () => {
    const bad = randomBytes(24).toString('base64');
    const err = await failure(() => tenantKeysFromConfig({ tenants: { acme: { versions: { '1': raw().toString('base64'), '2': bad } } }, settingName: 'dataKeys.kekSecret' }));
    expect(err.code).toBe('invalid_key');
    expect(err.message).toContain('dataKeys.kekSecret.tenants.acme.versions.2');
    expect(err.message).not.toContain(bad);
  });
});

describe('loadTenantKeyDirectory', () => {
  let dir: TempDir;
  beforeEach(async () => {
    dir = await tempDir('aimass-crypto-');
  });
  afterEach(async () => {
    await dir.remove();
  });

  async function put(rel: string, content: string | Uint8Array): Promise<void> {
    await mkdir(join(dir.path, rel, '..'), { recursive: true });
    await writeFile(join(dir.path, rel), content);
  }

  it('reads <tenant>/<version>.key (base64 or raw), _default/, and current', async () => {
    const a1 = raw();
    const a2 = raw();
    const g1 = raw();
    const d1 = raw();
    await put('acme/1.key', a1.toString('base64') + '\n');
    await put('acme/2.key', a2);
    await put('globex/1.key', g1.toString('base64'));
    await put('globex/3.key', raw());
    await put('globex/current', '1\n');
    await put('_default/1.key', d1.toString('base64'));
    const keys = await loadTenantKeyDirectory(dir.path);
    expect((await keys.currentKey('acme')).version).toBe('2');
    expect((await keys.currentKey('acme')).key.export().equals(a2)).toBe(true);
    expect((await keys.keyVersion('acme', '1')).key.export().equals(a1)).toBe(true);
    expect((await keys.currentKey('globex')).key.export().equals(g1)).toBe(true);
    expect((await keys.currentKey('initech')).version).toBe('default-1');
    expect((await keys.currentKey('initech')).key.export().equals(d1)).toBe(true);
    expect(keys.inventory().tenants).toEqual([
      { tenant: 'acme', versions: ['1', '2'], current: '2' },
      { tenant: 'globex', versions: ['1', '3'], current: '1' },
    ]);
  });

  it('reads a Kubernetes secret volume layout: symbolic links into ..data, dot entries skipped', async () => {
    const a1 = raw();
    await put('..2025_01_01/acme/1.key', a1.toString('base64'));
    await symlink('..2025_01_01', join(dir.path, '..data'));
    await symlink(join('..data', 'acme'), join(dir.path, 'acme'));
    const keys = await loadTenantKeyDirectory(dir.path);
    expect((await keys.currentKey('acme')).key.export().equals(a1)).toBe(true);
    expect(await failure(() => keys.currentKey('globex'))).toMatchObject({ code: 'unknown_tenant' });
    expect((await failure(() => keys.currentKey('globex'))).message).toContain(join(dir.path, 'globex', '1.key'));
  });

  it('fails clearly on a missing directory, an unreadable file, a wrong key length or a stray file', async () => {
    const missing = await failure(() => loadTenantKeyDirectory(join(dir.path, 'nope')));
    expect(missing).toMatchObject({ code: 'unreadable' });
    expect(missing.message).toContain('ENOENT');

    await put('acme/1.key', raw().toString('base64'));
    await symlink(join(dir.path, 'gone'), join(dir.path, 'acme', '2.key'));
    const dangling = await failure(() => loadTenantKeyDirectory(dir.path));
    expect(dangling).toMatchObject({ code: 'unreadable', tenant: 'acme' });
    expect(dangling.message).toBe(`cannot read key file ${join(dir.path, 'acme', '2.key')} (ENOENT)`);
    await dir.remove();
    dir = await tempDir('aimass-crypto-');

    const short = randomBytes(20);
    await put('acme/1.key', short.toString('base64'));
    const wrong = await failure(() => loadTenantKeyDirectory(dir.path));
    expect(wrong).toMatchObject({ code: 'invalid_key', tenant: 'acme' });
    expect(wrong.message).toContain(join(dir.path, 'acme', '1.key'));
    expect(wrong.message).not.toContain(short.toString('base64'));

    await put('acme/1.key', raw());
    await put('acme/notes.txt', 'hello');
    expect((await failure(() => loadTenantKeyDirectory(dir.path))).message).toMatch(/notes\.txt: unexpected file/);
    await dir.remove();
    dir = await tempDir('aimass-crypto-');

    await put('acme.key', raw().toString('base64'));
    expect((await failure(() => loadTenantKeyDirectory(dir.path))).message).toMatch(/acme\.key: unexpected file; the key directory holds one folder per tenant/);
    await dir.remove();
    dir = await tempDir('aimass-crypto-');

    expect((await failure(() => loadTenantKeyDirectory(dir.path))).message).toMatch(/holds no keys/);
    await mkdir(join(dir.path, 'acme'));
    expect((await failure(() => loadTenantKeyDirectory(dir.path))).message).toMatch(/no <version>\.key file/);
    await put('acme/1.key', raw());
    await put('acme/current', 'two');
    expect((await failure(() => loadTenantKeyDirectory(dir.path))).message).toMatch(/current: expected a version number/);
  });
});

describe('ensureEmbeddedKeyDirectory', () => {
  it('creates a default key once, private, and keeps it', async () => {
    const dir = await tempDir('aimass-crypto-');
    try {
      const keys = join(dir.path, 'keys');
      await Promise.all([ensureEmbeddedKeyDirectory(keys), ensureEmbeddedKeyDirectory(keys)]);
      const first = await readFile(join(keys, '_default', '1.key'), 'utf8');
      expect((await stat(join(keys, '_default', '1.key'))).mode & 0o777).toBe(0o600);
      await ensureEmbeddedKeyDirectory(keys);
      expect(await readFile(join(keys, '_default', '1.key'), 'utf8')).toBe(first);
      const provider = await loadTenantKeyDirectory(keys);
      expect((await provider.currentKey('any')).key.export().toString('base64')).toBe(first.trim());
    } finally {
      await dir.remove();
    }
  });
});
