import type { z } from 'zod';
import { createGrpcServer, grpcConfigSchema, type BoundAddress, type GrpcServer, type Logger } from '@aimass/platform';
import { SERVICE_NAMES, loadDescriptorSet, v1 } from '@aimass/proto';
import { startErasureParticipant, type ErasureParticipant, type EventBus } from '@aimass/events';
import type { DocumentStore } from '@aimass/storage';
import { PersonalModelStore } from './adapters/model-store.js';
import { personalModelConfigSchema, type PersonalModelConfigInput } from './config.js';
import { createPersonalModelService } from './grpc/personal-model-service.js';
import { ModelEvents, PRODUCER } from './runtime/model-events.js';
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
  /** The PersonalModelUpdated publisher and subscriber, when started with a bus. */
  readonly events: ModelEvents | undefined;
  /** This replica's part of the erasure saga, when started with a bus. */
  readonly erasure: ErasureParticipant | undefined;
  stats(): PersonalModelsStats;
  /** Drains the server, then stops listening to model events. The store and the bus belong to the caller and stay open. */
  stop(): Promise<void>;
}

export interface PersonalModelDependencies {
  store: DocumentStore;
  /**
   * With a bus, every write is announced (PersonalModelUpdated, before the call is answered) and
   * other replicas' announcements drop cached models at once, and the service takes part in
   * erasures (ErasureRequested → DeleteUser's deletion → ErasureCompleted). Without one, replicas
   * see each other's writes after at most `cache.revalidateMs`.
   */
  bus?: EventBus | undefined;
}

/**
 * Starts the personal-model service on `store` (opened by the caller: SQLite in the one-process
 * mode and tests, MongoDB in a cluster): its collections, the model cache, the model events when
 * a bus is given, the gRPC server.
 */
export async function startPersonalModel(
  config: { grpc: z.input<typeof grpcConfigSchema>; personalModel?: PersonalModelConfigInput | undefined },
  logger: Logger,
  deps: PersonalModelDependencies,
): Promise<RunningPersonalModel> {
  const grpc = grpcConfigSchema.parse(config.grpc);
  const pm = personalModelConfigSchema.parse(config.personalModel ?? {});
  const store = await PersonalModelStore.open(deps.store);
  const events = deps.bus ? new ModelEvents(deps.bus, logger) : undefined;
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
    announce: events?.announce,
  });
  // Listening before serving: no write of this replica can precede the stream or the subscription.
  await events?.start(models);
  let erasure: ErasureParticipant | undefined;
  try {
    erasure = deps.bus
      ? await startErasureParticipant({
          bus: deps.bus,
          service: PRODUCER,
          consumer: pm.erasure,
          logger,
          // DeleteUser's deletion: versions, pointer, idempotency records, the cached copy, and
          // PersonalModelUpdated version 0 for the other replicas. A redelivery finds nothing and
          // confirms again.
          erase: async (r) => ({ itemsDeleted: await models.deleteUser(r.tenant, r.userPseudonym, r.erasureId) }),
        })
      : undefined;
  } catch (err) {
    await events?.stop();
    throw err;
  }
  const server = createGrpcServer({
    config: grpc,
    logger,
    descriptorSet: loadDescriptorSet(),
    services: [{ definition: v1.PersonalModelServiceService, implementation: createPersonalModelService({ models, config: pm }) }],
  });
  let bound: BoundAddress;
  try {
    bound = await server.start();
  } catch (err) {
    await erasure?.close();
    await events?.stop();
    throw err;
  }
  for (const name of PERSONAL_MODEL_GRPC_SERVICES) server.setServingStatus(name, 'SERVING');
  logger.info({ address: bound.address, store: deps.store.kind, events: events !== undefined, erasureGroup: erasure?.consumer.durable, cacheMaxBytes: pm.cache.maxBytes, versionsKept: pm.versionsKept }, 'personal-model serving');
  return {
    address: bound.address,
    port: bound.port,
    server,
    models,
    store,
    events,
    erasure,
    stats: () => models.stats(),
    stop: async () => {
      await server.drain();
      await erasure?.close();
      await events?.stop();
    },
  };
}
