import { appendFileSync, mkdirSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir, waitUntil, type TempDir } from '@aimass/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createInProcessBus, EventBusUnavailableError, keyedSubject, type ConsumeOptions, type EventBus } from '../src/index.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const STREAM = { name: 'EVENTS', subjects: ['ev.>'], maxAgeMs: 600_000, duplicateWindowMs: 60_000 };
const OPTIONS: ConsumeOptions = {
  durable: 'updater',
  stream: 'EVENTS',
  filterSubject: 'ev.t1.feedback',
  partitions: 2,
  maxDeliver: 3,
  backoffMs: [10],
  ackWaitMs: 5_000,
  deadLetterSubject: 'ev.dlq',
};
const subject = (key: string) => keyedSubject('ev.t1.feedback', key, 2);
const base64 = (body: string) => Buffer.from(body).toString('base64');

/** Every event a new consumer group gets from the bus, once it has `count` of them. */
async function everything(bus: EventBus, durable: string, count: number): Promise<string[]> {
  const seen: string[] = [];
  const handle = await bus.consume({ ...OPTIONS, durable }, async (e) => void seen.push(decoder.decode(e.data)));
  await waitUntil(() => seen.length >= count, `${count} events for ${durable}`);
  await new Promise((r) => setTimeout(r, 50));
  await handle.close();
  return seen;
}

describe('in-process bus journal', () => {
  let dir: TempDir;
  let path: string;
  beforeEach(async () => {
    dir = await tempDir('aimass-journal-');
    path = join(dir.path, 'events.journal');
  });
  afterEach(() => dir.remove());

  it('acknowledged events and consumer positions survive a restart of the process', async () => {
    const before = createInProcessBus({ journalPath: path });
    await before.ensureStream(STREAM);
    for (let i = 0; i < 6; i++) {
      await before.publish(subject('alice'), encoder.encode(`e${i}`), { dedupeId: `e${i}` });
    }
    const handled: string[] = [];
    await before.consume(OPTIONS, async (e) => {
      const body = decoder.decode(e.data);
      if (body === 'e3') await new Promise(() => undefined); // the process "dies" while handling e3
      handled.push(body);
    });
    await waitUntil(() => handled.length === 3, 'e0..e2 to be acknowledged');
    // No close(): the broker is simply abandoned, as after a crash.

    const after = createInProcessBus({ journalPath: path });
    expect(await after.ensureStream(STREAM)).toBe('unchanged');
    const duplicate = await after.publish(subject('alice'), encoder.encode('again'), { dedupeId: 'e1' });
    expect(duplicate).toMatchObject({ sequence: 2, duplicate: true });
    const next = await after.publish(subject('alice'), encoder.encode('e6'), { dedupeId: 'e6' });
    expect(next.sequence).toBe(7);

    const resumed: string[] = [];
    await after.consume(OPTIONS, async (e) => void resumed.push(decoder.decode(e.data)));
    await waitUntil(() => resumed.length === 4, 'the unacknowledged events');
    expect(resumed).toEqual(['e3', 'e4', 'e5', 'e6']);
    await after.close();
  });

  it('a torn last line (crash mid-write) is ignored and the journal is compacted at start', async () => {
    const first = createInProcessBus({ journalPath: path });
    await first.ensureStream(STREAM);
    await first.publish(subject('bob'), encoder.encode('kept'), { dedupeId: 'kept' });
    appendFileSync(path, '{"k":"e","s":"EVENTS","q":2,"j":"ev.t1.feed');

    const second = createInProcessBus({ journalPath: path });
    await second.ensureStream(STREAM);
    const seen: string[] = [];
    await second.consume(OPTIONS, async (e) => void seen.push(decoder.decode(e.data)));
    await waitUntil(() => seen.length === 1, 'the stored event');
    expect(seen).toEqual(['kept']);
    expect(readFileSync(path, 'utf8')).not.toContain('"q":2,"j":"ev.t1.feed');
    await second.close();
  });

  it('purge removes the events from the journal file (their bytes, subject and id), a restart does not bring them back', async () => {
    const first = createInProcessBus({ journalPath: path, fsync: true });
    await first.ensureStream(STREAM);
    for (let i = 0; i < 3; i++) {
      await first.publish(subject('alicePs'), encoder.encode(`ALICEMARKER${i}`), { dedupeId: `alice-${i}` });
      await first.publish(subject('bobPs'), encoder.encode(`BOBMARKER${i}`), { dedupeId: `bob-${i}` });
    }
    const before = readFileSync(path, 'utf8');
    expect(before).toContain(base64('ALICEMARKER1'));
    expect(before).toContain('alicePs');

    expect(await first.purge('EVENTS', subject('alicePs'))).toEqual({ purged: 3 });
    const after = readFileSync(path);
    for (let i = 0; i < 3; i++) {
      for (const needle of [`ALICEMARKER${i}`, base64(`ALICEMARKER${i}`), `alice-${i}`]) expect(after.includes(needle)).toBe(false);
      expect(after.includes(base64(`BOBMARKER${i}`))).toBe(true);
    }
    expect(after.includes('alicePs')).toBe(false);
    expect(await everything(first, 'live', 3)).toEqual(['BOBMARKER0', 'BOBMARKER1', 'BOBMARKER2']);
    // No close(): abandoned as after a crash.

    const second = createInProcessBus({ journalPath: path });
    expect(await second.ensureStream(STREAM)).toBe('unchanged');
    expect(await everything(second, 'fresh', 3)).toEqual(['BOBMARKER0', 'BOBMARKER1', 'BOBMARKER2']);
    // Sequences keep rising past the purged ones: a consumer position can never point at a reused one.
    expect((await second.publish(subject('alicePs'), encoder.encode('new'), { dedupeId: 'alice-new' })).sequence).toBe(7);
    expect(await second.purge('EVENTS', subject('alicePs'))).toEqual({ purged: 1 });
    expect(await second.purge('EVENTS', subject('alicePs'))).toEqual({ purged: 0 });
    await second.close();
  });

  it('a purge whose journal rewrite fails changes nothing and reports unavailable; the retry purges', async () => {
    const bus = createInProcessBus({ journalPath: path });
    await bus.ensureStream(STREAM);
    for (let i = 0; i < 2; i++) await bus.publish(subject('alicePs'), encoder.encode(`ALICEMARKER${i}`), { dedupeId: `alice-${i}` });
    // The rewrite goes to <journal>.compact first; a directory in its way makes it fail.
    mkdirSync(`${path}.compact`);
    await expect(bus.purge('EVENTS', subject('alicePs'))).rejects.toBeInstanceOf(EventBusUnavailableError);
    expect(readFileSync(path, 'utf8')).toContain(base64('ALICEMARKER0'));
    rmdirSync(`${path}.compact`);
    expect(await bus.purge('EVENTS', subject('alicePs'))).toEqual({ purged: 2 });
    expect(readFileSync(path, 'utf8')).not.toContain(base64('ALICEMARKER0'));
    await bus.close();
  });

  it('purges interleaved with concurrent publishes and a running consumer: memory and journal agree after a restart', async () => {
    const first = createInProcessBus({ journalPath: path });
    await first.ensureStream(STREAM);
    const handled: string[] = [];
    await first.consume(OPTIONS, async (e) => {
      await new Promise((r) => setImmediate(r));
      handled.push(decoder.decode(e.data));
    });
    const work: Promise<unknown>[] = [];
    for (let i = 0; i < 200; i++) {
      const user = i % 2 === 0 ? 'alicePs' : 'bobPs';
      work.push(first.publish(subject(user), encoder.encode(`${user}:${i}`), { dedupeId: `${user}-${i}` }));
      if (i % 37 === 0) work.push(first.purge('EVENTS', subject('alicePs')));
    }
    await Promise.all(work);
    await first.purge('EVENTS', subject('alicePs'));
    const bobs = Array.from({ length: 100 }, (_, k) => `bobPs:${2 * k + 1}`);
    expect(await everything(first, 'after', 100)).toEqual(bobs);

    const second = createInProcessBus({ journalPath: path });
    await second.ensureStream(STREAM);
    expect(await everything(second, 'restarted', 100)).toEqual(bobs);
    expect(readFileSync(path, 'utf8')).not.toContain('alicePs');
    // The consumer running during it all saw bob's events in order, and alice's only before their purge.
    expect(handled.filter((body) => body.startsWith('bobPs'))).toEqual(bobs.slice(0, handled.filter((body) => body.startsWith('bobPs')).length));
    await second.close();
  });
});
