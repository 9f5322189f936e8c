import { setTimeout as sleep } from 'node:timers/promises';
import { TrainingAdminClient, type RefitJob } from '@aimass/sdk';
import type { ConnectionOptions, ModelsRefitCommand, ModelsStateCommand } from '../args.js';
import { clock } from '../eval/progress.js';
import { EXIT_OK } from '../exit-codes.js';
import { formatRefitJob, formatTrainingState, trainingJson, TrainingWaitError } from '../format.js';
import type { CliIo } from '../io.js';

/** What `models` calls on the updater: TrainingAdminClient, or a fake in tests. */
export type TrainingAdmin = Pick<TrainingAdminClient, 'refitUser' | 'refitAll' | 'trainingState' | 'close'>;

export interface ModelsDependencies {
  connect: (c: ConnectionOptions) => TrainingAdmin;
  /** Time between two looks at a job with --wait. */
  pollMs: number;
}

const DEFAULTS: ModelsDependencies = {
  connect: (c) => new TrainingAdminClient({ address: c.address, tenant: c.tenant, apiKey: c.apiKey, defaultDeadlineMs: c.deadlineMs }),
  pollMs: 500,
};

function finished(job: RefitJob): boolean {
  return job.state === 'completed' || job.state === 'failed';
}

function changed(a: RefitJob, b: RefitJob): boolean {
  return a.state !== b.state || a.usersDone !== b.usersDone || a.usersFailed !== b.usersFailed || a.usersTotal !== b.usersTotal;
}

export interface WaitForJobOptions {
  pollMs: number;
  /** Told about the job each time its state or counts change. */
  onChange?: ((job: RefitJob) => void) | undefined;
  /**
   * How long the job may be missing from the updater's list before waiting gives up: the list
   * holds running and recent jobs only, so a job that drops out of it can no longer be followed.
   */
  missingMs?: number | undefined;
  signal?: AbortSignal | undefined;
}

/** Polls the updater's training state until `job` completed or failed; resolves with its last state. */
export async function waitForJob(admin: Pick<TrainingAdmin, 'trainingState'>, job: RefitJob, options: WaitForJobOptions): Promise<RefitJob> {
  const missingMs = options.missingMs ?? 10_000;
  let current = job;
  let seenAt = Date.now();
  while (!finished(current)) {
    await sleep(options.pollMs, undefined, { signal: options.signal });
    const state = await admin.trainingState(undefined, { signal: options.signal });
    const next = state.jobs.find((j) => j.jobId === job.jobId);
    if (next === undefined) {
      if (Date.now() - seenAt > missingMs) {
        throw new TrainingWaitError(
          `the updater no longer lists refit job ${job.jobId} (its list holds running and recent jobs): see \`aimass models state\``,
        );
      }
      continue;
    }
    seenAt = Date.now();
    if (changed(current, next)) options.onChange?.(next);
    current = next;
  }
  return current;
}

export async function modelsRefitCommand(options: ModelsRefitCommand, io: CliIo, deps: Partial<ModelsDependencies> = {}): Promise<number> {
  const { connect, pollMs } = { ...DEFAULTS, ...deps };
  const admin = connect(options.connection);
  try {
    const { scope, generalModel } = options;
    let job =
      'user' in scope ? await admin.refitUser(scope.user, { generalModel }) : await admin.refitAll({ generalModel, onlyStale: !scope.includeCurrent });
    if (options.wait) {
      const started = performance.now();
      const report = (j: RefitJob) =>
        io.stderr.write(`[refit ${clock(performance.now() - started)}] job ${j.jobId} ${j.state}: ${j.usersDone} of ${j.usersTotal} users done, ${j.usersFailed} failed\n`);
      report(job);
      job = await waitForJob(admin, job, { pollMs, onChange: report });
    }
    io.stdout.write(`${options.json ? trainingJson(job) : formatRefitJob(job)}\n`);
    if (job.state === 'failed') {
      throw new TrainingWaitError(`refit job ${job.jobId} failed after ${job.usersDone} of ${job.usersTotal} users (${job.usersFailed} failed): see the updater's log`);
    }
    if (options.wait && job.usersFailed > 0) {
      // A completed job may still have left users on their old model (paired with the old general version).
      io.stderr.write(`aimass models refit: job ${job.jobId} completed, but ${job.usersFailed} of ${job.usersTotal} users failed: see the updater's log\n`);
    }
    return EXIT_OK;
  } finally {
    admin.close();
  }
}

export async function modelsStateCommand(options: ModelsStateCommand, io: CliIo, deps: Partial<ModelsDependencies> = {}): Promise<number> {
  const admin = (deps.connect ?? DEFAULTS.connect)(options.connection);
  try {
    const state = await admin.trainingState(options.user);
    io.stdout.write(`${options.json ? trainingJson(state) : formatTrainingState(state, options.user !== undefined)}\n`);
    return EXIT_OK;
  } finally {
    admin.close();
  }
}
