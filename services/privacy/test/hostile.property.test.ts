import { status } from '@grpc/grpc-js';
import { v1 } from '@aimass/proto';
import {
  RawGrpcClient,
  deadlineIn,
  hostileArray,
  hostileInt32,
  hostileString,
  hostileUint32,
  tenantHeaders,
} from '@aimass/testing';
import { hostileRpcSuite } from '@aimass/testing/vitest';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { P, S, getRequest, pseudonymizer, setRequest, startStack, type Stack } from './support/stack.js';

/**
 * Property-based hostile input (issue 7) for the public consent API: generated requests, tenant
 * headers and deadlines against a real privacy service (SQLite file, nats-server), which must never
 * answer INTERNAL or UNKNOWN and must keep answering a known-good request.
 */
const NUM_RUNS = 100;
const MALFORMED_RUNS = 50;
const T = 'acme';
const PS = v1.PrivacyServiceService;

describe('privacy under hostile input (fast-check, real gRPC, SQLite and NATS)', () => {
  let stack: Stack;
  let raw: RawGrpcClient;
  const good = 'erin@example.com';
  // Hostile calls act on another user, so an Erase among them cannot change what the known-good call sees.
  const target = 'mallory@example.com';

  beforeAll(async () => {
    stack = await startStack();
    await stack.call('setConsent', T, setRequest(good, P.PURPOSE_PERSONALIZATION, S.CONSENT_STATE_GRANTED));
    await stack.call('setConsent', T, setRequest(target, P.PURPOSE_TRAINING, S.CONSENT_STATE_DENIED));
    raw = new RawGrpcClient(stack.privacy.address);
  });
  afterAll(async () => {
    raw?.close();
    await stack?.stop();
  });

  const knownGood = async () => {
    const res = await stack.call('getConsent', T, getRequest(good, [P.PURPOSE_PERSONALIZATION]));
    expect(res.decisions[0]).toMatchObject({ purpose: P.PURPOSE_PERSONALIZATION, state: S.CONSENT_STATE_GRANTED, isDefault: false });
  };

  const mostly = <V>(valid: V, hostile: fc.Arbitrary<V>) => fc.oneof({ weight: 3, arbitrary: fc.constant(valid) }, { weight: 1, arbitrary: hostile });
  // Just over the 256-byte limits (in characters: one multi-byte character is several bytes), and far over.
  const str = (valid: string) => mostly(valid, hostileString({ longLengths: [129, 257, 70_000] }));
  const userId = mostly(target, fc.oneof(hostileString({ longLengths: [86, 257, 70_000] }), fc.constant(target.toUpperCase()), fc.constant(` ${target}`)));
  const purpose = mostly<number>(P.PURPOSE_TRAINING, hostileInt32());
  const state = mostly<number>(S.CONSENT_STATE_GRANTED, hostileInt32());
  const date = fc.option(fc.constantFrom(new Date(0), new Date(-8.64e15), new Date(8.64e15), new Date(Date.now() + 1e12), new Date(Date.now() + 3_600_000), new Date()), { nil: undefined });
  const page = fc.option(
    fc.record({ pageSize: hostileUint32(), pageToken: mostly('', fc.oneof(fc.constantFrom('1', '-1', '0', 'e30=', '99999999999999999999', 'AAAA'), hostileString())) }),
    { nil: undefined },
  );
  const erasureId = fc.oneof(fc.constantFrom('', 'er_0000', '00000000-0000-0000-0000-000000000000'), hostileString());

  const rpcs: { name: string; def: { path: string; requestSerialize: (r: never) => Buffer }; valid: unknown; request: fc.Arbitrary<unknown> }[] = [
    {
      name: 'SetConsent',
      def: PS.setConsent,
      valid: setRequest(target, P.PURPOSE_TRAINING, S.CONSENT_STATE_GRANTED),
      request: fc.record({ userId, purpose, state, policyVersion: str('v1'), source: str('web-settings'), decidedAt: date, idempotencyKey: str('') }),
    },
    {
      name: 'GetConsent',
      def: PS.getConsent,
      valid: getRequest(target),
      request: fc.record({
        userId,
        purposes: hostileArray(hostileInt32(), { maxLength: 4, hugeCounts: [1025, 100_000], filler: P.PURPOSE_TRAINING }),
        userPseudonym: mostly('', fc.oneof(hostileString(), fc.constant(pseudonymizer.pseudonymize(T, target)))),
      }),
    },
    { name: 'GetConsentHistory', def: PS.getConsentHistory, valid: { userId: target, purpose: 0, page: undefined }, request: fc.record({ userId, purpose, page }) },
    { name: 'Erase', def: PS.erase, valid: { userId: target, reason: 'test', idempotencyKey: '' }, request: fc.record({ userId, reason: str('test'), idempotencyKey: str('') }) },
    { name: 'GetErasureReceipt', def: PS.getErasureReceipt, valid: { erasureId: 'er_0000' }, request: fc.record({ erasureId }) },
    { name: 'Export', def: PS.export, valid: { userId: target, format: 1 }, request: fc.record({ userId, format: mostly<number>(1, hostileInt32()) }) },
  ];

  hostileRpcSuite({ service: 'privacy', rpcs, client: () => raw, knownGood, tenant: T, numRuns: NUM_RUNS, malformedRuns: MALFORMED_RUNS, expectRefusals: true });

  it('a user id over the limit is INVALID_ARGUMENT naming the field and the limit', async () => {
    const outcome = await raw.unary(PS.setConsent.path, PS.setConsent.requestSerialize(setRequest('é'.repeat(129), P.PURPOSE_TRAINING, S.CONSENT_STATE_GRANTED)), {
      metadata: tenantHeaders([T]),
      deadline: deadlineIn(5_000),
    });
    expect(outcome.code).toBe(status.INVALID_ARGUMENT);
    expect(outcome.details).toMatch(/user_id/);
    expect(outcome.details).toMatch(/256/);
  });
});
