import type { AuthConfigInput } from '@aimass/auth';
import type { EventBus } from '@aimass/events';
import { embeddedConfig, type Logger } from '@aimass/platform';
import type { DocumentStore } from '@aimass/storage';
import { z } from 'zod';
import { personalModelConfigSchema, type PersonalModelConfigInput } from './config.js';
import { PERSONAL_MODEL_GRPC_SERVICES, startPersonalModel, type PersonalModelDependencies } from './service.js';

/** The parts of the runner's EmbeddedEnvironment this service uses (structurally compatible). */
export interface PersonalModelEmbeddedEnvironment {
  readonly logger: Logger;
  readonly host: string;
  readonly port: number;
  /** The service's own store (`<dataDir>/personal-model.sqlite` in the runner), closed by the runner. */
  openStore(name: string): Promise<DocumentStore>;
  /** The runner's in-process bus, closed by the runner: model updates are announced on it. */
  readonly bus?: EventBus | undefined;
  /** host:port of a service started before this one: the privacy service's is the default `privacy.address`. */
  addressOf?(name: string): string;
  /** The runner's `auth` section (tools/runner reads AIMASS_AUTH__* once for every service); absent: mode none. */
  readonly auth?: AuthConfigInput | undefined;
}

export interface PersonalModelEmbeddedRunning {
  readonly name: string;
  readonly address: string;
  readonly grpcServices: readonly string[];
  stop(): Promise<void>;
}

export interface PersonalModelEmbeddedOptions {
  /** Overrides of the `personalModel` configuration (applied over the AIMASS_PERSONAL_MODEL__* variables). */
  config?: PersonalModelConfigInput | undefined;
  /** Process environment to read (tests); `process.env` by default. */
  env?: Readonly<Record<string, string | undefined>> | undefined;
  /**
   * Where the privacy service is. By default `personalModel.privacy.address` when configured
   * (`config` or AIMASS_PERSONAL_MODEL__PRIVACY__ADDRESS), else the runner's privacy service
   * (`env.addressOf('privacy')`, which the runner starts first): consent enforced, models sealed.
   * `false` runs without it: nothing enforced, models stored in clear (development and tests only).
   */
  privacy?: false | undefined;
  /** Injected data keys and consent lookup (tests), as `startPersonalModel` takes them. */
  deps?: Pick<PersonalModelDependencies, 'keys' | 'consentLookup'> | undefined;
}

const envSchema = z.strictObject({ personalModel: personalModelConfigSchema.prefault({}) });

export const PERSONAL_MODEL_SERVICE_NAME = 'personal-model';

/**
 * The personal-model service in the one-process mode (tools/runner's EmbeddedService). Its store
 * is the runner's (`env.openStore('personal-model')`) and so is its bus (`env.bus`); the `store`
 * and `events` configuration keys are ignored. The privacy service is the runner's too (see
 * `PersonalModelEmbeddedOptions.privacy`).
 */
export function createPersonalModelEmbedded(options: PersonalModelEmbeddedOptions = {}) {
  return {
    name: PERSONAL_MODEL_SERVICE_NAME,
    async start(env: PersonalModelEmbeddedEnvironment): Promise<PersonalModelEmbeddedRunning> {
      const fromEnv = embeddedConfig(envSchema, options.env).personalModel;
      const privacy = { ...fromEnv.privacy, ...options.config?.privacy };
      if (options.privacy === false) delete privacy.address;
      else if (privacy.address === undefined && env.addressOf) privacy.address = env.addressOf('privacy');
      const personalModel = personalModelConfigSchema.parse({ ...fromEnv, ...options.config, privacy });
      const store = await env.openStore(PERSONAL_MODEL_SERVICE_NAME);
      const running = await startPersonalModel({ grpc: { host: env.host, port: env.port }, personalModel, auth: env.auth }, env.logger, { store, bus: env.bus, ...options.deps });
      return {
        name: PERSONAL_MODEL_SERVICE_NAME,
        address: running.address,
        grpcServices: PERSONAL_MODEL_GRPC_SERVICES,
        stop: () => running.stop(),
      };
    },
  };
}

/** The embedded personal model with default options. */
export const personalModelEmbedded = createPersonalModelEmbedded();
