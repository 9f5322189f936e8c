import type { EventBus } from '@aimass/events';
import { embeddedConfig, type Logger } from '@aimass/platform';
import type { DocumentStore } from '@aimass/storage';
import { z } from 'zod';
import { personalModelConfigSchema, type PersonalModelConfigInput } from './config.js';
import { PERSONAL_MODEL_GRPC_SERVICES, startPersonalModel } from './service.js';

/** The parts of the runner's EmbeddedEnvironment this service uses (structurally compatible). */
export interface PersonalModelEmbeddedEnvironment {
  readonly logger: Logger;
  readonly host: string;
  readonly port: number;
  /** The service's own store (`<dataDir>/personal-model.sqlite` in the runner), closed by the runner. */
  openStore(name: string): Promise<DocumentStore>;
  /** The runner's in-process bus, closed by the runner: model updates are announced on it. */
  readonly bus?: EventBus | undefined;
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
}

const envSchema = z.strictObject({ personalModel: personalModelConfigSchema.prefault({}) });

export const PERSONAL_MODEL_SERVICE_NAME = 'personal-model';

/**
 * The personal-model service in the one-process mode (tools/runner's EmbeddedService). Its store
 * is the runner's (`env.openStore('personal-model')`) and so is its bus (`env.bus`); the `store`
 * and `events` configuration keys are ignored.
 */
export function createPersonalModelEmbedded(options: PersonalModelEmbeddedOptions = {}) {
  return {
    name: PERSONAL_MODEL_SERVICE_NAME,
    async start(env: PersonalModelEmbeddedEnvironment): Promise<PersonalModelEmbeddedRunning> {
      const fromEnv = embeddedConfig(envSchema, options.env).personalModel;
      const personalModel = personalModelConfigSchema.parse({ ...fromEnv, ...options.config });
      const store = await env.openStore(PERSONAL_MODEL_SERVICE_NAME);
      const running = await startPersonalModel({ grpc: { host: env.host, port: env.port }, personalModel }, env.logger, { store, bus: env.bus });
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
