import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../logging/logger.js';

/** Where the one-process mode keeps its generated pseudonym secret, in its data directory. */
export const EMBEDDED_SECRET_FILE = 'fusion-pseudonym.secret';

/** A secret the one-process mode generates for itself when none is configured. */
export interface EmbeddedSecret {
  /** File name in the data directory. */
  readonly file: string;
  /** What it is, for the log line ("a pseudonym secret"). */
  readonly what: string;
  /** The variable a deployment sets instead, named in the log line. */
  readonly variable: string;
}

/** Shorter files are not taken for a secret (the services want at least 32 bytes). */
const MIN_SECRET_CHARS = 32;

const PSEUDONYM_SECRET: EmbeddedSecret = { file: EMBEDDED_SECRET_FILE, what: 'a pseudonym secret', variable: 'AIMASS_PSEUDONYM__SECRET_FILE' };

/**
 * The one-process mode's pseudonym secret file (or another generated secret, `secret`): created
 * once per data directory with mode 0600 and reused, so pseudonyms (and with them every personal
 * model and feedback history) survive restarts, and every embedded service that pseudonymizes
 * (fusion, updater) gets the same pseudonym for a user. Production sets the variable instead.
 */
export async function embeddedSecretFile(dataDir: string, logger: Logger, secret: EmbeddedSecret = PSEUDONYM_SECRET): Promise<string> {
  const file = join(dataDir, secret.file);
  const usable = async () => ((await readFile(file, 'utf8').catch(() => undefined))?.trim().length ?? 0) >= MIN_SECRET_CHARS;
  if (await usable()) return file;
  await mkdir(dataDir, { recursive: true });
  // Exclusive create: two services starting at once must not each write their own secret.
  const created = await writeFile(file, randomBytes(48).toString('base64'), { mode: 0o600, flag: 'wx' }).then(
    () => true,
    (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
      return false;
    },
  );
  if (created) {
    logger.info({ file }, `generated ${secret.what} for the one-process mode (set ${secret.variable} in production)`);
    return file;
  }
  // Another service's create may still be writing it: look once more before calling it unusable.
  await new Promise((r) => setTimeout(r, 50));
  if (await usable()) return file;
  throw new Error(`${file} holds ${secret.what} of fewer than ${MIN_SECRET_CHARS} characters: delete it to have a new one generated, or set ${secret.variable}`);
}
