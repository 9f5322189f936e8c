import { describe, expect, it } from 'vitest';
import { v1 } from '@aimass/proto';
import { finished, isAbandoned, jobToProto, needsRefit, newJob, orderJobs, progressed, refitPendingFor, started } from './jobs.js';

const g1 = { name: 'general', version: '1' };
const g2 = { name: 'general', version: '2' };
const t0 = new Date('2025-01-01T00:00:00Z');
const later = (ms: number) => new Date(t0.getTime() + ms);

const all = () => newJob({ jobId: 'j1', kind: 'all', onlyStale: true, target: g2, owner: 'r1', now: t0, usersTotal: 3 });

describe('refit jobs', () => {
  it('go queued → running → completed, counting users and moving the cursor', () => {
    let job = all();
    expect(job.state).toBe('queued');
    job = started(job, 'r1', later(10));
    expect(job).toMatchObject({ state: 'running', startedAt: later(10) });
    job = progressed(job, { done: 2, failed: 1, cursor: 'm' }, later(20));
    expect(job).toMatchObject({ usersDone: 2, usersFailed: 1, cursor: 'm', heartbeatAt: later(20) });
    expect(finished(job, later(30))).toMatchObject({ state: 'completed', finishedAt: later(30) });
    expect(finished(job, later(30), 'store down')).toMatchObject({ state: 'failed', error: 'store down' });
    // A taken-over job keeps its first start.
    expect(started(job, 'r2', later(99)).startedAt).toEqual(later(10));
  });

  it('are abandoned once their heartbeat is stale, and only while active', () => {
    const job = started(all(), 'r1', t0);
    expect(isAbandoned(job, later(59_999), 60_000)).toBe(false);
    expect(isAbandoned(job, later(60_000), 60_000)).toBe(true);
    expect(isAbandoned(finished(job, t0), later(600_000), 60_000)).toBe(false);
  });

  it('a stale-only job refits users paired with another version or without a model', () => {
    expect(needsRefit({ onlyStale: true, target: g2 }, g1)).toBe(true);
    expect(needsRefit({ onlyStale: true, target: g2 }, undefined)).toBe(true);
    expect(needsRefit({ onlyStale: true, target: g2 }, g2)).toBe(false);
    expect(needsRefit({ onlyStale: false, target: g2 }, g2)).toBe(true);
  });

  it('say whether a user still has a refit coming', () => {
    const job = progressed(started(all(), 'r1', t0), { done: 1, cursor: 'm' }, t0);
    expect(refitPendingFor(job, 'z', g1)).toBe(true);
    expect(refitPendingFor(job, 'z', g2)).toBe(false);
    expect(refitPendingFor(job, 'a', g1)).toBe(false);
    const one = newJob({ jobId: 'j2', kind: 'user', pseudonym: 'q', onlyStale: false, target: g2, owner: 'r1', now: t0, usersTotal: 1 });
    expect(refitPendingFor(one, 'q', g2)).toBe(true);
    expect(refitPendingFor(one, 'r', g1)).toBe(false);
    expect(refitPendingFor(finished(one, t0), 'q', g1)).toBe(false);
  });

  it('list active jobs first, then the most recent', () => {
    const a = finished(newJob({ jobId: 'a', kind: 'all', onlyStale: true, target: g2, owner: 'r', now: later(3), usersTotal: 0 }), later(4));
    const b = newJob({ jobId: 'b', kind: 'all', onlyStale: true, target: g2, owner: 'r', now: later(1), usersTotal: 0 });
    const c = finished(newJob({ jobId: 'c', kind: 'all', onlyStale: true, target: g2, owner: 'r', now: later(2), usersTotal: 0 }), later(4));
    expect(orderJobs([a, b, c]).map((j) => j.jobId)).toEqual(['b', 'a', 'c']);
  });

  it('read on the wire with their target and counts', () => {
    const job = finished(progressed(started(all(), 'r1', later(1)), { done: 3 }, later(2)), later(3));
    expect(jobToProto(job)).toEqual({
      jobId: 'j1',
      generalModel: g2,
      state: v1.RefitJobState.REFIT_JOB_STATE_COMPLETED,
      usersTotal: 3,
      usersDone: 3,
      usersFailed: 0,
      startedAt: later(1),
      finishedAt: later(3),
    });
  });
});
