import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { createInProcessBus, type EventBus } from '@aimass/events';
import { createGrpcServer, createLogger, type GrpcServer, type Logger } from '@aimass/platform';
import { loadDescriptorSet } from '@aimass/proto';
import { openSqliteStore, type DocumentStore } from '@aimass/storage';
import { embeddedAuth } from './auth.js';
import type { RunnerConfig } from './config.js';
import type { EmbeddedService, RunningService } from './embedded.js';

/** The service whose CredentialService the others verify API keys with. */
const CREDENTIAL_SERVICE = 'fusion';

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

export interface StartPlatformOptions {
  /** Variables the `auth` section is read from (AIMASS_AUTH__*); `process.env` by default. */
  readonly env?: Readonly<Record<string, string | undefined>> | undefined;
}

/**
 * Starts the embedded platform: one data directory, one in-process event bus with a journal (so
 * acknowledged events survive a restart, as they do on JetStream), one SQLite file per service,
 * one `auth` section for all of them (auth.ts), then each service, then the runner's own health
 * and reflection endpoint.
 */
export async function startPlatform(
  config: RunnerConfig,
  logger: Logger,
  services: readonly EmbeddedService[],
  options: StartPlatformOptions = {},
): Promise<RunningPlatform> {
  const dataDir = resolve(config.runner.dataDir);
  await mkdir(dataDir, { recursive: true });
  const base = config.runner.servicePortBase;
  const ports = services.map((s, i) => (base === 0 ? 0 : base + (s.portOffset ?? i)));
  const fusionIndex = services.findIndex((s) => s.name === CREDENTIAL_SERVICE);
  let fusionAddress: string | undefined;
  // Before anything opens: a bad auth section stops the run with nothing to clean up.
  const auth = await embeddedAuth({
    env: options.env,
    dataDir,
    logger,
    fusionAddress: async () => {
      if (fusionIndex < 0) return undefined;
      // The services started before fusion must know where it will listen: with OS-chosen ports
      // (base 0) its port is picked now. It stays free until fusion binds it unless something
      // else binds it in between, which a bind to port 0 almost never does; fusion then fails
      // to start with EADDRINUSE, it never listens somewhere unexpected.
      if (ports[fusionIndex] === 0) ports[fusionIndex] = await freePort(config.grpc.host);
      fusionAddress = dialable(config.grpc.host, ports[fusionIndex]!);
      return fusionAddress;
    },
  });
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
      const started = await service.start({
        dataDir,
        bus,
        host: config.grpc.host,
        port: ports[i]!,
        auth,
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
      });
      running.push(started);
      // The others were told to verify keys at this address; a service listening elsewhere would
      // leave every API key refused as "unavailable", so stop now and say why.
      if (i === fusionIndex && fusionAddress !== undefined && started.address !== fusionAddress) {
        throw new Error(`${CREDENTIAL_SERVICE} listens on ${started.address}, not on ${fusionAddress} where the other services verify API keys`);
      }
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

/** A port free at this moment on `host`. */
function freePort(host: string): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolvePort(address.port) : reject(new Error(`no free port on ${host}`))));
    });
  });
}

/** host:port as the gRPC servers report it (IPv6 in brackets). */
function dialable(host: string, port: number): string {
  return `${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${port}`;
}
