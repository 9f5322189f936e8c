import { randomBytes } from 'node:crypto';
import { credentials, status } from '@grpc/grpc-js';
import { connectNatsBus, type NatsEventBus } from '@aimass/events';
import { createLogger } from '@aimass/platform';
import { RemoteTenantSettings, TenantConsentDefaults, startPrivacy, type RunningPrivacy } from '@aimass/privacy';
import { v1 } from '@aimass/proto';
import { openSqliteStore, type DocumentStore } from '@aimass/storage';
import { NatsServer, freePort, healthStatus, waitUntil } from '@aimass/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFusion, type RunningFusion } from '../src/service.js';
import { OPERATOR_TOKEN, apiKeysAuth, expectCode, rpc } from './support/auth.js';
import { TEST_SECRET } from './support/fusion.js';
import { captureLogs } from './support/logs.js';

const { GRANTED, DENIED } = { GRANTED: v1.ConsentState.CONSENT_STATE_GRANTED, DENIED: v1.ConsentState.CONSENT_STATE_DENIED };
const { TRAINING, PERSONALIZATION } = { TRAINING: v1.Purpose.PURPOSE_TRAINING, PERSONALIZATION: v1.Purpose.PURPOSE_PERSONALIZATION };

/**
 * A tenant's stored consent defaults (TenantAdminService, in fusion) applied by the privacy
 * service, which reads them through fusion's CredentialService.ListTenantSettings with its service
 * token: real fusion, real privacy, SQLite, nats-server, API keys on.
 */
describe("tenants' stored consent defaults (fusion → privacy, integration)", () => {
  let nats: NatsServer;
  let bus: NatsEventBus;
  let fusionStore: DocumentStore;
  let privacyStore: DocumentStore;
  let fusion: RunningFusion;
  let privacy: RunningPrivacy;
  let admin: v1.TenantAdminServiceClient;
  let consentClient: v1.PrivacyServiceClient;
  let key: string;
  const logs = captureLogs('fusion');

  beforeAll(async () => {
    nats = await NatsServer.start();
    bus = await connectNatsBus({ servers: nats.url, name: 'tenant-consent-defaults-test', reconnectTimeWaitMs: 100, pullExpiresMs: 1_000 });
    fusionStore = await openSqliteStore({ path: ':memory:' });
    privacyStore = await openSqliteStore({ path: ':memory:' });
    fusion = await startFusion(
      { grpc: { host: '127.0.0.1', port: 0, drainTimeoutMs: 2_000 }, pseudonym: { secret: TEST_SECRET }, fusion: {}, auth: apiKeysAuth() },
      logs.logger,
      { store: fusionStore, bus },
    );
    privacy = await startPrivacy(
      {
        grpc: { host: '127.0.0.1', port: 0, drainTimeoutMs: 2_000 },
        pseudonym: { secret: TEST_SECRET },
        dataKeys: { kekSource: 'config', kekSecret: { default: randomBytes(32).toString('base64') } },
        // Long enough that only refresh() (what the timer does) rereads within the test.
        privacy: { outbox: { sweepIntervalMs: 0 }, tenantSettings: { refreshMs: 600_000 } },
        // Its key verifications and the tenants' settings both come from fusion (the same address).
        auth: apiKeysAuth({ credentialService: { address: fusion.address }, useReportIntervalMs: 50 }),
      },
      logs.logger,
      { store: privacyStore, bus },
    );
    admin = new v1.TenantAdminServiceClient(fusion.address, credentials.createInsecure());
    consentClient = new v1.PrivacyServiceClient(privacy.address, credentials.createInsecure());
    await rpc(admin, 'createTenant', { tenantId: 'optin', displayName: 'Opt-in Ltd', settings: undefined }, { bearer: OPERATOR_TOKEN });
    await rpc(admin, 'createTenant', { tenantId: 'plain', displayName: 'Plain Ltd', settings: undefined }, { bearer: OPERATOR_TOKEN });
    key = (
      await rpc<v1.CreateApiKeyResponse>(
        admin,
        'createApiKey',
        { tenantId: 'optin', name: 'consent', scopes: [v1.ApiKeyScope.API_KEY_SCOPE_CONSENT], expiresAt: undefined },
        { bearer: OPERATOR_TOKEN },
      )
    ).secret;
  });

  afterAll(async () => {
    admin?.close();
    consentClient?.close();
    await privacy?.stop();
    await fusion?.stop();
    await privacyStore?.close();
    await fusionStore?.close();
    await bus?.close();
    await nats?.dispose();
  });

  const setDefaults = async (tenantId: string, consentDefaults: v1.ConsentDefault[]) => {
    await rpc(
      admin,
      'updateTenant',
      { tenantId, displayName: '', settings: v1.TenantSettings.fromPartial({ consentDefaults }), updateMask: ['settings.consent_defaults'], expectedRevision: 0 },
      { bearer: OPERATOR_TOKEN },
    );
    await privacy.consentDefaults.refresh();
  };
  const decisions = async (userId: string) => {
    const res = await rpc<v1.GetConsentResponse>(consentClient, 'getConsent', { userId, purposes: [], userPseudonym: '' }, { bearer: key });
    return Object.fromEntries(res.decisions.map((d) => [v1.purposeToJSON(d.purpose), { state: v1.consentStateToJSON(d.state), isDefault: d.isDefault }]));
  };

  it('applies the configured defaults to a tenant that stored none, then the stored ones once set (unlisted purposes DENIED)', async () => {
    expect(await decisions('u1')).toEqual({
      PURPOSE_PERSONALIZATION: { state: 'CONSENT_STATE_DENIED', isDefault: true },
      PURPOSE_TRAINING: { state: 'CONSENT_STATE_DENIED', isDefault: true },
    });

    await setDefaults('optin', [{ purpose: TRAINING, state: GRANTED }]);
    expect(await decisions('u1')).toEqual({
      PURPOSE_PERSONALIZATION: { state: 'CONSENT_STATE_DENIED', isDefault: true },
      PURPOSE_TRAINING: { state: 'CONSENT_STATE_GRANTED', isDefault: true },
    });
    // Only that tenant: privacy's view of another one is the configuration's.
    expect(privacy.consentDefaults.current().tenants['plain']).toBeUndefined();
    expect(privacy.consentDefaults.current().tenants['optin']).toEqual({ personalization: 'denied', training: 'granted' });
  });

  it("lets a user's own decision win over the tenant's default, and the default follow a later change", async () => {
    await setDefaults('optin', [
      { purpose: TRAINING, state: GRANTED },
      { purpose: PERSONALIZATION, state: GRANTED },
    ]);
    await rpc(
      consentClient,
      'setConsent',
      { userId: 'u2', purpose: TRAINING, state: DENIED, policyVersion: 'p-1', source: 'test', decidedAt: undefined, idempotencyKey: '' },
      { bearer: key },
    );
    expect(await decisions('u2')).toEqual({
      PURPOSE_PERSONALIZATION: { state: 'CONSENT_STATE_GRANTED', isDefault: true },
      PURPOSE_TRAINING: { state: 'CONSENT_STATE_DENIED', isDefault: false },
    });

    // Back to an empty list: the configured defaults again.
    await setDefaults('optin', []);
    expect(await decisions('u2')).toEqual({
      PURPOSE_PERSONALIZATION: { state: 'CONSENT_STATE_DENIED', isDefault: true },
      PURPOSE_TRAINING: { state: 'CONSENT_STATE_DENIED', isDefault: false },
    });
  });

  it("reports the keys privacy verified to fusion (RecordApiKeyUse), where ListApiKeys shows their last use", async () => {
    const before = Date.now();
    await decisions('u3');
    await waitUntil(async () => {
      const keys = await rpc<v1.ListApiKeysResponse>(admin, 'listApiKeys', v1.ListApiKeysRequest.fromPartial({ tenantId: 'optin' }), { bearer: OPERATOR_TOKEN });
      const at = keys.keys[0]?.lastUsedAt;
      return at !== undefined && at.getTime() >= before;
    }, "the key's last use at fusion", 5_000);
  });

  it('serves ListTenantSettings and RecordApiKeyUse to service tokens only', async () => {
    const credentialClient = new v1.CredentialServiceClient(fusion.address, credentials.createInsecure());
    try {
      await expectCode(rpc(credentialClient, 'listTenantSettings', { page: undefined }, { bearer: key }), status.PERMISSION_DENIED);
      await expectCode(rpc(credentialClient, 'listTenantSettings', { page: undefined }), status.UNAUTHENTICATED);
      await expectCode(rpc(credentialClient, 'recordApiKeyUse', { uses: [] }, { bearer: key }), status.PERMISSION_DENIED);
    } finally {
      credentialClient.close();
    }
  });

  it("keeps PrivacyService's health NOT_SERVING until fusion could be read, then SERVING (DataKeyService and the server stay SERVING)", async () => {
    const fusionPort = await freePort();
    const store = await openSqliteStore({ path: ':memory:' });
    const early = await startPrivacy(
      {
        grpc: { host: '127.0.0.1', port: 0, drainTimeoutMs: 2_000 },
        pseudonym: { secret: TEST_SECRET },
        dataKeys: { kekSource: 'config', kekSecret: { default: randomBytes(32).toString('base64') } },
        privacy: { outbox: { sweepIntervalMs: 0 }, tenantSettings: { address: `127.0.0.1:${fusionPort}`, refreshMs: 600_000, callTimeoutMs: 300 } },
        auth: apiKeysAuth({ credentialService: { address: `127.0.0.1:${fusionPort}` } }),
      },
      logs.logger,
      { store, bus },
    );
    const fusionStore2 = await openSqliteStore({ path: ':memory:' });
    let late: RunningFusion | undefined;
    try {
      expect(await healthStatus(early.address, 'aimass.v1.PrivacyService')).toBe('NOT_SERVING');
      expect(await healthStatus(early.address, 'aimass.v1.DataKeyService')).toBe('SERVING');
      expect(await healthStatus(early.address)).toBe('SERVING');
      late = await startFusion(
        { grpc: { host: '127.0.0.1', port: fusionPort, drainTimeoutMs: 2_000 }, pseudonym: { secret: TEST_SECRET }, fusion: {}, auth: apiKeysAuth() },
        logs.logger,
        { store: fusionStore2, bus },
      );
      await waitUntil(async () => (await healthStatus(early.address, 'aimass.v1.PrivacyService')) === 'SERVING', 'PrivacyService SERVING once fusion answers', 10_000);
      expect(early.consentDefaults.loaded).toBe(true);
    } finally {
      await early.stop();
      await late?.stop();
      await store.close();
      await fusionStore2.close();
    }
  });

  it('refuses consent reads (UNAVAILABLE) until a first read of the registry succeeded, rather than guess from the configuration', async () => {
    const logger = createLogger({ service: 'privacy', level: 'silent' });
    // Nothing listens there.
    const source = new RemoteTenantSettings({ address: () => '127.0.0.1:1', interceptors: [], callTimeoutMs: 300 });
    const view = new TenantConsentDefaults({ configured: { base: { personalization: 'granted', training: 'granted' }, tenants: {} }, source, refreshMs: 60_000, logger });
    try {
      await view.start();
      expect(view.loaded).toBe(false);
      expect(() => view.current()).toThrow(/have not been read from fusion's CredentialService at 127\.0\.0\.1:1 yet/);
    } finally {
      view.close();
    }
    // Without a registry configured, the configuration is all there is.
    const configured = new TenantConsentDefaults({ configured: { base: { personalization: 'granted', training: 'denied' }, tenants: {} }, refreshMs: 60_000, logger });
    await configured.start();
    expect(configured.current().base).toEqual({ personalization: 'granted', training: 'denied' });
  });
});
