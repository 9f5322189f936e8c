/**
 * Refit jobs: their record, their life cycle, and how they read on the wire. A job is run by the
 * replica that owns it; the owner rewrites the record (progress and a heartbeat) with a
 * compare-and-set, so a replica that lost the job to another (after its heartbeat went stale)
 * notices at its next write and stops.
 */
import { v1 } from '@aimass/proto';
import { sameGeneral } from './general.js';
import type { GeneralRef } from './ids.js';

export type JobState = 'queued' | 'running' | 'completed' | 'failed';

export interface RefitJob {
  readonly jobId: string;
  /** `user`: one user (RefitUser); `all`: every user of the tenant with history (RefitAll). */
  readonly kind: 'user' | 'all';
  /** The user of a `user` job. */
  readonly pseudonym: string | undefined;
  /** Only users whose model is not paired with the target (or who have none). */
  readonly onlyStale: boolean;
  /** Resolved when the job was created: a request for "the current one" is pinned then. */
  readonly target: GeneralRef;
  readonly state: JobState;
  readonly usersTotal: number;
  readonly usersDone: number;
  readonly usersFailed: number;
  /** Pseudonym of the last user handled, in pseudonym order: where a taken-over job resumes. */
  readonly cursor: string;
  readonly createdAt: Date;
  readonly startedAt: Date | undefined;
  readonly finishedAt: Date | undefined;
  /** Rewritten by the owner while it runs the job. */
  readonly heartbeatAt: Date;
  /** The replica running the job. */
  readonly owner: string;
  /** Why it failed, when it did. */
  readonly error: string | undefined;
}

export function newJob(init: { jobId: string; kind: 'user' | 'all'; pseudonym?: string | undefined; onlyStale: boolean; target: GeneralRef; owner: string; now: Date; usersTotal: number }): RefitJob {
  return {
    jobId: init.jobId,
    kind: init.kind,
    pseudonym: init.pseudonym,
    onlyStale: init.onlyStale,
    target: init.target,
    state: 'queued',
    usersTotal: init.usersTotal,
    usersDone: 0,
    usersFailed: 0,
    cursor: '',
    createdAt: init.now,
    startedAt: undefined,
    finishedAt: undefined,
    heartbeatAt: init.now,
    owner: init.owner,
    error: undefined,
  };
}

export function isActive(job: RefitJob): boolean {
  return job.state === 'queued' || job.state === 'running';
}

/** An active job whose owner has not written it for `staleMs`: its replica stopped, another may take it over. */
export function isAbandoned(job: RefitJob, now: Date, staleMs: number): boolean {
  return isActive(job) && now.getTime() - job.heartbeatAt.getTime() >= staleMs;
}

export function started(job: RefitJob, owner: string, now: Date): RefitJob {
  return { ...job, state: 'running', owner, startedAt: job.startedAt ?? now, heartbeatAt: now };
}

export function progressed(job: RefitJob, step: { done?: number; failed?: number; cursor?: string }, now: Date): RefitJob {
  return {
    ...job,
    usersDone: job.usersDone + (step.done ?? 0),
    usersFailed: job.usersFailed + (step.failed ?? 0),
    cursor: step.cursor ?? job.cursor,
    heartbeatAt: now,
  };
}

export function finished(job: RefitJob, now: Date, error?: string): RefitJob {
  return { ...job, state: error === undefined ? 'completed' : 'failed', finishedAt: now, heartbeatAt: now, error };
}

/** Whether a user needs the job's refit: always for a full refit, else when the model is paired with another version (or missing). */
export function needsRefit(job: Pick<RefitJob, 'onlyStale' | 'target'>, paired: GeneralRef | undefined): boolean {
  return !job.onlyStale || !sameGeneral(paired, job.target);
}

/**
 * Whether an active job will still refit this user: a user job for them, or a tenant job that has
 * not reached them yet (pseudonym order) and that they need.
 */
export function refitPendingFor(job: RefitJob, pseudonym: string, paired: GeneralRef | undefined): boolean {
  if (!isActive(job)) return false;
  if (job.kind === 'user') return job.pseudonym === pseudonym;
  return pseudonym > job.cursor && needsRefit(job, paired);
}

/** Running and queued jobs first (newest first), then the others, newest first. */
export function orderJobs(jobs: readonly RefitJob[]): RefitJob[] {
  return [...jobs].sort((a, b) => Number(isActive(b)) - Number(isActive(a)) || b.createdAt.getTime() - a.createdAt.getTime() || (a.jobId < b.jobId ? 1 : -1));
}

const STATE: Record<JobState, v1.RefitJobState> = {
  queued: v1.RefitJobState.REFIT_JOB_STATE_QUEUED,
  running: v1.RefitJobState.REFIT_JOB_STATE_RUNNING,
  completed: v1.RefitJobState.REFIT_JOB_STATE_COMPLETED,
  failed: v1.RefitJobState.REFIT_JOB_STATE_FAILED,
};

export function jobToProto(job: RefitJob): v1.RefitJob {
  return {
    jobId: job.jobId,
    generalModel: { name: job.target.name, version: job.target.version },
    state: STATE[job.state],
    usersTotal: job.usersTotal,
    usersDone: job.usersDone,
    usersFailed: job.usersFailed,
    startedAt: job.startedAt,
    finishedAt: job.finishedAt,
  };
}

