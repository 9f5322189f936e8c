import { mkdirSync, readFileSync, rmdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Metadata, credentials, type ServiceError } from '@grpc/grpc-js';
import { AesGcmSealer, PrivacyDataKeySource } from '@aimass/crypto';
import { FEEDBACK_STREAM, createInProcessBus, feedbackPrefix, feedbackSubject, newEnvelope, publishEvent, type EventBus } from '@aimass/events';
import type { RunningGeneralModel } from '@aimass/general-model';
import { startPersonalModel, type RunningPersonalModel } from '@aimass/personal-model';
import { Pseudonymizer, TENANT_METADATA_KEY } from '@aimass/platform';
import { createPrivacyEmbedded } from '@aimass/privacy';
import { v1 } from '@aimass/proto';
import { openSqliteStore, type DocumentStore } from '@aimass/storage';
import { tempDir, waitUntil, type TempDir } from '@aimass/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GeneralModelClient } from '../src/adapters/general-model-client.js';
import { EMBEDDED_PSEUDONYM_SECRET_FILE, createUpdaterEmbedded } from '../src/embedded.js';
import { addToyGeneralModel, startGeneral } from './support/general.js';
import { captureLogs } from './support/logs.js';

const E = v1.ErasureStatus;

/**
 * The updater's erasure deletes the user's stored FeedbackRecorded events, here on the
 * one-process mode's in-process bus with its journal (test/erasure.test.ts does it on NATS): the
 * step is not confirmed while the deletion fails, is retried, and once confirmed the events are
 * gone from the journal file and stay gone across a restart.
 */
describe('erasure deletes the user\'s stored events (one-process mode, in-process bus with a journal)', () => {
  let dir: TempDir;
  let general: RunningGeneralModel;
  let personal: RunningPersonalModel;
  let personalStore: DocumentStore;
  const stores: DocumentStore[] = [];
  const logs = captureLogs('erasure-events-test');

  beforeAll(async () => {
    dir = await tempDir('updater-erasure-events-');
    await addToyGeneralModel(dir.path, 1);
    general = await startGeneral(dir.path, logs.logger);
    personalStore = await openSqliteStore({ path: ':memory:' });
    personal = await startPersonalModel({ grpc: { host: '127.0.0.1', port: 0 }, personalModel: {} }, logs.logger, { store: personalStore });
  });
  afterAll(async () => {
    await personal?.stop();
    await general?.stop();
    await personalStore?.close();
    for (const s of stores) await s.close().catch(() => undefined);
    await dir?.remove();
  });

  const environment = (bus: EventBus, others: Record<string, string> = {}) => ({
    dataDir: dir.path,
    logger: logs.logger,
    host: '127.0.0.1',
    port: 0,
    bus,
    openStore: async (name: string) => {
      const store = await openSqliteStore({ path: join(dir.path, `${name}.sqlite`) });
      stores.push(store);
      return store;
    },
    addressOf: (name: string) => {
      const address = { 'general-model': general.address, 'personal-model': personal.address, ...others }[name];
      if (!address) throw new Error(`service "${name}" is not running`);
      return address;
    },
  });

  it('a failing deletion keeps the updater from confirming and is retried; then the events are gone from the journal, also after a restart', async () => {
    const tenant = 'shred';
    const journalPath = join(dir.path, 'events.journal');
    const client = new GeneralModelClient(general.address, { callTimeoutMs: 5_000, classifyBatch: 16 });
    const { outputs } = await client.classify(tenant, undefined, [{ kind: { $case: 'text', value: 'free money now' } }]);
    client.close();

    const bus = createInProcessBus({ journalPath });
    const privacy = await createPrivacyEmbedded({ env: {} }).start(environment(bus));
    const updater = await createUpdaterEmbedded({
      env: {},
      config: { sweep: { intervalMs: 0 }, watch: { intervalMs: 0 }, erasure: { maxDeliver: 100, backoffMs: [100], ackWaitMs: 10_000 } },
    }).start(environment(bus, { privacy: privacy.address }));
    const privacyClient = new v1.PrivacyServiceClient(privacy.address, credentials.createInsecure());
    const fusionKeys = new PrivacyDataKeySource({ address: privacy.address });
    let bobSubject: string | undefined;
    try {
      const md = new Metadata();
      md.set(TENANT_METADATA_KEY, tenant);
      const unary = <Res>(method: string, request: unknown) =>
        new Promise<Res>((resolve, reject) =>
          (privacyClient as unknown as Record<string, (...a: unknown[]) => void>)[method]!.call(privacyClient, request, md, { deadline: Date.now() + 10_000 }, (err: ServiceError | null, res: Res) =>
            err ? reject(err) : resolve(res),
          ),
        );
      const secret = await readFile(join(dir.path, EMBEDDED_PSEUDONYM_SECRET_FILE), 'utf8');
      const pseudonymizer = new Pseudonymizer({ rootSecret: secret });
      const [ann, bob] = [pseudonymizer.pseudonymize(tenant, 'ann'), pseudonymizer.pseudonymize(tenant, 'bob')];
      bobSubject = feedbackSubject(tenant, bob);
      const sealer = new AesGcmSealer({ keys: fusionKeys });
      for (const [user, pseudonym] of [['ann', ann], ['bob', bob]] as const) {
        await unary('setConsent', { userId: user, purpose: v1.Purpose.PURPOSE_TRAINING, state: v1.ConsentState.CONSENT_STATE_GRANTED, policyVersion: 'v1', source: 'test', decidedAt: undefined, idempotencyKey: '' });
        for (let i = 0; i < 2; i++) {
          const eventId = `${user}-event-${i}`;
          const scope = { tenant, userPseudonym: pseudonym };
          await publishEvent(bus, feedbackSubject(tenant, pseudonym), 'aimass.v1.FeedbackRecorded', {
            envelope: newEnvelope({ type: 'aimass.v1.FeedbackRecorded', tenant, userPseudonym: pseudonym, producer: 'fusion', eventId }),
            predictionId: '',
            label: 'spam',
            input: await sealer.seal(scope, v1.InputPayload.encode({ kind: { $case: 'text', value: 'free money now' } }).finish(), eventId),
            idempotencyKey: '',
            generalModel: outputs[0]!.model,
            generalOutput: await sealer.seal(scope, v1.GeneralOutput.encode(outputs[0]!).finish(), eventId),
            sparseFeatures: undefined,
          });
        }
      }
      const examples = async (pseudonym: string) => (await personal.models.version(tenant, pseudonym, 0).catch(() => undefined))?.stored.info.exampleCount ?? 0;
      await waitUntil(async () => (await examples(ann)) === 2 && (await examples(bob)) === 2, 'both users\' feedback applied');
      const journal = () => readFileSync(journalPath, 'utf8');
      expect(journal()).toContain(feedbackSubject(tenant, ann));
      expect(journal()).toContain('ann-event-1');

      // The journal cannot be rewritten (a directory stands where the rewrite goes): every
      // deletion attempt fails until it is removed.
      mkdirSync(`${journalPath}.compact`);
      const { erasureId } = await unary<v1.EraseResponse>('erase', { userId: 'ann', reason: 'test', idempotencyKey: '' });
      const updaterLine = async () => (await unary<v1.GetErasureReceiptResponse>('getErasureReceipt', { erasureId })).receipt!.confirmations.find((c) => c.service === 'updater');
      await waitUntil(() => logs.text().split('erasure failed; it is retried').length > 3, 'several failed attempts', 10_000);
      expect((await updaterLine())?.status).toBe(E.ERASURE_STATUS_PENDING);
      expect(journal()).toContain('ann-event-1');

      rmdirSync(`${journalPath}.compact`);
      await waitUntil(async () => (await updaterLine())?.status === E.ERASURE_STATUS_COMPLETED, 'the updater to confirm once the deletion succeeds', 10_000);
      // The history went in the first attempt; the confirming one deleted the two events.
      expect((await updaterLine())?.itemsDeleted).toBe(2);
      const after = journal();
      for (const gone of [feedbackSubject(tenant, ann), 'ann-event-0', 'ann-event-1']) expect(after).not.toContain(gone);
      for (const kept of [feedbackSubject(tenant, bob), 'bob-event-0', 'bob-event-1']) expect(after).toContain(kept);
    } finally {
      fusionKeys.close();
      privacyClient.close();
      await updater.stop();
      await privacy.stop();
      await bus.close();
    }

    // A restart re-reads the journal: bob's events are there, ann's do not come back.
    const reopened = createInProcessBus({ journalPath });
    try {
      await reopened.ensureStream(FEEDBACK_STREAM);
      const seen: string[] = [];
      await reopened.consume(
        { durable: 'check', stream: FEEDBACK_STREAM.name, filterSubject: `${feedbackPrefix(tenant)}.>`, maxDeliver: 1, backoffMs: [10], ackWaitMs: 5_000, deadLetterSubject: 'aimass-deadletter.check' },
        async (e) => void seen.push(e.subject),
      );
      await waitUntil(() => seen.length >= 2, 'the stored feedback');
      await new Promise((r) => setTimeout(r, 100));
      expect(seen).toEqual([bobSubject, bobSubject]);
    } finally {
      await reopened.close();
    }
  });
});
