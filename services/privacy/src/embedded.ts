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
import { privacyConfigSchema, type PrivacyConfigInput } from './config.js';
import { PRIVACY_GRPC_SERVICES, startPrivacy } from './service.js';

/** The parts of the runner's EmbeddedEnvironment this service uses (structurally compatible). */
export interface PrivacyEmbeddedEnvironment {
  readonly dataDir: string;
  readonly logger: Logger;
  readonly host: string;
  readonly port: number;
  /** The runner's in-process bus: ConsentChanged reaches the other services' consent caches on it. */
  readonly bus: EventBus;
  openStore(name: string): Promise<DocumentStore>;
}

export type PrivacyEmbeddedRunning = EmbeddedRunning;

export type PrivacyEmbeddedOptions = EmbeddedOptions<PrivacyConfigInput>;

const envSchema = z.strictObject({
  privacy: privacyConfigSchema.prefault({}),
  pseudonym: pseudonymConfigSchema.optional(),
});

export const PRIVACY_SERVICE_NAME = 'privacy';

/** The one-process mode's pseudonym secret file, the one fusion and the updater use (same user id, same pseudonym). */
export const EMBEDDED_PSEUDONYM_SECRET_FILE = EMBEDDED_SECRET_FILE;

/**
 * The privacy service as a service of the one-process mode (tools/runner's EmbeddedService): it
 * keeps consent in the runner's `privacy` store and publishes ConsentChanged on the runner's
 * in-process bus. It calls no other service; the services that enforce consent read it, so it
 * starts before them.
 */
export function createPrivacyEmbedded(options: PrivacyEmbeddedOptions = {}) {
  return {
    name: PRIVACY_SERVICE_NAME,
    async start(env: PrivacyEmbeddedEnvironment): Promise<PrivacyEmbeddedRunning> {
      const fromEnv = embeddedConfig(envSchema, options.env);
      const privacy = privacyConfigSchema.parse({
        ...fromEnv.privacy,
        ...options.config,
        consent: { ...fromEnv.privacy.consent, ...options.config?.consent },
      });
      const pseudonym = fromEnv.pseudonym ?? { secretFile: await embeddedSecretFile(env.dataDir, env.logger) };
      const store = await env.openStore(PRIVACY_SERVICE_NAME);
      const running = await startPrivacy({ grpc: { host: env.host, port: env.port }, pseudonym, privacy }, env.logger, { store, bus: env.bus });
      return { name: PRIVACY_SERVICE_NAME, address: running.address, grpcServices: PRIVACY_GRPC_SERVICES, stop: () => running.stop() };
    },
  };
}

/** The embedded privacy service with default options. */
export const privacyEmbedded = createPrivacyEmbedded();
