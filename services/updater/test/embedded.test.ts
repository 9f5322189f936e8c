import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInProcessBus, feedbackSubject, newEnvelope, plaintextSealer, publishEvent, type EventBus } from '@aimass/events';
import type { RunningGeneralModel } from '@aimass/general-model';
import { startPersonalModel, type RunningPersonalModel } from '@aimass/personal-model';
import { Pseudonymizer } from '@aimass/platform';
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

  const environment = (bus: EventBus) => ({
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
    addressOf: (name: string) => (name === 'general-model' ? general.address : personal.address),
  });

  it('applies feedback from the in-process bus, including what was acknowledged before a restart', async () => {
    const journalPath = join(dir.path, 'events.journal');
    const embedded = createUpdaterEmbedded({ env: {}, config: { sweep: { intervalMs: 0 }, watch: { intervalMs: 0 } } });
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
});
