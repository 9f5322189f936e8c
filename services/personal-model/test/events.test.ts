import { status } from '@grpc/grpc-js';
import { ALL_MODEL_UPDATED, connectNatsBus, decodeEvent, modelUpdatedSubject, type NatsEventBus } from '@aimass/events';
import { v1 } from '@aimass/proto';
import { NatsServer, waitUntil } from '@aimass/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { failure, pseudonymOf, startHarness, type Harness } from './support/harness.js';
import { example, mailWorld, scoreItem } from './support/world.js';

/**
 * Two replicas on one SQLite file and one nats-server. Revalidation is set far beyond the test's
 * length, so only the PersonalModelUpdated events can make replica B see what replica A wrote.
 */
describe('model events: replicas follow each other through NATS', () => {
  let server: NatsServer;
  const buses: NatsEventBus[] = [];
  let a: Harness;
  let b: Harness;
  const seen: v1.PersonalModelUpdated[] = [];
  const subjects: string[] = [];
  /** Reconnections of the observer: it sees only what is published while it is connected. */
  let observerGaps = 0;
  const world = mailWorld(17);
  const probe = world.mail();
  const config = { cache: { revalidateMs: 600_000 } };
  /** Bounds the propagation: publish, fan-out, invalidation, the next Score's load. */
  const WITHIN_MS = 1000;

  const bus = async () => {
    const created = await connectNatsBus({ servers: server.url, name: 'pm-events-test', reconnectTimeWaitMs: 100, publishTimeoutMs: 300, publishRetries: 0 });
    buses.push(created);
    return created;
  };

  beforeAll(async () => {
    server = await NatsServer.start();
    a = await startHarness(config, { bus: await bus() });
    b = await startHarness(config, { bus: await bus(), dbPath: a.dbPath });
    // An observer: what the replicas announce, as any other service would see it.
    await (await bus()).subscribe(
      ALL_MODEL_UPDATED,
      (e) => {
        seen.push(decodeEvent('aimass.v1.PersonalModelUpdated', e.data));
        subjects.push(e.subject);
      },
      { onGap: () => observerGaps++ },
    );
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    for (const created of buses) await created.close();
    await server?.dispose();
  });

  const versionOn = async (h: Harness, user: string) => {
    const result = (await h.call('score', { items: [scoreItem(user, probe)] })).results[0]!;
    return result.status === v1.ScoreStatus.SCORE_STATUS_NO_MODEL ? 0 : result.model!.version;
  };

  /** Polls B's Score until it answers `version`; returns how long that took. */
  const followed = async (user: string, version: string | number, since: number) => {
    await waitUntil(async () => String(await versionOn(b, user)) === String(version), `replica B to score version ${version}`, WITHIN_MS);
    return Date.now() - since;
  };

  const train = (user: string, expectedVersion: number, key: string, labels = ['spam', 'spam']) =>
    a.call('train', { userPseudonym: user, examples: labels.map((l) => example(world.mail(), l)), idempotencyKey: key, expectedVersion });

  it('B scores the version A trained within a second, where its cache held the old one', async () => {
    const user = pseudonymOf('followed');
    await train(user, 0, 'k1');
    expect(await versionOn(b, user)).toBe('1');
    const loads = b.service.stats().loads;

    const at = Date.now();
    await train(user, 1, 'k2');
    expect(await followed(user, '2', at)).toBeLessThan(WITHIN_MS);
    expect(b.service.stats().invalidations).toBeGreaterThanOrEqual(1);
    // Reloaded because of the event, not because of revalidation.
    expect(b.service.stats().loads).toBeGreaterThan(loads);
    expect(b.service.stats().revalidations).toBe(0);

    const event = seen.find((e) => e.envelope!.userPseudonym === user && e.version === 2)!;
    expect(event).toMatchObject({ previousVersion: 1, exampleCount: 4, kind: v1.UpdateKind.UPDATE_KIND_TRAIN, generalModel: { name: 'general', version: '1' } });
    expect(event.envelope).toMatchObject({ tenant: 'acme', producer: 'personal-model', eventType: 'aimass.v1.PersonalModelUpdated' });
    expect(subjects).toContain(modelUpdatedSubject('acme', user));
    // A's own event did not drop A's freshly written version.
    expect(a.service.stats().invalidations).toBe(0);
  });

  it('B drops a cached "no model" when A trains the first version', async () => {
    const user = pseudonymOf('first-model');
    expect(await versionOn(b, user)).toBe(0);
    const at = Date.now();
    await train(user, 0, 'first');
    expect(await followed(user, '1', at)).toBeLessThan(WITHIN_MS);
  });

  it('a rollback on A is announced and B follows it', async () => {
    const user = pseudonymOf('rolled-back');
    await train(user, 0, 'r1', ['spam', 'spam', 'spam']);
    await train(user, 1, 'r2', ['ham', 'ham', 'ham']);
    const v1Parameters = (await a.call('getModel', { userPseudonym: user, version: 1, includeParameters: true })).parameters;
    expect(await versionOn(b, user)).toBe('2');

    const at = Date.now();
    await a.call('rollback', { userPseudonym: user, toVersion: 1, expectedVersion: 2 });
    expect(await followed(user, '3', at)).toBeLessThan(WITHIN_MS);
    const onB = (await b.call('score', { items: [scoreItem(user, probe)] })).results[0]!;
    const restored = (await a.call('getModel', { userPseudonym: user, version: 3, includeParameters: true })).parameters;
    expect(Buffer.compare(restored, v1Parameters)).toBe(0);
    expect(onB.exampleCount).toBe(3);
    expect(seen.find((e) => e.envelope!.userPseudonym === user && e.version === 3)).toMatchObject({ kind: v1.UpdateKind.UPDATE_KIND_ROLLBACK, previousVersion: 2, exampleCount: 3 });
  });

  it('DeleteUser on A is announced as version 0 and B stops scoring the erased model', async () => {
    const user = pseudonymOf('erased');
    await train(user, 0, 'e1');
    expect(await versionOn(b, user)).toBe('1');
    const at = Date.now();
    await a.call('deleteUser', { userPseudonym: user, erasureId: 'erasure-42' });
    expect(await followed(user, 0, at)).toBeLessThan(WITHIN_MS);
    expect(seen.find((e) => e.envelope!.userPseudonym === user && e.version === 0)).toMatchObject({ previousVersion: 1, kind: v1.UpdateKind.UPDATE_KIND_UNSPECIFIED });
  });

  it('a write whose event cannot be published answers UNAVAILABLE; the retry announces it, and B cleared its cache on reconnect', async () => {
    const user = pseudonymOf('unannounced');
    await train(user, 0, 'u1');
    expect(await versionOn(b, user)).toBe('1');
    const clearsBefore = b.service.stats().cacheClears;

    await server.kill();
    const err = await failure(train(user, 1, 'u2'));
    expect(err.code).toBe(status.UNAVAILABLE);
    expect(err.details).toMatch(/version 2 is stored.*retry the call \(with the same idempotency key/);
    // The write is durable all the same.
    expect((await a.call('getModel', { userPseudonym: user, version: 0, includeParameters: false })).model!.version).toBe(2);

    await server.restart();
    // B may have missed events while disconnected: it forgets every cached model once reconnected.
    await waitUntil(() => b.service.stats().cacheClears > clearsBefore, 'B to clear its cache after the reconnect', 20_000);
    await waitUntil(async () => (await versionOn(b, user)) === '2', 'B to load the current version');

    // Once the observer is back too, the retry publishes the same event again.
    await waitUntil(() => observerGaps === 1, 'the observer to reconnect', 20_000);
    await waitUntil(async () => {
      const retry = await train(user, 1, 'u2').catch(() => undefined);
      return retry !== undefined && retry.duplicate && retry.model!.version === 2;
    }, 'the retry to be answered', 20_000);
    await waitUntil(() => seen.some((e) => e.envelope!.userPseudonym === user && e.version === 2), 'the announcement of version 2', 5_000);
  });
});
