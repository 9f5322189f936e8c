import { resolve } from 'node:path';
import type { z } from 'zod';
import { setupServiceAuth, type AuthConfigInput } from '@aimass/auth';
import { resolveExecutionProviders } from '@aimass/ml';
import { TenantQuotas, createGrpcServer, grpcConfigSchema, quotaInterceptor, quotasConfigSchema, quotasLimitAnything, type GrpcServer, type Logger, type QuotasConfigInput } from '@aimass/platform';
import { SERVICE_NAMES, inference, loadDescriptorSet, v1 } from '@aimass/proto';
import { FsModelRepository } from './adapters/fs-repository.js';
import { WorkerPool, type PoolStats } from './adapters/worker-pool.js';
import { generalModelConfigSchema, type GeneralModelConfigInput } from './config.js';
import type { BatcherStats } from './domain/batcher.js';
import { createInferenceService } from './grpc/inference-service.js';
import { createTaskService } from './grpc/task-service.js';
import { ModelManager } from './runtime/model-manager.js';

export const SERVER_NAME = 'aimass-general-model';
export const SERVER_VERSION = '0.1.0';

/** The gRPC services this process serves (for health checks). */
export const GENERAL_MODEL_GRPC_SERVICES: readonly string[] = [SERVICE_NAMES.inference, SERVICE_NAMES.generalModel];

export interface GeneralModelStats {
  pool: PoolStats;
  /** Per loaded version, `name:version`. */
  batchers: Record<string, BatcherStats>;
}

export interface RunningGeneralModel {
  /** host:port of the gRPC server. */
  readonly address: string;
  readonly port: number;
  readonly server: GrpcServer;
  readonly manager: ModelManager;
  readonly pool: WorkerPool;
  /** Per-tenant quotas applied to incoming calls (the `quotas` section). */
  readonly quotas: TenantQuotas;
  /** Execution providers in use, in order, and those skipped with the reason. */
  readonly executionProviders: { providers: string[]; skipped: { name: string; reason: string }[] };
  stats(): GeneralModelStats;
  /** Releases models and workers (after the server has drained, e.g. as a shutdown hook). */
  close(): Promise<void>;
  /** Drains the server, then closes. */
  stop(): Promise<void>;
}

/**
 * Starts the general-model service: worker pool, repository, the startup models (awaited: the
 * server already answers ServerLive/ServerReady meanwhile), and the gRPC server with the Open
 * Inference Protocol and the task API. Load failures leave the server not ready; they do not throw.
 */
export async function startGeneralModel(
  config: {
    grpc: z.input<typeof grpcConfigSchema>;
    generalModel: GeneralModelConfigInput;
    quotas?: QuotasConfigInput | undefined;
    /** Authentication: in mode api-keys, predict-scoped API keys (checked through fusion's CredentialService) or platform service tokens. */
    auth?: AuthConfigInput | undefined;
  },
  logger: Logger,
): Promise<RunningGeneralModel> {
  const grpc = grpcConfigSchema.parse(config.grpc);
  const gm = generalModelConfigSchema.parse(config.generalModel);
  // Before any worker starts, so a configuration error leaves nothing behind.
  const auth = setupServiceAuth({ config: config.auth, service: 'general-model', logger });
  const choice = resolveExecutionProviders(gm.executionProviders);
  for (const s of choice.skipped) logger.warn({ provider: s.name, reason: s.reason }, 'execution provider skipped');
  logger.info({ executionProviders: choice.providers, poolSize: gm.poolSize, intraOpThreads: gm.intraOpThreads }, 'starting inference workers');

  const pool = await WorkerPool.start({
    size: gm.poolSize,
    intraOpNumThreads: gm.intraOpThreads,
    executionProviders: choice.providers,
    graphOptimizationLevel: gm.graphOptimizationLevel,
    logger,
  });
  const repository = new FsModelRepository(resolve(gm.repository));
  const manager = new ModelManager({
    repository,
    pool,
    logger,
    executionProvider: choice.providers[0] ?? 'cpu',
    defaults: {
      versionPolicy: gm.versionPolicy,
      maxBatchSize: gm.batching.maxBatchSize,
      maxQueueDelayMs: gm.batching.maxQueueDelayMs,
      preferredBatchSizes: gm.batching.preferredBatchSizes,
      maxQueueRows: gm.batching.maxQueueRows,
      batchesInFlightPerWorker: gm.batching.batchesInFlightPerWorker,
      allowNonFinite: gm.limits.allowNonFinite,
      maxInputElements: gm.limits.maxInputElements,
      warmup: gm.warmup,
    },
  });

  // Calls of one tenant are counted against its quotas before they reach the batch queue.
  const quotasConfig = quotasConfigSchema.parse(config.quotas ?? {});
  const quotas = TenantQuotas.fromConfig(quotasConfig);
  let server: GrpcServer;
  try {
    server = createGrpcServer({
      config: grpc,
      logger,
      descriptorSet: loadDescriptorSet(),
      // Authentication first: it decides the call's tenant, which the quotas count against.
      // Nothing limited (the default): no quota layer on the hot path, whose per-call cost the
      // batching benchmark measures against a bare grpc-js server.
      interceptors: [...auth.serverInterceptors, ...(quotasLimitAnything(quotasConfig) ? [quotaInterceptor(quotas, { logger, holdRefusalsMs: quotasConfig.holdRefusalsMs, maxHeldPerTenant: quotasConfig.maxHeldPerTenant })] : [])],
      services: [
        {
          definition: inference.GRPCInferenceServiceService,
          implementation: createInferenceService({ manager, serverName: SERVER_NAME, serverVersion: SERVER_VERSION }),
        },
        {
          definition: v1.GeneralModelServiceService,
          implementation: createTaskService({ manager, defaultModel: gm.taskModel }),
        },
      ],
    });
  } catch (err) {
    auth.close();
    await pool.close();
    throw err;
  }
  const setHealth = (ready: boolean) => {
    for (const name of GENERAL_MODEL_GRPC_SERVICES) server.setServingStatus(name, ready ? 'SERVING' : 'NOT_SERVING');
  };
  let bound;
  try {
    bound = await server.start();
  } catch (err) {
    auth.close();
    await pool.close();
    throw err;
  }
  manager.onReadinessChange((ready) => {
    if (!server.draining) setHealth(ready);
  });
  await manager.loadStartup(gm.models);
  setHealth(manager.isServerReady());
  logger.info({ address: bound.address, ready: manager.isServerReady(), repository: repository.root }, 'general-model serving');

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      await manager.close();
      await pool.close();
      auth.close();
    })();
    return closing;
  };
  return {
    address: bound.address,
    port: bound.port,
    server,
    manager,
    pool,
    quotas,
    executionProviders: choice,
    stats: () => ({ pool: pool.stats(), batchers: manager.batcherStats() }),
    close,
    async stop() {
      await server.drain();
      await close();
    },
  };
}
