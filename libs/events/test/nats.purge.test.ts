import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { NatsServer, waitUntil } from '@aimass/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectNatsBus, EventBusUnavailableError, keyedSubject, type NatsEventBus } from '../src/index.js';

const encoder = new TextEncoder();
const STREAM = { name: 'FEEDBACK', subjects: ['ev.*.feedback.>'], maxAgeMs: 600_000, duplicateWindowMs: 60_000 };
const subject = (user: string) => keyedSubject('ev.t1.feedback', user, 4);

/** Every file of the JetStream store that contains `needle` (block files, indexes, consumer state). */
function filesContaining(dir: string, needle: string): string[] {
  const bytes = Buffer.from(needle);
  return (readdirSync(dir, { recursive: true }) as string[])
    .map((name) => join(dir, name))
    .filter((path) => statSync(path).isFile() && readFileSync(path).includes(bytes));
}

describe('NATS adapter: purge', () => {
  let server: NatsServer;
  let bus: NatsEventBus;
  let jsm: JetStreamManager;

  beforeAll(async () => {
    server = await NatsServer.start();
    bus = await connectNatsBus({ servers: server.url, name: 'purge', reconnectTimeWaitMs: 100, apiTimeoutMs: 1_000, publishTimeoutMs: 500, publishRetries: 0 });
    jsm = await jetstreamManager(bus.connection);
    await bus.ensureStream(STREAM);
  });
  afterAll(async () => {
    await bus?.close();
    await server?.dispose();
  });

  /** Messages per subject, as the server reports them. */
  async function subjects(): Promise<Record<string, number>> {
    return (await jsm.streams.info(STREAM.name, { subjects_filter: '>' })).state.subjects ?? {};
  }

  it('erases the subject\'s messages from the stream and their bytes (payload, subject) from the store files; other subjects stay', async () => {
    // Pseudonym-like keys and payload markers that occur nowhere else in the store.
    const [ann, bob] = ['annPs7f3c1', 'bobPs9d2e4'];
    for (let i = 0; i < 3; i++) {
      await bus.publish(subject(ann), encoder.encode(`payload ANNMARKER${i} of ann`), { dedupeId: `ann-${i}` });
      await bus.publish(subject(bob), encoder.encode(`payload BOBMARKER${i} of bob`), { dedupeId: `bob-${i}` });
    }
    await waitUntil(() => filesContaining(server.storeDir, 'ANNMARKER1').length > 0, 'the events to reach the store files');
    expect(await subjects()).toMatchObject({ [subject(ann)]: 3, [subject(bob)]: 3 });

    expect(await bus.purge(STREAM.name, subject(ann))).toEqual({ purged: 3 });

    const after = await subjects();
    expect(after[subject(ann)]).toBeUndefined();
    expect(after[subject(bob)]).toBe(3);
    expect(await jsm.streams.getMessage(STREAM.name, { last_by_subj: subject(ann) })).toBeNull();
    await waitUntil(() => filesContaining(server.storeDir, 'ANNMARKER').length === 0, 'ann\'s payloads to be erased from the store files', 5_000);
    expect(filesContaining(server.storeDir, ann)).toEqual([]);
    expect(filesContaining(server.storeDir, 'BOBMARKER1').length).toBeGreaterThan(0);
    expect(await bus.purge(STREAM.name, subject(ann))).toEqual({ purged: 0 });
  });

  it('server down: EventBusUnavailableError within the API timeout; once it is back, the purge succeeds', async () => {
    for (let i = 0; i < 2; i++) await bus.publish(subject('cyPs'), encoder.encode(`cy ${i}`), { dedupeId: `cy-${i}` });
    await server.kill();
    const started = Date.now();
    const down = await bus.purge(STREAM.name, subject('cyPs')).catch((error: unknown) => error);
    expect(down).toBeInstanceOf(EventBusUnavailableError);
    expect((down as Error).message).toMatch(/purge ev\.t1\.feedback\.\d\.cyPs from FEEDBACK/);
    expect(Date.now() - started).toBeLessThan(3_000);

    await server.restart();
    let result: { purged: number } | undefined;
    await waitUntil(
      async () => {
        result = await bus.purge(STREAM.name, subject('cyPs')).catch(() => undefined);
        return result !== undefined;
      },
      'the purge to succeed once the server is back',
      15_000,
      200,
    );
    expect(result).toEqual({ purged: 2 });
    expect((await subjects())[subject('cyPs')]).toBeUndefined();
  });
});
