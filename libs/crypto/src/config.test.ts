import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { tempDir } from '@aimass/testing';
import { describe, expect, it } from 'vitest';
import { dataKeysConfigSchema, openConfiguredKeyProvider } from './config.js';
import { ensureEmbeddedKeyDirectory } from './tenant-keys/directory.js';

const key = () => randomBytes(32).toString('base64');

function problems(input: unknown): Array<{ path: string; message: string }> {
  const result = dataKeysConfigSchema.safeParse(input);
  expect(result.success).toBe(false);
  return result.error!.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
}

describe('dataKeysConfigSchema', () => {
  it('defaults to no keys and no plaintext', async () => {
    const config = dataKeysConfigSchema.parse({});
    expect(config).toEqual({ kekSource: 'none', allowPlaintext: false });
    expect(await openConfiguredKeyProvider(config)).toBeUndefined();
  });

  it('opens keys from configuration: a default, tenants with one key or versions', async () => {
    const acme1 = key();
    const acme2 = key();
    const config = dataKeysConfigSchema.parse({
      kekSource: 'config',
      kekSecret: { default: key(), tenants: { acme: { versions: { '1': acme1, '2': acme2 }, current: '1' }, globex: key() } },
      cacheMaxEntries: 100,
      cacheTtlMs: 60_000,
    });
    const provider = (await openConfiguredKeyProvider(config))!;
    expect((await provider.currentKey('acme')).key.export().toString('base64')).toBe(acme1);
    expect((await provider.currentKey('globex')).version).toBe('1');
    expect((await provider.currentKey('initech')).version).toBe('default-1');
  });

  it('opens a key directory', async () => {
    const dir = await tempDir('aimass-crypto-');
    try {
      await ensureEmbeddedKeyDirectory(join(dir.path, 'k'));
      const provider = (await openConfiguredKeyProvider(dataKeysConfigSchema.parse({ kekSource: 'directory', kekDirectory: join(dir.path, 'k') })))!;
      expect((await provider.currentKey('acme')).version).toBe('default-1');
      await expect(openConfiguredKeyProvider(dataKeysConfigSchema.parse({ kekSource: 'directory', kekDirectory: join(dir.path, 'none') }))).rejects.toMatchObject({ code: 'unreadable' });
    } finally {
      await dir.remove();
    }
  });

  it('reports bad keys by path, never quoting them', () => {
    const short = randomBytes(16).toString('base64');
    const found = problems({ kekSource: 'config', kekSecret: { default: short, tenants: { acme: { versions: { '1': key(), x: key(), '3': short }, current: 7 } } } });
    expect(found).toEqual([
      { path: 'kekSecret.tenants.acme.versions.3', message: expect.stringMatching(/^expected a base64-encoded 32-byte key/) as unknown },
      { path: 'kekSecret.tenants.acme.versions.x', message: 'version "x" is not a whole number from 1' },
      { path: 'kekSecret.tenants.acme.current', message: 'current version 7 is not among the versions (1, 3, x)' },
      { path: 'kekSecret.default', message: expect.stringMatching(/^expected a base64-encoded 32-byte key/) as unknown },
    ]);
    expect(JSON.stringify(found)).not.toContain(short);
    expect(problems({ kekSource: 'config', kekSecret: { default: 42 } })[0]!.message).toMatch(/or \{ versions/);
  });

  it('requires the keys its source needs, and refuses keys with source none', () => {
    expect(problems({ kekSource: 'config' })).toEqual([{ path: 'kekSecret', message: expect.stringContaining('set dataKeys.kekSecret.default') as unknown }]);
    expect(problems({ kekSource: 'directory' })).toEqual([{ path: 'kekDirectory', message: expect.stringContaining('AIMASS_DATA_KEYS__KEK_DIRECTORY') as unknown }]);
    expect(problems({ kekSecret: { default: key() } })).toEqual([{ path: 'kekSource', message: expect.stringContaining('dataKeys.kekSource is none') as unknown }]);
    expect(problems({ kekSource: 'vault' })[0]).toEqual({ path: 'kekSource', message: 'expected none, config or directory' });
    expect(problems({ cacheTtlMs: 0 })[0]).toEqual({ path: 'cacheTtlMs', message: 'expected a duration in milliseconds (a whole number > 0)' });
  });
});
