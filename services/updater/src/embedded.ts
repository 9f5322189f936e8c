import type { AuthConfigInput } from '@aimass/auth';
import type { EventBus } from '@aimass/events';
import {
  EMBEDDED_SECRET_FILE,
  embeddedConfig,
  embeddedSecretFile,
  pseudonymConfigSchema,
  type EmbeddedOptions,
  type EmbeddedRunning,
  type Logger,
} from '@aimass/platform';
import type { DocumentStore } from '@aimass/storage';
import { z } from 'zod';
import { updaterConfigSchema, type UpdaterConfigInput } from './config.js';
import { UPDATER_GRPC_SERVICES, startUpdater } from './service.js';

/** The parts of the runner's EmbeddedEnvironment this service uses (structurally compatible). */
export interface UpdaterEmbeddedEnvironment {
  readonly dataDir: string;
  readonly logger: Logger;
  readonly host: string;
  readonly port: number;
  /** The runner's in-process bus, shared with fusion (which publishes the feedback) and privacy (ConsentChanged, ErasureRequested). */
  readonly bus: EventBus;
  openStore(name: string): Promise<DocumentStore>;
  addressOf(name: string): string;
  /** The runner's `auth` section (tools/runner reads AIMASS_AUTH__* once for every service); absent: mode none. */
  readonly auth?: AuthConfigInput | undefined;
}

export type UpdaterEmbeddedRunning = EmbeddedRunning;

export interface UpdaterEmbeddedOptions extends EmbeddedOptions<UpdaterConfigInput> {
  /**
   * false: run without the privacy service (no consent checks, plaintext payloads), for a runner
   * that does not start it. Default: the runner's privacy service (`addressOf('privacy')`), unless
   * `config.privacy.address` names another.
   */
  readonly privacy?: boolean | undefined;
}

const envSchema = z.strictObject({
  updater: updaterConfigSchema.prefault({}),
  pseudonym: pseudonymConfigSchema.optional(),
});

export const UPDATER_SERVICE_NAME = 'updater';

/** The one-process mode's pseudonym secret file, the one fusion uses (same user id, same pseudonym). */
export const EMBEDDED_PSEUDONYM_SECRET_FILE = EMBEDDED_SECRET_FILE;

/**
 * The updater as a service of the one-process mode (tools/runner's EmbeddedService): it consumes
 * the runner's in-process bus, calls the general-model and personal-model services started before
 * it, and keeps its history in the runner's `updater` store. Start it after fusion. Consent and
 * users' keys come from the runner's privacy service, started before it (see `privacy`).
 */
export function createUpdaterEmbedded(options: UpdaterEmbeddedOptions = {}) {
  return {
    name: UPDATER_SERVICE_NAME,
    async start(env: UpdaterEmbeddedEnvironment): Promise<UpdaterEmbeddedRunning> {
      const fromEnv = embeddedConfig(envSchema, options.env);
      const updater = updaterConfigSchema.parse({
        ...fromEnv.updater,
        ...options.config,
        generalModel: { ...fromEnv.updater.generalModel, address: env.addressOf('general-model'), ...options.config?.generalModel },
        personalModel: { ...fromEnv.updater.personalModel, address: env.addressOf('personal-model'), ...options.config?.personalModel },
        privacy: {
          ...fromEnv.updater.privacy,
          address: options.privacy === false ? undefined : env.addressOf('privacy'),
          ...options.config?.privacy,
        },
      });
      const pseudonym = fromEnv.pseudonym ?? { secretFile: await embeddedSecretFile(env.dataDir, env.logger) };
      const store = await env.openStore(UPDATER_SERVICE_NAME);
      const running = await startUpdater({ grpc: { host: env.host, port: env.port }, pseudonym, updater, auth: env.auth }, env.logger, { store, bus: env.bus });
      return { name: UPDATER_SERVICE_NAME, address: running.address, grpcServices: UPDATER_GRPC_SERVICES, stop: () => running.stop() };
    },
  };
}

/** The embedded updater with default options. */
export const updaterEmbedded = createUpdaterEmbedded();
