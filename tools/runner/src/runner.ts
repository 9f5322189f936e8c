import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createInProcessBus, type EventBus } from '@aimass/events';
import { createGrpcServer, createLogger, type GrpcServer, type Logger } from '@aimass/platform';
import { loadDescriptorSet } from '@aimass/proto';
import { openSqliteStore, type DocumentStore } from '@aimass/storage';
import type { RunnerConfig } from './config.js';
import type { EmbeddedService, RunningService } from './embedded.js';

export interface RunningPlatform {
  /** host:port of the runner's own endpoint: health for every embedded service, and reflection. */
  readonly address: string;
  readonly services: readonly RunningService[];
  readonly dataDir: string;
  /** The bus every embedded service shares. */
  readonly bus: EventBus;
  /** The runner's gRPC server, for signal handling. */
  readonly server: GrpcServer;
  /** Stops the services in reverse order, then the bus and the stores. */
  stop(): Promise<void>;
}

/**
 * Starts the embedded platform: one data directory, one in-process event bus with a journal (so
 * acknowledged events survive a restart, as they do on JetStream), one SQLite file per service,
 * then each service, then the runner's own health and reflection endpoint.
 */
export async function startPlatform(
  config: RunnerConfig,
  logger: Logger,
  services: readonly EmbeddedService[],
): Promise<RunningPlatform> {
  const dataDir = resolve(config.runner.dataDir);
  await mkdir(dataDir, { recursive: true });
  const bus: EventBus = createInProcessBus({ journalPath: join(dataDir, 'events.journal') });
  const stores: DocumentStore[] = [];
  const running: RunningService[] = [];

  const stopAll = async () => {
    for (const service of [...running].reverse()) {
      await service.stop().catch((err: unknown) => logger.error({ err, service: service.name }, 'service failed to stop'));
    }
    await bus.close();
    for (const store of stores) await store.close();
  };

  try {
    for (const [i, service] of services.entries()) {
      const port = config.runner.servicePortBase === 0 ? 0 : config.runner.servicePortBase + (service.portOffset ?? i);
      running.push(
        await service.start({
          dataDir,
          bus,
          host: config.grpc.host,
          port,
          addressOf: (name) => {
            const found = running.find((r) => r.name === name);
            if (!found) throw new Error(`service "${name}" is not running yet: list it before "${service.name}" in the registry`);
            return found.address;
          },
          // Its own logger rather than a child, so each line carries one `service` field: the service's.
          logger: createLogger({ service: service.name, level: config.log.level }),
          openStore: async (name) => {
            const store = await openSqliteStore({ path: join(dataDir, `${name}.sqlite`) });
            stores.push(store);
            return store;
          },
        }),
      );
    }

    const server = createGrpcServer({ config: config.grpc, logger, services: [], descriptorSet: loadDescriptorSet() });
    const bound = await server.start();
    for (const service of running) {
      for (const name of service.grpcServices) server.setServingStatus(name, 'SERVING');
    }
    server.onDrain(() => {
      for (const service of running) for (const name of service.grpcServices) server.setServingStatus(name, 'NOT_SERVING');
    });
    return { address: bound.address, services: running, dataDir, bus, server, stop: stopAll };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
