import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AiMassClient,
  FailedPreconditionError,
  NotFoundError,
  PermissionDeniedError,
  PrivacyClient,
  TenantAdminClient,
  TrainingAdminClient,
  UnauthenticatedError,
  UnavailableError,
  type ApiKeyScope,
  type ConsentDecision,
  type PredictionResult,
} from '@aimass/sdk';
import { trainGeneral } from '@aimass/train-general';
import { freePort, NatsServer, tempDir, TestProcess, waitUntil, type TempDir } from '@aimass/testing';
import { credentials, Metadata, status } from '@grpc/grpc-js';
import { v1 } from '@aimass/proto';
import { repositoryRoot } from '../src/index.js';

// The whole platform with authentication on everywhere (AIMASS_AUTH__MODE=api-keys): the five
// services each their own process, on a real nats-server, calling each other with service tokens
// made from one internal secret, and verifying tenants' API keys through fusion's
// CredentialService. Two tenants made by the operator show that a key's tenant is what counts,
// whatever a client claims, from the first call to the tenant's deletion.
const mains = {
  privacy: join(repositoryRoot, 'services/privacy/dist/main.js'),
  general: join(repositoryRoot, 'services/general-model/dist/main.js'),
  personal: join(repositoryRoot, 'services/personal-model/dist/main.js'),
  fusion: join(repositoryRoot, 'services/fusion/dist/main.js'),
  updater: join(repositoryRoot, 'services/updater/dist/main.js'),
};
type Name = keyof typeof mains;

const SECRET = 'e2e-tenancy-pseudonym-secret-0123456789-abcdefgh';
const KEK = randomBytes(32).toString('base64');
const OPERATOR_TOKEN = `amo_${randomBytes(32).toString('base64url')}`;
const A = 'alpha';
const B = 'bravo';
// Both tenants' user ids are the same string on purpose: different people, one per tenant.
const SHARED_USER = 'sam@example.com';

const mail = (marker: string, i: number) => ({
  subject: `Weekly digest ${i} ${marker}`,
  body: `Hello, this is issue ${i} of the digest. Reference ${marker}. Unsubscribe any time.`,
  headers: { From: 'Digest <news@digest.example>', 'List-Id': '<weekly.digest.example>' },
});

/** A raw unary call with an optional bearer credential; resolves with its status code and details. */
function unaryCode(
  invoke: (md: Metadata, callback: (err: { code: number; details: string } | null) => void) => unknown,
  bearer: string | undefined,
  tenant = 'alpha',
): Promise<{ code: number; details: string }> {
  const md = new Metadata();
  md.set('x-aimass-tenant', tenant);
  if (bearer !== undefined) md.set('authorization', `Bearer ${bearer}`);
  return new Promise((resolve) => invoke(md, (err) => resolve(err ? { code: err.code, details: err.details } : { code: status.OK, details: '' })));
}

const roles = (p: PredictionResult) => p.provenance.models.map((m) => m.role);
const reasons = (p: PredictionResult) => p.provenance.fallbacks.map((f) => f.reason);
const byPurpose = (decisions: ConsentDecision[]) => Object.fromEntries(decisions.map((d) => [d.purpose, { state: d.state, isDefault: d.isDefault }]));

describe('tenancy across the platform: API keys on every service, per-tenant consent defaults, tenant deletion', () => {
  let dir: TempDir;
  let nats: NatsServer;
  const procs: Array<{ name: Name; proc: TestProcess }> = [];
  let ports: Record<Name, number>;
  const at = (name: Name) => `127.0.0.1:${ports[name]}`;
  const closers: Array<{ close(): void }> = [];
  const track = <T extends { close(): void }>(c: T): T => {
    closers.push(c);
    return c;
  };

  let operator: TenantAdminClient;
  /** Secrets of the keys the operator creates, by tenant and name. */
  const keys: Record<string, { keyId: string; secret: string }> = {};

  const fusionClient = (tenant: string, apiKey?: string) => track(new AiMassClient({ address: at('fusion'), tenant, apiKey, defaultDeadlineMs: 10_000 }));
  const privacyClient = (tenant: string, apiKey?: string) => track(new PrivacyClient({ address: at('privacy'), tenant, apiKey, defaultDeadlineMs: 10_000 }));
  const trainingClient = (tenant: string, apiKey?: string) => track(new TrainingAdminClient({ address: at('updater'), tenant, apiKey, defaultDeadlineMs: 10_000 }));
  const adminClient = (apiKey: string) => track(new TenantAdminClient({ address: at('fusion'), apiKey, defaultDeadlineMs: 10_000 }));

  async function start(name: Name, env: Record<string, string>): Promise<void> {
    const service = name === 'general' ? 'general-model' : name === 'personal' ? 'personal-model' : name;
    const started = await TestProcess.start(process.execPath, {
      args: [mains[name]],
      env: { AIMASS_GRPC__PORT: String(ports[name]), ...env },
      ready: new RegExp(`${service} serving`),
      timeoutMs: 60_000,
    });
    procs.push({ name, proc: started.process });
  }

  beforeAll(async () => {
    dir = await tempDir('aimass-e2e-tenancy-');
    const dataDir = join(dir.path, 'data');
    nats = await NatsServer.start({ storeDir: join(dataDir, 'nats') });
    const secretFile = join(dir.path, 'internal-token.secret');
    await writeFile(secretFile, randomBytes(48).toString('base64'), { mode: 0o600 });
    const repository = join(dir.path, 'models');
    ports = { privacy: await freePort(), general: await freePort(), personal: await freePort(), fusion: await freePort(), updater: await freePort() };

    const events = { AIMASS_EVENTS__KIND: 'nats', AIMASS_EVENTS__SERVERS: nats.url };
    const store = (name: string) => ({ AIMASS_STORE__PATH: join(dataDir, `${name}.sqlite`) });
    const auth = {
      AIMASS_AUTH__MODE: 'api-keys',
      AIMASS_AUTH__INTERNAL_TOKEN_SECRET_FILE: secretFile,
      // Keys' last uses reach fusion within a fraction of a second rather than 30 s.
      AIMASS_AUTH__USE_REPORT_INTERVAL_MS: '200',
    };
    // privacy, the updater and general-model verify API keys with fusion's CredentialService.
    const remoteKeys = { ...auth, AIMASS_AUTH__CREDENTIAL_SERVICE__ADDRESS: at('fusion') };

    // The services start together, as in a cluster (each finds its peers by address when it
    // calls them); only general-model waits for its model. The model is a small one (1,500 mails):
    // this test is about tenants, not accuracy, and it trains in a few seconds instead of twenty.
    const generalModel = (async () => {
      await trainGeneral({ repository, model: 'general', version: 1, limit: 1_500, minAccuracy: 0.9 });
      await start('general', { ...remoteKeys, AIMASS_GENERAL_MODEL__REPOSITORY: repository });
    })();
    const started = await Promise.allSettled([
      generalModel,
      start('privacy', {
        ...store('privacy'),
        ...events,
        ...remoteKeys,
        AIMASS_PSEUDONYM__SECRET: SECRET,
        AIMASS_DATA_KEYS__KEK_SOURCE: 'config',
        AIMASS_DATA_KEYS__KEK_SECRET__DEFAULT: KEK,
        AIMASS_PRIVACY__EXPORT__PERSONAL_MODEL_ADDRESS: at('personal'),
        AIMASS_PRIVACY__EXPORT__UPDATER_ADDRESS: at('updater'),
        // Tenants' stored consent defaults are read from fusion twice a second rather than every 5 s.
        AIMASS_PRIVACY__TENANT_SETTINGS__REFRESH_MS: '500',
        AIMASS_PRIVACY__ERASURE__RETRY_INTERVAL_MS: '5000',
        AIMASS_PRIVACY__ERASURE__SWEEP_INTERVAL_MS: '1000',
      }),
      // personal-model takes service tokens only: no credential service.
      start('personal', { ...store('personal-model'), ...events, ...auth, AIMASS_PERSONAL_MODEL__PRIVACY__ADDRESS: at('privacy') }),
      start('updater', {
        ...store('updater'),
        ...events,
        ...remoteKeys,
        AIMASS_PSEUDONYM__SECRET: SECRET,
        AIMASS_UPDATER__GENERAL_MODEL__ADDRESS: at('general'),
        AIMASS_UPDATER__PERSONAL_MODEL__ADDRESS: at('personal'),
        AIMASS_UPDATER__PRIVACY__ADDRESS: at('privacy'),
      }),
      start('fusion', {
        ...store('fusion'),
        ...events,
        ...auth,
        AIMASS_AUTH__OPERATOR_TOKEN_SHA256: createHash('sha256').update(OPERATOR_TOKEN, 'utf8').digest('hex'),
        AIMASS_PSEUDONYM__SECRET: SECRET,
        AIMASS_FUSION__GENERAL_MODEL__ADDRESS: at('general'),
        AIMASS_FUSION__PERSONAL_MODEL__ADDRESS: at('personal'),
        AIMASS_FUSION__PRIVACY__ADDRESS: at('privacy'),
        // A service that missed the first TenantDeleted hears it again after 5 s, not 60 s.
        AIMASS_FUSION__TENANT_DELETION__RETRY_INTERVAL_MS: '5000',
        AIMASS_FUSION__TENANT_DELETION__SWEEP_INTERVAL_MS: '500',
      }),
    ]);
    const failed = started.filter((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed.length > 0) throw new AggregateError(failed.map((f) => f.reason as unknown), 'the platform did not start');
    operator = adminClient(OPERATOR_TOKEN);
  }, 240_000);

  afterAll(async () => {
    for (const c of closers) c.close();
    for (const { proc } of procs.reverse()) await proc.dispose();
    await nats?.dispose();
    await dir?.remove();
  });

  const key = async (tenant: string, name: string, scopes: ApiKeyScope[]) => {
    const created = await operator.createApiKey(tenant, { name, scopes });
    expect(created.key).toMatchObject({ tenantId: tenant, name, scopes });
    keys[`${tenant}/${name}`] = { keyId: created.key.keyId, secret: created.secret };
  };
  const secret = (tenant: string, name: string) => keys[`${tenant}/${name}`]!.secret;

  it('the operator creates two tenants and their keys; no key is UNAUTHENTICATED, a key without the scope PERMISSION_DENIED, on every service', async () => {
    for (const tenantId of [A, B]) expect(await operator.createTenant(tenantId, { displayName: tenantId.toUpperCase() })).toMatchObject({ tenantId, state: 'active' });
    await key(A, 'backend', ['predict', 'feedback']);
    await key(A, 'consent', ['consent']);
    await key(A, 'admin', ['admin']);
    // Used only at the updater, so its last use can only have been reported from there.
    await key(A, 'training', ['admin']);
    await key(A, 'unused', ['predict']);
    await key(B, 'backend', ['predict', 'feedback', 'consent']);

    // No credentials at all, on each public service.
    await expect(fusionClient(A).predict('u', mail('anon', 0))).rejects.toBeInstanceOf(UnauthenticatedError);
    await expect(privacyClient(A).getConsent('u')).rejects.toBeInstanceOf(UnauthenticatedError);
    await expect(trainingClient(A).trainingState()).rejects.toBeInstanceOf(UnauthenticatedError);
    // A key of the right form whose secret is wrong.
    const forged = `amk_${keys[`${A}/backend`]!.keyId}_${randomBytes(32).toString('base64url')}`;
    await expect(fusionClient(A, forged).predict('u', mail('forged', 0))).rejects.toThrow(/unknown API key/);

    // Keys without the scope the call needs: refused by fusion itself and by the services that
    // verify through fusion's CredentialService.
    await expect(fusionClient(A, secret(A, 'admin')).predict('u', mail('scope', 0))).rejects.toBeInstanceOf(PermissionDeniedError);
    await expect(fusionClient(A, secret(A, 'backend')).predict('u', mail('scope', 1))).resolves.toBeDefined();
    await expect(privacyClient(A, secret(A, 'backend')).getConsent('u')).rejects.toThrow(/lacks the "consent" scope/);
    await expect(trainingClient(B, secret(B, 'backend')).trainingState()).rejects.toBeInstanceOf(PermissionDeniedError);
    await expect(adminClient(secret(A, 'backend')).getTenant()).rejects.toBeInstanceOf(PermissionDeniedError);
    // An admin key administers its own tenant only: creating tenants is the operator's.
    await expect(adminClient(secret(A, 'admin')).createTenant('gamma')).rejects.toBeInstanceOf(PermissionDeniedError);
    // The operator administers tenants and nothing else.
    await expect(fusionClient(A, OPERATOR_TOKEN).predict('u', mail('operator', 0))).rejects.toBeInstanceOf(PermissionDeniedError);

    // general-model's public API (no SDK call for it): the same rules, verified through fusion.
    const general = track(new v1.GeneralModelServiceClient(at('general'), credentials.createInsecure()));
    const listModels = (bearer: string | undefined) =>
      unaryCode((md, cb) => general.listModels(v1.ListModelsRequest.fromPartial({}), md, { deadline: Date.now() + 10_000 }, cb), bearer);
    expect(await listModels(undefined)).toMatchObject({ code: status.UNAUTHENTICATED });
    expect(await listModels(secret(A, 'consent'))).toMatchObject({ code: status.PERMISSION_DENIED });
    expect(await listModels(secret(A, 'backend'))).toMatchObject({ code: status.OK });
  });

  it("a tenant's stored consent defaults (GRANTED) let its new users' feedback train a personal model; the other tenant (configured: DENIED) gets no_consent", { timeout: 120_000 }, async () => {
    const aAdmin = adminClient(secret(A, 'admin'));
    const updated = await aAdmin.updateTenant('', {
      settings: { consentDefaults: [{ purpose: 'training', state: 'granted' }, { purpose: 'personalization', state: 'granted' }] },
      updateMask: ['settings.consent_defaults'],
    });
    expect(updated).toMatchObject({ tenantId: A, settings: { consentDefaults: [{ purpose: 'training', state: 'granted' }, { purpose: 'personalization', state: 'granted' }] } });
    const granted = { personalization: { state: 'granted', isDefault: true }, training: { state: 'granted', isDefault: true } };
    const denied = { personalization: { state: 'denied', isDefault: true }, training: { state: 'denied', isDefault: true } };

    // Privacy rereads the registry every 500 ms: a probe user (never asked by fusion) shows when.
    // Privacy started before fusion, and until its first read of the registry succeeds its consent
    // reads answer UNAVAILABLE "retry shortly" (services/privacy/README.md): retried here.
    const aPrivacy = privacyClient(A, secret(A, 'consent'));
    await waitUntil(
      async () => {
        try {
          return JSON.stringify(byPurpose(await aPrivacy.getConsent('probe@example.com'))) === JSON.stringify(granted);
        } catch (err) {
          if (err instanceof UnavailableError) return false;
          throw err;
        }
      },
      "A's stored consent defaults at privacy",
      30_000,
      100,
    );

    // A new user of A, who never called SetConsent: defaulted to GRANTED, so feedback is learnt.
    expect(byPurpose(await aPrivacy.getConsent(SHARED_USER))).toEqual(granted);
    const a = fusionClient(A, secret(A, 'backend'));
    const first = await a.predict(SHARED_USER, mail('alpha', 0));
    expect(reasons(first)).not.toContain('no_consent');
    expect(reasons(first)).toContain('no_personal_model');
    for (let i = 1; i <= 3; i++) await a.feedback({ userId: SHARED_USER, input: mail('alpha', i), label: 'spam', idempotencyKey: `alpha-${i}` });
    let learned: PredictionResult | undefined;
    await waitUntil(
      async () => {
        const p = await a.predict(SHARED_USER, mail('alpha', 10));
        if (roles(p).includes('personal')) learned = p;
        return learned !== undefined;
      },
      "the updater to train A's user's personal model and fusion to use it",
      60_000,
      200,
    );
    expect(reasons(learned!)).not.toContain('no_personal_model');
    expect(reasons(learned!)).not.toContain('no_consent');
    const state = await trainingClient(A, secret(A, 'training')).trainingState(SHARED_USER);
    expect(state.user?.currentVersion ?? 0).toBeGreaterThan(0);

    // B stored no defaults: the configured ones (DENIED) apply, the same flow is refused.
    const bPrivacy = privacyClient(B, secret(B, 'backend'));
    expect(byPurpose(await bPrivacy.getConsent(SHARED_USER))).toEqual(denied);
    const b = fusionClient(B, secret(B, 'backend'));
    const bPredicted = await b.predict(SHARED_USER, mail('bravo', 0));
    expect(reasons(bPredicted)).toContain('no_consent');
    expect(roles(bPredicted)).not.toContain('personal');
    const refused = b.feedback({ userId: SHARED_USER, input: mail('bravo', 1), label: 'spam' });
    await expect(refused).rejects.toBeInstanceOf(FailedPreconditionError);
    await expect(refused).rejects.toThrow(/has not granted training consent/);
    // Nothing of B's user reached privacy's export (no feedback stored, no model).
    const bHeld = (await bPrivacy.export(SHARED_USER)).document as { feedback: unknown[]; models: unknown[] };
    expect({ feedback: bHeld.feedback, models: bHeld.models }).toEqual({ feedback: [], models: [] });
  });

  it("tenant B's key acts on B's own user of the same id: GetConsent, Export and Erase leave A's user untouched", { timeout: 120_000 }, async () => {
    // A client that claims tenant A with B's key: the key's tenant wins.
    const bPretendingA = privacyClient(A, secret(B, 'backend'));
    expect(byPurpose(await bPretendingA.getConsent(SHARED_USER))).toEqual({
      personalization: { state: 'denied', isDefault: true },
      training: { state: 'denied', isDefault: true },
    });
    const seen = (await bPretendingA.export(SHARED_USER)).document as { feedback: unknown[]; models: unknown[] };
    expect({ feedback: seen.feedback, models: seen.models }).toEqual({ feedback: [], models: [] });
    expect(JSON.stringify(seen)).not.toContain('alpha');

    const erasure = await bPretendingA.erase(SHARED_USER, { reason: 'e2e-other-tenant' });
    const receipt = await bPretendingA.waitForErasure(erasure.erasureId, { timeoutMs: 60_000 });
    expect(receipt.status).toBe('completed');
    // A cannot see B's erasure either: its ids are B's.
    await expect(privacyClient(A, secret(A, 'consent')).erasureReceipt(erasure.erasureId)).rejects.toBeInstanceOf(NotFoundError);

    // A's user: consent, stored feedback and personal model all still there and in use.
    const aPrivacy = privacyClient(A, secret(A, 'consent'));
    expect(byPurpose(await aPrivacy.getConsent(SHARED_USER))).toEqual({
      personalization: { state: 'granted', isDefault: true },
      training: { state: 'granted', isDefault: true },
    });
    const held = (await aPrivacy.export(SHARED_USER)).document as { feedback: unknown[]; models: unknown[] };
    expect(held.feedback.length).toBe(3);
    expect(held.models.length).toBeGreaterThan(0);
    expect(JSON.stringify(held.feedback)).toContain('alpha');
    const a = fusionClient(A, secret(A, 'backend'));
    const after = await a.predict(SHARED_USER, mail('alpha', 20));
    expect(roles(after)).toContain('personal');
    await a.feedback({ userId: SHARED_USER, input: mail('alpha', 21), label: 'spam', idempotencyKey: 'alpha-after-b-erase' });
  });

  it("reports each key's last use to fusion from every service that verified it (ListApiKeys.last_used_at)", { timeout: 60_000 }, async () => {
    const aAdmin = adminClient(secret(A, 'admin'));
    let listed: Record<string, Date | undefined> = {};
    await waitUntil(
      async () => {
        const page = await aAdmin.listApiKeys('');
        listed = Object.fromEntries(page.items.map((k) => [k.name, k.lastUsedAt]));
        return ['backend', 'consent', 'training', 'admin'].every((name) => listed[name] instanceof Date);
      },
      "A's keys' last uses (fusion's own, privacy's and the updater's reports)",
      20_000,
      100,
    );
    // `backend` was used at fusion only, `consent` at privacy only, `training` at the updater only.
    expect(Object.keys(listed).sort()).toEqual(['admin', 'backend', 'consent', 'training', 'unused']);
    expect(listed.unused).toBeUndefined();
    for (const name of ['backend', 'consent', 'training']) expect(listed[name]!.getTime()).toBeLessThanOrEqual(Date.now());
    // B's keys are B's: A's admin key cannot list them (NOT_FOUND, like a tenant that does not exist).
    await expect(aAdmin.listApiKeys(B)).rejects.toBeInstanceOf(NotFoundError);
  });

  it("refuses a tenant's API key on personal-model's port: only the platform's own pods may call it", async () => {
    const c = track(new v1.PersonalModelServiceClient(at('personal'), credentials.createInsecure()));
    const call = (bearer: string | undefined) =>
      unaryCode((md, cb) => c.listVersions(v1.ListVersionsRequest.fromPartial({ userPseudonym: 'any' }), md, { deadline: Date.now() + 10_000 }, cb), bearer);
    for (const name of ['backend', 'admin']) {
      const refused = await call(secret(A, name));
      expect(refused.code).toBe(status.UNAUTHENTICATED);
      expect(refused.details).toMatch(/API keys are not accepted here/);
    }
    expect((await call(undefined)).code).toBe(status.UNAUTHENTICATED);
    expect((await call(OPERATOR_TOKEN)).code).toBe(status.UNAUTHENTICATED);
  });

  it("deleting tenant A: every service confirms in the receipt, A's keys are refused everywhere, B keeps working", { timeout: 120_000 }, async () => {
    const deleting = await operator.deleteTenant(A, A);
    expect(['deleting', 'deleted']).toContain(deleting.state);
    // The fusion that deleted it refuses the tenant's keys at once.
    await expect(fusionClient(A, secret(A, 'backend')).predict(SHARED_USER, mail('alpha', 30))).rejects.toBeInstanceOf(UnauthenticatedError);

    let tenant = deleting;
    await waitUntil(
      async () => {
        tenant = await operator.getTenant(A);
        return tenant.state === 'deleted';
      },
      'tenant A to be DELETED',
      60_000,
      200,
    );
    const receipt = tenant.deletion!;
    expect(receipt.services.sort()).toEqual(['fusion', 'personal-model', 'privacy', 'updater']);
    expect(receipt.confirmations.map((c) => c.service).sort()).toEqual(receipt.services);
    for (const c of receipt.confirmations) expect(c.confirmedAt).toBeInstanceOf(Date);
    expect(receipt.completedAt).toBeInstanceOf(Date);

    // Every key of A, on every service (privacy and the updater within their key cache's 5 s).
    await expect(fusionClient(A, secret(A, 'backend')).predict(SHARED_USER, mail('alpha', 31))).rejects.toBeInstanceOf(UnauthenticatedError);
    await expect(adminClient(secret(A, 'admin')).getTenant()).rejects.toBeInstanceOf(UnauthenticatedError);
    const refusedEverywhere = async () => {
      const outcomes = await Promise.allSettled([
        privacyClient(A, secret(A, 'consent')).getConsent(SHARED_USER),
        trainingClient(A, secret(A, 'training')).trainingState(),
      ]);
      return outcomes.every((o) => o.status === 'rejected' && o.reason instanceof UnauthenticatedError);
    };
    await waitUntil(refusedEverywhere, "A's keys to be refused by privacy and the updater", 20_000, 200);
    // A deleted tenant's id stays taken.
    await expect(operator.createTenant(A)).rejects.toThrow(/ALREADY_EXISTS/);

    // B is untouched.
    expect(await operator.getTenant(B)).toMatchObject({ tenantId: B, state: 'active' });
    const b = fusionClient(B, secret(B, 'backend'));
    const p = await b.predict(SHARED_USER, mail('bravo', 40));
    expect(p.label).toBeDefined();
    expect(reasons(p)).toContain('no_consent');
    expect(byPurpose(await privacyClient(B, secret(B, 'backend')).getConsent(SHARED_USER))).toMatchObject({ training: { state: 'denied' } });
  });

  it("no process logged a user's id, an API key's secret or the operator token", () => {
    const secrets = Object.values(keys).map((k) => k.secret.slice(`amk_${k.keyId}_`.length));
    for (const { name, proc } of procs) {
      const out = proc.output;
      expect({ name, user: out.includes(SHARED_USER), secrets: secrets.filter((s) => out.includes(s)).length, operator: out.includes(OPERATOR_TOKEN) }).toEqual({
        name,
        user: false,
        secrets: 0,
        operator: false,
      });
    }
  });
});
