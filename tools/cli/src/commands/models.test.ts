import { describe, expect, it } from 'vitest';
import type { RefitJob, TrainingState } from '@aimass/sdk';
import { TrainingWaitError } from '../format.js';
import { waitForJob } from './models.js';

const QUEUED: RefitJob = {
  jobId: 'j-1',
  generalModel: { name: 'general', version: '3' },
  state: 'queued',
  usersTotal: 3,
  usersDone: 0,
  usersFailed: 0,
  startedAt: undefined,
  finishedAt: undefined,
};

/** An updater whose job list is scripted poll by poll (the last one repeats). */
function updater(...lists: RefitJob[][]) {
  let polls = 0;
  return {
    get polls() {
      return polls;
    },
    async trainingState(): Promise<TrainingState> {
      const jobs = lists[Math.min(polls++, lists.length - 1)]!;
      return { pendingEvents: 0, user: undefined, jobs };
    },
  };
}

describe('waitForJob', () => {
  it('follows the job until it completes, telling each change once', async () => {
    const other: RefitJob = { ...QUEUED, jobId: 'j-0', state: 'running' };
    const running = { ...QUEUED, state: 'running' as const, usersDone: 1 };
    const admin = updater([other, QUEUED], [other, running], [other, running], [{ ...running, usersDone: 2 }], [{ ...running, state: 'completed', usersDone: 3 }]);
    const seen: string[] = [];
    const done = await waitForJob(admin, QUEUED, { pollMs: 1, onChange: (j) => seen.push(`${j.state} ${j.usersDone}`) });
    expect(done).toMatchObject({ jobId: 'j-1', state: 'completed', usersDone: 3 });
    expect(seen).toEqual(['running 1', 'running 2', 'completed 3']);
    expect(admin.polls).toBe(5);
  });

  it('returns a failed job as it is (the command exits 1 on it)', async () => {
    const failed = await waitForJob(updater([{ ...QUEUED, state: 'failed', usersFailed: 1 }]), QUEUED, { pollMs: 1 });
    expect(failed.state).toBe('failed');
  });

  it('does not poll a job that is already finished', async () => {
    const admin = updater([]);
    expect(await waitForJob(admin, { ...QUEUED, state: 'completed' }, { pollMs: 1 })).toMatchObject({ state: 'completed' });
    expect(admin.polls).toBe(0);
  });

  it('gives up when the updater stops listing the job', async () => {
    const err = await waitForJob(updater([QUEUED], []), QUEUED, { pollMs: 1, missingMs: 20 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TrainingWaitError);
    expect((err as Error).message).toBe('the updater no longer lists refit job j-1 (its list holds running and recent jobs): see `aimass models state`');
  });
});
