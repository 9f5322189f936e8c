import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../logging/logger.js';
import { EMBEDDED_SECRET_FILE, embeddedSecretFile } from './embedded-secret.js';

describe('embeddedSecretFile', () => {
  let dir: string;
  const logger = createLogger({ service: 'test', level: 'silent' });
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'embedded-secret-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('generates a 0600 secret once and reuses it, also when services ask at once', async () => {
    const files = await Promise.all([embeddedSecretFile(dir, logger), embeddedSecretFile(dir, logger), embeddedSecretFile(dir, logger)]);
    expect(new Set(files)).toEqual(new Set([join(dir, EMBEDDED_SECRET_FILE)]));
    const first = await readFile(files[0]!, 'utf8');
    expect(first.length).toBeGreaterThanOrEqual(32);
    expect((await stat(files[0]!)).mode & 0o777).toBe(0o600);
    await embeddedSecretFile(dir, logger);
    expect(await readFile(files[0]!, 'utf8')).toBe(first);
  });

  it('refuses an existing file too short to be a secret, naming it and what to do', async () => {
    await writeFile(join(dir, EMBEDDED_SECRET_FILE), 'short');
    await expect(embeddedSecretFile(dir, logger)).rejects.toThrow(/fusion-pseudonym\.secret holds a pseudonym secret of fewer than 32 characters: delete it .* AIMASS_PSEUDONYM__SECRET_FILE/);
  });
});
