import { status } from '@grpc/grpc-js';
import { v1 } from '@aimass/proto';
import {
  RawGrpcClient,
  deadlineIn,
  hostileArray,
  hostileInt32,
  hostileFloat32,
  hostileString,
  hostileUint32,
  tenantHeaders,
} from '@aimass/testing';
import { hostileRpcSuite } from '@aimass/testing/vitest';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pseudonymOf, startHarness, type Harness } from './support/harness.js';
import { GENERAL, example, mailWorld, scoreItem } from './support/world.js';

/**
 * Property-based hostile input (issue 7): personal-model is internal (only fusion and the updater
 * call it), but a bad request must still never crash it or answer INTERNAL.
 */
const NUM_RUNS = 100;
const MALFORMED_RUNS = 60;
const S = v1.PersonalModelServiceService;

describe('personal-model under hostile input (fast-check, real gRPC and SQLite)', () => {
  let h: Harness;
  let raw: RawGrpcClient;
  const world = mailWorld(3);
  const good = pseudonymOf('erin');
  // Hostile calls act on another user, so a DeleteUser or Rollback among them cannot change what the known-good call sees.
  const target = pseudonymOf('mallory');
  const mail = world.mail();

  beforeAll(async () => {
    h = await startHarness({ limits: { maxScoreItems: 64, maxTrainExamples: 64 } });
    await h.call('train', { userPseudonym: good, examples: [example(world.mail(), 'spam')], idempotencyKey: '', expectedVersion: 0 });
    await h.call('train', { userPseudonym: target, examples: [example(world.mail(), 'ham')], idempotencyKey: '', expectedVersion: 0 });
    raw = new RawGrpcClient(h.service.address);
  });
  afterAll(async () => {
    raw?.close();
    await h?.close();
  });

  const knownGood = async () => {
    const res = await h.call('score', { items: [scoreItem(good, mail)] });
    expect(res.results[0]!.status).toBe(v1.ScoreStatus.SCORE_STATUS_OK);
  };

  /** Mostly the well-formed value, sometimes a hostile one: cases get past the first check and reach the deeper ones. */
  const mostly = <T>(valid: T, hostile: fc.Arbitrary<T>) => fc.oneof({ weight: 3, arbitrary: fc.constant(valid) }, { weight: 1, arbitrary: hostile });
  const pseudonym = mostly(target, fc.oneof(hostileString(), fc.constant(target.toUpperCase()), fc.constant(`${target}x`)));
  const modelRef = fc.option(fc.record({ name: mostly(GENERAL.name, hostileString()), version: mostly(GENERAL.version, hostileString()) }), { nil: undefined });
  const floats = (valid: number[]) => mostly(valid, hostileArray(hostileFloat32(), { maxLength: 12, hugeCounts: [20_000], filler: 1 }));
  const generalOutput: fc.Arbitrary<v1.GeneralOutput | undefined> = fc.option(
    fc.record({ model: mostly<v1.ModelRef | undefined>(GENERAL, modelRef), logits: floats(mail.general.logits), probabilities: floats(mail.general.probabilities), embedding: floats(mail.general.embedding) }),
    { nil: undefined, freq: 8 },
  );
  const sparse: fc.Arbitrary<v1.SparseVector | undefined> = mostly(
    mail.sparse,
    fc.option(fc.record({ dimension: hostileUint32(), indices: hostileArray(hostileUint32(), { maxLength: 8, hugeCounts: [70_000], filler: 3 }), values: hostileArray(hostileFloat32(), { maxLength: 8 }) }), { nil: undefined }),
  );
  const uint64 = fc.oneof(fc.constantFrom(0, 1, 2, 3, Number.MAX_SAFE_INTEGER), fc.nat());
  const date = fc.option(fc.constantFrom(new Date(0), new Date(-8.64e15), new Date(8.64e15), new Date(Date.now() + 1e12), new Date()), { nil: undefined });
  const trainingExample: fc.Arbitrary<v1.TrainingExample> = fc.record({
    general: generalOutput,
    sparseFeatures: sparse,
    label: mostly('spam', hostileString()),
    weight: mostly(0, hostileFloat32()),
    sourceEventId: mostly('', hostileString()),
    occurredAt: date,
    sourceSequence: uint64,
  });
  const examples = hostileArray(trainingExample, { maxLength: 3, hugeCounts: [65, 2000], filler: example(mail, 'spam') });
  const key = mostly('', hostileString({ longLengths: [201, 600] }));
  const page = fc.option(fc.record({ pageSize: hostileUint32(), pageToken: mostly('', hostileString()) }), { nil: undefined });

  const rpcs = [
    {
      name: 'Score',
      def: S.score,
      valid: { items: [scoreItem(target, mail)] },
      request: fc.record({
        items: hostileArray(fc.record({ itemId: hostileString(), userPseudonym: pseudonym, general: generalOutput, sparseFeatures: sparse }), { maxLength: 3, hugeCounts: [65, 5000], filler: scoreItem(target, mail) }),
      }),
    },
    {
      name: 'Train',
      def: S.train,
      valid: { userPseudonym: target, examples: [example(mail, 'spam')], idempotencyKey: '', expectedVersion: 0 },
      request: fc.record({ userPseudonym: pseudonym, examples, idempotencyKey: key, expectedVersion: uint64 }),
    },
    {
      name: 'GetModel',
      def: S.getModel,
      valid: { userPseudonym: target, version: 0, includeParameters: true },
      request: fc.record({ userPseudonym: pseudonym, version: uint64, includeParameters: fc.boolean() }),
    },
    {
      name: 'ListVersions',
      def: S.listVersions,
      valid: { userPseudonym: target, page: undefined },
      request: fc.record({ userPseudonym: pseudonym, page }),
    },
    {
      name: 'Rollback',
      def: S.rollback,
      valid: { userPseudonym: target, toVersion: 1, expectedVersion: 0 },
      request: fc.record({ userPseudonym: pseudonym, toVersion: uint64, expectedVersion: uint64 }),
    },
    {
      name: 'DeleteUser',
      def: S.deleteUser,
      valid: { userPseudonym: target, erasureId: '' },
      request: fc.record({ userPseudonym: pseudonym, erasureId: mostly('', hostileString()) }),
    },
    {
      name: 'Refit',
      def: S.refit,
      valid: { userPseudonym: target, generalModel: GENERAL, examples: [example(mail, 'spam')], idempotencyKey: '', expectedVersion: 0 },
      request: fc.record({ userPseudonym: pseudonym, generalModel: mostly<v1.ModelRef | undefined>(GENERAL, modelRef), examples, idempotencyKey: key, expectedVersion: uint64 }),
    },
  ] as const;

  hostileRpcSuite({ service: 'personal-model', rpcs, client: () => raw, knownGood, tenant: 'acme', numRuns: NUM_RUNS, malformedRuns: MALFORMED_RUNS, expectRefusals: true });

  it('an example weighted at float32 max is INVALID_ARGUMENT, not a model overflowed to NaN (a case fast-check found)', async () => {
    for (const def of [S.train, S.refit]) {
      const big = { ...example(mail, 'spam'), weight: 3.4028234663852886e38 };
      const body = def.requestSerialize({ userPseudonym: target, generalModel: GENERAL, examples: [big], idempotencyKey: '', expectedVersion: 0 } as never);
      const outcome = await raw.unary(def.path, body, { metadata: tenantHeaders(['acme']), deadline: deadlineIn(10_000) });
      expect(outcome.code).toBe(status.INVALID_ARGUMENT);
      expect(outcome.details).toMatch(/weight must be a finite number in \[0, 1000\]/);
    }
    await knownGood();
  });

  it('unknown enum-like numbers in int32 positions are harmless (sanity of the generator)', () => {
    fc.assert(fc.property(hostileInt32(), (n) => Number.isInteger(n)));
  });
});
