import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { freePort, NatsServer, waitUntil } from '@aimass/testing';
import { afterEach, describe, expect, it } from 'vitest';
import {
  connectNatsBus,
  createNatsBus,
  EventBusUnavailableError,
  keyedSubject,
  type ConsumeOptions,
  type EventBus,
  type NatsBusOptions,
  type NatsEventBus,
} from '../src/index.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const fast: Omit<NatsBusOptions, 'servers'> = {
  name: 'durability',
  reconnectTimeWaitMs: 100,
  publishTimeoutMs: 400,
  publishRetries: 1,
  publishRetryDelayMs: 100,
  pullExpiresMs: 1000,
};

const STREAM = { name: 'EVENTS', subjects: ['ev.>'], maxAgeMs: 600_000, duplicateWindowMs: 120_000 };
const DLQ = { name: 'DLQ', subjects: ['dlq.>'], maxAgeMs: 600_000, duplicateWindowMs: 120_000 };

function consumeOptions(overrides: Partial<ConsumeOptions> = {}): ConsumeOptions {
  return {
    durable: 'updater',
    stream: STREAM.name,
    filterSubject: 'ev.t1.feedback',
    partitions: 4,
    maxDeliver: 5,
    backoffMs: [50],
    ackWaitMs: 5_000,
    deadLetterSubject: 'dlq.t1.feedback',
    leaseTtlMs: 2000,
    ...overrides,
  };
}

/** Publishes until acknowledged, with the same dedupeId: the documented way to ride out an outage. */
async function publishSurely(bus: EventBus, subject: string, id: string): Promise<void> {
  for (;;) {
    try {
      await bus.publish(subject, encoder.encode(id), { dedupeId: id });
      return;
    } catch (error) {
      if (!(error instanceof EventBusUnavailableError)) throw error;
    }
  }
}

describe('NATS adapter durability', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const fn of cleanup.reverse()) await fn().catch(() => undefined);
    cleanup.length = 0;
  });

  async function startServer(): Promise<NatsServer> {
    const server = await NatsServer.start();
    cleanup.push(() => server.dispose());
    return server;
  }

  async function bus(server: NatsServer): Promise<NatsEventBus> {
    const b = await connectNatsBus({ servers: server.url, ...fast });
    cleanup.push(() => b.close());
    return b;
  }

  it('ensureStream is idempotent and applies a changed config to the server', async () => {
    const server = await startServer();
    const b = await bus(server);
    expect(await b.ensureStream(STREAM)).toBe('created');
    expect(await b.ensureStream(STREAM)).toBe('unchanged');
    const changed = { ...STREAM, maxAgeMs: 3_600_000, duplicateWindowMs: 60_000, maxBytes: 10_000_000 };
    expect(await b.ensureStream(changed)).toBe('updated');
    expect(await b.ensureStream(changed)).toBe('unchanged');

    const jsm = await jetstreamManager(b.connection);
    const { config } = await jsm.streams.info(STREAM.name);
    expect(config.max_age).toBe(3_600_000 * 1e6);
    expect(config.duplicate_window).toBe(60_000 * 1e6);
    expect(config.max_bytes).toBe(10_000_000);
    expect(config.storage).toBe('file');
  });

  it('SIGKILL mid-stream and restart on the same store: every acknowledged event is delivered, the outage gives clear and bounded errors', async () => {
    const server = await startServer();
    const publisher = await bus(server);
    await publisher.ensureStream(STREAM);
    await publisher.ensureStream(DLQ);

    const total = 1000;
    const acked = new Set<string>();
    const errors: unknown[] = [];
    let slowest = 0;
    const publishing = (async () => {
      for (let i = 0; i < total; i++) {
        const id = `e${i}`;
        const started = Date.now();
        try {
          await publisher.publish(keyedSubject('ev.t1.feedback', `user${i % 25}`, 8), encoder.encode(id), {
            dedupeId: id,
          });
          acked.add(id);
        } catch (error) {
          errors.push(error);
        }
        slowest = Math.max(slowest, Date.now() - started);
        await sleep(1);
      }
    })();

    await waitUntil(() => acked.size >= 300, '300 acknowledged events before the crash');
    await server.kill();
    const ackedAtCrash = acked.size;
    await waitUntil(() => errors.length >= 2, 'publishes to fail during the outage');
    await server.restart();
    await publishing;

    expect(errors.length).toBeGreaterThanOrEqual(1);
    for (const error of errors) expect(error).toBeInstanceOf(EventBusUnavailableError);
    expect(acked.size + errors.length).toBe(total);
    expect(acked.size).toBeGreaterThan(ackedAtCrash); // publishing resumed after the restart
    // Never a hang: bounded by the attempts, plus scheduling slack.
    expect(slowest).toBeLessThanOrEqual(publisher.publishBoundMs + 500);

    const consumer = await bus(server);
    const received = new Set<string>();
    await consumer.consume(consumeOptions({ partitions: 8 }), async (e) => {
      received.add(e.dedupeId ?? '');
    });
    await waitUntil(() => [...acked].every((id) => received.has(id)), 'every acknowledged event', 30_000);
    const lost = [...acked].filter((id) => !received.has(id));
    expect(lost).toEqual([]);
  });

  it('a consumer keeps consuming across a server restart', async () => {
    const server = await startServer();
    const b = await bus(server);
    await b.ensureStream(STREAM);
    const handled = new Set<string>();
    await b.consume(consumeOptions(), async (e) => void handled.add(decoder.decode(e.data)));

    const subject = (i: number) => keyedSubject('ev.t1.feedback', `user${i % 10}`, 4);
    for (let i = 0; i < 20; i++) await publishSurely(b, subject(i), `before${i}`);
    await waitUntil(() => handled.size === 20, 'the events before the restart');

    await server.kill();
    await expect(b.publish(subject(0), encoder.encode('x'), { dedupeId: 'during' })).rejects.toBeInstanceOf(
      EventBusUnavailableError,
    );
    await server.restart();

    for (let i = 0; i < 20; i++) await publishSurely(b, subject(i), `after${i}`);
    await waitUntil(
      () => Array.from({ length: 20 }, (_, i) => `after${i}`).every((id) => handled.has(id)),
      'the events after the restart',
      20_000,
    );
  });

  it('a live subscription across a server restart: onGap is called once reconnected, and later events arrive again', async () => {
    const server = await startServer();
    const publisher = await bus(server);
    const subscriber = await bus(server);
    await publisher.ensureStream(STREAM);
    const seen: string[] = [];
    let gaps = 0;
    await subscriber.subscribe('ev.t1.model.*', (e) => void seen.push(decoder.decode(e.data)), { onGap: () => gaps++ });
    await publishSurely(publisher, 'ev.t1.model.a', 'before');
    await waitUntil(() => seen.includes('before'), 'the event before the restart');
    expect(gaps).toBe(0);

    await server.kill();
    await server.restart();
    await waitUntil(() => gaps === 1, 'onGap after the reconnect', 20_000);
    // The subscription is re-established by the client: what is published now is seen again.
    await waitUntil(
      async () => {
        await publishSurely(publisher, 'ev.t1.model.a', `after-${seen.length}`);
        await sleep(50);
        return seen.some((body) => body.startsWith('after-'));
      },
      'an event after the restart',
      20_000,
    );
  });

  it('a crashed replica: its partitions move to the survivor and its in-flight event is redelivered after ackWait', async () => {
    const server = await startServer();
    const admin = await bus(server);
    await admin.ensureStream(STREAM);
    const options = consumeOptions({ partitions: 2, ackWaitMs: 1500 });

    // Replica A runs on a connection we can drop, as a crash would.
    const ncA = await connect({ servers: server.url });
    cleanup.push(() => ncA.close());
    const a = await createNatsBus(ncA, fast);
    let stuck!: number;
    const replicaA = await a.consume(options, async (e) => {
      stuck = e.sequence;
      await new Promise(() => undefined); // never settles: the process "hangs", then dies
    });
    expect(replicaA.assignedPartitions()).toEqual([0, 1]);

    const handledByB: { sequence: number; deliveryCount: number; body: string }[] = [];
    const b = await bus(server);
    const replicaB = await b.consume(options, async (e) => {
      handledByB.push({ sequence: e.sequence, deliveryCount: e.deliveryCount, body: decoder.decode(e.data) });
    });
    await waitUntil(() => replicaB.assignedPartitions().length === 1, 'B to take its share', 10_000);

    const victim = 'victim';
    const key = ['u0', 'u1', 'u2', 'u3', 'u4', 'u5'].find(
      (k) => !replicaB.assignedPartitions().includes(Number(keyedSubject('ev.t1.feedback', k, 2).split('.')[3])),
    );
    expect(key).toBeDefined();
    await admin.publish(keyedSubject('ev.t1.feedback', key ?? '', 2), encoder.encode(victim), { dedupeId: victim });
    await waitUntil(() => stuck !== undefined, 'A to start on the event');

    await ncA.close(); // crash: no lease released, no ack sent
    await admin.publish(keyedSubject('ev.t1.feedback', key ?? '', 2), encoder.encode('next'), { dedupeId: 'next' });
    await waitUntil(() => handledByB.some((h) => h.body === 'next'), 'B to take over and go on', 15_000);
    expect(replicaB.assignedPartitions()).toEqual([0, 1]);
    const redelivered = handledByB.find((h) => h.body === victim);
    expect(redelivered).toMatchObject({ sequence: stuck, deliveryCount: 2 });
    // Still in order: the redelivered event before the one published after it.
    expect(handledByB.findIndex((h) => h.body === victim)).toBeLessThan(handledByB.findIndex((h) => h.body === 'next'));
  });

  it('connecting to a server that is not there fails with EventBusUnavailableError', async () => {
    const port = await freePort();
    await expect(connectNatsBus({ servers: `nats://127.0.0.1:${port}`, connectTimeoutMs: 1000 })).rejects.toBeInstanceOf(
      EventBusUnavailableError,
    );
  });

  it('rejects a lease TTL that a pull request could outlive', async () => {
    const server = await startServer();
    const b = await bus(server);
    await b.ensureStream(STREAM);
    await expect(b.consume(consumeOptions({ leaseTtlMs: 1200 }), async () => undefined)).rejects.toThrow(/leaseTtlMs/);
  });
});
