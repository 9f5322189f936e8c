import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Metadata, credentials, status, type Client, type ClientDuplexStream } from '@grpc/grpc-js';
import { issueServiceToken } from '@aimass/auth';
import { connectNatsBus, type NatsEventBus } from '@aimass/events';
import { startGeneralModel, type RunningGeneralModel } from '@aimass/general-model';
import { startPersonalModel, type RunningPersonalModel } from '@aimass/personal-model';
import type { Logger } from '@aimass/platform';
import { startPrivacy, type RunningPrivacy } from '@aimass/privacy';
import { v1 } from '@aimass/proto';
import { openSqliteStore, type DocumentStore } from '@aimass/storage';
import { NatsServer, freePort, tempDir, waitUntil, type TempDir } from '@aimass/testing';
import { startUpdater, type RunningUpdater } from '@aimass/updater';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFusion, type RunningFusion } from '../src/service.js';
import { INTERNAL_SECRET, OPERATOR_TOKEN, apiKeysAuth, codeOf, rpc } from './support/auth.js';
import { TEST_SECRET } from './support/fusion.js';
import { addToyGeneralModel } from './support/general.js';
import { captureLogs } from './support/logs.js';

const A = 'acme';
const B = 'beta';
const S = {
  predict: v1.ApiKeyScope.API_KEY_SCOPE_PREDICT,
  feedback: v1.ApiKeyScope.API_KEY_SCOPE_FEEDBACK,
  consent: v1.ApiKeyScope.API_KEY_SCOPE_CONSENT,
  admin: v1.ApiKeyScope.API_KEY_SCOPE_ADMIN,
} as const;
type ScopeName = keyof typeof S;
const ALL: ScopeName[] = ['predict', 'feedback', 'consent', 'admin'];
const HOST = '127.0.0.1';
const input = (value: string): v1.InputPayload => ({ kind: { $case: 'text', value } });

/** A bidirectional PredictStream with one item; resolves with the status it ended with. */
function predictStream(client: v1.InferenceServiceClient, bearer: string | undefined): Promise<{ code: status; details: string; results: number }> {
  const md = new Metadata();
  if (bearer !== undefined) md.set('authorization', `Bearer ${bearer}`);
  return new Promise((resolve) => {
    const stream: ClientDuplexStream<v1.PredictStreamRequest, v1.PredictStreamResponse> = client.predictStream(md, { deadline: Date.now() + 10_000 });
    let results = 0;
    stream.on('data', () => results++);
    stream.on('error', (err: { code: status; details: string }) => resolve({ code: err.code, details: err.details, results }));
    stream.on('end', () => resolve({ code: status.OK, details: '', results }));
    stream.write(v1.PredictStreamRequest.fromPartial({ itemId: 's1', userId: 'alice', input: input('stream item about an invoice') }));
    stream.end();
  });
}

/**
 * The authentication matrix on the real platform in one process: general-model, personal-model,
 * privacy, the updater and fusion, each with auth.mode api-keys, on a real nats-server and SQLite.
 * For every public RPC: no key, a revoked key, an expired key, a key without the scope are refused
 * with the right code, and a key of another tenant reaches only its own tenant (another tenant's
 * objects by id are NOT_FOUND, its users look absent, never PERMISSION_DENIED); nothing of tenant A
 * is changed by any of it. Internal services refuse whatever is not a platform service token.
 */
describe('authentication matrix (integration)', () => {
  let dir: TempDir;
  let nats: NatsServer;
  const buses: NatsEventBus[] = [];
  const stores: DocumentStore[] = [];
  let general: RunningGeneralModel;
  let personal: RunningPersonalModel;
  let privacy: RunningPrivacy;
  let updater: RunningUpdater;
  let fusion: RunningFusion;
  let fusionStore: DocumentStore;
  const clients: Client[] = [];
  let infer: v1.InferenceServiceClient;
  let admin: v1.TenantAdminServiceClient;
  let privacyClient: v1.PrivacyServiceClient;
  let updaterAdmin: v1.UpdaterAdminServiceClient;
  const logs = captureLogs('matrix');

  const keys: Record<string, string> = {};
  let predictionId = '';
  let erasureId = '';

  const bus = async (name: string) => {
    const b = await connectNatsBus({ servers: nats.url, name, reconnectTimeWaitMs: 100, pullExpiresMs: 1_000 });
    buses.push(b);
    return b;
  };
  const store = async (name: string) => {
    const s = await openSqliteStore({ path: join(dir.path, `${name}.sqlite`) });
    stores.push(s);
    return s;
  };
  const client = <C extends Client>(Ctor: new (address: string, creds: ReturnType<typeof credentials.createInsecure>) => C, address: string): C => {
    const c = new Ctor(address, credentials.createInsecure());
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    dir = await tempDir('auth-matrix');
    nats = await NatsServer.start();
    await addToyGeneralModel(dir.path);
    const [fusionPort, privacyPort, updaterPort] = [await freePort(), await freePort(), await freePort()];
    const credentialService = { address: `${HOST}:${fusionPort}` };
    const auth = apiKeysAuth({ credentialService, cacheTtlMs: 200 });
    const logger: Logger = logs.logger;
    const grpc = (port = 0) => ({ host: HOST, port, drainTimeoutMs: 2_000 });

    general = await startGeneralModel({ grpc: grpc(), generalModel: { repository: dir.path, poolSize: 1, executionProviders: ['cpu'], warmup: false }, auth }, logger);
    personal = await startPersonalModel({ grpc: grpc(), personalModel: {}, auth }, logger, { store: await store('personal') });
    privacy = await startPrivacy(
      {
        grpc: grpc(privacyPort),
        pseudonym: { secret: TEST_SECRET },
        dataKeys: { kekSource: 'config', kekSecret: { default: randomBytes(32).toString('base64') } },
        privacy: {
          outbox: { sweepIntervalMs: 0 },
          erasure: { sweepIntervalMs: 0, graceMs: 0, consumer: { backoffMs: [50], ackWaitMs: 10_000, leaseTtlMs: 2_000 } },
          export: { personalModelAddress: personal.address, updaterAddress: `${HOST}:${updaterPort}` },
        },
        auth,
      },
      logger,
      { store: await store('privacy'), bus: await bus('privacy') },
    );
    updater = await startUpdater(
      {
        grpc: grpc(updaterPort),
        pseudonym: { secret: TEST_SECRET },
        updater: {
          generalModel: { address: general.address },
          personalModel: { address: personal.address },
          privacy: { address: privacy.address },
          apply: { batchWindowMs: 10, retryInitialMs: 50, retryMaxMs: 500 },
          consumer: { maxDeliver: 3, backoffMs: [50, 100], ackWaitMs: 10_000, leaseTtlMs: 2_000 },
          sweep: { intervalMs: 0, graceMs: 0 },
          watch: { intervalMs: 0 },
          refit: { jobStaleMs: 2_000 },
          erasure: { backoffMs: [50, 100], ackWaitMs: 10_000, leaseTtlMs: 2_000 },
        },
        auth,
      },
      logger,
      { store: await store('updater'), bus: await bus('updater') },
    );
    fusionStore = await store('fusion');
    fusion = await startFusion(
      {
        grpc: grpc(fusionPort),
        pseudonym: { secret: TEST_SECRET },
        fusion: { generalModel: { address: general.address }, personalModel: { address: personal.address }, privacy: { address: privacy.address } },
        auth,
      },
      logger,
      { store: fusionStore, bus: await bus('fusion') },
    );
    // Privacy, started first, answers consent reads once it has read the tenants' settings from
    // fusion (its readiness; retried every 500 ms).
    await waitUntil(() => privacy.consentDefaults.loaded, "privacy's first read of the tenant settings", 10_000);
    infer = client(v1.InferenceServiceClient, fusion.address);
    admin = client(v1.TenantAdminServiceClient, fusion.address);
    privacyClient = client(v1.PrivacyServiceClient, privacy.address);
    updaterAdmin = client(v1.UpdaterAdminServiceClient, updater.address);

    // Tenants and keys, made by the operator.
    const op = { bearer: OPERATOR_TOKEN };
    for (const tenantId of [A, B]) await rpc(admin, 'createTenant', v1.CreateTenantRequest.fromPartial({ tenantId }), op);
    const key = async (tenantId: string, scopes: ScopeName[], expiresAt?: Date) =>
      (await rpc<v1.CreateApiKeyResponse>(admin, 'createApiKey', v1.CreateApiKeyRequest.fromPartial({ tenantId, name: scopes.join('+'), scopes: scopes.map((s) => S[s]), expiresAt }), op));
    keys.full = (await key(A, ALL)).secret;
    const revoked = await key(A, ALL);
    keys.revoked = revoked.secret;
    await rpc(admin, 'revokeApiKey', { tenantId: A, keyId: revoked.key!.keyId }, op);
    keys.expired = (await key(A, ALL, new Date(Date.now() + 2_000))).secret;
    for (const missing of ALL) keys[`no-${missing}`] = (await key(A, ALL.filter((s) => s !== missing))).secret;
    keys.other = (await key(B, ALL)).secret;
    // B's alice (another person than A's alice) lets B learn from her feedback, so B's Feedback
    // gets as far as looking the prediction up.
    await rpc(privacyClient, 'setConsent', v1.SetConsentRequest.fromPartial({ userId: 'alice', purpose: v1.Purpose.PURPOSE_TRAINING, state: v1.ConsentState.CONSENT_STATE_GRANTED, policyVersion: 'matrix-policy-b', source: 'matrix' }), { bearer: keys.other });
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    await fusion?.stop();
    await updater?.stop();
    await privacy?.stop();
    await personal?.stop();
    await general?.stop();
    for (const b of buses) await b.close();
    for (const s of stores) await s.close();
    await nats?.dispose();
    await dir?.remove();
  });

  interface Row {
    readonly name: string;
    readonly scope: ScopeName;
    readonly call: (bearer: string | undefined) => Promise<unknown>;
    /**
     * With a key of tenant B: `not-found` when the request names one of A's objects by id;
     * otherwise a check that the answer shows nothing of A (undefined: a write, judged by A's
     * snapshot afterwards).
     */
    readonly otherTenant?: 'not-found' | ((outcome: { code: status; value: unknown }) => void);
  }

  const unary = (c: Client, method: string, request: unknown) => (bearer: string | undefined) =>
    // The tenant header names A on every call: it must be ignored in favour of the key's tenant.
    rpc(c, method, request, { bearer, tenant: A });
  const stream = (bearer: string | undefined) =>
    predictStream(infer, bearer).then((r) => {
      if (r.code !== status.OK) throw Object.assign(new Error(r.details), r);
      return r;
    });

  const rows = (): Row[] => [
    // Reads first, so tenant B's reads run before any of its writes.
    {
      name: 'PrivacyService/GetConsent',
      scope: 'consent',
      call: unary(privacyClient, 'getConsent', v1.GetConsentRequest.fromPartial({ userId: 'alice' })),
      otherTenant: ({ code, value }) => {
        expect(status[code]).toBe('OK');
        // A's alice granted personalization; B's alice never decided.
        const personalization = (value as v1.GetConsentResponse).decisions.find((d) => d.purpose === v1.Purpose.PURPOSE_PERSONALIZATION);
        expect(personalization?.isDefault).toBe(true);
      },
    },
    {
      name: 'PrivacyService/GetConsentHistory',
      scope: 'consent',
      call: unary(privacyClient, 'getConsentHistory', v1.GetConsentHistoryRequest.fromPartial({ userId: 'alice', purpose: v1.Purpose.PURPOSE_TRAINING })),
      otherTenant: ({ code, value }) => {
        if (code === status.OK) expect((value as v1.GetConsentHistoryResponse).records.map((r) => r.policyVersion)).not.toContain('matrix-policy-a');
        else expect(status[code]).toBe('NOT_FOUND');
      },
    },
    {
      name: 'PrivacyService/Export',
      scope: 'consent',
      call: unary(privacyClient, 'export', v1.ExportRequest.fromPartial({ userId: 'alice', format: v1.ExportFormat.EXPORT_FORMAT_JSON })),
      otherTenant: ({ code, value }) => {
        if (code !== status.OK) return expect(status[code]).toBe('NOT_FOUND');
        const content = (value as v1.ExportResponse).content;
        const json = content?.$case === 'json' ? content.value.toString('utf8') : '';
        expect(json).not.toContain('matrix-policy-a');
      },
    },
    { name: 'PrivacyService/GetErasureReceipt', scope: 'consent', call: (b) => unary(privacyClient, 'getErasureReceipt', { erasureId })(b), otherTenant: 'not-found' },
    {
      name: 'UpdaterAdminService/GetTrainingState',
      scope: 'admin',
      call: unary(updaterAdmin, 'getTrainingState', { userId: 'alice' }),
      otherTenant: ({ code, value }) => {
        if (code !== status.OK) return expect(status[code]).toBe('NOT_FOUND');
        const res = value as v1.GetTrainingStateResponse;
        expect(res.user?.currentVersion ?? 0).toBe(0);
        expect(res.jobs).toEqual([]);
      },
    },
    { name: 'TenantAdminService/GetTenant', scope: 'admin', call: unary(admin, 'getTenant', { tenantId: A }), otherTenant: 'not-found' },
    { name: 'TenantAdminService/ListApiKeys', scope: 'admin', call: unary(admin, 'listApiKeys', v1.ListApiKeysRequest.fromPartial({ tenantId: A, includeRevoked: true })), otherTenant: 'not-found' },
    {
      name: 'InferenceService/Feedback',
      scope: 'feedback',
      call: (b) => unary(infer, 'feedback', v1.FeedbackRequest.fromPartial({ userId: 'alice', label: 'spam', target: { $case: 'predictionId', value: predictionId }, idempotencyKey: `fb-${Math.random()}` }))(b),
      otherTenant: 'not-found',
    },
    // Writes and scoring: with B's key they act in B only (A's snapshot proves it).
    { name: 'InferenceService/Predict', scope: 'predict', call: unary(infer, 'predict', v1.PredictRequest.fromPartial({ userId: 'alice', input: input('an invoice for the quarter') })) },
    { name: 'InferenceService/PredictBatch', scope: 'predict', call: unary(infer, 'predictBatch', v1.PredictBatchRequest.fromPartial({ items: [{ itemId: '1', userId: 'alice', input: input('meeting notes') }] })) },
    { name: 'InferenceService/PredictStream', scope: 'predict', call: stream },
    {
      name: 'PrivacyService/SetConsent',
      scope: 'consent',
      call: unary(
        privacyClient,
        'setConsent',
        v1.SetConsentRequest.fromPartial({ userId: 'alice', purpose: v1.Purpose.PURPOSE_PERSONALIZATION, state: v1.ConsentState.CONSENT_STATE_DENIED, policyVersion: 'matrix-policy-b', source: 'matrix' }),
      ),
    },
    { name: 'PrivacyService/Erase', scope: 'consent', call: unary(privacyClient, 'erase', v1.EraseRequest.fromPartial({ userId: 'alice', reason: 'matrix' })) },
    { name: 'UpdaterAdminService/RefitUser', scope: 'admin', call: unary(updaterAdmin, 'refitUser', v1.RefitUserRequest.fromPartial({ userId: 'alice' })) },
    { name: 'UpdaterAdminService/RefitAll', scope: 'admin', call: unary(updaterAdmin, 'refitAll', v1.RefitAllRequest.fromPartial({})) },
    { name: 'TenantAdminService/CreateApiKey', scope: 'admin', call: unary(admin, 'createApiKey', v1.CreateApiKeyRequest.fromPartial({ tenantId: A, name: 'intruder', scopes: [S.admin] })), otherTenant: 'not-found' },
  ];

  /** What tenant A holds, read with A's full key and from fusion's store. */
  const snapshot = async () => {
    const bearer = keys.full!;
    const history = await rpc<v1.GetConsentHistoryResponse>(privacyClient, 'getConsentHistory', v1.GetConsentHistoryRequest.fromPartial({ userId: 'alice', purpose: v1.Purpose.PURPOSE_UNSPECIFIED }), { bearer });
    const consent = await rpc<v1.GetConsentResponse>(privacyClient, 'getConsent', v1.GetConsentRequest.fromPartial({ userId: 'alice' }), { bearer });
    const training = await rpc<v1.GetTrainingStateResponse>(updaterAdmin, 'getTrainingState', { userId: 'alice' }, { bearer });
    const apiKeys = await rpc<v1.ListApiKeysResponse>(admin, 'listApiKeys', v1.ListApiKeysRequest.fromPartial({ tenantId: A, includeRevoked: true }), { bearer });
    const count = async (name: string) => (await fusionStore.collection({ name })).count(A);
    return {
      history: history.records.map((r) => `${r.sequence}:${r.purpose}:${r.state}`),
      consent: consent.decisions.map((d) => `${d.purpose}:${d.state}:${d.isDefault}`),
      model: training.user?.currentVersion ?? 0,
      applied: training.user?.lastAppliedSequence ?? 0,
      jobs: training.jobs.length,
      keys: apiKeys.keys.length,
      predictions: await count('predictions'),
      feedbackKeys: await count('feedback_keys'),
    };
  };

  it('answers every public RPC for a key of its tenant with the scope (the control), across service tokens inside', async () => {
    const bearer = keys.full!;
    await rpc(privacyClient, 'setConsent', v1.SetConsentRequest.fromPartial({ userId: 'alice', purpose: v1.Purpose.PURPOSE_TRAINING, state: v1.ConsentState.CONSENT_STATE_GRANTED, policyVersion: 'matrix-policy-a', source: 'matrix' }), { bearer });
    await rpc(privacyClient, 'setConsent', v1.SetConsentRequest.fromPartial({ userId: 'alice', purpose: v1.Purpose.PURPOSE_PERSONALIZATION, state: v1.ConsentState.CONSENT_STATE_GRANTED, policyVersion: 'matrix-policy-a', source: 'matrix' }), { bearer });
    const predicted = await rpc<v1.PredictResponse>(infer, 'predict', v1.PredictRequest.fromPartial({ userId: 'alice', input: input('invoice for march') }), { bearer });
    predictionId = predicted.prediction!.predictionId;
    erasureId = (await rpc<v1.EraseResponse>(privacyClient, 'erase', v1.EraseRequest.fromPartial({ userId: 'zed', reason: 'matrix control' }), { bearer })).erasureId;
    // Feedback trains alice's model through the updater (fusion → events → updater → general, personal, privacy: service tokens all along).
    await rpc(infer, 'feedback', v1.FeedbackRequest.fromPartial({ userId: 'alice', label: 'spam', target: { $case: 'predictionId', value: predictionId }, idempotencyKey: 'control-1' }), { bearer });
    await waitUntil(async () => ((await rpc<v1.GetTrainingStateResponse>(updaterAdmin, 'getTrainingState', { userId: 'alice' }, { bearer })).user?.currentVersion ?? 0) > 0, "alice's first model", 20_000, 100);

    const outcomes: Record<string, string> = {};
    for (const row of rows()) {
      const got = await codeOf(row.call(bearer));
      outcomes[row.name] = status[got.code]!;
      expect([status.UNAUTHENTICATED, status.PERMISSION_DENIED], `${row.name}: ${got.details}`).not.toContain(got.code);
    }
    // Export reached personal-model and the updater (internal RPCs) with privacy's service token.
    const exported = await rpc<v1.ExportResponse>(privacyClient, 'export', v1.ExportRequest.fromPartial({ userId: 'alice', format: v1.ExportFormat.EXPORT_FORMAT_JSON }), { bearer });
    expect(exported.content?.$case).toBe('json');
    expect(outcomes).toMatchObject({ 'InferenceService/Predict': 'OK', 'InferenceService/PredictStream': 'OK', 'PrivacyService/Export': 'OK', 'UpdaterAdminService/GetTrainingState': 'OK' });
    // Let the refits the control queued finish, so the snapshot below is at rest.
    await waitUntil(
      async () =>
        (await rpc<v1.GetTrainingStateResponse>(updaterAdmin, 'getTrainingState', { userId: 'alice' }, { bearer })).jobs.every(
          (j) => j.state === v1.RefitJobState.REFIT_JOB_STATE_COMPLETED || j.state === v1.RefitJobState.REFIT_JOB_STATE_FAILED,
        ),
      'refit jobs to finish',
      20_000,
      100,
    );
  });

  it('refuses no key, a revoked, an expired key and a key without the scope; confines a key of another tenant to it; changes nothing of A', async () => {
    await waitUntil(async () => (await codeOf(rpc(admin, 'getTenant', { tenantId: A }, { bearer: keys.expired }))).code === status.UNAUTHENTICATED, 'the expired key to expire', 5_000, 100);
    const before = await snapshot();
    const table: string[] = [];
    for (const row of rows()) {
      const cases: Array<[string, string | undefined, status, RegExp]> = [
        ['no key', undefined, status.UNAUTHENTICATED, /credentials required/],
        ['revoked', keys.revoked, status.UNAUTHENTICATED, /was revoked/],
        ['expired', keys.expired, status.UNAUTHENTICATED, /expired at/],
        ['no scope', keys[`no-${row.scope}`], status.PERMISSION_DENIED, new RegExp(`lacks the "${row.scope}" scope`)],
      ];
      for (const [label, bearer, code, details] of cases) {
        const got = await codeOf(row.call(bearer));
        table.push(`${row.name} ${label}: ${status[got.code]}`);
        expect(status[got.code], `${row.name} with ${label}: ${got.details}`).toBe(status[code]);
        expect(got.details, `${row.name} with ${label}`).toMatch(details);
      }
      // Tenant B's key: never PERMISSION_DENIED (which would say A's object exists).
      let value: unknown;
      let got: { code: status; details: string };
      try {
        value = await row.call(keys.other);
        got = { code: status.OK, details: '' };
      } catch (err) {
        got = { code: (err as { code: status }).code, details: (err as { details: string }).details };
      }
      table.push(`${row.name} other tenant: ${status[got.code]}`);
      expect([status.PERMISSION_DENIED, status.UNAUTHENTICATED], `${row.name} with B's key: ${got.details}`).not.toContain(got.code);
      if (row.otherTenant === 'not-found') expect(status[got.code], `${row.name} with B's key: ${got.details}`).toBe('NOT_FOUND');
      else row.otherTenant?.({ code: got.code, value });
    }
    expect(table.length).toBe(rows().length * 5);
    // Let anything B's writes set off (events, refits) settle, then compare A.
    await new Promise((r) => setTimeout(r, 500));
    expect(await snapshot()).toEqual(before);
  });

  it('internal services take platform service tokens only: a pod that is not ours is refused', async () => {
    const token = issueServiceToken(Buffer.from(INTERNAL_SECRET), 'fusion');
    const foreign = issueServiceToken(Buffer.from('a-pod-that-is-not-ours-has-its-own-secret-0123'), 'fusion');
    const personalClient = client(v1.PersonalModelServiceClient, personal.address);
    const dataKeys = client(v1.DataKeyServiceClient, privacy.address);
    const credentialClient = client(v1.CredentialServiceClient, fusion.address);
    const internal: Array<[string, (bearer: string | undefined) => Promise<unknown>]> = [
      ['PersonalModelService/GetModel', (b) => rpc(personalClient, 'getModel', v1.GetModelRequest.fromPartial({ userPseudonym: 'a'.repeat(64) }), { bearer: b, tenant: A })],
      ['PersonalModelService/DeleteUser', (b) => rpc(personalClient, 'deleteUser', v1.DeleteUserRequest.fromPartial({ userPseudonym: 'a'.repeat(64) }), { bearer: b, tenant: A })],
      ['DataKeyService/GetDataKey', (b) => rpc(dataKeys, 'getDataKey', v1.GetDataKeyRequest.fromPartial({ userPseudonym: 'a'.repeat(64) }), { bearer: b, tenant: A })],
      ['UpdaterAdminService/ExportFeedback', (b) => rpc(updaterAdmin, 'exportFeedback', v1.ExportFeedbackRequest.fromPartial({ userPseudonym: 'a'.repeat(64) }), { bearer: b, tenant: A })],
      ['CredentialService/LookupApiKey', (b) => rpc(credentialClient, 'lookupApiKey', { keyId: 'aaaaaaaaaaaaaaaa' }, { bearer: b })],
    ];
    for (const [name, call] of internal) {
      expect(status[(await codeOf(call(undefined))).code], `${name} without credentials`).toBe('UNAUTHENTICATED');
      expect(status[(await codeOf(call(foreign))).code], `${name} with a foreign token`).toBe('UNAUTHENTICATED');
      // UNAUTHENTICATED where API keys are not even looked up (personal-model), PERMISSION_DENIED where they are.
      expect(['UNAUTHENTICATED', 'PERMISSION_DENIED'], `${name} with an API key`).toContain(status[(await codeOf(call(keys.full))).code]);
      expect(['UNAUTHENTICATED', 'PERMISSION_DENIED'], `${name} with the operator token`).toContain(status[(await codeOf(call(OPERATOR_TOKEN))).code]);
      const ok = await codeOf(call(token));
      expect([status.UNAUTHENTICATED, status.PERMISSION_DENIED], `${name} with a platform token: ${ok.details}`).not.toContain(ok.code);
    }
  });
});
