import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { context, propagation, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import { waitUntil } from '@aimass/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  DeadLetterHeaders,
  EventBusError,
  EventBusUnavailableError,
  keyedSubject,
  partitionOf,
  type ConsumeOptions,
  type ConsumerHandle,
  type DeliveredEvent,
  type EventBus,
} from '../src/index.js';

/** A backend the contract runs against; each connect() is one replica ("process"). */
export interface ContractTarget {
  connect(): Promise<EventBus>;
  /** Makes a replica die: crash-like where the adapter can (connection dropped), else close(). */
  kill(bus: EventBus): Promise<void>;
  /** Adapter-specific consume settings (lease TTL...). */
  consumeDefaults?: Partial<ConsumeOptions>;
  dispose(): Promise<void>;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const text = (data: Uint8Array) => decoder.decode(data);

let counter = 0;
/** Names that no other test shares, so tests need no clean-up between them. */
function namespace() {
  const id = `t${Date.now().toString(36)}${(counter++).toString(36)}`;
  return {
    id,
    stream: `S_${id}`,
    dlqStream: `DLQ_${id}`,
    prefix: `ev.${id}.feedback`,
    dlqSubject: `dlq.${id}.feedback`,
  };
}

/** Keys such that every partition gets at least `perPartition` of them. */
function keysCovering(partitions: number, perPartition: number): string[] {
  const buckets = new Map<number, string[]>();
  for (let i = 0; [...buckets.values()].filter((b) => b.length >= perPartition).length < partitions; i++) {
    const key = `user${i}`;
    const p = partitionOf(key, partitions);
    const bucket = buckets.get(p) ?? [];
    if (bucket.length < perPartition) bucket.push(key);
    buckets.set(p, bucket);
  }
  return [...buckets.values()].flat();
}

/** A key other than `key` in the same partition of `partitions`, and one in another partition. */
function neighbours(key: string, partitions: number): { same: string; other: string } {
  const p = partitionOf(key, partitions);
  let same: string | undefined;
  let other: string | undefined;
  for (let i = 0; same === undefined || other === undefined; i++) {
    const candidate = `n${i}`;
    if (partitionOf(candidate, partitions) === p) same ??= candidate;
    else other ??= candidate;
  }
  return { same, other };
}

/** Deterministic pseudo-random numbers (mulberry32) so a failing run can be replayed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function describeEventBusContract(name: string, factory: () => Promise<ContractTarget>): void {
  describe(`EventBus contract: ${name}`, () => {
    let target: ContractTarget;
    let opened: EventBus[] = [];

    beforeAll(async () => {
      target = await factory();
    });
    afterAll(async () => {
      await target?.dispose();
    });
    afterEach(async () => {
      await Promise.allSettled(opened.map((bus) => bus.close()));
      opened = [];
    });

    async function bus(): Promise<EventBus> {
      const b = await target.connect();
      opened.push(b);
      return b;
    }

    async function setup(b: EventBus, ns: ReturnType<typeof namespace>) {
      await b.ensureStream({ name: ns.stream, subjects: [`ev.${ns.id}.>`], maxAgeMs: 60_000, duplicateWindowMs: 30_000 });
      await b.ensureStream({ name: ns.dlqStream, subjects: [`dlq.${ns.id}.>`], maxAgeMs: 60_000, duplicateWindowMs: 30_000 });
    }

    function options(ns: ReturnType<typeof namespace>, overrides: Partial<ConsumeOptions> = {}): ConsumeOptions {
      return {
        durable: `g_${ns.id}`,
        stream: ns.stream,
        filterSubject: ns.prefix,
        partitions: 4,
        maxDeliver: 5,
        backoffMs: [20],
        ackWaitMs: 5_000,
        deadLetterSubject: ns.dlqSubject,
        ...target.consumeDefaults,
        ...overrides,
      };
    }

    async function publishKeyed(b: EventBus, ns: ReturnType<typeof namespace>, key: string, body: string, partitions = 4) {
      return b.publish(keyedSubject(ns.prefix, key, partitions), encoder.encode(body), { dedupeId: body });
    }

    it('ensureStream creates, is idempotent, and updates a changed config', async () => {
      const b = await bus();
      const ns = namespace();
      const spec = { name: ns.stream, subjects: [`ev.${ns.id}.>`], maxAgeMs: 60_000, duplicateWindowMs: 10_000 };
      expect(await b.ensureStream(spec)).toBe('created');
      expect(await b.ensureStream(spec)).toBe('unchanged');
      expect(await b.ensureStream({ ...spec, maxAgeMs: 120_000, subjects: [`ev.${ns.id}.>`, `more.${ns.id}.>`] })).toBe(
        'updated',
      );
      expect(await b.ensureStream({ ...spec, maxAgeMs: 120_000, subjects: [`more.${ns.id}.>`, `ev.${ns.id}.>`] })).toBe(
        'unchanged',
      );
      // The updated subjects are live: the new one is captured.
      const ack = await b.publish(`more.${ns.id}.x`, encoder.encode('x'), { dedupeId: 'x' });
      expect(ack.stream).toBe(ns.stream);
    });

    it('publish resolves with the stored sequence', async () => {
      const b = await bus();
      const ns = namespace();
      await setup(b, ns);
      const acks = [];
      for (let i = 0; i < 3; i++) acks.push(await publishKeyed(b, ns, 'alice', `e${i}`));
      expect(acks.map((a) => a.sequence)).toEqual([1, 2, 3]);
      expect(acks.every((a) => a.stream === ns.stream && !a.duplicate)).toBe(true);
    });

    it('a publish that no stream captures fails with EventBusUnavailableError', async () => {
      const b = await bus();
      const ns = namespace();
      await expect(b.publish(`nowhere.${ns.id}.x`, encoder.encode('x'), { dedupeId: 'x' })).rejects.toBeInstanceOf(
        EventBusUnavailableError,
      );
    });

    it('dedupe: the same dedupeId twice is stored and delivered once', async () => {
      const b = await bus();
      const ns = namespace();
      await setup(b, ns);
      const subject = keyedSubject(ns.prefix, 'alice', 4);
      const first = await b.publish(subject, encoder.encode('one'), { dedupeId: 'same' });
      const second = await b.publish(subject, encoder.encode('two'), { dedupeId: 'same' });
      expect(first.duplicate).toBe(false);
      expect(second).toEqual({ ...first, duplicate: true });
      // Same key, so same partition: once the sentinel is handled, a second copy would have been too.
      await b.publish(subject, encoder.encode('sentinel'), { dedupeId: 'sentinel' });
      const seen: string[] = [];
      await b.consume(options(ns), async (e) => void seen.push(text(e.data)));
      await waitUntil(() => seen.includes('sentinel'), 'the sentinel to be handled');
      expect(seen).toEqual(['one', 'sentinel']);
    });

    it('durable: events published before the consumer starts are delivered, and a new consumer resumes after the last ack', async () => {
      const b = await bus();
      const ns = namespace();
      await setup(b, ns);
      for (let i = 0; i < 5; i++) await publishKeyed(b, ns, `u${i}`, `early${i}`);
      const first: DeliveredEvent[] = [];
      const c1 = await b.consume(options(ns), async (e) => void first.push(e));
      await waitUntil(() => first.length === 5, 'the five early events');
      expect(first.map((e) => text(e.data)).sort()).toEqual(['early0', 'early1', 'early2', 'early3', 'early4']);
      const e0 = first.find((e) => text(e.data) === 'early0');
      expect(e0).toMatchObject({
        subject: keyedSubject(ns.prefix, 'u0', 4),
        dedupeId: 'early0',
        deliveryCount: 1,
        partition: partitionOf('u0', 4),
      });
      expect(e0?.publishedAt).toBeInstanceOf(Date);
      expect(Math.abs(Date.now() - (e0?.publishedAt.getTime() ?? 0))).toBeLessThan(60_000);
      await c1.close();

      for (let i = 0; i < 3; i++) await publishKeyed(b, ns, `u${i}`, `late${i}`);
      const second: string[] = [];
      await b.consume(options(ns), async (e) => void second.push(text(e.data)));
      await waitUntil(() => second.length >= 3, 'the three late events');
      expect(second.sort()).toEqual(['late0', 'late1', 'late2']);
    });

    it('at-least-once: a failed handler is redelivered after the configured back-off', async () => {
      const b = await bus();
      const ns = namespace();
      await setup(b, ns);
      const backoff = 300;
      const attempts: { at: number; deliveryCount: number }[] = [];
      let failedAt = 0;
      await b.consume(options(ns, { backoffMs: [backoff] }), async (e) => {
        attempts.push({ at: Date.now(), deliveryCount: e.deliveryCount });
        if (attempts.length === 1) {
          failedAt = Date.now();
          throw new Error('transient');
        }
      });
      await publishKeyed(b, ns, 'alice', 'retry-me');
      await waitUntil(() => attempts.length === 2, 'the redelivery');
      expect(attempts.map((a) => a.deliveryCount)).toEqual([1, 2]);
      expect((attempts[1]?.at ?? 0) - failedAt).toBeGreaterThanOrEqual(backoff);
    });

    it('dead letter after maxDeliver with reason, attempts, origin and payload; later events keep flowing', async () => {
      const b = await bus();
      const ns = namespace();
      await setup(b, ns);
      const handled: string[] = [];
      const poisonAttempts: number[] = [];
      await b.consume(options(ns, { maxDeliver: 3, backoffMs: [10, 20] }), async (e) => {
        if (text(e.data) === 'poison') {
          poisonAttempts.push(e.deliveryCount);
          throw new Error('cannot parse\nline two');
        }
        handled.push(text(e.data));
      });
      const dead: DeliveredEvent[] = [];
      await b.consume(
        { ...options(ns), durable: `dlq_${ns.id}`, stream: ns.dlqStream, filterSubject: `dlq.${ns.id}.>`, partitions: undefined },
        async (e) => void dead.push(e),
      );
      const subject = keyedSubject(ns.prefix, 'mallory', 4);
      const poison = await b.publish(subject, encoder.encode('poison'), { dedupeId: 'p1', headers: { 'x-origin': 'test' } });
      for (let i = 0; i < 3; i++) await b.publish(subject, encoder.encode(`after${i}`), { dedupeId: `a${i}` });

      await waitUntil(() => handled.length === 3 && dead.length === 1, 'the dead letter and the following events');
      expect(poisonAttempts).toEqual([1, 2, 3]);
      expect(handled).toEqual(['after0', 'after1', 'after2']);
      const letter = dead[0];
      expect(letter?.subject).toBe(ns.dlqSubject);
      expect(text(letter?.data ?? new Uint8Array())).toBe('poison');
      expect(letter?.headers).toMatchObject({
        'x-origin': 'test',
        [DeadLetterHeaders.reason]: 'cannot parse line two',
        [DeadLetterHeaders.attempts]: '3',
        [DeadLetterHeaders.subject]: subject,
        [DeadLetterHeaders.sequence]: String(poison.sequence),
        [DeadLetterHeaders.stream]: ns.stream,
        [DeadLetterHeaders.dedupeId]: 'p1',
      });
    });

    it('per-key order: 3 keys x 50 interleaved events with random transient failures are handled in publish order', async () => {
      const b = await bus();
      const ns = namespace();
      await setup(b, ns);
      const keys = ['alice', 'bob', 'carol'];
      const handled = new Map<string, number[]>(keys.map((k) => [k, []]));
      const rand = random(42);
      let failures = 0;
      await b.consume(options(ns, { maxDeliver: 20, backoffMs: [5, 10] }), async (e) => {
        if (rand() < 0.15) {
          failures++;
          throw new Error('transient');
        }
        const [key, n] = text(e.data).split(':');
        handled.get(key ?? '')?.push(Number(n));
      });
      for (let n = 0; n < 50; n++) {
        for (const key of keys) await publishKeyed(b, ns, key, `${key}:${n}`);
      }
      await waitUntil(() => [...handled.values()].every((list) => list.length === 50), 'all 150 events', 30_000);
      const expected = Array.from({ length: 50 }, (_, n) => n);
      for (const key of keys) expect(handled.get(key)).toEqual(expected);
      expect(failures).toBeGreaterThan(5);
    });

    it('load sharing: two replicas both get work, and every event is handled exactly once', async () => {
      const ns = namespace();
      const [a, c] = [await bus(), await bus()];
      await setup(a, ns);
      const byReplica = { a: [] as DeliveredEvent[], b: [] as DeliveredEvent[] };
      const ra = await a.consume(options(ns), async (e) => void byReplica.a.push(e));
      const rb = await c.consume(options(ns), async (e) => void byReplica.b.push(e));
      await waitUntil(
        () => ra.assignedPartitions().length === 2 && rb.assignedPartitions().length === 2,
        'the two replicas to hold two partitions each',
        15_000,
      );
      expect([...ra.assignedPartitions(), ...rb.assignedPartitions()].sort()).toEqual([0, 1, 2, 3]);

      const keys = keysCovering(4, 3);
      const published: string[] = [];
      for (let round = 0; round < 3; round++) {
        for (const key of keys) {
          const body = `${key}:${round}`;
          await publishKeyed(a, ns, key, body);
          published.push(body);
        }
      }
      await waitUntil(() => byReplica.a.length + byReplica.b.length >= published.length, 'every event', 15_000);
      const all = [...byReplica.a, ...byReplica.b].map((e) => e.dedupeId);
      expect(all.sort()).toEqual([...published].sort());
      expect(byReplica.a.length).toBeGreaterThan(0);
      expect(byReplica.b.length).toBeGreaterThan(0);
      const partitionsA = new Set(byReplica.a.map((e) => e.partition));
      expect(byReplica.b.some((e) => partitionsA.has(e.partition))).toBe(false);
    });

    it('replica death: the survivor takes over the partitions and handles the rest', async () => {
      const ns = namespace();
      const [a, c] = [await bus(), await bus()];
      await setup(a, ns);
      const handledA: string[] = [];
      const handledB: string[] = [];
      const ra = await a.consume(options(ns), async (e) => void handledA.push(text(e.data)));
      const rb: ConsumerHandle = await c.consume(options(ns), async (e) => void handledB.push(text(e.data)));
      await waitUntil(
        () => ra.assignedPartitions().length === 2 && rb.assignedPartitions().length === 2,
        'balanced replicas',
        15_000,
      );
      const keys = keysCovering(4, 2);
      for (const key of keys) await publishKeyed(c, ns, key, `${key}:before`);
      await waitUntil(() => handledA.length + handledB.length === keys.length, 'the first batch');
      expect(handledA.length).toBeGreaterThan(0);

      await target.kill(a);
      for (const key of keys) await publishKeyed(c, ns, key, `${key}:after`);
      await waitUntil(
        () => keys.every((key) => handledB.includes(`${key}:after`)),
        'the survivor to handle the second batch',
        15_000,
      );
      expect(rb.assignedPartitions()).toEqual([0, 1, 2, 3]);
    });

    it('close drains: it waits for the in-flight handler, whose event is then not redelivered', async () => {
      const b = await bus();
      const ns = namespace();
      await setup(b, ns);
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      let started = false;
      let finished = false;
      const consumer = await b.consume(options(ns), async () => {
        started = true;
        await gate;
        finished = true;
      });
      await publishKeyed(b, ns, 'alice', 'slow');
      await waitUntil(() => started, 'the handler to start');
      const closing = consumer.close();
      setTimeout(release, 200);
      await closing;
      expect(finished).toBe(true);

      await publishKeyed(b, ns, 'alice', 'next');
      const later: string[] = [];
      await b.consume(options(ns), async (e) => void later.push(text(e.data)));
      await waitUntil(() => later.includes('next'), 'the next event');
      expect(later).toEqual(['next']);
    });

    it('subscribe: every subscriber (replica) gets every later event on matching subjects, in order, nothing from before', async () => {
      const ns = namespace();
      const [a, c] = [await bus(), await bus()];
      await setup(a, ns);
      const live = (i: number) => `ev.${ns.id}.live.k${i}`;
      await a.publish(live(0), encoder.encode('before'), { dedupeId: 'before' });
      const seenA: DeliveredEvent[] = [];
      const seenC: DeliveredEvent[] = [];
      const gaps: number[] = [];
      await a.subscribe(`ev.${ns.id}.live.*`, (e) => void seenA.push(e), { onGap: () => gaps.push(Date.now()) });
      await c.subscribe(`ev.${ns.id}.>`, async (e) => void seenC.push(e));
      for (let i = 0; i < 5; i++) await c.publish(live(i), encoder.encode(`live${i}`), { dedupeId: `live${i}`, headers: { 'x-n': String(i) } });
      await a.publish(`ev.${ns.id}.other.x`, encoder.encode('other'), { dedupeId: 'other' });

      await waitUntil(() => seenA.length >= 5 && seenC.length >= 6, 'both subscribers to see the events');
      const bodies = ['live0', 'live1', 'live2', 'live3', 'live4'];
      expect(seenA.map((e) => text(e.data))).toEqual(bodies);
      expect(seenC.map((e) => text(e.data))).toEqual([...bodies, 'other']);
      expect(seenA[2]).toMatchObject({ subject: live(2), dedupeId: 'live2', deliveryCount: 1, partition: 0 });
      expect(seenA[2]?.headers['x-n']).toBe('2');
      expect(Object.keys(seenA[2]?.headers ?? {}).some((k) => k.toLowerCase().startsWith('nats-'))).toBe(false);
      expect(seenA[2]?.publishedAt).toBeInstanceOf(Date);
      expect(gaps).toEqual([]);
    });

    it('subscribe: a failing handler is reported and the next events still arrive; close stops the delivery', async () => {
      const ns = namespace();
      const b = await bus();
      await setup(b, ns);
      const subject = `ev.${ns.id}.live.x`;
      const handled: string[] = [];
      const errors: { message: string; event: string | undefined }[] = [];
      const sub = await b.subscribe(
        subject,
        (e) => {
          if (text(e.data) === 'bad') throw new Error('cannot handle');
          handled.push(text(e.data));
        },
        { onError: (error, event) => errors.push({ message: (error as Error).message, event: event && text(event.data) }) },
      );
      for (const body of ['one', 'bad', 'two']) await b.publish(subject, encoder.encode(body), { dedupeId: body });
      await waitUntil(() => handled.length === 2, 'the events around the failing one');
      expect(handled).toEqual(['one', 'two']);
      expect(errors).toEqual([{ message: 'cannot handle', event: 'bad' }]);

      await sub.close();
      // A second subscription is the sentinel: once it has the event, a live first one would have too.
      const after: string[] = [];
      await b.subscribe(subject, (e) => void after.push(text(e.data)));
      await b.publish(subject, encoder.encode('three'), { dedupeId: 'three' });
      await waitUntil(() => after.length === 1, 'the sentinel subscription');
      expect(handled).toEqual(['one', 'two']);
    });

    it('subscribe refuses a subject that is not a valid filter', async () => {
      const b = await bus();
      await expect(b.subscribe('a..b', () => undefined)).rejects.toBeInstanceOf(RangeError);
      await expect(b.subscribe('a.>.b', () => undefined)).rejects.toBeInstanceOf(RangeError);
    });

    it('pending: the events of the group not acknowledged yet, whichever partition and state', async () => {
      const b = await bus();
      const ns = namespace();
      await setup(b, ns);
      const keys = keysCovering(4, 1);
      for (const key of keys) await publishKeyed(b, ns, key, `${key}:0`);
      await publishKeyed(b, ns, keys[0]!, `${keys[0]}:1`);
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      let started = 0;
      const handle = await b.consume(options(ns), async () => {
        started++;
        await gate;
      });
      await waitUntil(() => started === 4, 'one event of each partition in flight');
      // Four delivered and unacknowledged, one behind them in its partition.
      expect(await handle.pending()).toBe(5);
      release();
      await waitUntil(async () => (await handle.pending()) === 0, 'every event acknowledged');
      await publishKeyed(b, ns, keys[1]!, 'late');
      await waitUntil(async () => (await handle.pending()) === 0 && started === 6, 'the late event');
    });

    it('purge: the subject\'s events are gone for a consumer behind them and for a new one; other subjects, even in the same partition, untouched', async () => {
      const b = await bus();
      const ns = namespace();
      await setup(b, ns);
      const { same, other } = neighbours('alice', 4);
      const alice = keyedSubject(ns.prefix, 'alice', 4);
      // The consumer is held on the partition's first event, so the rest of the partition waits
      // behind it, not yet delivered, while the purge runs.
      for (const body of [`${same}:0`, 'alice:0', `${same}:1`, 'alice:1', `${other}:0`]) {
        await publishKeyed(b, ns, body.split(':')[0]!, body);
      }
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const handled: string[] = [];
      await b.consume(options(ns), async (e) => {
        if (text(e.data) === `${same}:0`) await gate;
        handled.push(text(e.data));
      });
      await waitUntil(() => handled.includes(`${other}:0`), 'the other partition to flow');
      expect(await b.purge(ns.stream, alice)).toEqual({ purged: 2 });
      release();
      await waitUntil(() => handled.includes(`${same}:1`), 'the neighbour behind the purged events');
      // A sentinel behind everything in alice's partition: once handled, nothing purged can come.
      await publishKeyed(b, ns, same, `${same}:2`);
      await waitUntil(() => handled.includes(`${same}:2`), 'the sentinel');
      expect(handled.filter((body) => !body.startsWith(other))).toEqual([`${same}:0`, `${same}:1`, `${same}:2`]);

      const fresh: string[] = [];
      await b.consume(options(ns, { durable: `fresh_${ns.id}` }), async (e) => void fresh.push(text(e.data)));
      await waitUntil(() => fresh.length >= 4, 'what the stream still holds');
      expect(fresh.sort()).toEqual([`${same}:0`, `${same}:1`, `${same}:2`, `${other}:0`].sort());

      // Idempotent; a subject without events gives 0; the subject is not blocked afterwards.
      expect(await b.purge(ns.stream, alice)).toEqual({ purged: 0 });
      expect(await b.purge(ns.stream, keyedSubject(ns.prefix, 'nobody', 4))).toEqual({ purged: 0 });
      await publishKeyed(b, ns, 'alice', 'alice:2');
      await waitUntil(() => fresh.includes('alice:2'), 'an event published after the purge');
      expect(fresh.filter((body) => body.startsWith('alice'))).toEqual(['alice:2']);
    });

    it('purge: an event waiting for its redelivery is never delivered again; the partition moves on', async () => {
      const b = await bus();
      const ns = namespace();
      await setup(b, ns);
      const { same } = neighbours('alice', 4);
      await publishKeyed(b, ns, 'alice', 'alice:0');
      await publishKeyed(b, ns, same, `${same}:0`);
      const attempts: string[] = [];
      const handled: string[] = [];
      await b.consume(options(ns, { backoffMs: [400] }), async (e) => {
        attempts.push(text(e.data));
        if (text(e.data) === 'alice:0') throw new Error('transient');
        handled.push(text(e.data));
      });
      await waitUntil(() => attempts.length === 1, 'the failed first attempt');
      expect(await b.purge(ns.stream, keyedSubject(ns.prefix, 'alice', 4))).toEqual({ purged: 1 });
      await waitUntil(() => handled.length === 1, 'the event behind the purged one');
      await new Promise((r) => setTimeout(r, 600));
      expect(attempts).toEqual(['alice:0', `${same}:0`]);
    });

    it('purge refuses wildcards, an unknown stream and a subject the stream does not capture', async () => {
      const b = await bus();
      const ns = namespace();
      await setup(b, ns);
      for (const subject of [`ev.${ns.id}.*`, `ev.${ns.id}.>`, '>', `ev..${ns.id}`, '']) {
        await expect(b.purge(ns.stream, subject)).rejects.toThrow(RangeError);
      }
      const unknown = await b.purge(`NOPE_${ns.id}`, `ev.${ns.id}.x`).catch((error: unknown) => error);
      expect(unknown).toBeInstanceOf(EventBusError);
      expect(unknown).not.toBeInstanceOf(EventBusUnavailableError);
      await expect(b.purge(ns.stream, `dlq.${ns.id}.x`)).rejects.toThrow(/does not capture subject/);
    });

    describe('with an OpenTelemetry SDK registered', () => {
      const provider = new BasicTracerProvider();
      const contextManager = new AsyncLocalStorageContextManager();

      beforeAll(() => {
        context.setGlobalContextManager(contextManager.enable());
        propagation.setGlobalPropagator(new W3CTraceContextPropagator());
        trace.setGlobalTracerProvider(provider);
      });
      afterAll(async () => {
        trace.disable();
        propagation.disable();
        context.disable();
        await provider.shutdown();
      });

      it('trace context: the handler runs in the publisher trace', async () => {
        const b = await bus();
        const ns = namespace();
        await setup(b, ns);
        const tracer = trace.getTracer('contract');
        const seen: { traceId?: string; spanId?: string; traceparent?: string }[] = [];
        await b.consume(options(ns), async (e) => {
          const span = trace.getSpanContext(context.active());
          seen.push({ traceId: span?.traceId, spanId: span?.spanId, traceparent: e.headers['traceparent'] });
        });
        const published = await tracer.startActiveSpan('publish feedback', async (span) => {
          await publishKeyed(b, ns, 'alice', 'traced');
          span.end();
          return span.spanContext();
        });
        await waitUntil(() => seen.length === 1, 'the traced event');
        expect(seen[0]?.traceId).toBe(published.traceId);
        expect(seen[0]?.spanId).toBe(published.spanId);
        expect(seen[0]?.traceparent).toBe(`00-${published.traceId}-${published.spanId}-01`);
      });
    });
  });
}
