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
