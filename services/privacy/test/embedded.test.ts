import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { credentials } from '@grpc/grpc-js';
import { ALL_CONSENT_CHANGED, createInProcessBus, decodeEvent, type EventBus } from '@aimass/events';
import { Pseudonymizer } from '@aimass/platform';
import { v1 } from '@aimass/proto';
import { openSqliteStore, type DocumentStore } from '@aimass/storage';
import { tempDir, waitUntil, type TempDir } from '@aimass/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EMBEDDED_PSEUDONYM_SECRET_FILE, createPrivacyEmbedded } from '../src/embedded.js';
import { P, S, call, captureLogs, getRequest, setRequest } from './support/stack.js';

/** The one-process mode: the runner's in-process bus with a journal, its SQLite store, the shared secret file. */
describe('the embedded privacy service (one-process mode)', () => {
  let dir: TempDir;
  const stores: DocumentStore[] = [];
  const logs = captureLogs('embedded-test');

  beforeAll(async () => {
    dir = await tempDir('privacy-embedded-');
  });
  afterAll(async () => {
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
  });

  it('announces on the in-process bus, pseudonymizes with the shared secret file and keeps the history across a restart', async () => {
    const journalPath = join(dir.path, 'events.journal');
    const embedded = createPrivacyEmbedded({ env: { AIMASS_PRIVACY__CONSENT__DEFAULTS__PERSONALIZATION: 'granted' }, config: { outbox: { sweepIntervalMs: 0 } } });
    let bus = createInProcessBus({ journalPath });
    const seen: v1.ConsentChanged[] = [];
    await bus.subscribe(ALL_CONSENT_CHANGED, (e) => void seen.push(decodeEvent('aimass.v1.ConsentChanged', e.data)));

    const first = await embedded.start(environment(bus));
    expect(first).toMatchObject({ name: 'privacy', grpcServices: ['aimass.v1.PrivacyService'] });
    const client = new v1.PrivacyServiceClient(first.address, credentials.createInsecure());
    // The variable reached the service: a user who never decided gets personalization.
    expect((await call(client, 'getConsent', 'solo', getRequest('solo-user', [P.PURPOSE_PERSONALIZATION]))).decisions[0]).toMatchObject({ state: S.CONSENT_STATE_GRANTED, isDefault: true });
    const res = await call(client, 'setConsent', 'solo', setRequest('solo-user', P.PURPOSE_TRAINING, S.CONSENT_STATE_GRANTED));
    client.close();

    // The secret file fusion and the updater use: the same user id gives the same pseudonym everywhere.
    const secret = await readFile(join(dir.path, EMBEDDED_PSEUDONYM_SECRET_FILE), 'utf8');
    const pseudonym = new Pseudonymizer({ rootSecret: secret }).pseudonymize('solo', 'solo-user');
    await waitUntil(() => seen.length === 1, 'the ConsentChanged on the in-process bus');
    expect(seen[0]!.envelope).toMatchObject({ tenant: 'solo', userPseudonym: pseudonym });
    expect(seen[0]!.recordHash).toBe(res.record!.hash);

    await first.stop();
    await bus.close();
    for (const s of stores.splice(0)) await s.close();

    bus = createInProcessBus({ journalPath });
    const second = await embedded.start(environment(bus));
    const again = new v1.PrivacyServiceClient(second.address, credentials.createInsecure());
    const history = await call(again, 'getConsentHistory', 'solo', { userId: 'solo-user', purpose: P.PURPOSE_UNSPECIFIED, page: undefined });
    expect(history.chainVerified).toBe(true);
    expect(history.records.map((r) => r.hash)).toEqual([res.record!.hash]);
    again.close();
    await second.stop();
    await bus.close();
  });
});
