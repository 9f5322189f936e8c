/**
 * Refit jobs: RefitUser, RefitAll, and the tenant-wide refit a general model change starts. A job
 * is a record in the store, run by the replica that created it (or took it over), with its
 * progress and a heartbeat written as compare-and-sets. Users are handled in pseudonym order, a
 * few at a time; the cursor (the last user of a finished group) is where a taken-over job resumes.
 * A user's refit holds the user against incremental updates in this process, and the personal
 * model's compare-and-set keeps other replicas' updates apart.
 */
import { ConflictError, NotFoundError, type Logger } from '@aimass/platform';
import type { PersonalModelClient } from '../adapters/personal-model-client.js';
import type { UpdaterStore, JobRecord } from '../adapters/updater-store.js';
import { uuidv7, type GeneralRef } from '../domain/ids.js';
import { finished, isAbandoned, needsRefit, newJob, progressed, started, type RefitJob } from '../domain/jobs.js';
import { Semaphore } from '../domain/scheduler.js';
import type { Refitter } from './refitter.js';

export interface RefitJobsOptions {
  readonly store: UpdaterStore;
  readonly personal: PersonalModelClient;
  readonly refitter: Refitter;
  readonly logger: Logger;
  /** This replica's id, recorded as the owner of the jobs it runs. */
  readonly owner: string;
  /** Users refitted at once, across jobs. */
  readonly concurrency: number;
  /** A job whose owner has not written it for this long may be taken over. */
  readonly jobStaleMs: number;
  /** Runs `fn` with the user held against incremental updates (the scheduler's `exclusive`). */
  readonly exclusive: <T>(tenant: string, pseudonym: string, fn: () => Promise<T>) => Promise<T>;
  /** Called after a user's refit: pending feedback above the new watermark is applied, the mark cleared. */
  readonly afterRefit: (tenant: string, pseudonym: string) => void;
  readonly now?: (() => Date) | undefined;
}

export interface JobRequest {
  readonly kind: 'user' | 'all';
  readonly pseudonym?: string | undefined;
  readonly onlyStale: boolean;
  readonly target: GeneralRef;
  /** A derived id makes creation idempotent across replicas; a new UUID v7 by default. */
  readonly jobId?: string | undefined;
}

/** Serialized, compare-and-set writes of one job's record; `lost` once another replica owns it. */
class JobWriter {
  #chain: Promise<void> = Promise.resolve();
  lost = false;

  constructor(
    private readonly store: UpdaterStore,
    private readonly tenant: string,
    public job: RefitJob,
    private version: number,
    private readonly logger: Logger,
  ) {}

  /** Applies `change` to the job now and writes it; a write that fails is carried by the next one. */
  update(change: (job: RefitJob) => RefitJob): Promise<void> {
    this.job = change(this.job);
    this.#chain = this.#chain.then(async () => {
      if (this.lost) return;
      try {
        const version = await this.store.writeJob(this.tenant, this.job, this.version);
        if (version === undefined) this.lost = true;
        else this.version = version;
      } catch (err) {
        this.logger.warn({ err, tenant: this.tenant, jobId: this.job.jobId }, 'refit job progress not written; the next write carries it');
      }
    });
    return this.#chain;
  }
}

export class RefitJobs {
  readonly #o: RefitJobsOptions;
  readonly #now: () => Date;
  readonly #slots: Semaphore;
  readonly #running = new Map<string, Promise<void>>();
  #stopping = false;

  constructor(options: RefitJobsOptions) {
    this.#o = options;
    this.#now = options.now ?? (() => new Date());
    this.#slots = new Semaphore(options.concurrency);
  }

  /** Creates a job and starts it here; a job with the same (derived) id that exists already is returned as it is. */
  async create(tenant: string, request: JobRequest): Promise<RefitJob> {
    const o = this.#o;
    const usersTotal = request.kind === 'user' ? 1 : await o.store.countUsers(tenant);
    const job = newJob({ ...request, jobId: request.jobId ?? uuidv7(), owner: o.owner, now: this.#now(), usersTotal });
    if (!(await o.store.createJob(tenant, job))) {
      const existing = await o.store.job(tenant, job.jobId);
      if (!existing) throw new ConflictError('the refit job was deleted while being created: retry');
      return existing.job;
    }
    o.logger.info({ tenant, jobId: job.jobId, kind: job.kind, pseudonym: job.pseudonym, onlyStale: job.onlyStale, target: job.target, usersTotal }, 'refit job created');
    this.#launch(tenant, { job, version: 1 });
    return job;
  }

  /** Takes over active jobs whose owner stopped writing them (a replica that died). */
  async takeOverAbandoned(): Promise<number> {
    let taken = 0;
    const now = this.#now();
    for (const tenant of await this.#o.store.tenants()) {
      for (const record of await this.#o.store.activeJobs(tenant)) {
        if (this.#running.has(runKey(tenant, record.job.jobId)) || !isAbandoned(record.job, now, this.#o.jobStaleMs)) continue;
        this.#o.logger.info({ tenant, jobId: record.job.jobId, previousOwner: record.job.owner, cursor: record.job.cursor }, 'taking over an abandoned refit job');
        this.#launch(tenant, record);
        taken++;
      }
    }
    return taken;
  }

  /** Jobs running in this process. */
  runningHere(): number {
    return this.#running.size;
  }

  /** Waits for the jobs running here (tests). */
  async whenIdle(): Promise<void> {
    while (this.#running.size > 0) await Promise.allSettled([...this.#running.values()]);
  }

  /** Stops taking up users; jobs stop after their current group and are taken over later. */
  async stop(): Promise<void> {
    this.#stopping = true;
    await Promise.allSettled([...this.#running.values()]);
  }

  #launch(tenant: string, record: JobRecord): void {
    if (this.#stopping) return;
    const key = runKey(tenant, record.job.jobId);
    if (this.#running.has(key)) return;
    const run = this.#run(tenant, record)
      .catch((err: unknown) => this.#o.logger.error({ err, tenant, jobId: record.job.jobId }, 'refit job stopped by an error; it is taken over once its heartbeat is stale'))
      .finally(() => this.#running.delete(key));
    this.#running.set(key, run);
  }

  async #run(tenant: string, record: JobRecord): Promise<void> {
    const o = this.#o;
    const claimed = started(record.job, o.owner, this.#now());
    const version = await o.store.writeJob(tenant, claimed, record.version);
    if (version === undefined) return; // Another replica claimed it first.
    const writer = new JobWriter(o.store, tenant, claimed, version, o.logger);
    const heartbeat = setInterval(() => void writer.update((j) => ({ ...j, heartbeatAt: this.#now() })), Math.max(250, Math.floor(o.jobStaleMs / 4)));
    heartbeat.unref?.();
    try {
      const group: string[] = [];
      const runGroup = async () => {
        const outcomes = await Promise.all(group.map((user) => this.#refitOne(tenant, writer.job, user)));
        const done = outcomes.filter((x) => x === 'done').length;
        await writer.update((j) => progressed(j, { done, failed: outcomes.length - done, cursor: group[group.length - 1]! }, this.#now()));
        group.length = 0;
      };
      const users = claimed.kind === 'user' ? oneUser(claimed.pseudonym ?? '', claimed.cursor) : o.store.usersAfter(tenant, claimed.cursor);
      for await (const user of users) {
        if (this.#stopping || writer.lost) return;
        group.push(user);
        if (group.length >= o.concurrency) await runGroup();
      }
      if (group.length > 0) await runGroup();
      if (this.#stopping || writer.lost) return;
      await writer.update((j) => finished(j, this.#now()));
      o.logger.info({ tenant, jobId: claimed.jobId, usersDone: writer.job.usersDone, usersFailed: writer.job.usersFailed }, 'refit job completed');
    } catch (err) {
      await writer.update((j) => finished(j, this.#now(), err instanceof Error ? err.message : String(err)));
      throw err;
    } finally {
      clearInterval(heartbeat);
    }
  }

  async #refitOne(tenant: string, job: RefitJob, pseudonym: string): Promise<'done' | 'failed'> {
    const o = this.#o;
    try {
      await this.#slots.run(() =>
        o.exclusive(tenant, pseudonym, async () => {
          if (job.onlyStale) {
            const model = await o.personal.model(tenant, pseudonym);
            if (model.version > 0 && !needsRefit(job, model.general)) return;
          }
          const outcome = await o.refitter.refit(tenant, pseudonym, job.target, job.kind === 'user' ? 'RefitUser' : job.onlyStale ? 'refit of stale users' : 'RefitAll');
          if (outcome.kind === 'no-history') throw new NotFoundError('no feedback history to refit from');
          // A user without training consent is left as they are, and counted as done: no retry would change it.
        }),
      );
      o.afterRefit(tenant, pseudonym);
      return 'done';
    } catch (err) {
      o.logger.warn({ err, tenant, pseudonym, jobId: job.jobId }, 'refit of one user failed');
      return 'failed';
    }
  }
}

function runKey(tenant: string, jobId: string): string {
  return `${tenant}/${jobId}`;
}

async function* oneUser(pseudonym: string, cursor: string): AsyncGenerator<string> {
  if (pseudonym > cursor) yield pseudonym;
}
