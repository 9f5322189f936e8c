import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir, waitUntil, type TempDir } from '@aimass/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createInProcessBus, keyedSubject, type ConsumeOptions } from '../src/index.js';

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
});
