import { randomUUID } from 'node:crypto';
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
import { Pseudonymizer } from '@aimass/platform';
import { v1 } from '@aimass/proto';
import { NatsServer, waitUntil } from '@aimass/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FUSION_ERASURE_SERVICE } from '../src/service.js';
import { TEST_SECRET, type TestFusion } from './support/fusion.js';
import { feedback, mail, predict, text, type InferenceClient } from './support/grpc.js';
import { startStack, type Stack } from './support/stack.js';

const TENANT = 'acme';

/**
 * Fusion as an erasure participant on a real nats-server and its SQLite store: an ErasureRequested
 * (published here as the privacy service publishes it) removes the user's prediction records and
 * Feedback idempotency keys, and only theirs, and is confirmed with ErasureCompleted for `fusion`.
 */
describe('erasure: fusion deletes and confirms (integration)', () => {
  let nats: NatsServer;
  let bus: NatsEventBus;
  let privacy: NatsEventBus;
  let stack: Stack;
  let fusion: TestFusion;
  let client: InferenceClient;
  const confirmations: DeliveredEvent[] = [];
  const pseudonymizer = new Pseudonymizer({ rootSecret: TEST_SECRET });
  const pseudonym = (userId: string) => pseudonymizer.pseudonymize(TENANT, userId);

  beforeAll(async () => {
    nats = await NatsServer.start();
    bus = await connectNatsBus({ servers: nats.url, name: 'fusion-erasure-test', reconnectTimeWaitMs: 100, pullExpiresMs: 1_000 });
    privacy = await connectNatsBus({ servers: nats.url, name: 'privacy', reconnectTimeWaitMs: 100, pullExpiresMs: 1_000 });
    // personal-model has no bus here: the only participant answering is fusion.
    stack = await startStack();
    ({ fusion, client } = await stack.addFusion({ erasure: { backoffMs: [50], ackWaitMs: 5_000, leaseTtlMs: 2_000 } }, {}, { bus }));
    await privacy.consume(
      { durable: 'test-confirmations', stream: ERASURE_STREAM.name, filterSubject: ALL_ERASURE_COMPLETED, maxDeliver: 1, backoffMs: [0], ackWaitMs: 5_000, deadLetterSubject: deadLetterSubject('test'), leaseTtlMs: 2_000 },
      async (e) => void confirmations.push(e),
    );
  });
  afterAll(async () => {
    await stack?.stop();
    await privacy?.close();
    await bus?.close();
    await nats?.dispose();
  });

  const request = (user: string, erasureId: string, round: number) =>
    publishEvent(privacy, erasureRequestedSubject(TENANT, user), 'aimass.v1.ErasureRequested', {
      envelope: newEnvelope({ type: 'aimass.v1.ErasureRequested', tenant: TENANT, userPseudonym: user, producer: 'privacy', eventId: erasureRequestedEventId(erasureId, round) }),
      erasureId,
      services: ['privacy', 'personal-model', 'updater', 'fusion'],
    });

  /** What fusion's store holds for a user: ids of prediction records and of idempotency keys. */
  const held = async (user: string) => {
    const ids = async (name: string) => {
      const page = await (await fusion.store.collection({ name })).query(TENANT, { limit: 1_000 });
      return page.items.filter((d) => d.user === user).map((d) => d.id);
    };
    return { predictions: await ids('predictions'), feedbackKeys: await ids('feedback_keys') };
  };

  const completion = (e: DeliveredEvent) => decodeEvent('aimass.v1.ErasureCompleted', e.data);

  it("deletes the user's prediction records and idempotency keys, confirms with their number, and confirms a new round again", async () => {
    const erased = pseudonym('Erika-1');
    const kept = pseudonym('Karl-2');
    for (const userId of ['Erika-1', 'Karl-2']) {
      const p = await predict(client, userId, mail('shop@deals.example', 'weekly offers', 'our newsletter, this week only'));
      await predict(client, userId, text('lunch at noon?'));
      await feedback(client, { userId, predictionId: p.predictionId, label: 'spam', idempotencyKey: 'ev-1' });
    }
    const keptBefore = await held(kept);
    expect((await held(erased)).predictions).toHaveLength(2);
    expect((await held(erased)).feedbackKeys).toHaveLength(1);
    expect(keptBefore.predictions).toHaveLength(2);
    expect(keptBefore.feedbackKeys).toHaveLength(1);
    const invalidations = fusion.noModelStats()!.cache.invalidations;

    const erasureId = randomUUID();
    await request(erased, erasureId, 0);
    await waitUntil(() => confirmations.length === 1, 'ErasureCompleted from fusion');
    const first = confirmations[0]!;
    expect(first.subject).toBe(erasureCompletedSubject(TENANT, 'fusion', erased));
    expect(completion(first)).toMatchObject({
      service: 'fusion',
      erasureId,
      status: v1.ErasureStatus.ERASURE_STATUS_COMPLETED,
      itemsDeleted: 3,
      envelope: { tenant: TENANT, userPseudonym: erased, producer: 'fusion' },
    });

    // Confirmed means gone, for that user only; the known-no-model cache dropped them too.
    expect(await held(erased)).toEqual({ predictions: [], feedbackKeys: [] });
    expect(await held(kept)).toEqual(keptBefore);
    expect(fusion.noModelStats()!.cache.invalidations).toBe(invalidations + 1);

    // A repeated publish of the round is stored once; a new round finds nothing and confirms again.
    await request(erased, erasureId, 0);
    await request(erased, erasureId, 1);
    await waitUntil(() => confirmations.length === 2, 'the second round confirmed');
    expect(completion(confirmations[1]!)).toMatchObject({ service: 'fusion', erasureId, status: v1.ErasureStatus.ERASURE_STATUS_COMPLETED, itemsDeleted: 0 });
    await new Promise((r) => setTimeout(r, 200));
    expect(confirmations).toHaveLength(2);
    expect(fusion.erasure!.stats()).toEqual({ completed: 2, failures: 0 });
    expect(fusion.erasure!.consumer.durable).toBe('fusion-erasure');
    expect(FUSION_ERASURE_SERVICE).toBe('fusion');
  });

  it('drops a user held as having no personal model, so the next Predict asks personal-model again', async () => {
    const userId = 'Nina-3';
    await predict(client, userId, text('are we still on for friday'));
    const before = fusion.noModelStats()!.cache;
    // Held: a second Predict skips the personal stage.
    await predict(client, userId, text('and saturday?'));
    expect(fusion.noModelStats()!.cache.hits).toBe(before.hits + 1);
    const start = confirmations.length;

    await request(pseudonym(userId), randomUUID(), 0);
    await waitUntil(() => confirmations.length === start + 1, 'ErasureCompleted from fusion');
    expect(completion(confirmations[start]!)).toMatchObject({ status: v1.ErasureStatus.ERASURE_STATUS_COMPLETED, itemsDeleted: 2 });
    expect(fusion.noModelStats()!.cache.entries).toBe(before.entries - 1);

    await predict(client, userId, text('sunday then'));
    expect(fusion.noModelStats()!.cache.hits).toBe(before.hits + 1);
  });
});
