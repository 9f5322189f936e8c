import type { z } from 'zod';
import { createGrpcServer, grpcConfigSchema, type GrpcServer, type Logger } from '@aimass/platform';
import { SERVICE_NAMES, loadDescriptorSet, v1 } from '@aimass/proto';
import type { DocumentStore } from '@aimass/storage';
import { PersonalModelStore } from './adapters/model-store.js';
import { personalModelConfigSchema, type PersonalModelConfigInput } from './config.js';
import { createPersonalModelService } from './grpc/personal-model-service.js';
import { PersonalModels, type PersonalModelsStats } from './runtime/personal-models.js';

/** The gRPC services this process serves (for health checks). */
export const PERSONAL_MODEL_GRPC_SERVICES: readonly string[] = [SERVICE_NAMES.personalModel];

export interface RunningPersonalModel {
  /** host:port of the gRPC server. */
  readonly address: string;
  readonly port: number;
  readonly server: GrpcServer;
  /** The users' models (cache, store, learner), for tests and tools in the same process. */
  readonly models: PersonalModels;
  readonly store: PersonalModelStore;
  stats(): PersonalModelsStats;
  /** Drains the server. The document store belongs to the caller and stays open. */
  stop(): Promise<void>;
}

/**
 * Starts the personal-model service on `store` (opened by the caller: SQLite in the one-process
 * mode and tests, MongoDB in a cluster): its collections, the model cache, the gRPC server.
 */
export async function startPersonalModel(
  config: { grpc: z.input<typeof grpcConfigSchema>; personalModel?: PersonalModelConfigInput | undefined },
  logger: Logger,
  deps: { store: DocumentStore },
): Promise<RunningPersonalModel> {
  const grpc = grpcConfigSchema.parse(config.grpc);
  const pm = personalModelConfigSchema.parse(config.personalModel ?? {});
  const store = await PersonalModelStore.open(deps.store);
  const models = new PersonalModels({
    store,
    logger,
    cacheMaxBytes: pm.cache.maxBytes,
    revalidateMs: pm.cache.revalidateMs,
    versionsKept: pm.versionsKept,
    learner: pm.learner,
    labels: pm.labels,
    sparseDimension: pm.sparseDimension,
    pruning: pm.pruning,
  });
  const server = createGrpcServer({
    config: grpc,
    logger,
    descriptorSet: loadDescriptorSet(),
    services: [{ definition: v1.PersonalModelServiceService, implementation: createPersonalModelService({ models, config: pm }) }],
  });
  const bound = await server.start();
  for (const name of PERSONAL_MODEL_GRPC_SERVICES) server.setServingStatus(name, 'SERVING');
  logger.info({ address: bound.address, store: deps.store.kind, cacheMaxBytes: pm.cache.maxBytes, versionsKept: pm.versionsKept }, 'personal-model serving');
  return {
    address: bound.address,
    port: bound.port,
    server,
    models,
    store,
    stats: () => models.stats(),
    stop: () => server.drain(),
  };
}
