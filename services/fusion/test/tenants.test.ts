import { join } from 'node:path';
import { credentials, status } from '@grpc/grpc-js';
import { issueServiceToken } from '@aimass/auth';
import { connectNatsBus, decodeEvent, type DeliveredEvent, type NatsEventBus } from '@aimass/events';
import type { RunningGeneralModel } from '@aimass/general-model';
import { durationFromMs, v1 } from '@aimass/proto';
import { openSqliteStore, type DocumentStore } from '@aimass/storage';
import { NatsServer, healthStatus, tempDir, waitUntil, type TempDir } from '@aimass/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFusion, type RunningFusion } from '../src/service.js';
import { TENANT_EVENTS_STREAM } from '../src/adapters/tenant-events.js';
import { INTERNAL_SECRET, OPERATOR_TOKEN, apiKeysAuth, codeOf, expectCode, rpc } from './support/auth.js';
import { TEST_SECRET } from './support/fusion.js';
import { addToyGeneralModel, startGeneral } from './support/general.js';
import { captureLogs } from './support/logs.js';
import { startPersonal, type TestPersonal } from './support/personal.js';

const { PREDICT, FEEDBACK, ADMIN } = {
  PREDICT: v1.ApiKeyScope.API_KEY_SCOPE_PREDICT,
  FEEDBACK: v1.ApiKeyScope.API_KEY_SCOPE_FEEDBACK,
  ADMIN: v1.ApiKeyScope.API_KEY_SCOPE_ADMIN,
};
/** fusion B's key cache TTL: the bound on how late it sees a revocation made through fusion A. */
const CACHE_TTL_MS = 400;

const generalName = (r: v1.PredictResponse) => r.prediction?.provenance?.models.find((m) => m.role === v1.ModelRole.MODEL_ROLE_GENERAL)?.model?.name;
const predictRequest = (userId: string): v1.PredictRequest => ({ userId, input: { kind: { $case: 'text', value: 'quarterly invoice attached' } }, options: undefined });

/**
 * Tenants and API keys on real fusion instances (SQLite, gRPC, nats-server for TenantDeleted) in
 * front of real general-model and personal-model: the operator's and a tenant admin's powers, the
 * key lifecycle (create, revoke, expiry, rotation), suspension and deletion.
 */
describe('tenants and API keys (integration)', () => {
  let dir: TempDir;
  let nats: NatsServer;
  let bus: NatsEventBus;
  let general: RunningGeneralModel;
  let personal: TestPersonal;
  let storeA: DocumentStore;
  let storeB: DocumentStore;
  let fusionA: RunningFusion;
  let fusionB: RunningFusion;
  let adminA: v1.TenantAdminServiceClient;
  let inferA: v1.InferenceServiceClient;
  let inferB: v1.InferenceServiceClient;
  let credentialClient: v1.CredentialServiceClient;
  const logs = captureLogs('fusion');

  beforeAll(async () => {
    dir = await tempDir('fusion-tenants');
    nats = await NatsServer.start();
    bus = await connectNatsBus({ servers: nats.url, name: 'fusion-tenants-test', reconnectTimeWaitMs: 100, pullExpiresMs: 1_000 });
    await addToyGeneralModel(dir.path);
    // A second model, for a tenant whose settings name its own general model.
    await addToyGeneralModel(dir.path, 1, 'general-b');
    [general, personal] = await Promise.all([startGeneral(dir.path, logs.logger), startPersonal(logs.logger)]);
    const storePath = join(dir.path, 'fusion.sqlite');
    storeA = await openSqliteStore({ path: storePath });
    storeB = await openSqliteStore({ path: storePath });
    const start = (store: DocumentStore, cacheTtlMs: number, withBus: boolean) =>
      startFusion(
        {
          grpc: { host: '127.0.0.1', port: 0, drainTimeoutMs: 2_000 },
          pseudonym: { secret: TEST_SECRET },
          fusion: { generalModel: { address: general.address }, personalModel: { address: personal.address } },
          auth: apiKeysAuth({ cacheTtlMs }),
        },
        logs.logger,
        { store, bus: withBus ? bus : undefined },
      );
    fusionA = await start(storeA, 5_000, true);
    // A second replica on the same store: it learns of changes made through A only by reading the store.
    fusionB = await start(storeB, CACHE_TTL_MS, false);
    adminA = new v1.TenantAdminServiceClient(fusionA.address, credentials.createInsecure());
    inferA = new v1.InferenceServiceClient(fusionA.address, credentials.createInsecure());
    inferB = new v1.InferenceServiceClient(fusionB.address, credentials.createInsecure());
    credentialClient = new v1.CredentialServiceClient(fusionA.address, credentials.createInsecure());
  });

  afterAll(async () => {
    for (const c of [adminA, inferA, inferB, credentialClient]) c?.close();
    await fusionB?.stop();
    await fusionA?.stop();
    await storeB?.close();
    await storeA?.close();
    await personal?.stop();
    await general?.stop();
    await bus?.close();
    await nats?.dispose();
    await dir?.remove();
  });

  const operator = { bearer: OPERATOR_TOKEN };
  const admin = <Res>(method: string, request: unknown, bearer = OPERATOR_TOKEN) => rpc<Res>(adminA, method, request, { bearer });
  const createTenant = (tenantId: string) =>
    admin<v1.CreateTenantResponse>('createTenant', { tenantId, displayName: `${tenantId} Inc.`, settings: undefined });
  const createKey = async (tenantId: string, scopes: v1.ApiKeyScope[], extra: Partial<v1.CreateApiKeyRequest> = {}, bearer = OPERATOR_TOKEN) =>
    admin<v1.CreateApiKeyResponse>('createApiKey', { tenantId, name: `${scopes.join('+')} key`, scopes, expiresAt: undefined, ...extra }, bearer);

  it('lets the operator create, read, list and update tenants, with a compare-and-set on the revision', async () => {
    const created = await createTenant('ops-one');
    expect(created.tenant).toMatchObject({ tenantId: 'ops-one', displayName: 'ops-one Inc.', state: v1.TenantState.TENANT_STATE_ACTIVE, revision: 1 });
    await expectCode(createTenant('ops-one'), status.ALREADY_EXISTS, /already exists/);
    await expectCode(createTenant('Not_Valid'), status.INVALID_ARGUMENT, /tenant_id/);

    const got = await admin<v1.GetTenantResponse>('getTenant', { tenantId: 'ops-one' });
    expect(got.tenant?.revision).toBe(1);
    const listed = await admin<v1.ListTenantsResponse>('listTenants', { page: { pageSize: 100, pageToken: '' } });
    expect(listed.tenants.map((t) => t.tenantId)).toContain('ops-one');

    const updated = await admin<v1.UpdateTenantResponse>('updateTenant', {
      tenantId: 'ops-one',
      displayName: 'Ops One',
      settings: v1.TenantSettings.fromPartial({ quota: { ratePerSecond: 50, burst: 100, maxConcurrency: 0 } }),
      updateMask: ['display_name', 'settings.quota.rate_per_second'],
      expectedRevision: 1,
    });
    expect(updated.tenant).toMatchObject({ displayName: 'Ops One', revision: 2 });
    expect(updated.tenant?.settings?.quota).toMatchObject({ ratePerSecond: 50, burst: 0 });
    // Based on revision 1, which is gone: ABORTED, and nothing changes.
    await expectCode(admin('updateTenant', { tenantId: 'ops-one', displayName: 'Stale', settings: undefined, updateMask: ['display_name'], expectedRevision: 1 }), status.ABORTED, /revision 2/);
    await expectCode(admin('updateTenant', { tenantId: 'ops-one', displayName: '', settings: undefined, updateMask: ['settings.nope'], expectedRevision: 0 }), status.INVALID_ARGUMENT, /cannot be updated/);
    expect((await admin<v1.GetTenantResponse>('getTenant', { tenantId: 'ops-one' })).tenant?.displayName).toBe('Ops One');
  });

  it("confines a tenant's admin key to its own tenant: other tenants look absent, cross-tenant calls are the operator's", async () => {
    await createTenant('self-a');
    await createTenant('self-b');
    const { secret } = await createKey('self-a', [ADMIN]);
    await expect(admin<v1.GetTenantResponse>('getTenant', { tenantId: 'self-a' }, secret)).resolves.toMatchObject({ tenant: { tenantId: 'self-a' } });
    // Its own tenant when the id is left empty.
    await expect(admin<v1.GetTenantResponse>('getTenant', { tenantId: '' }, secret)).resolves.toMatchObject({ tenant: { tenantId: 'self-a' } });
    await expectCode(admin('getTenant', { tenantId: 'self-b' }, secret), status.NOT_FOUND);
    await expectCode(admin('getTenant', { tenantId: 'no-such-tenant' }, secret), status.NOT_FOUND);
    await expectCode(admin('listApiKeys', { tenantId: 'self-b', page: undefined, includeRevoked: true }, secret), status.NOT_FOUND);
    await expectCode(createKey('self-b', [ADMIN], {}, secret), status.NOT_FOUND);
    await expectCode(admin('listTenants', { page: undefined }, secret), status.PERMISSION_DENIED, /operator/);
    await expectCode(admin('createTenant', { tenantId: 'self-c', displayName: '', settings: undefined }, secret), status.PERMISSION_DENIED, /operator/);
    await expectCode(admin('suspendTenant', { tenantId: 'self-a', reason: '' }, secret), status.PERMISSION_DENIED);
    await expectCode(admin('deleteTenant', { tenantId: 'self-b', confirmTenantId: 'self-b' }, secret), status.PERMISSION_DENIED);
    expect((await admin<v1.GetTenantResponse>('getTenant', { tenantId: 'self-b' })).tenant?.state).toBe(v1.TenantState.TENANT_STATE_ACTIVE);
    // A key without the admin scope cannot administer even its own tenant; no credentials at all is UNAUTHENTICATED.
    const predictOnly = await createKey('self-a', [PREDICT]);
    await expectCode(admin('getTenant', { tenantId: 'self-a' }, predictOnly.secret), status.PERMISSION_DENIED, /lacks the "admin" scope/);
    await expectCode(rpc(adminA, 'getTenant', { tenantId: 'self-a' }), status.UNAUTHENTICATED, /credentials required/);
  });

  it('creates keys shown once and listed without secrets; a key works at once, its tenant comes from the key', async () => {
    await createTenant('keys');
    const created = await createKey('keys', [PREDICT, FEEDBACK]);
    expect(created.secret).toMatch(new RegExp(`^amk_${created.key!.keyId}_[A-Za-z0-9_-]{43}$`));
    expect(created.key).toMatchObject({ tenantId: 'keys', scopes: [PREDICT, FEEDBACK] });
    const listed = await admin<v1.ListApiKeysResponse>('listApiKeys', { tenantId: 'keys', page: undefined, includeRevoked: false });
    expect(listed.keys.map((k) => k.keyId)).toEqual([created.key!.keyId]);
    const secretPart = created.secret.split('_').slice(2).join('_');
    expect(JSON.stringify(v1.ListApiKeysResponse.toJSON(listed))).not.toContain(secretPart.slice(0, 20));
    // Nor in fusion's logs.
    expect(logs.text()).not.toContain(secretPart.slice(0, 20));

    // The caller's tenant header is ignored: the prediction belongs to the key's tenant...
    const predicted = await rpc<v1.PredictResponse>(inferA, 'predict', predictRequest('u1'), { bearer: created.secret, tenant: 'other-tenant' });
    expect(predicted.prediction?.label).toBeTruthy();
    // ...so feedback on it from the same key finds it.
    const fb: v1.FeedbackRequest = { userId: 'u1', label: predicted.prediction!.label, target: { $case: 'predictionId', value: predicted.prediction!.predictionId }, idempotencyKey: 'fb-1' };
    await expect(rpc(inferA, 'feedback', fb, { bearer: created.secret })).resolves.toBeDefined();

    await expectCode(createKey('keys', []), status.INVALID_ARGUMENT, /scopes/);
    await expectCode(createKey('keys', [PREDICT], { expiresAt: new Date(Date.now() - 1_000) }), status.INVALID_ARGUMENT, /past/);
    await expectCode(createKey('no-such-tenant', [PREDICT]), status.NOT_FOUND);
    // Hostile values are the caller's mistake, never INTERNAL.
    await expectCode(admin('listApiKeys', { tenantId: 'keys', page: { pageSize: 10, pageToken: 'forged-token' }, includeRevoked: false }), status.INVALID_ARGUMENT, /page_token/);
    await expectCode(admin('listTenants', { page: { pageSize: 10, pageToken: '\u0000' } }), status.INVALID_ARGUMENT, /page_token/);
    await expectCode(admin('revokeApiKey', { tenantId: 'keys', keyId: '../../etc' }), status.NOT_FOUND);
    await expectCode(admin('rotateApiKey', { tenantId: 'keys', keyId: created.key!.keyId, revokeOldAfter: { seconds: 1e15, nanos: 0 }, expiresAt: undefined }), status.INVALID_ARGUMENT, /revoke_old_after/);
    await expectCode(createKey('keys', [PREDICT], { name: 'x'.repeat(201) }), status.INVALID_ARGUMENT, /name/);
    await expectCode(createKey('keys', [99 as v1.ApiKeyScope]), status.INVALID_ARGUMENT, /scopes\[0\]/);
  });

  it("applies a tenant's stored settings: its default strategy, and its quota over the configured one", async () => {
    await createTenant('tuned');
    const key = await createKey('tuned', [PREDICT]);
    const before = await rpc<v1.PredictResponse>(inferA, 'predict', predictRequest('t1'), { bearer: key.secret });
    expect(before.prediction?.provenance?.requestedStrategy).toBe(v1.FusionStrategy.FUSION_STRATEGY_STACKING);

    await admin('updateTenant', {
      tenantId: 'tuned',
      displayName: '',
      settings: v1.TenantSettings.fromPartial({ defaultStrategy: v1.FusionStrategy.FUSION_STRATEGY_GENERAL_ONLY, quota: { ratePerSecond: 0.5, burst: 2, maxConcurrency: 0 } }),
      updateMask: ['settings.default_strategy', 'settings.quota'],
      expectedRevision: 0,
    });
    // Within the refresh interval; refresh() is what the timer does.
    await fusionA.tenantSettings.refresh();
    expect(fusionA.policyOf('tuned').strategy).toBe(v1.FusionStrategy.FUSION_STRATEGY_GENERAL_ONLY);
    // Another tenant keeps the configured policy.
    expect(fusionA.policyOf('keys').strategy).toBe(v1.FusionStrategy.FUSION_STRATEGY_STACKING);

    const after = await rpc<v1.PredictResponse>(inferA, 'predict', predictRequest('t1'), { bearer: key.secret });
    expect(after.prediction?.provenance?.requestedStrategy).toBe(v1.FusionStrategy.FUSION_STRATEGY_GENERAL_ONLY);
    // Burst 2 of which one call is spent above: the next is the last before the 0.5/s rate refuses.
    await rpc(inferA, 'predict', predictRequest('t1'), { bearer: key.secret });
    await expectCode(rpc(inferA, 'predict', predictRequest('t1'), { bearer: key.secret }), status.RESOURCE_EXHAUSTED, /0\.5/);
  });

  it("asks for the tenant's stored general model, for Predict and for Feedback by input", async () => {
    await createTenant('routed');
    const key = await createKey('routed', [PREDICT, FEEDBACK]);
    const generalOf = async () => generalName(await rpc<v1.PredictResponse>(inferA, 'predict', predictRequest('r1'), { bearer: key.secret }));
    // The configured default ('': the service's task model, the only one it had).
    expect(await generalOf()).toBe('general');

    await admin('updateTenant', {
      tenantId: 'routed',
      displayName: '',
      settings: v1.TenantSettings.fromPartial({ generalModelName: 'general-b' }),
      updateMask: ['settings.general_model_name'],
      expectedRevision: 0,
    });
    await fusionA.tenantSettings.refresh();
    expect(await generalOf()).toBe('general-b');
    // A request's own pin still wins.
    const pinned = await rpc<v1.PredictResponse>(inferA, 'predict', { ...predictRequest('r1'), options: v1.PredictOptions.fromPartial({ generalModel: { name: 'general', version: '' } }) }, { bearer: key.secret });
    expect(generalName(pinned)).toBe('general');

    // A name the general-model service does not serve: the caller learns which model is missing.
    await admin('updateTenant', {
      tenantId: 'routed',
      displayName: '',
      settings: v1.TenantSettings.fromPartial({ generalModelName: 'no-such-model' }),
      updateMask: ['settings.general_model_name'],
      expectedRevision: 0,
    });
    await fusionA.tenantSettings.refresh();
    await expectCode(rpc(inferA, 'predict', predictRequest('r1'), { bearer: key.secret }), status.NOT_FOUND, /no-such-model/);
    // Feedback by input classifies with the same model, so it fails the same way instead of training on another model's outputs.
    await expectCode(
      rpc(inferA, 'feedback', v1.FeedbackRequest.fromPartial({ userId: 'r1', target: { $case: 'input', value: { kind: { $case: 'text', value: 'quarterly invoice attached' } } }, label: 'spam', idempotencyKey: 'routed-1' }), { bearer: key.secret }),
      status.NOT_FOUND,
      /no-such-model/,
    );
  });

  it("records a key's last use (reported in batches), not a refused attempt's, and lists it", async () => {
    await createTenant('used');
    const key = await createKey('used', [PREDICT]);
    const lastUsed = async () =>
      (await admin<v1.ListApiKeysResponse>('listApiKeys', v1.ListApiKeysRequest.fromPartial({ tenantId: 'used' }))).keys.find((k) => k.keyId === key.key!.keyId)?.lastUsedAt;
    expect(await lastUsed()).toBeUndefined();

    // A wrong secret for the key: refused, and not a use.
    await expectCode(rpc(inferA, 'predict', predictRequest('u1'), { bearer: `amk_${key.key!.keyId}_${'A'.repeat(43)}` }), status.UNAUTHENTICATED);
    await fusionA.auth.authenticator!.reportUses();
    expect(await lastUsed()).toBeUndefined();

    const before = Date.now();
    await rpc(inferA, 'predict', predictRequest('u1'), { bearer: key.secret });
    const after = Date.now();
    await fusionA.auth.authenticator!.reportUses();
    const first = await lastUsed();
    expect(first!.getTime()).toBeGreaterThanOrEqual(before);
    expect(first!.getTime()).toBeLessThanOrEqual(after);

    // Through the other replica, later: the latest use wins.
    await new Promise((r) => setTimeout(r, 5));
    await rpc(inferB, 'predict', predictRequest('u1'), { bearer: key.secret });
    await fusionB.auth.authenticator!.reportUses();
    expect((await lastUsed())!.getTime()).toBeGreaterThan(first!.getTime());
  });

  it('revokes at once in the same process, and within the cache TTL in another replica', async () => {
    await createTenant('revoke');
    const { key, secret } = await createKey('revoke', [PREDICT]);
    await rpc(inferA, 'predict', predictRequest('u1'), { bearer: secret });
    await rpc(inferB, 'predict', predictRequest('u1'), { bearer: secret }); // cached in B now
    const revoked = await admin<v1.RevokeApiKeyResponse>('revokeApiKey', { tenantId: 'revoke', keyId: key!.keyId });
    expect(revoked.key?.revokedAt).toBeInstanceOf(Date);
    const revokedAt = Date.now();
    await expectCode(rpc(inferA, 'predict', predictRequest('u1'), { bearer: secret }), status.UNAUTHENTICATED, new RegExp(`API key ${key!.keyId} was revoked`));
    await waitUntil(async () => (await codeOf(rpc(inferB, 'predict', predictRequest('u1'), { bearer: secret }))).code === status.UNAUTHENTICATED, 'the change to take effect', 5_000, 50);
    expect(Date.now() - revokedAt).toBeLessThan(CACHE_TTL_MS + 1_000);
    // Revoking again is harmless; a revoked key is listed only on request.
    await admin('revokeApiKey', { tenantId: 'revoke', keyId: key!.keyId });
    expect((await admin<v1.ListApiKeysResponse>('listApiKeys', { tenantId: 'revoke', page: undefined, includeRevoked: false })).keys).toEqual([]);
    expect((await admin<v1.ListApiKeysResponse>('listApiKeys', { tenantId: 'revoke', page: undefined, includeRevoked: true })).keys).toHaveLength(1);
  });

  it('refuses a key once it expired', async () => {
    await createTenant('expiry');
    const { key, secret } = await createKey('expiry', [PREDICT], { expiresAt: new Date(Date.now() + 1_500) });
    await rpc(inferA, 'predict', predictRequest('u1'), { bearer: secret });
    await waitUntil(() => Date.now() > key!.expiresAt!.getTime(), 'the change to take effect', 5_000, 50);
    await expectCode(rpc(inferA, 'predict', predictRequest('u1'), { bearer: secret }), status.UNAUTHENTICATED, /expired at .*rotate it/);
  });

  it('rotates: old and new keys both work until the old one is revoked, or until revoke_old_after', async () => {
    await createTenant('rotate');
    const old = await createKey('rotate', [PREDICT]);
    const rotated = await admin<v1.RotateApiKeyResponse>('rotateApiKey', { tenantId: 'rotate', keyId: old.key!.keyId, revokeOldAfter: undefined, expiresAt: undefined });
    expect(rotated.key).toMatchObject({ name: old.key!.name, scopes: [PREDICT] });
    expect(rotated.key!.keyId).not.toBe(old.key!.keyId);
    for (const secret of [old.secret, rotated.secret]) await rpc(inferA, 'predict', predictRequest('u1'), { bearer: secret });
    await admin('revokeApiKey', { tenantId: 'rotate', keyId: old.key!.keyId });
    await expectCode(rpc(inferA, 'predict', predictRequest('u1'), { bearer: old.secret }), status.UNAUTHENTICATED, /revoked/);
    await rpc(inferA, 'predict', predictRequest('u1'), { bearer: rotated.secret });
    await expectCode(admin('rotateApiKey', { tenantId: 'rotate', keyId: old.key!.keyId, revokeOldAfter: undefined, expiresAt: undefined }), status.FAILED_PRECONDITION, /revoked/);

    const again = await admin<v1.RotateApiKeyResponse>('rotateApiKey', { tenantId: 'rotate', keyId: rotated.key!.keyId, revokeOldAfter: durationFromMs(1_000), expiresAt: undefined });
    expect(again.oldKey?.expiresAt!.getTime()).toBeLessThanOrEqual(Date.now() + 1_000);
    await rpc(inferA, 'predict', predictRequest('u1'), { bearer: rotated.secret });
    await waitUntil(async () => (await codeOf(rpc(inferA, 'predict', predictRequest('u1'), { bearer: rotated.secret }))).code === status.UNAUTHENTICATED, 'the change to take effect', 5_000, 100);
    await rpc(inferA, 'predict', predictRequest('u1'), { bearer: again.secret });
  });

  it("suspends a tenant (its keys PERMISSION_DENIED, in every replica within the TTL) and resumes it", async () => {
    await createTenant('pause');
    const { secret } = await createKey('pause', [PREDICT]);
    await rpc(inferB, 'predict', predictRequest('u1'), { bearer: secret });
    const suspended = await admin<v1.SuspendTenantResponse>('suspendTenant', { tenantId: 'pause', reason: 'unpaid invoice' });
    expect(suspended.tenant?.state).toBe(v1.TenantState.TENANT_STATE_SUSPENDED);
    await expectCode(rpc(inferA, 'predict', predictRequest('u1'), { bearer: secret }), status.PERMISSION_DENIED, /suspended/);
    await waitUntil(async () => (await codeOf(rpc(inferB, 'predict', predictRequest('u1'), { bearer: secret }))).code === status.PERMISSION_DENIED, 'the change to take effect', 5_000, 50);
    await admin('resumeTenant', { tenantId: 'pause' });
    await rpc(inferA, 'predict', predictRequest('u1'), { bearer: secret });
  });

  it('deletes a tenant: DELETING, every key refused, TenantDeleted published, its records gone', async () => {
    const seen: DeliveredEvent[] = [];
    const sub = await bus.subscribe(TENANT_EVENTS_STREAM.subjects[0]!, async (e) => void seen.push(e));
    await createTenant('doomed');
    const { secret } = await createKey('doomed', [PREDICT]);
    await rpc(inferA, 'predict', predictRequest('u1'), { bearer: secret });
    const predictions = await storeA.collection({ name: 'predictions' });
    expect(await predictions.count('doomed')).toBeGreaterThan(0);

    await expectCode(admin('deleteTenant', { tenantId: 'doomed', confirmTenantId: 'doomd' }), status.INVALID_ARGUMENT, /confirm_tenant_id/);
    const deleted = await admin<v1.DeleteTenantResponse>('deleteTenant', { tenantId: 'doomed', confirmTenantId: 'doomed' });
    expect(deleted.tenant?.state).toBe(v1.TenantState.TENANT_STATE_DELETING);
    await expectCode(rpc(inferA, 'predict', predictRequest('u1'), { bearer: secret }), status.UNAUTHENTICATED, /revoked|being deleted/);
    expect(await predictions.count('doomed')).toBe(0);
    await waitUntil(() => seen.length > 0, 'TenantDeleted', 5_000);
    const event = decodeEvent('aimass.v1.TenantDeleted', seen[0]!.data);
    expect(event.envelope.tenant).toBe('doomed');
    await expectCode(admin('resumeTenant', { tenantId: 'doomed' }), status.FAILED_PRECONDITION);
    await expectCode(createKey('doomed', [PREDICT]), status.FAILED_PRECONDITION, /being deleted/);
    await expectCode(createTenant('doomed'), status.ALREADY_EXISTS);
    await sub.close();
  });

  it('serves CredentialService to platform service tokens only', async () => {
    await createTenant('creds');
    const { key, secret } = await createKey('creds', [PREDICT]);
    const token = issueServiceToken(Buffer.from(INTERNAL_SECRET), 'privacy');
    const found = await rpc<v1.LookupApiKeyResponse>(credentialClient, 'lookupApiKey', { keyId: key!.keyId }, { bearer: token });
    expect(found.key).toMatchObject({ keyId: key!.keyId, tenantId: 'creds' });
    expect(found.secretSha256).toHaveLength(32);
    expect(found.tenantState).toBe(v1.TenantState.TENANT_STATE_ACTIVE);
    await expectCode(rpc(credentialClient, 'lookupApiKey', { keyId: 'aaaaaaaaaaaaaaaa' }, { bearer: token }), status.NOT_FOUND);
    // A pod that is not ours: no token, an API key, the operator, a token of another secret.
    await expectCode(rpc(credentialClient, 'lookupApiKey', { keyId: key!.keyId }), status.UNAUTHENTICATED);
    await expectCode(rpc(credentialClient, 'lookupApiKey', { keyId: key!.keyId }, { bearer: secret }), status.PERMISSION_DENIED, /internal/);
    await expectCode(rpc(credentialClient, 'lookupApiKey', { keyId: key!.keyId }, operator), status.PERMISSION_DENIED);
    const foreign = issueServiceToken(Buffer.from('a-secret-that-is-not-the-platforms-0123456789'), 'fusion');
    await expectCode(rpc(credentialClient, 'lookupApiKey', { keyId: key!.keyId }, { bearer: foreign }), status.UNAUTHENTICATED, /internal secret/);
  });

  it('keeps health open without credentials', async () => {
    expect(await healthStatus(fusionA.address, 'aimass.v1.TenantAdminService')).toBe('SERVING');
    expect(await healthStatus(fusionA.address, 'aimass.v1.CredentialService')).toBe('SERVING');
  });
});
