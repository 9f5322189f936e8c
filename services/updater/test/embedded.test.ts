import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Metadata, credentials, type ServiceError } from '@grpc/grpc-js';
import { AesGcmSealer, PrivacyDataKeySource } from '@aimass/crypto';
import { createInProcessBus, feedbackSubject, newEnvelope, plaintextSealer, publishEvent, type EventBus, type PayloadSealer } from '@aimass/events';
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

/**
 * The one-process mode: the runner's in-process bus with a journal and its SQLite stores. Feedback
 * acknowledged before a restart of the whole process is applied after it.
 */
describe('the embedded updater (one-process mode)', () => {
  let dir: TempDir;
  let general: RunningGeneralModel;
  let personal: RunningPersonalModel;
  let personalStore: DocumentStore;
  const stores: DocumentStore[] = [];
  const logs = captureLogs('embedded-test', 'info');

  beforeAll(async () => {
    dir = await tempDir('updater-embedded-');
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

  /** A FeedbackRecorded as fusion publishes it, sealed with `sealer`. */
  const feedbackMessage = async (sealer: PayloadSealer, tenant: string, pseudonym: string, eventId: string, text: string, output: v1.GeneralOutput) => {
    const scope = { tenant, userPseudonym: pseudonym };
    return {
      envelope: newEnvelope({ type: 'aimass.v1.FeedbackRecorded', tenant, userPseudonym: pseudonym, producer: 'fusion', eventId }),
      predictionId: '',
      label: 'spam',
      input: await sealer.seal(scope, v1.InputPayload.encode({ kind: { $case: 'text', value: text } }).finish(), eventId),
      idempotencyKey: '',
      generalModel: output.model,
      generalOutput: await sealer.seal(scope, v1.GeneralOutput.encode(output).finish(), eventId),
      sparseFeatures: undefined,
    };
  };

  it('applies feedback from the in-process bus, including what was acknowledged before a restart', async () => {
    const journalPath = join(dir.path, 'events.journal');
    const embedded = createUpdaterEmbedded({ env: {}, privacy: false, config: { sweep: { intervalMs: 0 }, watch: { intervalMs: 0 } } });
    const tenant = 'solo';
    const client = new GeneralModelClient(general.address, { callTimeoutMs: 5_000, classifyBatch: 16 });
    const { outputs } = await client.classify(tenant, undefined, [{ kind: { $case: 'text', value: 'free money now' } }]);
    client.close();

    let bus = createInProcessBus({ journalPath });
    const first = await embedded.start(environment(bus));
    expect(first.grpcServices).toEqual(['aimass.v1.UpdaterAdminService']);
    // The pseudonym secret fusion would share in the data directory.
    const secret = await readFile(join(dir.path, EMBEDDED_PSEUDONYM_SECRET_FILE), 'utf8');
    const pseudonym = new Pseudonymizer({ rootSecret: secret }).pseudonymize(tenant, 'solo-user');

    const sealer = plaintextSealer();
    const publish = async (eventId: string) => {
      await publishEvent(bus, feedbackSubject(tenant, pseudonym), 'aimass.v1.FeedbackRecorded', await feedbackMessage(sealer, tenant, pseudonym, eventId, 'free money now', outputs[0]!));
    };
    const examples = async () => {
      try {
        return (await personal.models.version(tenant, pseudonym, 0)).stored.info.exampleCount;
      } catch {
        return 0;
      }
    };

    await publish('e-1');
    await waitUntil(async () => (await examples()) === 1, 'the first example applied');
    await first.stop();
    await bus.close();

    // Acknowledged while the updater is down; the journal keeps it.
    bus = createInProcessBus({ journalPath });
    await publish('e-2');
    await bus.close();

    bus = createInProcessBus({ journalPath });
    const second = await embedded.start(environment(bus));
    await waitUntil(async () => (await examples()) === 2, 'the event published during the restart applied');
    await second.stop();
    await bus.close();
  });

  it('uses the runner\'s privacy service by default: consent enforced, history sealed with users\' keys', async () => {
    const tenant = 'withprivacy';
    const marker = `marker-${crypto.randomUUID()}`;
    const client = new GeneralModelClient(general.address, { callTimeoutMs: 5_000, classifyBatch: 16 });
    const { outputs } = await client.classify(tenant, undefined, [{ kind: { $case: 'text', value: 'free money now' } }]);
    client.close();
    const bus = createInProcessBus();
    const privacy = await createPrivacyEmbedded({ env: {} }).start(environment(bus));
    const updater = await createUpdaterEmbedded({ env: {}, config: { sweep: { intervalMs: 0 }, watch: { intervalMs: 0 } } }).start(environment(bus, { privacy: privacy.address }));
    const privacyClient = new v1.PrivacyServiceClient(privacy.address, credentials.createInsecure());
    const adminClient = new v1.UpdaterAdminServiceClient(updater.address, credentials.createInsecure());
    const fusionKeys = new PrivacyDataKeySource({ address: privacy.address });
    try {
      const md = new Metadata();
      md.set(TENANT_METADATA_KEY, tenant);
      const unary = <Res>(c: object, method: string, request: unknown) =>
        new Promise<Res>((resolve, reject) =>
          (c as Record<string, (...a: unknown[]) => void>)[method]!.call(c, request, md, { deadline: Date.now() + 10_000 }, (err: ServiceError | null, res: Res) => (err ? reject(err) : resolve(res))),
        );
      const secret = await readFile(join(dir.path, EMBEDDED_PSEUDONYM_SECRET_FILE), 'utf8');
      const pseudonymizer = new Pseudonymizer({ rootSecret: secret });
      const [yes, no] = [pseudonymizer.pseudonymize(tenant, 'consenting'), pseudonymizer.pseudonymize(tenant, 'silent')];
      await unary(privacyClient, 'setConsent', {
        userId: 'consenting',
        purpose: v1.Purpose.PURPOSE_TRAINING,
        state: v1.ConsentState.CONSENT_STATE_GRANTED,
        policyVersion: 'v1',
        source: 'test',
        decidedAt: undefined,
        idempotencyKey: '',
      });
      const sealer = new AesGcmSealer({ keys: fusionKeys });
      await publishEvent(bus, feedbackSubject(tenant, no), 'aimass.v1.FeedbackRecorded', await feedbackMessage(sealer, tenant, no, 'silent-1', 'free money now', outputs[0]!));
      await publishEvent(bus, feedbackSubject(tenant, yes), 'aimass.v1.FeedbackRecorded', await feedbackMessage(sealer, tenant, yes, 'consenting-1', `free money now ${marker}`, outputs[0]!));
      const examples = async (pseudonym: string) => {
        try {
          return (await personal.models.version(tenant, pseudonym, 0)).stored.info.exampleCount;
        } catch {
          return 0;
        }
      };
      await waitUntil(async () => (await examples(yes)) === 1, 'the consenting user\'s feedback applied');
      const exported = await unary<v1.ExportFeedbackResponse>(adminClient, 'exportFeedback', { userPseudonym: yes });
      expect(exported.feedback.map((f) => f.input)).toEqual([{ kind: { $case: 'text', value: `free money now ${marker}` } }]);
      const names = (await readdir(dir.path)).filter((n) => n.startsWith('updater.sqlite'));
      const files = Buffer.concat(await Promise.all(names.map((n) => readFile(join(dir.path, n)))));
      expect(files.includes(Buffer.from('consenting-1'))).toBe(true);
      expect(files.includes(Buffer.from(marker))).toBe(false);
      // The user without consent: dropped at intake, nothing stored, nothing learnt.
      await waitUntil(() => /feedback dropped: the user has not granted training consent/.test(logs.text()), 'the silent user\'s feedback dropped');
      expect(await unary(adminClient, 'exportFeedback', { userPseudonym: no })).toEqual({ feedback: [], omitted: 0 });
      expect(await examples(no)).toBe(0);
    } finally {
      fusionKeys.close();
      privacyClient.close();
      adminClient.close();
      await updater.stop();
      await privacy.stop();
      await bus.close();
    }
  });
});
