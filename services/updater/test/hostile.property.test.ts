import { v1 } from '@aimass/proto';
import { RawGrpcClient, hostileString, waitUntil } from '@aimass/testing';
import { hostileRpcSuite } from '@aimass/testing/vitest';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningUpdater } from '../src/service.js';
import { pseudonymizer, startStack, type Stack } from './support/stack.js';

/**
 * Property-based hostile input (issue 7) for UpdaterAdminService, on a real updater (SQLite file,
 * nats-server, real general-model and personal-model behind it): generated requests, tenant headers
 * and deadlines never get an INTERNAL or UNKNOWN answer, and a known-good ExportFeedback keeps
 * answering the history it answered before.
 */
const NUM_RUNS = 100;
const MALFORMED_RUNS = 50;
const T = 'acme';
const U = v1.UpdaterAdminServiceService;

describe('updater admin API under hostile input (fast-check, real gRPC, SQLite and NATS)', () => {
  let stack: Stack;
  let updater: RunningUpdater;
  let raw: RawGrpcClient;
  const good = pseudonymizer.pseudonymize(T, 'erin');
  // Refits act on this user, so none can change the known-good user's history.
  const target = 'mallory';

  beforeAll(async () => {
    stack = await startStack();
    updater = await stack.startUpdater();
    await stack.feedback({ tenant: T, user: 'erin', text: 0, label: 'spam' });
    await stack.feedback({ tenant: T, user: target, text: 1, label: 'ham' });
    await waitUntil(async () => (await exportOf(good)).feedback.length === 1, 'the known-good feedback applied');
    raw = new RawGrpcClient(updater.address);
  });
  afterAll(async () => {
    raw?.close();
    await stack?.stop();
  });

  const exportOf = (pseudonym: string) => stack.adminCall(updater.address, 'exportFeedback', T, { userPseudonym: pseudonym });
  const knownGood = async () => {
    const res = await exportOf(good);
    expect(res.feedback.map((f) => f.label)).toEqual(['spam']);
  };

  const mostly = <V>(valid: V, hostile: fc.Arbitrary<V>) => fc.oneof({ weight: 3, arbitrary: fc.constant(valid) }, { weight: 1, arbitrary: hostile });
  const userId = mostly(target, fc.oneof(hostileString({ longLengths: [86, 257, 70_000] }), fc.constant(target.toUpperCase())));
  const modelRef = fc.option(
    fc.record({ name: mostly('general', hostileString()), version: mostly('1', fc.oneof(fc.constantFrom('', '2', '0', '-1', '01', '1e3', '9007199254740993'), hostileString())) }),
    { nil: undefined },
  );
  const pseudonym = mostly(
    pseudonymizer.pseudonymize(T, target),
    fc.oneof(hostileString(), fc.constantFrom(good.toUpperCase(), `${good}x`, good.slice(0, -1), 'a'.repeat(65), '*', '>')),
  );

  const rpcs: { name: string; def: { path: string; requestSerialize: (r: never) => Buffer }; valid: unknown; request: fc.Arbitrary<unknown> }[] = [
    { name: 'RefitUser', def: U.refitUser, valid: { userId: target, generalModel: { name: 'general', version: '1' } }, request: fc.record({ userId, generalModel: modelRef }) },
    { name: 'RefitAll', def: U.refitAll, valid: { generalModel: { name: 'general', version: '1' }, onlyStale: true }, request: fc.record({ generalModel: modelRef, onlyStale: fc.boolean() }) },
    { name: 'GetTrainingState', def: U.getTrainingState, valid: { userId: target }, request: fc.record({ userId: mostly('', userId) }) },
    { name: 'ExportFeedback', def: U.exportFeedback, valid: { userPseudonym: pseudonymizer.pseudonymize(T, target) }, request: fc.record({ userPseudonym: pseudonym }) },
  ];

  hostileRpcSuite({ service: 'updater', rpcs, client: () => raw, knownGood, tenant: T, numRuns: NUM_RUNS, malformedRuns: MALFORMED_RUNS, expectRefusals: true });

  it('the updater settles after the hostile refits: no job left running, the known-good history intact', { timeout: 30_000 }, async () => {
    const busy = new Set([v1.RefitJobState.REFIT_JOB_STATE_QUEUED, v1.RefitJobState.REFIT_JOB_STATE_RUNNING]);
    await waitUntil(async () => (await stack.adminCall(updater.address, 'getTrainingState', T, { userId: '' })).jobs.every((j) => !busy.has(j.state)), 'every refit job finished', 20_000);
    await updater.whenIdle();
    await knownGood();
  });
});
