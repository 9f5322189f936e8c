import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../logging/logger.js';

/** Where the one-process mode keeps its generated pseudonym secret, in its data directory. */
export const EMBEDDED_SECRET_FILE = 'fusion-pseudonym.secret';

/**
 * The one-process mode's pseudonym secret file: created once per data directory and reused, so
 * pseudonyms (and with them every personal model and feedback history) survive restarts, and
 * every embedded service that pseudonymizes (fusion, updater) gets the same pseudonym for a user.
 * Production sets AIMASS_PSEUDONYM__SECRET_FILE instead.
 */
export async function embeddedSecretFile(dataDir: string, logger: Logger): Promise<string> {
  const file = join(dataDir, EMBEDDED_SECRET_FILE);
  const existing = await readFile(file, 'utf8').catch(() => undefined);
  if (existing === undefined || existing.trim().length < 32) {
    await mkdir(dataDir, { recursive: true });
    // Exclusive create: two services starting at once must not each write their own secret.
    await writeFile(file, randomBytes(48).toString('base64'), { mode: 0o600, flag: 'wx' }).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
    logger.info({ file }, 'generated a pseudonym secret for the one-process mode (set AIMASS_PSEUDONYM__SECRET_FILE in production)');
  }
  return file;
}
