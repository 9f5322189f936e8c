import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Metadata, credentials, status, type ServiceError } from '@grpc/grpc-js';
import { ALL_CONSENT_CHANGED, createInProcessBus, decodeEvent, type EventBus } from '@aimass/events';
import { Pseudonymizer, TENANT_METADATA_KEY } from '@aimass/platform';
import { v1 } from '@aimass/proto';
import { openSqliteStore, type DocumentStore } from '@aimass/storage';
import { tempDir, waitUntil, type TempDir } from '@aimass/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EMBEDDED_PSEUDONYM_SECRET_FILE, createPrivacyEmbedded } from '../src/embedded.js';
import { P, S, call, captureLogs, failure, getRequest, setRequest } from './support/stack.js';

function getKey(client: v1.DataKeyServiceClient, tenant: string, userPseudonym: string): Promise<v1.GetDataKeyResponse> {
  const md = new Metadata();
  md.set(TENANT_METADATA_KEY, tenant);
  return new Promise((resolve, reject) =>
    client.getDataKey({ userPseudonym, keyId: '' }, md, { deadline: Date.now() + 10_000 }, (err: ServiceError | null, res?: v1.GetDataKeyResponse) => (err ? reject(err) : resolve(res!))),
  );
}

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
    // The runner's: the services Export calls start after privacy; here they are not part of the run.
    addressOf: (name: string) => {
      throw new Error(`service "${name}" is not running`);
    },
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
    expect(first).toMatchObject({ name: 'privacy', grpcServices: ['aimass.v1.PrivacyService', 'aimass.v1.DataKeyService'] });
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

    // Data keys without any configuration: a default KEK generated once in the data directory, readable by the owner only.
    const keyFile = join(dir.path, 'keys', '_default', '1.key');
    expect((await stat(keyFile)).mode & 0o077).toBe(0);
    const keys = new v1.DataKeyServiceClient(first.address, credentials.createInsecure());
    const key = await getKey(keys, 'solo', pseudonym);
    keys.close();
    // Export asks the runner for personal-model and the updater; not running, it names what to set.
    const exportClient = new v1.PrivacyServiceClient(first.address, credentials.createInsecure());
    const notRunning = await failure(call(exportClient, 'export', 'solo', { userId: 'solo-user', format: v1.ExportFormat.EXPORT_FORMAT_JSON }));
    exportClient.close();
    expect(notRunning.code).toBe(status.FAILED_PRECONDITION);
    expect(notRunning.details).toMatch(/AIMASS_PRIVACY__EXPORT__PERSONAL_MODEL_ADDRESS.*AIMASS_PRIVACY__EXPORT__UPDATER_ADDRESS/);

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
    // The same KEK file and key store after the restart: the same key, unwrapped again.
    const keysAgain = new v1.DataKeyServiceClient(second.address, credentials.createInsecure());
    const sameKey = await getKey(keysAgain, 'solo', pseudonym);
    keysAgain.close();
    expect(sameKey.keyId).toBe(key.keyId);
    expect(Buffer.compare(sameKey.key, key.key)).toBe(0);
    await second.stop();
    await bus.close();
  });
});
