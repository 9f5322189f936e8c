import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Metadata, credentials, status, type ServiceError } from '@grpc/grpc-js';
import { FEEDBACK_STREAM, feedbackSubject } from '@aimass/events';
import { startPrivacy, type RunningPrivacy } from '@aimass/privacy';
import { TENANT_METADATA_KEY } from '@aimass/platform';
import { v1 } from '@aimass/proto';
import { openSqliteStore, type DocumentStore } from '@aimass/storage';
import { SlowProxy, waitUntil } from '@aimass/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UpdaterStore } from '../src/adapters/updater-store.js';
import type { RunningUpdater } from '../src/service.js';
import { waitForExamples } from './support/checks.js';
import { testDataKeys } from './support/privacy.js';
import { SECRET, pseudonymizer, startStack, type Stack } from './support/stack.js';

const T = 'erase';
const E = v1.ErasureStatus;

/**
 * The erasure saga across the services that take part today: privacy (Erase, receipts),
 * personal-model and the updater (each deletes and confirms), on one nats-server, with real
 * general-model and SQLite stores. fusion is expected by privacy's default configuration but does
 * not take part yet, so its line of every receipt stays pending.
 */
describe('erasure saga: privacy, personal-model, updater (integration)', () => {
  let stack: Stack;
  let proxy: SlowProxy;
  let updater: RunningUpdater;
  let privacyStore: DocumentStore;
  let privacy: RunningPrivacy;
  let client: v1.PrivacyServiceClient;
  /** The updater's store through a second connection, as an operator would look at it. */
  let viewStore: DocumentStore;
  let view: UpdaterStore;

  beforeAll(async () => {
    stack = await startStack();
    // The updater reaches personal-model through a link the race test slows down.
    proxy = await SlowProxy.start(stack.personal.address);
    updater = await stack.startUpdater({ personalModel: { address: proxy.address } });
    privacyStore = await openSqliteStore({ path: join(stack.dir.path, 'privacy.sqlite') });
    privacy = await startPrivacy(
      {
        grpc: { host: '127.0.0.1', port: 0, drainTimeoutMs: 2_000 },
        pseudonym: { secret: SECRET },
        dataKeys: testDataKeys(),
        privacy: { erasure: { sweepIntervalMs: 0, graceMs: 0, consumer: { backoffMs: [50], ackWaitMs: 10_000, leaseTtlMs: 2_000 } } },
      },
      stack.logs.logger,
      { store: privacyStore, bus: await stack.newBus('privacy') },
    );
    client = new v1.PrivacyServiceClient(privacy.address, credentials.createInsecure());
    viewStore = await openSqliteStore({ path: stack.updaterDbPath });
    view = await UpdaterStore.open(viewStore);
  });
  afterAll(async () => {
    client?.close();
    await privacy?.stop();
    await privacyStore?.close();
    await viewStore?.close();
    await stack?.stop();
    await proxy?.close();
  });

  function call<Req, Res>(method: 'erase' | 'getErasureReceipt' | 'setConsent', request: Req, deadlineMs = 10_000): Promise<Res> {
    const md = new Metadata();
    md.set(TENANT_METADATA_KEY, T);
    return new Promise((resolve, reject) => {
      (client[method] as unknown as (r: Req, m: Metadata, o: object, cb: (err: ServiceError | null, res: Res) => void) => void).call(client, request, md, { deadline: Date.now() + deadlineMs }, (err, res) =>
        err ? reject(err) : resolve(res),
      );
    });
  }
  const erase = (userId: string, deadlineMs?: number) => call<v1.EraseRequest, v1.EraseResponse>('erase', { userId, reason: 'gdpr-art17', idempotencyKey: '' }, deadlineMs);
  const receipt = async (erasureId: string) => (await call<v1.GetErasureReceiptRequest, v1.GetErasureReceiptResponse>('getErasureReceipt', { erasureId })).receipt!;
  const setConsent = (userId: string) =>
    call<v1.SetConsentRequest, v1.SetConsentResponse>('setConsent', {
      userId,
      purpose: v1.Purpose.PURPOSE_TRAINING,
      state: v1.ConsentState.CONSENT_STATE_GRANTED,
      policyVersion: 'v1',
      source: 'test',
      decidedAt: undefined,
      idempotencyKey: '',
    });
  /**
   * Messages the feedback stream holds on the subject, as the server reports them (the JetStream
   * API's STREAM.INFO, asked over the test's own connection).
   */
  const storedOn = async (subject: string): Promise<number> => {
    const reply = await stack.bus.connection.request(`$JS.API.STREAM.INFO.${FEEDBACK_STREAM.name}`, JSON.stringify({ subjects_filter: subject }), { timeout: 5_000 });
    const info = reply.json<{ state?: { subjects?: Record<string, number> }; error?: { description: string } }>();
    if (info.error) throw new Error(`STREAM.INFO: ${info.error.description}`);
    return info.state?.subjects?.[subject] ?? 0;
  };
  /** Whether any file of the JetStream store (or of one stream's directory in it) holds `needle`. */
  const inJetStreamStore = (needle: string, stream?: string): boolean => {
    const bytes = Buffer.from(needle);
    const dir = stream === undefined ? stack.nats.storeDir : join(stack.nats.storeDir, 'jetstream', '$G', 'streams', stream);
    return (readdirSync(dir, { recursive: true }) as string[])
      .map((name) => join(dir, name))
      .some((path) => statSync(path).isFile() && readFileSync(path).includes(bytes));
  };
  const statuses = (r: v1.ErasureReceipt) => Object.fromEntries(r.confirmations.map((c) => [c.service, c.status]));
  /** Waits until privacy, personal-model and the updater have confirmed (fusion does not take part yet). */
  const confirmedByAll = async (erasureId: string, timeoutMs = 15_000) => {
    let last: v1.ErasureReceipt | undefined;
    await waitUntil(
      async () => {
        last = await receipt(erasureId);
        const s = statuses(last);
        return s['privacy'] === E.ERASURE_STATUS_COMPLETED && s['personal-model'] === E.ERASURE_STATUS_COMPLETED && s['updater'] === E.ERASURE_STATUS_COMPLETED;
      },
      'privacy, personal-model and the updater to confirm',
      timeoutMs,
      50,
    );
    return last!;
  };
  /** Nothing of the user left in personal-model or the updater. */
  const expectGone = async (pseudonym: string) => {
    expect(await stack.model(T, pseudonym)).toBeUndefined();
    expect(await stack.personal.store.countUser(T, pseudonym)).toEqual({ current: 0, versions: 0, idempotency: 0 });
    const listed = await stack.personalCall('listVersions', T, { userPseudonym: pseudonym, page: undefined }).catch((err: ServiceError) => err);
    expect((listed as ServiceError).code).toBe(status.NOT_FOUND);
    expect(await view.history(T, pseudonym, 10_000)).toEqual([]);
    expect(await view.countUnapplied(T, pseudonym)).toBe(0);
    expect(await view.state(T, pseudonym)).toBeUndefined();
  };

  it('erases the user everywhere; the receipt lists privacy, personal-model and the updater confirmed, fusion pending; a second Erase is the same erasure', async () => {
    const ann = pseudonymizer.pseudonymize(T, 'ann');
    const bob = pseudonymizer.pseudonymize(T, 'bob');
    // Markers in the inputs: the test publishes in plaintext, so the stream's files show them.
    const annMarker = `ann-marker-${crypto.randomUUID()}`;
    const bobMarker = `bob-marker-${crypto.randomUUID()}`;
    await setConsent('ann');
    for (let i = 0; i < 3; i++) await stack.feedback({ tenant: T, user: 'ann', text: i, marker: annMarker });
    for (let i = 0; i < 2; i++) await stack.feedback({ tenant: T, user: 'bob', text: i, marker: bobMarker });
    await waitForExamples(stack, T, ann, 3);
    await waitForExamples(stack, T, bob, 2);
    await updater.whenIdle();
    expect((await stack.versions(T, ann)).length).toBeGreaterThan(0);
    expect(await storedOn(feedbackSubject(T, ann))).toBe(3);
    await waitUntil(() => inJetStreamStore(annMarker), 'ann\'s events to reach the JetStream store files');

    const erased = await erase('ann');
    expect(erased).toMatchObject({ status: E.ERASURE_STATUS_PENDING, duplicate: false });
    const r = await confirmedByAll(erased.erasureId);
    expect(r).toMatchObject({ erasureId: erased.erasureId, userPseudonym: ann, status: E.ERASURE_STATUS_PENDING, completedAt: undefined });
    expect(r.confirmations.map((c) => c.service)).toEqual(['privacy', 'personal-model', 'updater', 'fusion']);
    expect(statuses(r)['fusion']).toBe(E.ERASURE_STATUS_PENDING);
    for (const c of r.confirmations.slice(0, 3)) expect(c.confirmedAt!.getTime()).toBeGreaterThanOrEqual(r.requestedAt!.getTime());
    expect(r.confirmations[3]!.confirmedAt).toBeUndefined();
    // The updater: three history entries, the training state and the three events in the stream.
    expect(r.confirmations[2]!.itemsDeleted).toBe(7);

    await expectGone(ann);
    // The stream keeps no event of ann, not even its bytes on disk; bob's stay.
    expect(await storedOn(feedbackSubject(T, ann))).toBe(0);
    expect(await storedOn(feedbackSubject(T, bob))).toBe(2);
    expect(inJetStreamStore(annMarker)).toBe(false);
    // The pseudonym stays in the erasure and consent streams (their subjects), not in the feedback one.
    expect(inJetStreamStore(bob, FEEDBACK_STREAM.name)).toBe(true);
    expect(inJetStreamStore(ann, FEEDBACK_STREAM.name)).toBe(false);
    expect(inJetStreamStore(bobMarker)).toBe(true);
    expect(await view.tombstone(T, ann)).toMatchObject({ erasureId: erased.erasureId });
    expect((await stack.model(T, bob))?.exampleCount).toBe(2);

    expect(await erase('ann')).toEqual({ erasureId: erased.erasureId, status: E.ERASURE_STATUS_PENDING, duplicate: true });
    const refused = (await setConsent('ann').catch((err: ServiceError) => err)) as ServiceError;
    expect(refused.code).toBe(status.FAILED_PRECONDITION);
    expect(refused.details).toMatch(/erased/);
    expect(stack.logs.text()).not.toMatch(/"ann"|"bob"/);
  });

  it('feedback in flight while the erasure runs, and published after it, does not bring the model back', async () => {
    const cy = pseudonymizer.pseudonymize(T, 'cy');
    for (let i = 0; i < 2; i++) await stack.feedback({ tenant: T, user: 'cy', text: i });
    await waitForExamples(stack, T, cy, 2);
    await updater.whenIdle();

    // A slow link to personal-model: the updater is in the middle of applying new feedback of cy
    // (reading the model it is about to train) when the erasure arrives, and personal-model
    // deletes the model before that read, or that write, reaches it.
    proxy.delayMs = 300;
    const appended = updater.stats().intake.appended;
    await stack.feedback({ tenant: T, user: 'cy', text: 2 });
    await waitUntil(() => updater.stats().intake.appended > appended && updater.stats().scheduler.running > 0, 'the update of cy to be under way', 5_000, 5);
    const erased = await erase('cy');
    // And feedback still in flight behind the erasure.
    for (let i = 3; i < 5; i++) await stack.feedback({ tenant: T, user: 'cy', text: i });
    await confirmedByAll(erased.erasureId, 20_000);
    proxy.delayMs = 0;

    // Late feedback, published once every participant had confirmed: dropped at intake.
    const dropped = updater.stats().intake.erased;
    for (let i = 5; i < 7; i++) await stack.feedback({ tenant: T, user: 'cy', text: i });
    await waitUntil(() => updater.stats().intake.erased >= dropped + 2, 'the late feedback dropped');
    await updater.whenIdle();
    await new Promise((r) => setTimeout(r, 300));
    await expectGone(cy);
    // The dropped events do not stay in the stream until retention: the updater purged cy's subject.
    await waitUntil(async () => (await storedOn(feedbackSubject(T, cy))) === 0, "cy's late events purged from the stream", 5_000);
    expect(updater.stats().intake.purgedSubjects).toBeGreaterThan(0);
  });

  it('NATS down during Erase: UNAVAILABLE with the tombstone kept, and the erasure completes once NATS is back', async () => {
    const dee = pseudonymizer.pseudonymize(T, 'dee');
    await stack.feedback({ tenant: T, user: 'dee', text: 0 });
    await waitForExamples(stack, T, dee, 1);

    await stack.nats.kill();
    const down = (await erase('dee', 4_000).catch((err: ServiceError) => err)) as ServiceError;
    expect(down.code).toBe(status.UNAVAILABLE);
    expect(down.details).toMatch(/erasure not announced/);
    // The tombstone stands: privacy refuses consent for dee already.
    expect(((await setConsent('dee').catch((err: ServiceError) => err)) as ServiceError).code).toBe(status.FAILED_PRECONDITION);

    await stack.nats.restart();
    let retried: v1.EraseResponse | undefined;
    await waitUntil(
      async () => {
        retried = await erase('dee', 3_000).catch(() => undefined);
        return retried !== undefined;
      },
      'the retried Erase to succeed',
      15_000,
      200,
    );
    expect(retried!.duplicate).toBe(true);
    await confirmedByAll(retried!.erasureId, 30_000);
    await updater.whenIdle();
    await expectGone(dee);
  });
});
