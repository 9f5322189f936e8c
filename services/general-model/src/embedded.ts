import { join } from 'node:path';
import type { AuthConfigInput } from '@aimass/auth';
import { embeddedConfig, type Logger } from '@aimass/platform';
import { z } from 'zod';
import { generalModelConfigSchema, type GeneralModelConfigInput } from './config.js';
import { FsModelRepository } from './adapters/fs-repository.js';
import { GENERAL_MODEL_GRPC_SERVICES, startGeneralModel } from './service.js';

/** The parts of the runner's EmbeddedEnvironment this service uses (structurally compatible). */
export interface GeneralModelEmbeddedEnvironment {
  readonly dataDir: string;
  readonly logger: Logger;
  readonly host: string;
  readonly port: number;
  /** The runner's `auth` section (tools/runner reads AIMASS_AUTH__* once for every service); absent: mode none. */
  readonly auth?: AuthConfigInput | undefined;
}

export interface GeneralModelEmbeddedRunning {
  readonly name: string;
  readonly address: string;
  readonly grpcServices: readonly string[];
  stop(): Promise<void>;
}

export interface GeneralModelEmbeddedOptions {
  /** Overrides of the `generalModel` configuration (applied over the AIMASS_GENERAL_MODEL__* variables). */
  config?: GeneralModelConfigInput | undefined;
  /**
   * Called when the repository has no version of the task model, e.g. to train the default model
   * (tools/train-general) into `repository` as `<modelName>/1`. Without it the service starts with
   * what the repository has and logs how to add the model.
   */
  ensureModel?: ((target: { repository: string; modelName: string; logger: Logger }) => Promise<void>) | undefined;
  /** Process environment to read (tests); `process.env` by default. */
  env?: Readonly<Record<string, string | undefined>> | undefined;
}

const envSchema = z.strictObject({ generalModel: generalModelConfigSchema.prefault({}) });

/**
 * The general model as a service of the one-process mode (tools/runner's EmbeddedService). Its
 * repository is `<dataDir>/models` unless AIMASS_GENERAL_MODEL__REPOSITORY says otherwise.
 */
export function createGeneralModelEmbedded(options: GeneralModelEmbeddedOptions = {}) {
  return {
    name: 'general-model',
    async start(env: GeneralModelEmbeddedEnvironment): Promise<GeneralModelEmbeddedRunning> {
      const vars = options.env ?? process.env;
      const fromEnv = embeddedConfig(envSchema, vars).generalModel;
      const repository = vars['AIMASS_GENERAL_MODEL__REPOSITORY'] ? fromEnv.repository : join(env.dataDir, 'models');
      const generalModel = generalModelConfigSchema.parse({ ...fromEnv, repository, ...options.config });
      const repo = new FsModelRepository(generalModel.repository);
      const hasTaskModel = (await repo.exists(generalModel.taskModel)) && (await repo.read(generalModel.taskModel).then((m) => m.versions.length > 0, () => false));
      if (!hasTaskModel) {
        if (options.ensureModel) {
          env.logger.info({ repository: generalModel.repository, model: generalModel.taskModel }, 'no default general model yet: training it');
          await options.ensureModel({ repository: generalModel.repository, modelName: generalModel.taskModel, logger: env.logger });
        } else {
          env.logger.warn(
            { repository: generalModel.repository, model: generalModel.taskModel },
            'no default general model in the repository: train one with `npm run train -w @aimass/train-general -- --repository <repository>` or drop <model>/1/model.onnx there; the task API answers NOT_FOUND until then',
          );
        }
      }
      const running = await startGeneralModel({ grpc: { host: env.host, port: env.port }, generalModel, auth: env.auth }, env.logger);
      return {
        name: 'general-model',
        address: running.address,
        grpcServices: GENERAL_MODEL_GRPC_SERVICES,
        stop: () => running.stop(),
      };
    },
  };
}

/** The embedded general model with default options (no training hook). */
export const generalModelEmbedded = createGeneralModelEmbedded();
