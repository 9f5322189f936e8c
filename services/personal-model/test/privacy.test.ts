import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { status } from '@grpc/grpc-js';
import { consentStateToProto, purposeToProto, type ConsentDecisionView, type ConsentPurpose, type ConsentStateName } from '@aimass/consent';
import { AES_256_GCM, DataKeyRing, InMemoryWrappedKeyStore, tenantKeysFromConfig } from '@aimass/crypto';
import {
  ALL_ERASURE_COMPLETED,
  CONSENT_STREAM,
  ERASURE_STREAM,
  connectNatsBus,
  consentChangedSubject,
  deadLetterSubject,
  decodeEvent,
  erasureRequestedEventId,
  erasureRequestedSubject,
  newEnvelope,
  publishEvent,
  type DeliveredEvent,
  type NatsEventBus,
} from '@aimass/events';
import { v1 } from '@aimass/proto';
import { openSqliteStore } from '@aimass/storage';
import { NatsServer, freePort, waitUntil } from '@aimass/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COLLECTIONS } from '../src/adapters/model-store.js';
import { startPersonalModel } from '../src/service.js';
import { failure, pseudonymOf, quietLogger, startHarness, type Harness } from './support/harness.js';
import { example, mailWorld, scoreItem, type Mail } from './support/world.js';

const TENANT = 'acme';

/**
 * The privacy side of personal-model (issue 6) on a real nats-server and real SQLite: stored models
 * sealed with users' data keys (a real DataKeyRing, real AES-256-GCM), crypto-shredding, consent on
 * Score and Train/Refit through a real ConsentCache fed by real ConsentChanged events, and erasure
 * dropping keys and consent from memory. The consent lookup is the test's (personal-model cannot
 * depend on the privacy service, whose tests depend on it): it answers what `decisions` holds.
 */
describe('privacy: sealed models and consent (integration)', () => {
  let server: NatsServer;
  const buses: NatsEventBus[] = [];
  let bus: NatsEventBus;
  let privacy: NatsEventBus;
  let ring: DataKeyRing;
  let h: Harness;
  const world = mailWorld(61);
  const probe = world.mail();
  /** What the test's privacy service says: (user, purpose) → state and record sequence. */
  const decisions = new Map<string, { state: ConsentStateName; sequence: number }>();
  let lookups = 0;
  let lookupDown = false;
  const confirmations: DeliveredEvent[] = [];
  // Only events, erasures and restarts change what a replica holds: revalidation is out of reach.
  const config = { cache: { revalidateMs: 600_000 }, erasure: { backoffMs: [50], ackWaitMs: 5_000, leaseTtlMs: 2_000 } };

  const decide = (user: string, purpose: ConsentPurpose, state: ConsentStateName, sequence: number) => decisions.set(`${user}/${purpose}`, { state, sequence });
  const grantAll = (user: string) => {
    decide(user, 'personalization', 'granted', 1);
    decide(user, 'training', 'granted', 2);
  };
  const lookup = async (tenant: string, user: string): Promise<ConsentDecisionView[]> => {
    lookups++;
    if (lookupDown) throw new Error('privacy service unreachable (test)');
    if (tenant !== TENANT) return [];
    return (['personalization', 'training'] as const).map((purpose) => {
      const d = decisions.get(`${user}/${purpose}`);
      return d ? { purpose, state: d.state, sequence: d.sequence, isDefault: false } : { purpose, state: 'denied' as const, sequence: 0, isDefault: true };
    });
  };

  /** A ConsentChanged as the privacy service publishes it. */
  const announce = (user: string, purpose: ConsentPurpose, state: ConsentStateName, sequence: number) =>
    publishEvent(privacy, consentChangedSubject(TENANT, user), 'aimass.v1.ConsentChanged', {
      envelope: newEnvelope({ type: 'aimass.v1.ConsentChanged', tenant: TENANT, userPseudonym: user, producer: 'privacy' }),
      purpose: purposeToProto(purpose),
      state: consentStateToProto(state),
      previousState: v1.ConsentState.CONSENT_STATE_UNSPECIFIED,
      policyVersion: '1',
      source: 'test',
      recordSequence: sequence,
      recordHash: '',
    });

  const connect = async (name: string) => {
    const created = await connectNatsBus({ servers: server.url, name, reconnectTimeWaitMs: 100, pullExpiresMs: 1_000 });
    buses.push(created);
    return created;
  };
  const newRing = () => new DataKeyRing({ kek: tenantKeysFromConfig({ default: randomBytes(32).toString('base64') }), store: new InMemoryWrappedKeyStore() });

  beforeAll(async () => {
    server = await NatsServer.start();
    bus = await connect('pm-privacy');
    privacy = await connect('privacy');
    await privacy.ensureStream(CONSENT_STREAM);
    await privacy.ensureStream(ERASURE_STREAM);
    await privacy.consume(
      { durable: 'test-confirmations', stream: ERASURE_STREAM.name, filterSubject: ALL_ERASURE_COMPLETED, maxDeliver: 1, backoffMs: [0], ackWaitMs: 5_000, deadLetterSubject: deadLetterSubject('test'), leaseTtlMs: 2_000 },
      async (e) => void confirmations.push(e),
    );
    ring = newRing();
    h = await startHarness(config, { bus, deps: { keys: ring, consentLookup: lookup } });
  });
  afterAll(async () => {
    await h?.close();
    for (const created of buses) await created.close();
    await server?.dispose();
  });

  const trainVersions = async (target: Harness, user: string, versions: number, perVersion = 5, from = 0) => {
    for (let v = from; v < from + versions; v++) {
      const examples = Array.from({ length: perVersion }, () => {
        const m = world.mail();
        return example(m, m.crowd === 'spam' ? 'ham' : 'spam');
      });
      await target.call('train', { userPseudonym: user, examples, idempotencyKey: `${user}-k${v}`, expectedVersion: v });
    }
  };
  const score = async (target: Harness, user: string, mail: Mail = probe) => (await target.call('score', { items: [scoreItem(user, mail)] })).results[0]!;
  const parameters = async (target: Harness, user: string, version: number) => {
    const res = await target.call('getModel', { userPseudonym: user, version, includeParameters: true });
    return new Uint8Array(res.parameters);
  };
  const versionDoc = async (target: Harness, user: string, version: number) => {
    const versions = await target.store.collection<Record<string, unknown>>({ name: COLLECTIONS.versions });
    return { versions, doc: (await versions.get(TENANT, `${user}:${version}`))! };
  };
  /** The SQLite file and its write-ahead log, as bytes. */
  const fileBytes = async (target: Harness) => {
    const parts = await Promise.all(['', '-wal'].map((suffix) => readFile(`${target.dbPath}${suffix}`).catch(() => Buffer.alloc(0))));
    return Buffer.concat(parts);
  };
  /** How many 16-byte windows of `plain` (one every 16 bytes) occur in `file`. */
  const windowsFound = (file: Buffer, plain: Uint8Array) => {
    let found = 0;
    let windows = 0;
    for (let at = 0; at + 16 <= plain.byteLength; at += 16) {
      windows++;
      if (file.includes(Buffer.from(plain.subarray(at, at + 16)))) found++;
    }
    return { found, windows };
  };

  it('stores every version sealed with the user\'s key (no model bytes in clear in the SQLite file) and scores the same after a cold restart', async () => {
    const user = pseudonymOf('sealed');
    grantAll(user);
    await trainVersions(h, user, 3, 12);
    const plain = await Promise.all([1, 2, 3].map((v) => parameters(h, user, v)));
    for (const v of [1, 2, 3]) {
      const { doc } = await versionDoc(h, user, v);
      const encryption = doc.data.parameters_encryption as { algorithm: string; key_id: string; nonce: Uint8Array };
      expect(encryption.algorithm).toBe(AES_256_GCM);
      expect(encryption.key_id).not.toBe('');
      expect(encryption.nonce.byteLength).toBe(12);
      // ciphertext‖tag: the model's length plus the 16-byte tag, and none of its bytes.
      expect((doc.data.parameters as Uint8Array).byteLength).toBe(plain[v - 1]!.byteLength + 16);
    }
    expect(h.service.encryption).toBe(AES_256_GCM);
    const before = await score(h, user);
    expect(before.status).toBe(v1.ScoreStatus.SCORE_STATUS_OK);

    await h.restart();
    const file = await fileBytes(h);
    for (const p of plain) {
      expect(p.byteLength).toBeGreaterThan(400);
      const { found, windows } = windowsFound(file, p);
      expect(windows).toBeGreaterThan(25);
      expect(found).toBe(0);
    }
    const after = await score(h, user);
    expect(after.status).toBe(v1.ScoreStatus.SCORE_STATUS_OK);
    expect(after.logits).toEqual(before.logits);
    expect(h.service.stats().loads).toBe(1);
  });

  it('(control) without keys the same models sit in the file in clear, so the search above can fail', async () => {
    const plainHarness = await startHarness(config, { bus });
    try {
      const user = pseudonymOf('in-clear');
      await trainVersions(plainHarness, user, 1);
      expect(plainHarness.service.encryption).toBe('none');
      const p = await parameters(plainHarness, user, 1);
      const { doc } = await versionDoc(plainHarness, user, 1);
      expect(doc.data.parameters_encryption).toBeUndefined();
      const { found, windows } = windowsFound(await fileBytes(plainHarness), p);
      expect(found).toBe(windows);
    } finally {
      await plainHarness.close();
    }
  });

  it('a sealed blob copied into another version or another user\'s document does not open: NOT_FOUND, and Score answers NO_MODEL', async () => {
    const a = pseudonymOf('copy-a');
    const b = pseudonymOf('copy-b');
    grantAll(a);
    grantAll(b);
    await trainVersions(h, a, 2);
    await trainVersions(h, b, 1);
    const { versions, doc: v1doc } = await versionDoc(h, a, 1);
    const sealed = { parameters: v1doc.data.parameters, parameters_encryption: v1doc.data.parameters_encryption };
    // A's version 1 under A's version 2 (same key, other version).
    const { doc: v2doc } = await versionDoc(h, a, 2);
    await versions.put(TENANT, `${a}:2`, { ...v2doc.data, ...sealed }, { user: a });
    // A's version 1 under B's version 1 (another user's key id).
    const { doc: bdoc } = await versionDoc(h, b, 1);
    await versions.put(TENANT, `${b}:1`, { ...bdoc.data, ...sealed }, { user: b });
    h.service.models.evict(TENANT, a);
    h.service.models.evict(TENANT, b);

    expect((await parameters(h, a, 1)).byteLength).toBeGreaterThan(0);
    const otherVersion = await failure(h.call('getModel', { userPseudonym: a, version: 2, includeParameters: false }));
    expect(otherVersion.code).toBe(status.NOT_FOUND);
    expect(otherVersion.details).toMatch(/version 2 of the user's model cannot be read: .*fails authentication/);
    const otherUser = await failure(h.call('getModel', { userPseudonym: b, version: 0, includeParameters: true }));
    expect(otherUser.code).toBe(status.NOT_FOUND);
    expect(otherUser.details).toMatch(/another user or tenant/);
    const unreadable = h.service.stats().unreadable;
    expect((await score(h, a)).status).toBe(v1.ScoreStatus.SCORE_STATUS_NO_MODEL);
    expect((await score(h, b)).status).toBe(v1.ScoreStatus.SCORE_STATUS_NO_MODEL);
    expect(h.service.stats().unreadable).toBe(unreadable + 2);
  });

  it("crypto-shredding: once the user's key is destroyed, Score answers NO_MODEL, GetModel NOT_FOUND, Train FAILED_PRECONDITION; the version records stay listed until the erasure", async () => {
    const user = pseudonymOf('shredded');
    grantAll(user);
    await trainVersions(h, user, 2);
    expect(await ring.destroy(TENANT, user)).toBe(true);
    // A cold replica (this one held the model decrypted; the erasure event is what drops it).
    h.service.models.evict(TENANT, user);

    const scored = await score(h, user);
    expect(scored.status).toBe(v1.ScoreStatus.SCORE_STATUS_NO_MODEL);
    expect(scored.model).toBeUndefined();
    const got = await failure(h.call('getModel', { userPseudonym: user, version: 0, includeParameters: false }));
    expect(got.code).toBe(status.NOT_FOUND);
    expect(got.details).toMatch(/cannot be read: .*does not exist: destroyed at the user's erasure/);
    const trained = await failure(h.call('train', { userPseudonym: user, examples: [example(world.mail(), 'spam')], idempotencyKey: 'after-shred', expectedVersion: 2 }));
    expect(trained.code).toBe(status.FAILED_PRECONDITION);
    expect(trained.details).toMatch(/cannot be read.*Nothing can be learnt on top of it/);
    const listed = await h.call('listVersions', { userPseudonym: user, page: undefined });
    expect(listed.versions.map((v) => v.version)).toEqual([2, 1]);
  });

  it('without personalization consent Score answers NO_MODEL without loading the model; without training consent Train and Refit are FAILED_PRECONDITION and nothing is written; GetModel and ListVersions stay available', async () => {
    const user = pseudonymOf('no-consent');
    grantAll(user);
    await trainVersions(h, user, 1);
    // Decided before this process first looks the user up (a cold replica).
    decide(user, 'personalization', 'withdrawn', 3);
    decide(user, 'training', 'denied', 4);
    await h.restart();
    const loads = h.service.stats().loads;
    const misses = h.service.stats().cache.misses;

    const scored = await score(h, user);
    expect(scored.status).toBe(v1.ScoreStatus.SCORE_STATUS_NO_MODEL);
    expect(h.service.stats().loads).toBe(loads);
    expect(h.service.stats().cache.misses).toBe(misses);
    expect(h.service.consentStats()).toMatchObject({ withheld: 1 });

    const train = await failure(h.call('train', { userPseudonym: user, examples: [example(world.mail(), 'spam')], idempotencyKey: 'refused', expectedVersion: 1 }));
    expect(train.code).toBe(status.FAILED_PRECONDITION);
    expect(train.details).toMatch(/^Train refused: the user has not granted training consent \(they denied it\).*SetConsent, purpose training\); nothing was written/);
    const refit = await failure(
      h.call('refit', { userPseudonym: user, generalModel: probe.general.model, examples: [example(world.mail(), 'ham')], idempotencyKey: 'refused-refit', expectedVersion: 1 }),
    );
    expect(refit.code).toBe(status.FAILED_PRECONDITION);
    expect(refit.details).toMatch(/^Refit refused/);
    expect(h.service.consentStats()).toMatchObject({ refused: 2 });

    const current = await h.call('getModel', { userPseudonym: user, version: 0, includeParameters: true });
    expect(current.model!.version).toBe(1);
    expect(current.parameters.byteLength).toBeGreaterThan(0);
    expect((await h.call('listVersions', { userPseudonym: user, page: undefined })).versions.map((v) => v.version)).toEqual([1]);
    expect(await (await h.store.collection({ name: COLLECTIONS.idempotency })).count(TENANT, { user })).toBe(1);
  });

  it('a withdrawal announced by ConsentChanged takes effect within a second, though the lookup still says granted; a new grant brings the model back', async () => {
    const user = pseudonymOf('withdraws');
    grantAll(user);
    await trainVersions(h, user, 1);
    expect((await score(h, user)).status).toBe(v1.ScoreStatus.SCORE_STATUS_OK);
    const lookupsBefore = lookups;

    await announce(user, 'personalization', 'withdrawn', 10);
    const published = performance.now();
    await waitUntil(async () => (await score(h, user)).status === v1.ScoreStatus.SCORE_STATUS_NO_MODEL, 'Score to stop using the model', 5_000);
    expect(performance.now() - published).toBeLessThan(1_000);

    await announce(user, 'training', 'withdrawn', 11);
    await waitUntil(
      async () => (await failure(h.call('train', { userPseudonym: user, examples: [example(world.mail(), 'spam')], idempotencyKey: `w-${performance.now()}`, expectedVersion: 1 }))).code === status.FAILED_PRECONDITION,
      'Train to be refused',
      5_000,
    );
    expect(performance.now() - published).toBeLessThan(2_000);
    // The cache held the user: only the events changed its answer, no lookup was made.
    expect(lookups).toBe(lookupsBefore);

    await announce(user, 'personalization', 'granted', 12);
    await waitUntil(async () => (await score(h, user)).status === v1.ScoreStatus.SCORE_STATUS_OK, 'Score to use the model again', 5_000);
    // An older event (a redelivery) does not undo the newer grant.
    await announce(user, 'personalization', 'withdrawn', 10);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect((await score(h, user)).status).toBe(v1.ScoreStatus.SCORE_STATUS_OK);
    expect((await h.call('getModel', { userPseudonym: user, version: 0, includeParameters: false })).model!.version).toBe(1);
  });

  it('when consent cannot be verified, Score fails closed (NO_MODEL) and Train answers UNAVAILABLE', async () => {
    const user = pseudonymOf('unverifiable');
    grantAll(user);
    await trainVersions(h, user, 1);
    lookupDown = true;
    try {
      await h.restart();
      expect((await score(h, user)).status).toBe(v1.ScoreStatus.SCORE_STATUS_NO_MODEL);
      expect(h.service.consentStats()).toMatchObject({ withheldUnverifiable: 1, lookupFailures: 1 });
      const train = await failure(h.call('train', { userPseudonym: user, examples: [example(world.mail(), 'spam')], idempotencyKey: 'unverifiable', expectedVersion: 1 }));
      expect(train.code).toBe(status.UNAVAILABLE);
      expect(train.details).toMatch(/could not be verified.*nothing was written, retry later/);
    } finally {
      lookupDown = false;
    }
    await new Promise((resolve) => setTimeout(resolve, 1_100)); // the failure is remembered for failureTtlMs (1 s)
    expect((await score(h, user)).status).toBe(v1.ScoreStatus.SCORE_STATUS_OK);
  });

  it('ErasureRequested drops the user\'s data key and consent from memory before deleting, and confirms', async () => {
    const user = pseudonymOf('erased');
    grantAll(user);
    await trainVersions(h, user, 2);
    expect((await score(h, user)).status).toBe(v1.ScoreStatus.SCORE_STATUS_OK);
    const keysHeld = ring.stats().entries;
    const consentHeld = h.service.consentStats()!.entries;
    const erasureId = `er-${randomBytes(4).toString('hex')}`;
    await publishEvent(privacy, erasureRequestedSubject(TENANT, user), 'aimass.v1.ErasureRequested', {
      envelope: newEnvelope({ type: 'aimass.v1.ErasureRequested', tenant: TENANT, userPseudonym: user, producer: 'privacy', eventId: erasureRequestedEventId(erasureId, 1) }),
      erasureId,
      services: ['privacy', 'personal-model'],
    });
    await waitUntil(
      () => confirmations.some((e) => decodeEvent('aimass.v1.ErasureCompleted', e.data).erasureId === erasureId),
      'ErasureCompleted from personal-model',
      10_000,
    );
    const completed = confirmations.map((e) => decodeEvent('aimass.v1.ErasureCompleted', e.data)).find((c) => c.erasureId === erasureId)!;
    expect(completed.itemsDeleted).toBe(2);
    expect(ring.stats().entries).toBe(keysHeld - 1);
    expect(h.service.consentStats()!.entries).toBe(consentHeld - 1);
    expect((await score(h, user)).status).toBe(v1.ScoreStatus.SCORE_STATUS_NO_MODEL);
    expect(await h.service.store.countUser(TENANT, user)).toEqual({ current: 0, versions: 0, idempotency: 0 });
  });

  it('reads versions stored in clear only with allowPlaintext, and seals the versions it writes from then on', async () => {
    const user = pseudonymOf('migrating');
    grantAll(user);
    const plainStore = await startHarness(config, { bus });
    try {
      await trainVersions(plainStore, user, 1);
      const inClear = await parameters(plainStore, user, 1);
      // The same file, now with keys: the version written in clear is refused...
      await plainStore.restart(config, { keys: ring, consentLookup: lookup });
      expect((await score(plainStore, user)).status).toBe(v1.ScoreStatus.SCORE_STATUS_NO_MODEL);
      const refused = await failure(plainStore.call('getModel', { userPseudonym: user, version: 1, includeParameters: true }));
      expect(refused.code).toBe(status.NOT_FOUND);
      expect(refused.details).toMatch(/not encrypted \(algorithm NONE\)/);
      // ...unless plaintext is allowed while migrating.
      await plainStore.restart({ ...config, privacy: { allowPlaintext: true } }, { keys: ring, consentLookup: lookup });
      expect((await score(plainStore, user)).status).toBe(v1.ScoreStatus.SCORE_STATUS_OK);
      expect(await parameters(plainStore, user, 1)).toEqual(inClear);
      await trainVersions(plainStore, user, 1, 5, 1);
      const { doc } = await versionDoc(plainStore, user, 2);
      expect((doc.data.parameters_encryption as { algorithm: string }).algorithm).toBe(AES_256_GCM);
      expect((await score(plainStore, user)).model!.version).toBe('2');
    } finally {
      await plainStore.close();
    }
  });

  it('with the privacy service unreachable, a cold Score answers UNAVAILABLE (fusion falls back) and a Train writes nothing', async () => {
    const user = pseudonymOf('privacy-down');
    grantAll(user);
    const replica = await startHarness(config, { bus, deps: { keys: ring, consentLookup: lookup } });
    try {
      await trainVersions(replica, user, 1);
      // The service's own key client (no injected keys), at an address where nothing listens.
      const dead = `127.0.0.1:${await freePort()}`;
      await replica.restart({ ...config, privacy: { address: dead, keys: { callTimeoutMs: 1_000 } } }, { consentLookup: lookup });
      const scored = await failure(replica.call('score', { items: [scoreItem(user, probe)] }));
      expect(scored.code).toBe(status.UNAVAILABLE);
      expect(scored.details).toMatch(/data key could not be obtained from the privacy service to read the model.*retry/);
      const trained = await failure(
        replica.call('refit', { userPseudonym: user, generalModel: probe.general.model, examples: [example(world.mail(), 'ham')], idempotencyKey: 'down', expectedVersion: 1 }),
      );
      expect(trained.code).toBe(status.UNAVAILABLE);
      expect(trained.details).toMatch(/to store the model/);
      expect(await replica.service.store.countUser(TENANT, user)).toEqual({ current: 1, versions: 1, idempotency: 1 });
    } finally {
      await replica.close();
    }
  });

  it('refuses to enforce consent without an event bus (nothing would bring ConsentChanged)', async () => {
    const store = await openSqliteStore({ path: ':memory:' });
    try {
      await expect(startPersonalModel({ grpc: { host: '127.0.0.1', port: 0 }, personalModel: { privacy: { address: '127.0.0.1:1' } } }, quietLogger().logger, { store })).rejects.toThrow(
        /needs the event bus that carries ConsentChanged/,
      );
      await expect(startPersonalModel({ grpc: { host: '127.0.0.1', port: 0 } }, quietLogger().logger, { store, consentLookup: lookup })).rejects.toThrow(TypeError);
    } finally {
      await store.close();
    }
  });
});
