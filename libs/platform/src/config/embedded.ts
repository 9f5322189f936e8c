import type { z } from 'zod';
import { loadConfig } from './load-config.js';

/** What an embedded service hands the one-process runner back (tools/runner's RunningService). */
export interface EmbeddedRunning {
  readonly name: string;
  readonly address: string;
  readonly grpcServices: readonly string[];
  stop(): Promise<void>;
}

/** Options every embedded service takes: overrides of its own section, and the variables to read. */
export interface EmbeddedOptions<C> {
  /** Overrides of the service's configuration section (applied over its AIMASS_* variables). */
  config?: C | undefined;
  /** Process environment to read (tests); `process.env` by default. */
  env?: Readonly<Record<string, string | undefined>> | undefined;
}

/**
 * An embedded service's own sections, from the environment variables only: the runner's YAML file
 * (AIMASS_CONFIG) describes the runner and has other sections, which the service's strict schema
 * would refuse.
 */
export function embeddedConfig<S extends z.ZodType>(schema: S, vars: Readonly<Record<string, string | undefined>> = process.env): z.output<S> {
  return loadConfig(schema, { env: { ...vars, AIMASS_CONFIG: undefined } });
}
