import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';

export interface ServiceSettings {
  readonly repository: string;
  readonly model: string;
  readonly port: number;
  readonly workers: number;
  readonly intraOp: number;
}

/**
 * The service's configuration for one benchmark model, as the AIMASS_* environment variables
 * its main reads (services/general-model/src/config.ts). Batching is not here: it is the
 * model's config.json in the repository, as a Triton user would set it.
 */
export function serviceEnvironment(s: ServiceSettings): Record<string, string> {
  return {
    AIMASS_GRPC__HOST: '127.0.0.1',
    AIMASS_GRPC__PORT: String(s.port),
    AIMASS_GRPC__MAX_RECEIVE_MESSAGE_BYTES: String(64 * 1024 * 1024),
    AIMASS_GRPC__MAX_SEND_MESSAGE_BYTES: String(64 * 1024 * 1024),
    AIMASS_LOG__LEVEL: 'warn',
    AIMASS_GENERAL_MODEL__REPOSITORY: s.repository,
    AIMASS_GENERAL_MODEL__MODELS: JSON.stringify([s.model]),
    AIMASS_GENERAL_MODEL__TASK_MODEL: s.model,
    AIMASS_GENERAL_MODEL__POOL_SIZE: String(s.workers),
    AIMASS_GENERAL_MODEL__INTRA_OP_THREADS: String(s.intraOp),
  };
}

/**
 * Sets a model's batching the way a Triton user does: in the model's config.json, keeping
 * whatever else is there (train-general writes the signature).
 */
export async function writeBatchingConfig(path: string, batching: { readonly maxBatch: number; readonly queueDelayMs: number }): Promise<void> {
  const config = existsSync(path) ? (JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>) : {};
  config.max_batch_size = batching.maxBatch;
  config.dynamic_batching = { max_queue_delay_microseconds: batching.queueDelayMs * 1000, default_queue_policy: { max_queue_size: 4096 } };
  await writeFile(path, `${JSON.stringify(config, null, 2)}\n`);
}

/** Common keys of every service process the bench starts (platform config: gRPC, logging). */
function baseEnvironment(port: number): Record<string, string> {
  return {
    AIMASS_GRPC__HOST: '127.0.0.1',
    AIMASS_GRPC__PORT: String(port),
    AIMASS_LOG__LEVEL: 'warn',
  };
}

/** personal-model (services/personal-model/src/config.ts): its SQLite file; everything else at the service's defaults. */
export function personalModelEnvironment(s: { readonly port: number; readonly storePath: string }): Record<string, string> {
  return { ...baseEnvironment(s.port), AIMASS_STORE__KIND: 'sqlite', AIMASS_STORE__PATH: s.storePath };
}

/**
 * fusion (services/fusion/src/config.ts): its SQLite file (prediction records, feedback keys),
 * the pseudonym secret, the two models' addresses; everything else at the service's defaults
 * (strategy STACKING, deadline budget).
 */
export function fusionEnvironment(s: {
  readonly port: number;
  readonly storePath: string;
  readonly pseudonymSecret: string;
  readonly generalModel: string;
  readonly personalModel: string;
}): Record<string, string> {
  return {
    ...baseEnvironment(s.port),
    AIMASS_STORE__KIND: 'sqlite',
    AIMASS_STORE__PATH: s.storePath,
    AIMASS_PSEUDONYM__SECRET: s.pseudonymSecret,
    AIMASS_FUSION__GENERAL_MODEL__ADDRESS: s.generalModel,
    AIMASS_FUSION__PERSONAL_MODEL__ADDRESS: s.personalModel,
  };
}

/**
 * The `events` section of a service that publishes or consumes events (libs/events
 * `eventsConfigSchema`): NATS JetStream at `servers`, everything else at the library's defaults.
 */
export function eventsEnvironment(servers: string): Record<string, string> {
  return { AIMASS_EVENTS__KIND: 'nats', AIMASS_EVENTS__SERVERS: servers };
}

/**
 * updater (services/updater/src/config.ts): its SQLite file (feedback history, training state),
 * the pseudonym secret (the same as fusion's, so both name a user alike), the bus it consumes,
 * the two models' addresses; everything else at the service's defaults (batch window, batch
 * size, concurrency).
 */
export function updaterEnvironment(s: {
  readonly port: number;
  readonly storePath: string;
  readonly pseudonymSecret: string;
  readonly natsServers: string;
  readonly generalModel: string;
  readonly personalModel: string;
}): Record<string, string> {
  return {
    ...baseEnvironment(s.port),
    ...eventsEnvironment(s.natsServers),
    AIMASS_STORE__KIND: 'sqlite',
    AIMASS_STORE__PATH: s.storePath,
    AIMASS_PSEUDONYM__SECRET: s.pseudonymSecret,
    AIMASS_UPDATER__GENERAL_MODEL__ADDRESS: s.generalModel,
    AIMASS_UPDATER__PERSONAL_MODEL__ADDRESS: s.personalModel,
  };
}

/**
 * privacy (services/privacy/src/config.ts): its SQLite file, the pseudonym secret (the same as
 * fusion's and the updater's, so all three name a user alike) and the tenant KEK from
 * configuration; the bus comes from `eventsEnvironment`.
 */
export function privacyEnvironment(s: { readonly port: number; readonly storePath: string; readonly pseudonymSecret: string; readonly kek: string }): Record<string, string> {
  return {
    ...baseEnvironment(s.port),
    AIMASS_STORE__KIND: 'sqlite',
    AIMASS_STORE__PATH: s.storePath,
    AIMASS_PSEUDONYM__SECRET: s.pseudonymSecret,
    AIMASS_DATA_KEYS__KEK_SOURCE: 'config',
    AIMASS_DATA_KEYS__KEK_SECRET__DEFAULT: s.kek,
  };
}
