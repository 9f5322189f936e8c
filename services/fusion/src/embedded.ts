import type { AuthConfigInput } from '@aimass/auth';
import { EMBEDDED_SECRET_FILE, embeddedSecretFile, embeddedConfig, pseudonymConfigSchema, type Logger } from '@aimass/platform';
import type { EventBus } from '@aimass/events';
import type { DocumentStore } from '@aimass/storage';
import { z } from 'zod';
import { fusionConfigSchema, type FusionConfigInput } from './config.js';
import { FUSION_GRPC_SERVICES, startFusion } from './service.js';

/** The parts of the runner's EmbeddedEnvironment this service uses (structurally compatible). */
export interface FusionEmbeddedEnvironment {
  readonly dataDir: string;
  readonly logger: Logger;
  readonly host: string;
  readonly port: number;
  /** The runner's in-process bus: Feedback publishes FeedbackRecorded on it for the embedded updater. */
  readonly bus?: EventBus | undefined;
  openStore(name: string): Promise<DocumentStore>;
  addressOf(name: string): string;
  /** The runner's `auth` section (tools/runner reads AIMASS_AUTH__* once for every service); absent: mode none. */
  readonly auth?: AuthConfigInput | undefined;
}

export interface FusionEmbeddedRunning {
  readonly name: string;
  readonly address: string;
  readonly grpcServices: readonly string[];
  stop(): Promise<void>;
}

export interface FusionEmbeddedOptions {
  /** Overrides of the `fusion` configuration (applied over the AIMASS_FUSION__* variables). */
  config?: FusionConfigInput | undefined;
  /** Process environment to read (tests); `process.env` by default. */
  env?: Readonly<Record<string, string | undefined>> | undefined;
  /**
   * Use the runner's privacy service (`env.addressOf('privacy')`, started before fusion) for
   * consent and users' keys when neither `config.privacy.address` nor
   * AIMASS_FUSION__PRIVACY__ADDRESS names one. Default true; false runs without it (no consent
   * enforced, nothing encrypted: tests and development only).
   */
  privacy?: boolean | undefined;
}

const envSchema = z.strictObject({
  fusion: fusionConfigSchema.prefault({}),
  pseudonym: pseudonymConfigSchema.optional(),
});

/** Where the one-process mode keeps its generated pseudonym secret (shared with the updater). */
export { EMBEDDED_SECRET_FILE };

/**
 * Fusion as a service of the one-process mode (tools/runner's EmbeddedService). It calls the
 * general-model, personal-model and privacy services started before it (their addresses come
 * from the runner) and keeps its records in the runner's `fusion` store.
 */
export function createFusionEmbedded(options: FusionEmbeddedOptions = {}) {
  return {
    name: 'fusion',
    async start(env: FusionEmbeddedEnvironment): Promise<FusionEmbeddedRunning> {
      const fromEnv = embeddedConfig(envSchema, options.env);
      const privacyAddress = options.config?.privacy?.address ?? fromEnv.fusion.privacy.address ?? (options.privacy === false ? undefined : runnerPrivacy(env));
      const fusion = fusionConfigSchema.parse({
        ...fromEnv.fusion,
        ...options.config,
        generalModel: { ...fromEnv.fusion.generalModel, address: env.addressOf('general-model'), ...options.config?.generalModel },
        personalModel: { ...fromEnv.fusion.personalModel, address: env.addressOf('personal-model'), ...options.config?.personalModel },
        privacy: { ...fromEnv.fusion.privacy, ...options.config?.privacy, address: privacyAddress },
      });
      const pseudonym = fromEnv.pseudonym ?? { secretFile: await embeddedSecretFile(env.dataDir, env.logger) };
      const store = await env.openStore('fusion');
      const running = await startFusion({ grpc: { host: env.host, port: env.port }, pseudonym, fusion, auth: env.auth }, env.logger, { store, bus: env.bus });
      return { name: 'fusion', address: running.address, grpcServices: FUSION_GRPC_SERVICES, stop: () => running.stop() };
    },
  };
}

/** The runner's privacy service; its absence is a wiring fault, not a reason to run unprotected. */
function runnerPrivacy(env: FusionEmbeddedEnvironment): string {
  try {
    return env.addressOf('privacy');
  } catch (err) {
    throw new Error(
      'fusion needs the privacy service (consent, users\' data keys) started before it: list privacy before fusion in the runner, ' +
        'set AIMASS_FUSION__PRIVACY__ADDRESS, or pass createFusionEmbedded({ privacy: false }) to run without it (development only)',
      { cause: err },
    );
  }
}

/** The embedded fusion service with default options. */
export const fusionEmbedded = createFusionEmbedded();
