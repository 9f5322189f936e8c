import { NatsServer, waitUntil } from '@aimass/testing';
import { afterEach, describe, expect, it } from 'vitest';
import {
  connectNatsBus,
  EventBusUnavailableError,
  type ConsumeOptions,
  type EventBus,
  type NatsBusOptions,
  type NatsEventBus,
} from '../src/index.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const fast: Omit<NatsBusOptions, 'servers'> = {
  name: 'group-restart',
  reconnectTimeWaitMs: 100,
  publishTimeoutMs: 500,
  publishRetries: 1,
  publishRetryDelayMs: 50,
  pullExpiresMs: 1000,
};

const STREAM = { name: 'EVENTS', subjects: ['ev.>'], maxAgeMs: 600_000, duplicateWindowMs: 120_000 };
const DLQ = { name: 'DLQ', subjects: ['dlq.>'], maxAgeMs: 600_000, duplicateWindowMs: 120_000 };

// The settings privacy's erasure reader uses: one attempt, so a delivery the group hands back
// unprocessed would be dead-lettered on its next delivery instead of reaching the handler.
const options: ConsumeOptions = {
  durable: 'alone-reader',
  stream: STREAM.name,
  filterSubject: 'ev.t1.requested.>',
  maxDeliver: 1,
  backoffMs: [0],
  ackWaitMs: 5_000,
  deadLetterSubject: 'dlq.t1.requested',
  leaseTtlMs: 2_000,
};

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

describe('NATS consumer group across a SIGKILLed server', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const fn of cleanup.reverse()) await fn().catch(() => undefined);
    cleanup.length = 0;
  });

  async function bus(server: NatsServer): Promise<NatsEventBus> {
    const b = await connectNatsBus({ servers: server.url, ...fast });
    cleanup.push(() => b.close());
    return b;
  }

  it('a group started before the crash handles every event published after the restart, none dead-lettered', async () => {
    const server = await NatsServer.start();
    cleanup.push(() => server.dispose());
    const b = await bus(server);
    await b.ensureStream(STREAM);
    await b.ensureStream(DLQ);

    const handled: string[] = [];
    const deadLetters: string[] = [];
    const group = await b.consume(options, async (e) => void handled.push(decoder.decode(e.data)));
    await b.subscribe('dlq.>', (e) => void deadLetters.push(decoder.decode(e.data)));
    expect(group.assignedPartitions()).toEqual([0]);
    // The stream is empty at the crash, as in privacy's erasure test: nothing is in flight, so
    // whatever goes wrong after the restart is the group's doing, not a lost ack.

    await server.kill();
    // Longer than the lease TTL: the lease entry has expired when the server comes back.
    await sleep(4_000);
    await server.restart();
    await publishSurely(b, 'ev.t1.requested.first', 'first');
    await sleep(1_500);
    await publishSurely(b, 'ev.t1.requested.second', 'second');

    // Bounded: well under ackWait + lease TTL after the last publish.
    await waitUntil(() => handled.includes('first') && handled.includes('second'), 'both events after the restart', 15_000).catch(
      () => undefined,
    );
    expect({ handled, deadLetters }).toEqual({ handled: ['first', 'second'], deadLetters: [] });
  }, 40_000);
});
