import { credentials as grpcCredentials } from '@grpc/grpc-js';
import { v1 } from '@aimass/proto';
import { UnaryCaller, channelOptionsOf, type CallOptions, type ConnectionOptions } from './caller.js';

/** A general model, by name and version (empty: the tenant's current one). */
export interface GeneralModelRef {
  name?: string | undefined;
  version?: string | undefined;
}

export type RefitJobState = 'queued' | 'running' | 'completed' | 'failed' | 'unspecified';

export interface RefitJob {
  jobId: string;
  /** The general model the users are refitted on. */
  generalModel: { name: string; version: string } | undefined;
  state: RefitJobState;
  usersTotal: number;
  usersDone: number;
  usersFailed: number;
  startedAt: Date | undefined;
  finishedAt: Date | undefined;
}

export interface UserTrainingState {
  /** The user's pseudonym (the platform never returns the user id it was given). */
  userPseudonym: string;
  /** Current personal model version; 0 without a model. */
  currentVersion: number;
  generalModel: { name: string; version: string } | undefined;
  /** The user's feedback events received but not yet learnt from. */
  pendingEvents: number;
  lastAppliedSequence: number;
  lastTrainedAt: Date | undefined;
  refitPending: boolean;
}

export interface TrainingState {
  /** Feedback events of the tenant not yet received by the updater (consumer lag). */
  pendingEvents: number;
  /** Present when a user was asked about. */
  user: UserTrainingState | undefined;
  /** Refit jobs, running ones first, then the most recent. */
  jobs: RefitJob[];
}

const JOB_STATES: Record<number, RefitJobState> = {
  [v1.RefitJobState.REFIT_JOB_STATE_QUEUED]: 'queued',
  [v1.RefitJobState.REFIT_JOB_STATE_RUNNING]: 'running',
  [v1.RefitJobState.REFIT_JOB_STATE_COMPLETED]: 'completed',
  [v1.RefitJobState.REFIT_JOB_STATE_FAILED]: 'failed',
};

function modelRef(m: v1.ModelRef | undefined): { name: string; version: string } | undefined {
  return m ? { name: m.name, version: m.version } : undefined;
}

function toGeneralModel(ref: GeneralModelRef | undefined): v1.ModelRef | undefined {
  return ref ? { name: ref.name ?? '', version: ref.version ?? '' } : undefined;
}

function toJob(job: v1.RefitJob | undefined): RefitJob {
  if (!job) throw new TypeError('the server answered without a refit job');
  return {
    jobId: job.jobId,
    generalModel: modelRef(job.generalModel),
    state: JOB_STATES[job.state] ?? 'unspecified',
    usersTotal: Number(job.usersTotal),
    usersDone: Number(job.usersDone),
    usersFailed: Number(job.usersFailed),
    startedAt: job.startedAt,
    finishedAt: job.finishedAt,
  };
}

/**
 * The updater's training control (aimass.v1.UpdaterAdminService): refit a user's personal model,
 * or every stale one, from their feedback history, and watch training progress. `address` is the
 * updater's. Queuing a refit is not retried (an answer lost in transit may hide a queued job); reading
 * the state is.
 */
export class TrainingAdminClient {
  readonly #client: v1.UpdaterAdminServiceClient;
  readonly #caller: UnaryCaller;

  constructor(options: ConnectionOptions) {
    this.#caller = new UnaryCaller(options);
    this.#client = new v1.UpdaterAdminServiceClient(options.address, options.credentials ?? grpcCredentials.createInsecure(), channelOptionsOf(options));
  }

  /** Queues a full refit of one user's model on the tenant's current (or the given) general model. */
  async refitUser(userId: string, options: CallOptions & { generalModel?: GeneralModelRef | undefined } = {}): Promise<RefitJob> {
    const request: v1.RefitUserRequest = { userId, generalModel: toGeneralModel(options.generalModel) };
    const response = await this.#caller.unary(this.#client, 'RefitUser', this.#client.refitUser, request, options, false);
    return toJob(response.job);
  }

  /** Queues a refit of the tenant's users (by default only those paired with another general version). */
  async refitAll(options: CallOptions & { generalModel?: GeneralModelRef | undefined; onlyStale?: boolean | undefined } = {}): Promise<RefitJob> {
    const request: v1.RefitAllRequest = { generalModel: toGeneralModel(options.generalModel), onlyStale: options.onlyStale ?? true };
    const response = await this.#caller.unary(this.#client, 'RefitAll', this.#client.refitAll, request, options, false);
    return toJob(response.job);
  }

  /** The tenant's consumer lag and refit jobs, and one user's training state when `userId` is given. */
  async trainingState(userId?: string, options: CallOptions = {}): Promise<TrainingState> {
    const response = await this.#caller.unary(this.#client, 'GetTrainingState', this.#client.getTrainingState, { userId: userId ?? '' }, options);
    const u = response.user;
    return {
      pendingEvents: Number(response.pendingEvents),
      user: u
        ? {
            userPseudonym: u.userPseudonym,
            currentVersion: Number(u.currentVersion),
            generalModel: modelRef(u.generalModel),
            pendingEvents: Number(u.pendingEvents),
            lastAppliedSequence: Number(u.lastAppliedSequence),
            lastTrainedAt: u.lastTrainedAt,
            refitPending: u.refitPending,
          }
        : undefined,
      jobs: response.jobs.map(toJob),
    };
  }

  /** Closes the channel. */
  close(): void {
    this.#client.close();
  }
}
