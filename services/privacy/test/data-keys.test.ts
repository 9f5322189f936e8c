import { readFileSync, existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Metadata, credentials, status, type ServiceError } from '@grpc/grpc-js';
import {
  AesGcmSealer,
  DataKeyRing,
  PrivacyDataKeySource,
  WRAPPED_KEY_COLLECTION,
  documentWrappedKeyStore,
  tenantKeysFromConfig,
  type WrappedKeyDocument,
} from '@aimass/crypto';
import { ALL_ERASURE_REQUESTED, ERASURE_STREAM, PayloadUnreadableError, deadLetterSubject, erasureRequestedSubject, type DeliveredEvent } from '@aimass/events';
import { ConfigError, TENANT_METADATA_KEY } from '@aimass/platform';
import { v1 } from '@aimass/proto';
import { openSqliteStore, type DocumentStore } from '@aimass/storage';
import { tempDir, waitUntil } from '@aimass/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErasureStore } from '../src/adapters/erasure-store.js';
import { newTombstone } from '../src/domain/erasure.js';
import { startPrivacy } from '../src/service.js';
import { KEK, SECRET, captureLogs, failure, pseudonymizer, startStack, type Stack } from './support/stack.js';

const T = 't1';
const E = v1.ErasureStatus;

function getKey(client: v1.DataKeyServiceClient, tenant: string | undefined, userPseudonym: string, keyId = ''): Promise<v1.GetDataKeyResponse> {
  const md = new Metadata();
  if (tenant !== undefined) md.set(TENANT_METADATA_KEY, tenant);
  return new Promise((resolve, reject) =>
    client.getDataKey({ userPseudonym, keyId }, md, { deadline: Date.now() + 10_000 }, (err: ServiceError | null, res?: v1.GetDataKeyResponse) => (err ? reject(err) : resolve(res!))),
  );
}

/** The bytes of the SQLite file and its WAL, as someone copying the disk would get them. */
function onDisk(dbPath: string): Buffer {
  return Buffer.concat([dbPath, `${dbPath}-wal`].filter((p) => existsSync(p)).map((p) => readFileSync(p)));
}

describe('DataKeyService: users’ data keys (integration)', () => {
  let stack: Stack;
  let keys: v1.DataKeyServiceClient;
  let requests: DeliveredEvent[];
  /** A second connection to privacy's SQLite file: another process reading the key store. */
  let reader: DocumentStore;
  let replica: v1.DataKeyServiceClient | undefined;

  /** A DataKeyRing with the same KEK on privacy's key store, with nothing in memory yet. */
  const freshRing = async () =>
    new DataKeyRing({ kek: tenantKeysFromConfig({ default: KEK }), store: documentWrappedKeyStore(await reader.collection<WrappedKeyDocument>(WRAPPED_KEY_COLLECTION)) });
  const keyRows = (pseudonym: string) => stack.sql<{ id: string; user: string }>('SELECT id, "user" FROM doc_data_keys WHERE tenant = ? AND id = ?', T, pseudonym);

  beforeAll(async () => {
    stack = await startStack({ keyCacheSeconds: 45, erasure: { sweepIntervalMs: 0, graceMs: 0 } });
    keys = new v1.DataKeyServiceClient(stack.privacy.address, credentials.createInsecure());
    reader = await openSqliteStore({ path: stack.dbPath });
    const bus = await stack.newBus('requests-reader');
    requests = [];
    await bus.consume(
      { durable: 'keys-reader', stream: ERASURE_STREAM.name, filterSubject: ALL_ERASURE_REQUESTED, maxDeliver: 1, backoffMs: [0], ackWaitMs: 5_000, deadLetterSubject: deadLetterSubject('privacy-test'), leaseTtlMs: 2_000 },
      async (e) => void requests.push(e),
    );
  });
  afterAll(async () => {
    keys?.close();
    replica?.close();
    await reader?.close();
    await stack?.stop();
  });

  it('creates a user’s key on first use, answers the same key again and by id, and stores it only wrapped', async () => {
    const ann = pseudonymizer.pseudonymize(T, 'ann');
    expect(keyRows(ann)).toEqual([]);
    const first = await getKey(keys, T, ann);
    expect(first.keyId).toMatch(/^[A-Za-z0-9_-]{8}\.[A-Za-z0-9_-]{22}$/);
    expect(first.key).toHaveLength(32);
    expect(first.maxCacheSeconds).toBe(45);

    const again = await getKey(keys, T, ann);
    expect(again.keyId).toBe(first.keyId);
    expect(Buffer.compare(again.key, first.key)).toBe(0);
    const byId = await getKey(keys, T, ann, first.keyId);
    expect(Buffer.compare(byId.key, first.key)).toBe(0);

    // One record, owned by the pseudonym (so an erasure's deleteByUser would take it too), wrapped:
    // neither the key's bytes nor their base64 are anywhere in the file.
    expect(keyRows(ann)).toEqual([{ id: ann, user: ann }]);
    const disk = onDisk(stack.dbPath);
    expect(disk.includes(first.key)).toBe(false);
    expect(disk.includes(Buffer.from(first.key.toString('base64')))).toBe(false);
    // Another ring with the same KEK on the same store unwraps the same key.
    const other = await (await freshRing()).keyFor({ tenant: T, userPseudonym: ann }, first.keyId);
    expect(Buffer.compare(other.key.export(), first.key)).toBe(0);
    // Key material never reaches the log.
    expect(stack.logs.text()).not.toContain(first.key.toString('base64'));
  });

  it('gives each user and tenant their own key; another user’s or an unknown key id is NOT_FOUND', async () => {
    const ann = pseudonymizer.pseudonymize(T, 'ann');
    const bob = pseudonymizer.pseudonymize(T, 'bob');
    const annKey = await getKey(keys, T, ann);
    const bobKey = await getKey(keys, T, bob);
    expect(bobKey.keyId).not.toBe(annKey.keyId);
    expect(Buffer.compare(bobKey.key, annKey.key)).not.toBe(0);
    // The same pseudonym in another tenant is another user.
    const elsewhere = await getKey(keys, 't2', ann);
    expect(elsewhere.keyId).not.toBe(annKey.keyId);

    const notBobs = await failure(getKey(keys, T, bob, annKey.keyId));
    expect(notBobs.code).toBe(status.NOT_FOUND);
    expect(notBobs.details).toMatch(/not a key of this user in this tenant.*another user or tenant/);
    expect((await failure(getKey(keys, 't2', ann, annKey.keyId))).code).toBe(status.NOT_FOUND);
    const neverWas = await failure(getKey(keys, T, ann, `${annKey.keyId.split('.')[0]}.${randomBytes(16).toString('base64url')}`));
    expect(neverWas.code).toBe(status.NOT_FOUND);
    expect(neverWas.details).toMatch(/does not exist any more|does not exist/);
    expect(neverWas.details).toMatch(/cannot be read any more/);
  });

  it('refuses a malformed pseudonym, key id or tenant with INVALID_ARGUMENT', async () => {
    for (const [err, pattern] of [
      [await failure(getKey(keys, T, 'ann')), /user_pseudonym is not a user pseudonym/],
      [await failure(getKey(keys, T, '')), /user_pseudonym is not a user pseudonym/],
      [await failure(getKey(keys, T, pseudonymizer.pseudonymize(T, 'ann'), 'k'.repeat(300))), /key_id is 300 bytes/],
      [await failure(getKey(keys, undefined, pseudonymizer.pseudonymize(T, 'ann'))), /tenant/],
    ] as const) {
      expect(err.code).toBe(status.INVALID_ARGUMENT);
      expect(err.details).toMatch(pattern);
    }
  });

  it('ends concurrent first calls, on one replica and across two on the same store, with one key', async () => {
    const createdBefore = stack.privacy.keys.stats().creates;
    const { privacy } = await stack.replica();
    replica = new v1.DataKeyServiceClient(privacy.address, credentials.createInsecure());

    for (const name of ['cy', 'dee', 'eli']) {
      const user = pseudonymizer.pseudonymize(T, name);
      const answers = await Promise.all(Array.from({ length: 16 }, (_, i) => getKey(i % 2 === 0 ? keys : replica!, T, user)));
      expect(new Set(answers.map((a) => a.keyId)).size).toBe(1);
      expect(new Set(answers.map((a) => a.key.toString('hex'))).size).toBe(1);
      expect(keyRows(user)).toHaveLength(1);
    }
    // Both replicas did create keys (one of them won each race, the loser read the winner's).
    expect(stack.privacy.keys.stats().creates - createdBefore + privacy.keys.stats().creates).toBe(3);
  });

  it('Erase destroys the key before it answers and before ErasureRequested: what it sealed can no longer be opened anywhere', async () => {
    const fay = pseudonymizer.pseudonymize(T, 'fay');
    const scope = { tenant: T, userPseudonym: fay };
    // A service sealing through the privacy service (the client fusion, the updater and personal-model use).
    const remote = new PrivacyDataKeySource({ address: stack.privacy.address });
    const sealer = new AesGcmSealer({ keys: remote });
    const marker = Buffer.from(`marker-${randomBytes(8).toString('hex')}`);
    const sealed = await sealer.seal(scope, marker, 'event-1');
    // Another process opening it from privacy's key store with the same KEK.
    const before = new AesGcmSealer({ keys: await freshRing() });
    expect(Buffer.from(await before.open(scope, sealed, 'event-1')).equals(marker)).toBe(true);
    expect(keyRows(fay)).toHaveLength(1);

    const erased = await stack.call('erase', T, { userId: 'fay', reason: 'gdpr-art17', idempotencyKey: '' });

    // As soon as Erase has answered: the wrapped key is gone from the store.
    expect(keyRows(fay)).toEqual([]);
    const afterRing = new AesGcmSealer({ keys: await freshRing() });
    await expect(afterRing.open(scope, sealed, 'event-1')).rejects.toThrow(PayloadUnreadableError);
    await expect(afterRing.open(scope, sealed, 'event-1')).rejects.toThrow(/does not exist/);
    // A fresh client of the privacy service can neither fetch the key nor a new one.
    const fresh = new PrivacyDataKeySource({ address: stack.privacy.address });
    await expect(new AesGcmSealer({ keys: fresh }).open(scope, sealed, 'event-1')).rejects.toThrow(PayloadUnreadableError);
    fresh.close();
    const byId = await failure(getKey(keys, T, fay, sealed.keyId));
    expect(byId.code).toBe(status.NOT_FOUND);
    expect(byId.details).toMatch(/destroyed at the user's erasure/);
    const current = await failure(getKey(keys, T, fay));
    expect(current.code).toBe(status.FAILED_PRECONDITION);
    expect(current.details).toMatch(/^user is erased/);
    expect(keyRows(fay)).toEqual([]);
    // The client that held the key drops it when it hears ErasureRequested (the services do so).
    remote.forget(T, fay);
    await expect(sealer.open(scope, sealed, 'event-1')).rejects.toThrow(PayloadUnreadableError);
    remote.close();

    // The receipt says when; the key went before the request was published.
    const { receipt } = await stack.call('getErasureReceipt', T, { erasureId: erased.erasureId });
    const destroyedAt = receipt!.keyDestroyedAt!;
    expect(destroyedAt).toBeInstanceOf(Date);
    expect(destroyedAt.getTime()).toBeGreaterThanOrEqual(receipt!.requestedAt!.getTime());
    expect(destroyedAt.getTime()).toBeLessThanOrEqual(receipt!.confirmations.find((c) => c.service === 'privacy')!.confirmedAt!.getTime());
    await waitUntil(() => requests.some((r) => r.subject === erasureRequestedSubject(T, fay)), 'ErasureRequested for fay');
    const request = requests.find((r) => r.subject === erasureRequestedSubject(T, fay))!;
    expect(destroyedAt.getTime()).toBeLessThanOrEqual(request.publishedAt.getTime());

    // Repeated: the same erasure, the first time kept, nothing re-created.
    const repeat = await stack.call('erase', T, { userId: 'fay', reason: 'again', idempotencyKey: 'k2' });
    expect(repeat).toMatchObject({ erasureId: erased.erasureId, duplicate: true });
    const again = (await stack.call('getErasureReceipt', T, { erasureId: erased.erasureId })).receipt!;
    expect(again.keyDestroyedAt).toEqual(destroyedAt);
    expect(again.status).toBe(E.ERASURE_STATUS_PENDING);
    expect(keyRows(fay)).toEqual([]);
  });

  it('records key_destroyed_at also for a user who never had a key', async () => {
    const erased = await stack.call('erase', T, { userId: 'gil', reason: '', idempotencyKey: '' });
    const { receipt } = await stack.call('getErasureReceipt', T, { erasureId: erased.erasureId });
    expect(receipt!.keyDestroyedAt).toBeInstanceOf(Date);
    expect((await failure(getKey(keys, T, pseudonymizer.pseudonymize(T, 'gil')))).code).toBe(status.FAILED_PRECONDITION);
  });

  it('stops serving a key the moment the tombstone exists; the sweep destroys a key a crash left behind', async () => {
    const hal = pseudonymizer.pseudonymize(T, 'hal');
    const { keyId } = await getKey(keys, T, hal);
    // A replica wrote the tombstone and crashed before destroying the key.
    const tombstones = await ErasureStore.open(reader);
    expect(await tombstones.create(newTombstone({ tenant: T, pseudonym: hal, erasureId: '01890a5d-ac96-774b-bcce-b302099a8057', reason: '', services: ['personal-model'], now: new Date() }))).toBe(true);
    expect(keyRows(hal)).toHaveLength(1);
    // Not served any more, although still stored (and held in memory by this replica).
    expect((await failure(getKey(keys, T, hal, keyId))).code).toBe(status.NOT_FOUND);
    expect((await failure(getKey(keys, T, hal))).code).toBe(status.FAILED_PRECONDITION);

    expect(await stack.privacy.sweepErasures()).toBeGreaterThanOrEqual(1);
    expect(keyRows(hal)).toEqual([]);
    const { receipt } = await stack.call('getErasureReceipt', T, { erasureId: '01890a5d-ac96-774b-bcce-b302099a8057' });
    expect(receipt!.keyDestroyedAt).toBeInstanceOf(Date);
    await waitUntil(() => requests.some((r) => r.subject === erasureRequestedSubject(T, hal)), 'ErasureRequested for hal');
  });

  it('leaves no key behind when a first GetDataKey races the erasure', async () => {
    for (let i = 0; i < 6; i++) {
      const name = `racer-${i}`;
      const user = pseudonymizer.pseudonymize(T, name);
      const gets = Array.from({ length: 4 }, () => getKey(keys, T, user).then(
        (r) => r,
        (err: ServiceError) => err,
      ));
      const erase = stack.call('erase', T, { userId: name, reason: '', idempotencyKey: '' });
      const [answers, erased] = await Promise.all([Promise.all(gets), erase]);
      expect(erased.erasureId).not.toBe('');
      // Each GetDataKey either got the key before the erasure or was refused because of it.
      for (const a of answers) if ('code' in a) expect(a.code).toBe(status.FAILED_PRECONDITION);
      expect(keyRows(user)).toEqual([]);
      expect((await failure(getKey(keys, T, user))).code).toBe(status.FAILED_PRECONDITION);
    }
  });
});

describe('privacy without tenant key-encryption keys', () => {
  it('refuses to start, naming the variables to set', async () => {
    const dir = await tempDir('privacy-nokek-');
    const store = await openSqliteStore({ path: join(dir.path, 'privacy.sqlite') });
    try {
      const start = (dataKeys?: Parameters<typeof startPrivacy>[0]['dataKeys']) =>
        startPrivacy({ grpc: { host: '127.0.0.1', port: 0 }, pseudonym: { secret: SECRET }, dataKeys }, captureLogs('nokek').logger, {
          store,
          // Never reached: the configuration is checked first.
          bus: undefined as never,
        });
      for (const dataKeys of [undefined, { kekSource: 'none' as const }]) {
        const err = await start(dataKeys).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(ConfigError);
        const message = (err as Error).message;
        expect(message).toMatch(/dataKeys\.kekSource/);
        for (const variable of ['AIMASS_DATA_KEYS__KEK_SOURCE', 'AIMASS_DATA_KEYS__KEK_SECRET__DEFAULT', 'AIMASS_DATA_KEYS__KEK_DIRECTORY']) expect(message).toContain(variable);
      }
      // A key directory that is not there: the path, as a configuration error.
      const missing = join(dir.path, 'no-such-keys');
      const err = await start({ kekSource: 'directory', kekDirectory: missing }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toMatch(/dataKeys\.kekDirectory/);
      expect((err as Error).message).toContain(missing);
    } finally {
      await store.close();
      await dir.remove();
    }
  });
});
