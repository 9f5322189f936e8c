import { randomUUID } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import {
  ALL_ERASURE_COMPLETED,
  ERASURE_STREAM,
  connectNatsBus,
  deadLetterSubject,
  decodeEvent,
  erasureCompletedSubject,
  erasureRequestedEventId,
  erasureRequestedSubject,
  newEnvelope,
  publishEvent,
  type DeliveredEvent,
  type NatsEventBus,
} from '@aimass/events';
import { v1 } from '@aimass/proto';
import { NatsServer, waitUntil } from '@aimass/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { failure, pseudonymOf, startHarness, type Harness } from './support/harness.js';
import { example, mailWorld, scoreItem } from './support/world.js';

const TENANT = 'acme';

/**
 * Two replicas sharing one SQLite file, one nats-server and the erasure consumer group: an
 * ErasureRequested (published here as the privacy service publishes it) removes every version and
 * every cached copy of the user's model, and is confirmed with ErasureCompleted.
 */
describe('erasure: personal-model deletes and confirms (integration)', () => {
  let server: NatsServer;
  const buses: NatsEventBus[] = [];
  let a: Harness;
  let b: Harness;
  let privacy: NatsEventBus;
  const confirmations: DeliveredEvent[] = [];
  const world = mailWorld(23);
  const probe = world.mail();
  // Only the events make a replica drop its cached model: revalidation is out of the test's reach.
  const config = { cache: { revalidateMs: 600_000 }, erasure: { backoffMs: [50], ackWaitMs: 5_000, leaseTtlMs: 2_000 } };

  const bus = async (name: string) => {
    const created = await connectNatsBus({ servers: server.url, name, reconnectTimeWaitMs: 100, pullExpiresMs: 1_000 });
    buses.push(created);
    return created;
  };

  beforeAll(async () => {
    server = await NatsServer.start();
    a = await startHarness(config, { bus: await bus('pm-a') });
    b = await startHarness(config, { bus: await bus('pm-b'), dbPath: a.dbPath });
    privacy = await bus('privacy');
    await privacy.consume(
      { durable: 'test-confirmations', stream: ERASURE_STREAM.name, filterSubject: ALL_ERASURE_COMPLETED, maxDeliver: 1, backoffMs: [0], ackWaitMs: 5_000, deadLetterSubject: deadLetterSubject('test'), leaseTtlMs: 2_000 },
      async (e) => void confirmations.push(e),
    );
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    for (const created of buses) await created.close();
    await server?.dispose();
  });

  const request = (user: string, erasureId: string, round: number) =>
    publishEvent(privacy, erasureRequestedSubject(TENANT, user), 'aimass.v1.ErasureRequested', {
      envelope: newEnvelope({ type: 'aimass.v1.ErasureRequested', tenant: TENANT, userPseudonym: user, producer: 'privacy', eventId: erasureRequestedEventId(erasureId, round) }),
      erasureId,
      services: ['privacy', 'personal-model', 'updater', 'fusion'],
    });

  const versionOn = async (h: Harness, user: string) => {
    const result = (await h.call('score', { items: [scoreItem(user, probe)] })).results[0]!;
    return result.status === v1.ScoreStatus.SCORE_STATUS_NO_MODEL ? 0 : Number(result.model!.version);
  };

  it('removes every version and both replicas\' cached copies, confirms with the versions deleted, and confirms a new round again', async () => {
    const user = pseudonymOf('erased');
    const kept = pseudonymOf('kept');
    for (let v = 0; v < 3; v++) await a.call('train', { userPseudonym: user, examples: [example(world.mail(), 'spam')], idempotencyKey: `k${v}`, expectedVersion: v });
    await a.call('train', { userPseudonym: kept, examples: [example(world.mail(), 'ham')], idempotencyKey: 'k', expectedVersion: 0 });
    expect(await versionOn(a, user)).toBe(3);
    expect(await versionOn(b, user)).toBe(3);

    const erasureId = randomUUID();
    await request(user, erasureId, 0);
    await waitUntil(() => confirmations.length === 1, 'ErasureCompleted');
    const first = confirmations[0]!;
    expect(first.subject).toBe(erasureCompletedSubject(TENANT, 'personal-model', user));
    expect(decodeEvent('aimass.v1.ErasureCompleted', first.data)).toMatchObject({
      service: 'personal-model',
      erasureId,
      status: v1.ErasureStatus.ERASURE_STATUS_COMPLETED,
      itemsDeleted: 3,
      envelope: { tenant: TENANT, userPseudonym: user, producer: 'personal-model' },
    });

    // Confirmed means gone: store, every version, and the copies both replicas had cached.
    expect(await a.service.store.countUser(TENANT, user)).toEqual({ current: 0, versions: 0, idempotency: 0 });
    expect((await failure(a.call('getModel', { userPseudonym: user, version: 0, includeParameters: false }))).code).toBe(status.NOT_FOUND);
    expect((await failure(a.call('listVersions', { userPseudonym: user, page: undefined }))).code).toBe(status.NOT_FOUND);
    await waitUntil(async () => (await versionOn(a, user)) === 0 && (await versionOn(b, user)) === 0, 'both replicas to score without the model', 2_000);
    expect(await versionOn(b, kept)).toBe(1);

    // A repeated publish of the round is stored once; a new round is erased (nothing left) and confirmed again.
    await request(user, erasureId, 0);
    await request(user, erasureId, 1);
    await waitUntil(() => confirmations.length === 2, 'the second round confirmed');
    expect(decodeEvent('aimass.v1.ErasureCompleted', confirmations[1]!.data)).toMatchObject({ status: v1.ErasureStatus.ERASURE_STATUS_COMPLETED, itemsDeleted: 0 });
    await new Promise((r) => setTimeout(r, 200));
    expect(confirmations).toHaveLength(2);
    expect(a.service.erasure!.stats().completed + b.service.erasure!.stats().completed).toBe(2);
    expect(a.service.erasure!.consumer.durable).toBe('personal-model-erasure');
  });
});
