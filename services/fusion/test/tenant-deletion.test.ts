import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { credentials, status, type Client } from '@grpc/grpc-js';
import { jetstreamManager } from '@nats-io/jetstream';
import { PLATFORM_STREAMS, TENANT_STREAM, connectNatsBus, feedbackSubject, newEnvelope, publishEvent, type NatsEventBus } from '@aimass/events';
import { startGeneralModel, type RunningGeneralModel } from '@aimass/general-model';
import { startPersonalModel, type RunningPersonalModel } from '@aimass/personal-model';
import { Pseudonymizer, type Logger } from '@aimass/platform';
import { startPrivacy, type RunningPrivacy } from '@aimass/privacy';
import { v1 } from '@aimass/proto';
import { openSqliteStore, type DocumentStore } from '@aimass/storage';
import { NatsServer, tempDir, waitUntil, type TempDir } from '@aimass/testing';
import { startUpdater, type RunningUpdater } from '@aimass/updater';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFusion, type RunningFusion } from '../src/service.js';
import { codeOf, rpc } from './support/auth.js';
import { TEST_SECRET } from './support/fusion.js';
import { addToyGeneralModel } from './support/general.js';
import { captureLogs } from './support/logs.js';

const A = 'acme';
const B = 'beta';
const USERS = ['alice', 'bob'];
const HOST = '127.0.0.1';
const SERVICES = ['fusion', 'personal-model', 'updater', 'privacy'];
const input = (value: string): v1.InputPayload => ({ kind: { $case: 'text', value } });

/** Documents of `tenant` in every table of a SQLite file (every collection has a `tenant` column). */
function tenantDocs(file: string, tenant: string): Record<string, number> {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((t) => t.name);
    const out: Record<string, number> = {};
    for (const table of tables) {
      const cols = (db.prepare(`PRAGMA table_info("${table}")`).all() as { name: string }[]).map((c) => c.name);
      if (!cols.includes('tenant')) continue;
      const n = (db.prepare(`SELECT count(*) AS n FROM "${table}" WHERE tenant = ?`).get(tenant) as { n: number }).n;
      if (n > 0) out[table] = n;
    }
    return out;
  } finally {
    db.close();
  }
}

/**
 * Tenant deletion end to end (issue 7): fusion, personal-model, the updater and privacy in one
 * process on real SQLite files and a real nats-server. Two tenants with consent, feedback and
 * models; tenant A is deleted; the receipt must list every service, and nothing of A may be left
 * in any SQLite file or stream, while B is untouched.
 */
describe('tenant deletion (integration)', () => {
  let dir: TempDir;
  let nats: NatsServer;
  const buses: NatsEventBus[] = [];
  const stores: DocumentStore[] = [];
  let general: RunningGeneralModel;
  let personal: RunningPersonalModel;
  let privacy: RunningPrivacy;
  let updater: RunningUpdater;
  let fusion: RunningFusion;
  const clients: Client[] = [];
  let infer: v1.InferenceServiceClient;
  let admin: v1.TenantAdminServiceClient;
  let privacyClient: v1.PrivacyServiceClient;
  let probe: NatsEventBus;
  const logs = captureLogs('tenant-deletion');
  const file = (name: string) => join(dir.path, `${name}.sqlite`);

  const bus = async (name: string) => {
    const b = await connectNatsBus({ servers: nats.url, name, reconnectTimeWaitMs: 100, pullExpiresMs: 500 });
    buses.push(b);
    return b;
  };
  const store = async (name: string) => {
    const s = await openSqliteStore({ path: file(name) });
    stores.push(s);
    return s;
  };
  const client = <C extends Client>(Ctor: new (address: string, creds: ReturnType<typeof credentials.createInsecure>) => C, address: string): C => {
    const c = new Ctor(address, credentials.createInsecure());
    clients.push(c);
    return c;
  };
  const fast = { backoffMs: [50, 100], ackWaitMs: 10_000, leaseTtlMs: 2_000 };

  /**
   * Subjects of `tenant` each stream still holds, but AIMASS_TENANTS: TenantDeleted and the
   * confirmations (tenant id and counts, no data of the tenant) stay there as the receipt's witness.
   */
  async function streamSubjects(tenant: string): Promise<Record<string, number>> {
    const jsm = await jetstreamManager(probe.connection, { timeout: 5_000 });
    const out: Record<string, number> = {};
    for (const stream of PLATFORM_STREAMS.filter((s) => s.name !== TENANT_STREAM.name)) {
      const info = await jsm.streams.info(stream.name, { subjects_filter: `aimass.${tenant}.>` }).catch(() => undefined);
      for (const [subject, n] of Object.entries(info?.state.subjects ?? {})) out[subject] = n;
    }
    return out;
  }

  const modelsOf = (tenant: string) => tenantDocs(file('personal'), tenant)['doc_personal_current'] ?? 0;

  beforeAll(async () => {
    dir = await tempDir('tenant-deletion');
    nats = await NatsServer.start();
    await addToyGeneralModel(dir.path);
    const logger: Logger = logs.logger;
    const grpc = () => ({ host: HOST, port: 0, drainTimeoutMs: 2_000 });
    general = await startGeneralModel({ grpc: grpc(), generalModel: { repository: dir.path, poolSize: 1, executionProviders: ['cpu'], warmup: false } }, logger);
    privacy = await startPrivacy(
      {
        grpc: grpc(),
        pseudonym: { secret: TEST_SECRET },
        dataKeys: { kekSource: 'config', kekSecret: { default: randomBytes(32).toString('base64') } },
        privacy: { outbox: { sweepIntervalMs: 0 }, erasure: { sweepIntervalMs: 0, graceMs: 0, consumer: fast }, tenantDeletion: fast },
      },
      logger,
      { store: await store('privacy'), bus: await bus('privacy') },
    );
    personal = await startPersonalModel(
      { grpc: grpc(), personalModel: { privacy: { address: privacy.address }, erasure: fast, tenantDeletion: fast } },
      logger,
      { store: await store('personal'), bus: await bus('personal') },
    );
    updater = await startUpdater(
      {
        grpc: grpc(),
        pseudonym: { secret: TEST_SECRET },
        updater: {
          generalModel: { address: general.address },
          personalModel: { address: personal.address },
          privacy: { address: privacy.address },
          apply: { batchWindowMs: 10, retryInitialMs: 50, retryMaxMs: 500 },
          consumer: { maxDeliver: 3, ...fast },
          sweep: { intervalMs: 0, graceMs: 0 },
          watch: { intervalMs: 0 },
          erasure: fast,
          tenantDeletion: fast,
        },
      },
      logger,
      { store: await store('updater'), bus: await bus('updater') },
    );
    fusion = await startFusion(
      {
        grpc: grpc(),
        pseudonym: { secret: TEST_SECRET },
        fusion: {
          generalModel: { address: general.address },
          personalModel: { address: personal.address },
          privacy: { address: privacy.address },
          tenantDeletion: { retryIntervalMs: 1_000, sweepIntervalMs: 200, consumer: fast },
        },
      },
      logger,
      { store: await store('fusion'), bus: await bus('fusion') },
    );
    probe = await bus('probe');
    infer = client(v1.InferenceServiceClient, fusion.address);
    admin = client(v1.TenantAdminServiceClient, fusion.address);
    privacyClient = client(v1.PrivacyServiceClient, privacy.address);

    for (const tenant of [A, B]) {
      await rpc(admin, 'createTenant', v1.CreateTenantRequest.fromPartial({ tenantId: tenant }));
      for (const userId of USERS) {
        for (const purpose of [v1.Purpose.PURPOSE_TRAINING, v1.Purpose.PURPOSE_PERSONALIZATION]) {
          await rpc(privacyClient, 'setConsent', v1.SetConsentRequest.fromPartial({ userId, purpose, state: v1.ConsentState.CONSENT_STATE_GRANTED, policyVersion: 'p1', source: 'test' }), { tenant });
        }
        for (let i = 0; i < 2; i++) {
          const predicted = await rpc<v1.PredictResponse>(infer, 'predict', v1.PredictRequest.fromPartial({ userId, input: input(`invoice ${userId} ${i}`) }), { tenant });
          const predictionId = predicted.prediction!.predictionId;
          await rpc(infer, 'feedback', v1.FeedbackRequest.fromPartial({ userId, label: 'spam', target: { $case: 'predictionId', value: predictionId }, idempotencyKey: `${tenant}-${userId}-${i}` }), { tenant });
        }
      }
    }
    await waitUntil(() => modelsOf(A) === USERS.length && modelsOf(B) === USERS.length, 'personal models of both tenants', 20_000);
  }, 60_000);

  afterAll(async () => {
    for (const c of clients) c.close();
    await fusion?.stop();
    await updater?.stop();
    await personal?.stop();
    await privacy?.stop();
    await general?.stop();
    for (const b of buses) await b.close();
    for (const s of stores) await s.close();
    await nats?.dispose();
    await dir?.remove();
  });

  it('deletes tenant A everywhere with a receipt, leaves B untouched, drops late events, and is idempotent', async () => {
    // Before: both tenants hold data in every service and in the streams.
    for (const name of ['fusion', 'personal', 'updater', 'privacy']) {
      expect(Object.keys(tenantDocs(file(name), A)).length, name).toBeGreaterThan(0);
    }
    expect(Object.keys(await streamSubjects(A)).length).toBeGreaterThan(0);
    const bBefore = Object.fromEntries(['fusion', 'personal', 'updater', 'privacy'].map((n) => [n, tenantDocs(file(n), B)]));
    const bStreamsBefore = await streamSubjects(B);

    const deleted = await rpc<v1.DeleteTenantResponse>(admin, 'deleteTenant', { tenantId: A, confirmTenantId: A });
    expect([v1.TenantState.TENANT_STATE_DELETING, v1.TenantState.TENANT_STATE_DELETED]).toContain(deleted.tenant!.state);
    expect(deleted.tenant!.deletion!.services).toEqual(SERVICES);

    // The receipt: every service confirms, then the tenant is DELETED.
    let receipt: v1.Tenant | undefined;
    await waitUntil(async () => {
      receipt = (await rpc<v1.GetTenantResponse>(admin, 'getTenant', { tenantId: A })).tenant;
      return receipt?.state === v1.TenantState.TENANT_STATE_DELETED;
    }, 'tenant A DELETED', 20_000);
    expect(receipt!.deletion!.confirmations.map((c) => c.service).sort()).toEqual([...SERVICES].sort());
    expect(receipt!.deletion!.completedAt).toBeDefined();
    const items = Object.fromEntries(receipt!.deletion!.confirmations.map((c) => [c.service, c.itemsDeleted]));
    for (const service of SERVICES) expect(items[service], service).toBeGreaterThan(0);

    // Nothing of A in any SQLite file or stream; B exactly as before.
    for (const name of ['fusion', 'personal', 'updater', 'privacy']) {
      expect(tenantDocs(file(name), A), name).toEqual({});
      expect(tenantDocs(file(name), B), name).toEqual(bBefore[name]);
    }
    expect(await streamSubjects(A)).toEqual({});
    expect(await streamSubjects(B)).toEqual(bStreamsBefore);

    // ListTenants leaves A out unless asked; A's id stays taken.
    const listed = await rpc<v1.ListTenantsResponse>(admin, 'listTenants', {});
    expect(listed.tenants.map((t) => t.tenantId)).toEqual([B]);
    const all = await rpc<v1.ListTenantsResponse>(admin, 'listTenants', { includeDeleted: true });
    expect(all.tenants.map((t) => t.tenantId)).toEqual([A, B]);
    expect((await codeOf(rpc(admin, 'createTenant', v1.CreateTenantRequest.fromPartial({ tenantId: A })))).code).toBe(status.ALREADY_EXISTS);

    // A late FeedbackRecorded of A (in flight during the deletion) is dropped by the updater, and
    // its subject purged again.
    const erasedBefore = updater.stats().intake.erased;
    const pseudonym = Pseudonymizer.fromConfig({ secret: TEST_SECRET }).pseudonymize(A, 'alice');
    await publishEvent(probe, feedbackSubject(A, pseudonym), 'aimass.v1.FeedbackRecorded', v1.FeedbackRecorded.fromPartial({
      envelope: newEnvelope({ type: 'aimass.v1.FeedbackRecorded', tenant: A, userPseudonym: pseudonym, producer: 'fusion' }),
      label: 'spam',
      // Sealed with the tenant's (now destroyed) key: the updater drops it before opening anything.
      input: { keyId: 'late-key', algorithm: 'AES-256-GCM', nonce: Buffer.alloc(12), ciphertext: Buffer.from('late') },
    }));
    await waitUntil(() => updater.stats().intake.erased > erasedBefore, 'late feedback dropped', 10_000);
    expect(tenantDocs(file('updater'), A)).toEqual({});
    // Privacy creates no key for the deleted tenant any more.
    const dataKeys = client(v1.DataKeyServiceClient, privacy.address);
    expect((await codeOf(rpc(dataKeys, 'getDataKey', v1.GetDataKeyRequest.fromPartial({ userPseudonym: pseudonym }), { tenant: A }))).code).not.toBe(status.OK);
    expect(tenantDocs(file('privacy'), A)).toEqual({});

    // DeleteTenant again: the same receipt, nothing republished or changed.
    const again = await rpc<v1.DeleteTenantResponse>(admin, 'deleteTenant', { tenantId: A, confirmTenantId: A });
    expect(again.tenant!.state).toBe(v1.TenantState.TENANT_STATE_DELETED);
    expect(again.tenant!.revision).toBe(receipt!.revision);
    expect(again.tenant!.deletion).toEqual(receipt!.deletion);
    // The late event's subject is purged again (batched, after its ack).
    await waitUntil(async () => Object.keys(await streamSubjects(A)).length === 0, "the late event purged from A's subjects", 10_000);
  }, 60_000);
});
