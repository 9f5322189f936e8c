import { credentials, status } from '@grpc/grpc-js';
import { v1 } from '@aimass/proto';
import {
  RawGrpcClient,
  deadlineIn,
  hostileArray,
  hostileFloat32,
  hostileInt32,
  hostileNumber,
  hostileString,
  hostileUint32,
  tenantHeaders,
} from '@aimass/testing';
import { hostileRpcSuite } from '@aimass/testing/vitest';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, predict, text } from './support/grpc.js';
import { startStack, type Stack } from './support/stack.js';

/**
 * Property-based hostile input (issue 7) for fusion's public APIs, InferenceService and
 * TenantAdminService (and the platform-internal CredentialService), in front of real general-model
 * and personal-model services: generated requests, tenant headers and deadlines never get an
 * INTERNAL or UNKNOWN answer, and a known-good Predict keeps succeeding.
 */
const NUM_RUNS = 100;
const MALFORMED_RUNS = 50;
const T = 'acme';
const I = v1.InferenceServiceService;
const A = v1.TenantAdminServiceService;
const C = v1.CredentialServiceService;
// fusion's defaults (README, "Limits"): bytes of one input, of a user id, of a key; items per batch.
const MAX_INPUT_BYTES = 256 * 1024;
const MAX_BATCH_ITEMS = 256;

const mostly = <V>(valid: V, hostile: fc.Arbitrary<V>) => fc.oneof({ weight: 3, arbitrary: fc.constant(valid) }, { weight: 1, arbitrary: hostile });

/** Any InputPayload: long texts (over the input limit too), mails with hostile headers, raw bytes of any type, typed features, nothing. */
function hostileInput(): fc.Arbitrary<v1.InputPayload> {
  const str = hostileString({ longLengths: [257, 70_000, MAX_INPUT_BYTES + 1] });
  const small = hostileString({ longLengths: [300] });
  const feature: fc.Arbitrary<v1.FeatureValue> = fc.oneof(
    hostileNumber().map((value) => ({ kind: { $case: 'number' as const, value } })),
    small.map((value) => ({ kind: { $case: 'category' as const, value } })),
    fc.array(hostileFloat32(), { maxLength: 4 }).map((values) => ({ kind: { $case: 'vector' as const, value: { values } } })),
    fc.record({ dimension: hostileUint32(), indices: fc.array(hostileUint32(), { maxLength: 4 }), values: fc.array(hostileFloat32(), { maxLength: 4 }) }).map((value) => ({ kind: { $case: 'sparse' as const, value } })),
  );
  return fc.oneof(
    { weight: 3, arbitrary: str.map((value) => ({ kind: { $case: 'text' as const, value } })) },
    { weight: 2, arbitrary: fc.record({ subject: small, body: str, headers: fc.dictionary(small, small, { maxKeys: 4 }) }).map((value) => ({ kind: { $case: 'mail' as const, value } })) },
    {
      weight: 1,
      arbitrary: fc
        .record({
          data: fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.constant(new Uint8Array([0xff, 0xfe, 0xc0, 0x80, 0xed, 0xa0, 0x80]))).map((b) => Buffer.from(b)),
          contentType: fc.oneof(fc.constantFrom('', 'text/plain', 'message/rfc822', 'text/html; charset=latin1', 'application/pdf'), small),
        })
        .map((value) => ({ kind: { $case: 'raw' as const, value } })),
    },
    { weight: 1, arbitrary: fc.dictionary(small, feature, { maxKeys: 3 }).map((values) => ({ kind: { $case: 'features' as const, value: { values } } })) },
    { weight: 1, arbitrary: fc.constant({ kind: undefined }) },
  );
}

describe('fusion under hostile input (fast-check, real gRPC, general-model, personal-model, SQLite)', () => {
  let stack: Stack;
  let raw: RawGrpcClient;
  let victimKeyId: string;
  const good = 'erin@example.com';
  const target = 'mallory@example.com';
  // Admin calls act on this tenant; the known-good Predict's tenant (acme) is never created, suspended or deleted by them.
  const victim = 'victim';
  const doomed = 'doomed';

  beforeAll(async () => {
    stack = await startStack();
    const admin = new v1.TenantAdminServiceClient(stack.fusion.address, credentials.createInsecure());
    try {
      const rpc = <Res>(method: 'createTenant' | 'createApiKey', req: unknown) =>
        new Promise<Res>((resolve, reject) =>
          (admin[method] as (r: unknown, md: unknown, o: unknown, cb: (e: Error | null, r: Res) => void) => void).call(admin, req, tenantHeaders([]), { deadline: deadlineIn(10_000) }, (e, r) => (e ? reject(e) : resolve(r))),
        );
      await rpc('createTenant', { tenantId: victim, displayName: 'Victim', settings: undefined });
      await rpc('createTenant', { tenantId: doomed, displayName: 'Doomed', settings: undefined });
      const key = await rpc<v1.CreateApiKeyResponse>('createApiKey', { tenantId: victim, name: 'k', scopes: [v1.ApiKeyScope.API_KEY_SCOPE_PREDICT], expiresAt: undefined });
      victimKeyId = key.key!.keyId;
    } finally {
      admin.close();
    }
    raw = new RawGrpcClient(stack.fusion.address);
  });
  afterAll(async () => {
    raw?.close();
    await stack?.stop();
  });

  const knownGood = async () => {
    const p = await predict(stack.client, good, text('win free money now'));
    expect(['ham', 'spam']).toContain(p.label);
  };

  const userId = mostly(target, fc.oneof(hostileString({ longLengths: [86, 257, 70_000] }), fc.constant(target.toUpperCase())));
  const key = mostly('', hostileString({ longLengths: [257, 70_000] }));
  const modelRef = fc.option(fc.record({ name: mostly('general', hostileString()), version: mostly('', fc.oneof(fc.constantFrom('1', '2', '0', '-1', '9007199254740993'), hostileString())) }), { nil: undefined });
  const predictOptions: fc.Arbitrary<v1.PredictOptions | undefined> = fc.option(
    fc.record({ strategy: mostly(0, hostileInt32()), topK: mostly(0, hostileUint32()), includeEmbedding: fc.boolean(), includeComponents: fc.boolean(), generalModel: mostly<v1.ModelRef | undefined>(undefined, modelRef) }),
    { nil: undefined, freq: 3 },
  );
  const input = mostly<v1.InputPayload | undefined>(text('quarterly invoice attached'), fc.option(hostileInput(), { nil: undefined, freq: 8 }));
  const date = fc.option(fc.constantFrom(new Date(0), new Date(-8.64e15), new Date(8.64e15), new Date(Date.now() + 1e12), new Date(Date.now() + 3_600_000), new Date()), { nil: undefined });
  const label = mostly('spam', fc.oneof(fc.constantFrom('ham', 'SPAM', 'unknown', ''), hostileString()));
  const tenantId = mostly(victim, fc.oneof(fc.constantFrom('', 'VICTIM', 'victim-', '-victim', 'a'.repeat(64), 'a.b', 'nope'), hostileString()));
  const doomedId = mostly(doomed, fc.oneof(fc.constantFrom('', 'DOOMED', 'doomed-', 'a.b', 'nope'), hostileString()));
  const page = fc.option(fc.record({ pageSize: hostileUint32(), pageToken: mostly('', fc.oneof(fc.constantFrom('1', '-1', 'victim', 'e30=', '99999999999999999999'), hostileString())) }), { nil: undefined });
  const settings: fc.Arbitrary<v1.TenantSettings | undefined> = fc.option(
    fc.record({
      defaultStrategy: mostly(0, hostileInt32()),
      consentDefaults: hostileArray(fc.record({ purpose: hostileInt32(), state: hostileInt32() }), { maxLength: 4, hugeCounts: [1025], filler: { purpose: 1, state: 1 } }),
      quota: fc.option(fc.record({ ratePerSecond: hostileNumber(), burst: hostileUint32(), maxConcurrency: hostileUint32() }), { nil: undefined }),
      generalModelName: mostly('', hostileString()),
      interpolationWeight: mostly(0, hostileNumber()),
      overrideThreshold: mostly(0, hostileNumber()),
    }),
    { nil: undefined },
  );
  const scopes = hostileArray(hostileInt32(), { maxLength: 5, hugeCounts: [1025, 100_000], filler: 1 });
  const keyId = mostly('', fc.oneof(fc.constant('victim-key'), hostileString()));
  const duration = fc.option(
    fc.record({ seconds: fc.constantFrom(0, -1, 1, 60, 86_400 * 3650 + 1, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER), nanos: mostly(0, hostileInt32()) }),
    { nil: undefined },
  );

  type Rpc = { name: string; def: { path: string; requestSerialize: (r: never) => Buffer }; valid: unknown; request: fc.Arbitrary<unknown>; stream?: boolean };
  const rpcs = (): Rpc[] => [
    { name: 'Predict', def: I.predict, valid: { userId: target, input: text('hello'), options: undefined }, request: fc.record({ userId, input, options: predictOptions }) },
    {
      name: 'PredictBatch',
      def: I.predictBatch,
      valid: { items: [{ itemId: 'a', userId: target, input: text('hello') }], options: undefined },
      request: fc.record({
        items: hostileArray(fc.record({ itemId: key, userId, input }), { maxLength: 3, hugeCounts: [MAX_BATCH_ITEMS + 1, 5_000], filler: { itemId: 'x', userId: target, input: text('hi') } }),
        options: predictOptions,
      }),
    },
    {
      name: 'PredictStream',
      def: I.predictStream,
      stream: true,
      valid: { itemId: 'a', userId: target, input: text('hello'), options: undefined },
      request: fc.record({ itemId: key, userId, input, options: predictOptions }),
    },
    {
      name: 'Feedback',
      def: I.feedback,
      valid: { userId: target, target: { $case: 'input', value: text('hello') }, label: 'spam', idempotencyKey: '', occurredAt: undefined },
      request: fc.record({
        userId,
        target: fc.oneof(
          fc.constant(undefined),
          fc.oneof(fc.constantFrom('', '00000000-0000-0000-0000-000000000000'), hostileString()).map((value) => ({ $case: 'predictionId' as const, value })),
          input.map((value) => ({ $case: 'input' as const, value: value ?? { kind: undefined } })),
        ),
        label,
        idempotencyKey: key,
        occurredAt: date,
      }),
    },
    { name: 'CreateTenant', def: A.createTenant, valid: { tenantId: 'fresh', displayName: 'x', settings: undefined }, request: fc.record({ tenantId, displayName: mostly('x', hostileString()), settings }) },
    { name: 'GetTenant', def: A.getTenant, valid: { tenantId: victim }, request: fc.record({ tenantId }) },
    { name: 'ListTenants', def: A.listTenants, valid: { page: undefined, includeDeleted: false }, request: fc.record({ page, includeDeleted: fc.boolean() }) },
    {
      name: 'UpdateTenant',
      def: A.updateTenant,
      valid: { tenantId: victim, displayName: 'y', settings: undefined, updateMask: ['display_name'], expectedRevision: 0 },
      request: fc.record({
        tenantId,
        displayName: mostly('y', hostileString()),
        settings,
        updateMask: fc.option(
          hostileArray(fc.oneof(fc.constantFrom('display_name', 'settings', 'settings.quota.rate_per_second', 'settings.quota', 'tenant_id', 'state', 'settings.nope', '*', ''), hostileString()), { maxLength: 4, hugeCounts: [1025] }),
          { nil: undefined },
        ),
        expectedRevision: fc.oneof(fc.constantFrom(0, 1, 2, Number.MAX_SAFE_INTEGER), fc.nat()),
      }),
    },
    {
      name: 'CreateApiKey',
      def: A.createApiKey,
      valid: { tenantId: victim, name: 'k', scopes: [1], expiresAt: undefined },
      request: fc.record({ tenantId, name: mostly('k', hostileString()), scopes, expiresAt: date }),
    },
    { name: 'ListApiKeys', def: A.listApiKeys, valid: { tenantId: victim, page: undefined, includeRevoked: true }, request: fc.record({ tenantId, page, includeRevoked: fc.boolean() }) },
    {
      name: 'RotateApiKey',
      def: A.rotateApiKey,
      valid: { tenantId: victim, keyId: 'victim-key', revokeOldAfter: undefined, expiresAt: undefined },
      request: fc.record({ tenantId, keyId, revokeOldAfter: duration, expiresAt: date }),
    },
    { name: 'RevokeApiKey', def: A.revokeApiKey, valid: { tenantId: victim, keyId: 'victim-key' }, request: fc.record({ tenantId, keyId }) },
    { name: 'LookupApiKey', def: C.lookupApiKey, valid: { keyId: 'victim-key' }, request: fc.record({ keyId }) },
    { name: 'ListTenantSettings', def: C.listTenantSettings, valid: { page: undefined }, request: fc.record({ page }) },
    {
      name: 'RecordApiKeyUse',
      def: C.recordApiKeyUse,
      valid: { uses: [{ keyId: 'victim-key', usedAt: new Date() }] },
      request: fc.record({ uses: hostileArray(fc.record({ keyId, usedAt: date }), { maxLength: 4, hugeCounts: [10_001], filler: { keyId: 'victim-key', usedAt: new Date() } }) }),
    },
    { name: 'SuspendTenant', def: A.suspendTenant, valid: { tenantId: victim, reason: 'test' }, request: fc.record({ tenantId, reason: mostly('test', hostileString()) }) },
    { name: 'ResumeTenant', def: A.resumeTenant, valid: { tenantId: victim }, request: fc.record({ tenantId }) },
    // Last, on its own tenant: a DeleteTenant that succeeds leaves nothing for the cases after it.
    {
      name: 'DeleteTenant',
      def: A.deleteTenant,
      valid: { tenantId: doomed, confirmTenantId: doomed },
      request: fc.record({ tenantId: doomedId, confirmTenantId: mostly(doomed, doomedId) }),
    },
  ];

  // The generators name the victim's key by a placeholder: its id is known only once beforeAll ran.
  const withKeyId = (req: unknown): unknown => (req && typeof req === 'object' && (req as { keyId?: unknown }).keyId === 'victim-key' ? { ...req, keyId: victimKeyId } : req);

  hostileRpcSuite({ service: 'fusion', rpcs: rpcs(), client: () => raw, knownGood, tenant: T, numRuns: NUM_RUNS, malformedRuns: MALFORMED_RUNS, prepare: withKeyId });

  it('an input over the limit is INVALID_ARGUMENT naming the field and the limit', async () => {
    const err = await call(stack.client, stack.client.predict, { userId: good, input: text('a'.repeat(MAX_INPUT_BYTES + 1)), options: undefined }).then(
      () => undefined,
      (e: { code: number; details: string }) => e,
    );
    expect(err?.code).toBe(status.INVALID_ARGUMENT);
    expect(err?.details).toMatch(/input/);
    expect(err?.details).toMatch(/262144/);
  });
});
