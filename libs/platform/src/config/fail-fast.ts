import type { z } from 'zod';
import { ConfigError } from './config-error.js';
import { loadConfig, type LoadConfigOptions } from './load-config.js';

/** sysexits.h EX_CONFIG: the configuration is wrong; restarting will not help. */
export const EX_CONFIG = 78;

export interface FailFastIo {
  stderr?: { write(text: string): unknown };
  exit?: (code: number) => never;
}

/**
 * For a service's main: reports a startup error on stderr and exits. A ConfigError exits with 78
 * (EX_CONFIG) and only its message (no stack: the message says what to fix); anything else exits
 * with 1 and its stack.
 */
export function failFast(err: unknown, io: FailFastIo = {}): never {
  const stderr = io.stderr ?? process.stderr;
  const exit = io.exit ?? ((code: number) => process.exit(code));
  if (err instanceof ConfigError) {
    stderr.write(`${err.message}\n`);
    return exit(EX_CONFIG);
  }
  stderr.write(`fatal: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  return exit(1);
}

/** `loadConfig`, exiting with 78 and the list of problems when the configuration is invalid. */
export function configOrExit<S extends z.ZodType>(schema: S, options?: LoadConfigOptions, io?: FailFastIo): z.output<S> {
  try {
    return loadConfig(schema, options);
  } catch (err) {
    return failFast(err, io);
  }
}
