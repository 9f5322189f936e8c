import { ALL_GENERAL_CHANGED, decodeEvent } from '@aimass/events';
import { v1 } from '@aimass/proto';
import { waitUntil } from '@aimass/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningUpdater } from '../src/service.js';
import { expectExactlyOnce, waitForExamples } from './support/checks.js';
import { addToyGeneralModel } from './support/general.js';
import { pseudonymizer, startStack, type Stack } from './support/stack.js';

const { REFIT_JOB_STATE_COMPLETED: COMPLETED } = v1.RefitJobState;
const g1 = { name: 'general', version: '1' };
const g2 = { name: 'general', version: '2' };

/** Refits from the history: on demand, after a general model change, and for feedback from another version. */
describe('updater refits', () => {
  let stack: Stack;
  let updater: RunningUpdater;
  const tenant = 'refit';
  const rae = pseudonymizer.pseudonymize(tenant, 'rae');
  const ray = pseudonymizer.pseudonymize(tenant, 'ray');
  const changes: v1.GeneralModelVersionChanged[] = [];

  const job = async (jobId: string) => {
    let found: v1.RefitJob | undefined;
    await waitUntil(
      async () => {
        const state = await stack.adminCall(updater.address, 'getTrainingState', tenant, { userId: '' });
        found = state.jobs.find((j) => j.jobId === jobId);
        return found?.state === COMPLETED;
      },
      `refit job ${jobId} to complete (last: ${JSON.stringify(found)})`,
      15_000,
    );
    return found!;
  };

  beforeAll(async () => {
    // Every version stays loaded: a refit may target an older one.
    stack = await startStack({ versionPolicy: 'all' });
    updater = await stack.startUpdater();
    await stack.bus.subscribe(ALL_GENERAL_CHANGED, (e) => void changes.push(decodeEvent('aimass.v1.GeneralModelVersionChanged', e.data)));
    for (let i = 0; i < 5; i++) await stack.feedback({ tenant, user: 'rae', text: i });
    for (let i = 0; i < 3; i++) await stack.feedback({ tenant, user: 'ray', text: i + 5 });
    await waitForExamples(stack, tenant, rae, 5);
    await waitForExamples(stack, tenant, ray, 3);
    await updater.whenIdle();
    await updater.checkGeneral();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('RefitUser rebuilds a user\'s model from the history, paired with the target general version', async () => {
    await addToyGeneralModel(stack.dir.path, 2);
    await stack.general.manager.load('general');
    const before = await stack.model(tenant, rae);
    expect(before).toMatchObject({ generalModel: g1, exampleCount: 5 });

    const res = await stack.adminCall(updater.address, 'refitUser', tenant, { userId: 'rae', generalModel: g2 });
    expect(res.job).toMatchObject({ generalModel: g2, usersTotal: 1 });
    const done = await job(res.job!.jobId);
    expect(done).toMatchObject({ usersDone: 1, usersFailed: 0 });

    const after = await stack.model(tenant, rae);
    expect(after).toMatchObject({ version: before!.version + 1, kind: v1.UpdateKind.UPDATE_KIND_REFIT, generalModel: g2, exampleCount: 5, lastAppliedSequence: before!.lastAppliedSequence });
    // The refit model scores general outputs of its version.
    const classified = await stack.generalClient.classify(tenant, g2, [{ kind: { $case: 'text', value: 'free money' } }]);
    const scored = await stack.personalCall('score', tenant, { items: [{ itemId: 'x', userPseudonym: rae, general: classified.outputs[0], sparseFeatures: undefined }] });
    expect(scored.results[0]!.status).toBe(v1.ScoreStatus.SCORE_STATUS_OK);
  });

  it('a new served general version refits the stale users only, announced once', async () => {
    // Version 2 is served now (the newest loaded); rae is paired with it already, ray is not.
    const raeBefore = await stack.model(tenant, rae);
    const rayBefore = await stack.model(tenant, ray);
    await updater.checkGeneral();
    await updater.checkGeneral();
    await waitUntil(() => changes.length >= 1, 'GeneralModelVersionChanged');
    expect(changes).toHaveLength(1);
    expect(changes[0]).toMatchObject({ envelope: { tenant, producer: 'updater' }, previous: g1, current: g2, requiresRefit: true });

    const state = await stack.adminCall(updater.address, 'getTrainingState', tenant, { userId: '' });
    const jobs = state.jobs.filter((j) => j.generalModel?.version === '2' && j.usersTotal === 2);
    expect(jobs).toHaveLength(1);
    const done = await job(jobs[0]!.jobId);
    expect(done).toMatchObject({ usersTotal: 2, usersDone: 2, usersFailed: 0 });

    expect(await stack.model(tenant, rae)).toEqual(raeBefore);
    const rayAfter = await stack.model(tenant, ray);
    expect(rayAfter).toMatchObject({ version: rayBefore!.version + 1, kind: v1.UpdateKind.UPDATE_KIND_REFIT, generalModel: g2, exampleCount: 3 });
  });

  it('feedback produced by the old general version is not trained across versions: the user is refitted', async () => {
    // The stack's recorded outputs come from version 1, like a Feedback answered just before the switch.
    const before = await stack.model(tenant, ray);
    await stack.feedback({ tenant, user: 'ray', text: 1 });
    const after = await waitForExamples(stack, tenant, ray, 4);
    expect(after).toMatchObject({ version: before!.version + 1, kind: v1.UpdateKind.UPDATE_KIND_REFIT, generalModel: g2 });
    expect(updater.stats().applier.refits).toBeGreaterThanOrEqual(1);

    // Feedback of the paired version trains incrementally on top.
    await stack.feedback({ tenant, user: 'ray', text: 2, withoutGeneral: true });
    const next = await waitForExamples(stack, tenant, ray, 5);
    expect(next).toMatchObject({ version: after.version + 1, kind: v1.UpdateKind.UPDATE_KIND_TRAIN, generalModel: g2 });
    const state = await stack.adminCall(updater.address, 'getTrainingState', tenant, { userId: 'ray' });
    expect(state.user).toMatchObject({ currentVersion: next.version, pendingEvents: 0, refitPending: false, generalModel: g2 });
  });

  it('keeps every incremental version consecutive for a user never refitted', async () => {
    const other = pseudonymizer.pseudonymize('refit-other', 'ola');
    for (let i = 0; i < 3; i++) await stack.feedback({ tenant: 'refit-other', user: 'ola', text: i, withoutGeneral: true });
    await waitForExamples(stack, 'refit-other', other, 3);
    expectExactlyOnce(await stack.versions('refit-other', other), 3);
  });
});
