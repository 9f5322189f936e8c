import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectNatsBus, startErasureParticipant, type ErasureParticipant, type NatsEventBus } from '@aimass/events';
import { Pseudonymizer, createLogger } from '@aimass/platform';
import { startPrivacy, type RunningPrivacy } from '@aimass/privacy';
import { openSqliteStore, type DocumentStore } from '@aimass/storage';
import { NatsServer, freePort, tempDir, type TempDir } from '@aimass/testing';
import {
  CancelledError,
  ErasureTimeoutError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  PrivacyClient,
  UnavailableError,
  pendingServices,
  type ErasureReceipt,
  type PrivacyClientOptions,
  type RetryInfo,
} from '../src/index.js';

// The real privacy service (consent and erasure) on a real nats-server and SQLite, with one more
// erasure participant of the test's own: it confirms after a short delay, so waiting for an
// erasure really polls, and it fails for the users the test holds back, so a wait times out.
const SECRET = 'sdk-privacy-test-secret-sdk-privacy-test!';
const TENANT = 'acme';
const pseudonymizer = new Pseudonymizer({ rootSecret: SECRET });

let dir: TempDir;
let nats: NatsServer;
let store: DocumentStore;
let privacy: RunningPrivacy;
let participant: ErasureParticipant;
const buses: NatsEventBus[] = [];
const clients: PrivacyClient[] = [];
/** Pseudonyms whose erasure the test participant refuses (it answers FAILED with the reason). */
const held = new Set<string>();

function client(options: Partial<PrivacyClientOptions> = {}): PrivacyClient {
  const c = new PrivacyClient({ address: privacy.address, tenant: TENANT, policyVersion: 'policy-2025-01', source: 'sdk-test', retry: { initialBackoffMs: 5, maxBackoffMs: 20 }, ...options });
  clients.push(c);
  return c;
}

async function bus(name: string): Promise<NatsEventBus> {
  const b = await connectNatsBus({ servers: nats.url, name, pullExpiresMs: 1_000 });
  buses.push(b);
  return b;
}

beforeAll(async () => {
  dir = await tempDir('sdk-privacy-');
  nats = await NatsServer.start();
  store = await openSqliteStore({ path: join(dir.path, 'privacy.sqlite') });
  privacy = await startPrivacy(
    {
      grpc: { host: '127.0.0.1', port: 0, drainTimeoutMs: 2_000 },
      pseudonym: { secret: SECRET },
      dataKeys: { kekSource: 'config', kekSecret: { default: randomBytes(32).toString('base64') } },
      privacy: { erasure: { services: ['privacy', 'sdk-test'], sweepIntervalMs: 0, graceMs: 0 }, outbox: { sweepIntervalMs: 0 } },
    },
    createLogger({ service: 'privacy', level: 'warn' }),
    { store, bus: await bus('privacy') },
  );
  participant = await startErasureParticipant({
    bus: await bus('sdk-test'),
    service: 'sdk-test',
    consumer: { maxDeliver: 2, backoffMs: [50], ackWaitMs: 5_000 },
    erase: async (request) => {
      if (held.has(request.userPseudonym)) throw new Error('held back by the test');
      await new Promise((resolve) => setTimeout(resolve, 300));
      return { itemsDeleted: 3 };
    },
  });
});

afterAll(async () => {
  for (const c of clients) c.close();
  await participant?.close();
  await privacy?.stop();
  for (const b of buses) await b.close().catch(() => undefined);
  await store?.close();
  await nats?.dispose();
  await dir?.remove();
});

describe('PrivacyClient: consent (integration)', () => {
  it('records a grant with the client defaults and a generated key; the same key again is a duplicate', async () => {
    const c = client();
    const first = await c.setConsent({ userId: 'alice', purpose: 'training', state: 'granted' });
    expect(first).toMatchObject({ changed: true, duplicate: false, record: { sequence: 1, purpose: 'training', state: 'granted', policyVersion: 'policy-2025-01', source: 'sdk-test', prevHash: '' } });
    expect(first.idempotencyKey).toMatch(/^[0-9a-f-]{36}$/);
    expect(first.record.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(first.record.recordedAt).toBeInstanceOf(Date);

    const again = await c.setConsent({ userId: 'alice', purpose: 'training', state: 'granted', idempotencyKey: first.idempotencyKey });
    expect(again).toMatchObject({ duplicate: true, record: { sequence: 1, hash: first.record.hash } });
  });

  it('grants several purposes, reads the current decisions and the tenant default of a user who never decided', async () => {
    const c = client();
    const optIn = { policyVersion: 'policy-2025-02', source: 'web-settings', idempotencyKey: 'bob-opt-in' };
    const granted = await c.grant('bob', ['personalization', 'training'], optIn);
    expect(granted.map((r) => [r.record.purpose, r.record.state, r.record.sequence, r.idempotencyKey])).toEqual([
      ['personalization', 'granted', 1, 'bob-opt-in/personalization'],
      ['training', 'granted', 2, 'bob-opt-in/training'],
    ]);
    // The whole grant repeated (a retry after a crash) records nothing new.
    const repeated = await c.grant('bob', ['personalization', 'training'], optIn);
    expect(repeated.map((r) => [r.duplicate, r.record.sequence])).toEqual([
      [true, 1],
      [true, 2],
    ]);
    // The key belongs to that decision: reused for another one it is refused, naming the field.
    const reused = await c.grant('bob', ['training'], { ...optIn, source: 'elsewhere' }).catch((e: unknown) => e);
    expect(reused).toBeInstanceOf(InvalidArgumentError);
    expect((reused as InvalidArgumentError).field).toBe('idempotency_key');

    const decisions = await c.getConsent('bob');
    expect(decisions.map((d) => [d.purpose, d.state, d.isDefault, d.record?.policyVersion])).toEqual([
      ['personalization', 'granted', false, 'policy-2025-02'],
      ['training', 'granted', false, 'policy-2025-02'],
    ]);
    expect(await c.getConsent('nobody', ['training'])).toEqual([{ purpose: 'training', state: 'denied', isDefault: true, record: undefined }]);
  });

  it('reads the history, every page, verified and linked', async () => {
    const c = client();
    await c.grant('carol', ['personalization', 'training']);
    await c.setConsent({ userId: 'carol', purpose: 'training', state: 'withdrawn', source: 'support-ticket:4711' });
    await c.setConsent({ userId: 'carol', purpose: 'personalization', state: 'withdrawn' });
    const history = await c.consentHistory('carol', { pageSize: 1 });
    expect(history.chainVerified).toBe(true);
    expect(history.records.map((r) => [r.sequence, r.purpose, r.state])).toEqual([
      [1, 'personalization', 'granted'],
      [2, 'training', 'granted'],
      [3, 'training', 'withdrawn'],
      [4, 'personalization', 'withdrawn'],
    ]);
    for (const [i, r] of history.records.entries()) {
      expect(r.verified).toBe(true);
      expect(r.prevHash).toBe(i === 0 ? '' : history.records[i - 1]!.hash);
    }
    expect(history.records[2]!.source).toBe('support-ticket:4711');
    const training = await c.consentHistory('carol', { purpose: 'training' });
    expect(training.records.map((r) => r.sequence)).toEqual([2, 3]);
  });

  it('fails with typed errors a caller can act on', async () => {
    const c = client();
    const noPolicy = new PrivacyClient({ address: privacy.address, tenant: TENANT });
    clients.push(noPolicy);
    await expect(noPolicy.setConsent({ userId: 'dave', purpose: 'training', state: 'granted' })).rejects.toThrow(/policyVersion is required/);
    await expect(c.setConsent({ userId: 'dave', purpose: 'marketing' as never, state: 'granted' })).rejects.toThrow(TypeError);

    const empty = await c.setConsent({ userId: '', purpose: 'training', state: 'granted' }).catch((e: unknown) => e);
    expect(empty).toBeInstanceOf(InvalidArgumentError);
    expect((empty as InvalidArgumentError).field).toBe('user_id');

    const badId = await c.erasureReceipt('not-a-uuid').catch((e: unknown) => e);
    expect(badId).toBeInstanceOf(InvalidArgumentError);
    expect((badId as InvalidArgumentError).field).toBe('erasure_id');
    await expect(c.erasureReceipt('0190a5b8-7a2b-7c3d-8e4f-0123456789ab')).rejects.toBeInstanceOf(NotFoundError);
  });

  it('retries a write when the service cannot be reached, as its key makes that safe', async () => {
    const retries: RetryInfo[] = [];
    const down = client({ address: `127.0.0.1:${await freePort()}`, onRetry: (info) => retries.push(info) });
    await expect(down.setConsent({ userId: 'erin', purpose: 'training', state: 'granted' })).rejects.toBeInstanceOf(UnavailableError);
    await expect(down.erase('erin')).rejects.toBeInstanceOf(UnavailableError);
    expect(retries.map((r) => r.method)).toEqual(['SetConsent', 'SetConsent', 'SetConsent', 'Erase', 'Erase', 'Erase']);
  });
});

describe('PrivacyClient: erasure (integration)', () => {
  it('erases, waits for every service to confirm and resolves with the receipt; a repeat answers the same erasure', async () => {
    const c = client();
    await c.grant('frank', ['personalization', 'training']);
    const erased = await c.erase('frank', { reason: 'gdpr-art17' });
    expect(erased).toMatchObject({ status: 'pending', duplicate: false });

    const progress: ErasureReceipt[] = [];
    const receipt = await c.waitForErasure(erased.erasureId, { timeoutMs: 15_000, pollMs: 50, onProgress: (r) => progress.push(r) });
    expect(receipt).toMatchObject({ erasureId: erased.erasureId, userPseudonym: pseudonymizer.pseudonymize(TENANT, 'frank'), status: 'completed' });
    expect(receipt.completedAt).toBeInstanceOf(Date);
    expect(receipt.keyDestroyedAt).toBeInstanceOf(Date);
    expect(receipt.confirmations.map((x) => [x.service, x.status])).toEqual([
      ['privacy', 'completed'],
      ['sdk-test', 'completed'],
    ]);
    expect(receipt.confirmations[0]!.itemsDeleted).toBeGreaterThan(0);
    expect(receipt.confirmations[1]!.itemsDeleted).toBe(3);
    // The participant takes 300 ms: the wait saw the erasure pending before it saw it complete.
    expect(pendingServices(progress[0]!)).toEqual(['sdk-test']);
    expect(progress.at(-1)!.status).toBe('completed');

    const again = await c.erase('frank', { reason: 'asked twice' });
    expect(again).toMatchObject({ erasureId: erased.erasureId, duplicate: true });
    await expect(c.setConsent({ userId: 'frank', purpose: 'training', state: 'granted' })).rejects.toBeInstanceOf(FailedPreconditionError);
    // Another tenant does not see the erasure.
    await expect(client({ tenant: 'other' }).erasureReceipt(erased.erasureId)).rejects.toBeInstanceOf(NotFoundError);
  });

  it('gives up waiting with an ErasureTimeoutError naming the service that has not confirmed', async () => {
    held.add(pseudonymizer.pseudonymize(TENANT, 'gina'));
    const c = client();
    const { erasureId } = await c.erase('gina');
    const err = await c.waitForErasure(erasureId, { timeoutMs: 1_500, pollMs: 100 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ErasureTimeoutError);
    const timeout = err as ErasureTimeoutError;
    expect(timeout.pendingServices).toEqual(['sdk-test']);
    // Two attempts, 50 ms apart, then the participant answers FAILED with its reason.
    expect(timeout.receipt.confirmations.find((x) => x.service === 'sdk-test')).toMatchObject({ status: 'failed', detail: 'held back by the test' });
    expect(timeout.message).toContain('waiting for sdk-test (failed: held back by the test)');

    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    await expect(c.waitForErasure(erasureId, { timeoutMs: 10_000, pollMs: 1_000, signal: controller.signal })).rejects.toBeInstanceOf(CancelledError);
  });
});

describe('PrivacyClient: export (integration)', () => {
  // No personal-model or updater here: a user who is not erased cannot be exported (the service
  // answers all or nothing); an erased user's export is privacy's own record of the erasure.
  it("returns the user's data as a parsed JSON document", async () => {
    const c = client();
    await c.grant('hana', ['training']);
    const { erasureId } = await c.erase('hana', { reason: 'gdpr-art17' });
    const result = await c.export('hana', { deadlineMs: 10_000 });
    expect(result.generatedAt).toBeInstanceOf(Date);
    expect(result.document).toMatchObject({ user: { pseudonym: pseudonymizer.pseudonymize(TENANT, 'hana') }, erasure: { erasureId, reason: 'gdpr-art17' } });
    expect(JSON.stringify(result.document)).not.toContain('hana');
  });

  it('names the missing part when the export cannot be complete', async () => {
    const c = client();
    await c.grant('ivan', ['training']);
    const err = await c.export('ivan').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FailedPreconditionError);
    expect((err as FailedPreconditionError).details).toMatch(/Export needs the personal-model service's address/);
  });
});
