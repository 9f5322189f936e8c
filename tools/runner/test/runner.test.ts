import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { createLogger } from '@aimass/platform';
import { healthStatus, tempDir, waitUntil, type TempDir } from '@aimass/testing';
import { runnerConfigSchema } from '../src/config.js';
import type { EmbeddedService } from '../src/embedded.js';
import { startPlatform, type RunningPlatform } from '../src/runner.js';

const silent = createLogger({ service: 'runner-test', level: 'silent' });
const config = (dataDir: string) => runnerConfigSchema.parse({ grpc: { port: 0 }, runner: { dataDir, servicePortBase: 0 } });
const STREAM = { name: 'RECORDER', subjects: ['recorder.>', 'dead.recorder'], maxAgeMs: 60_000, duplicateWindowMs: 60_000 };

/**
 * A service of the test's own that uses what the runner hands out: its SQLite store, a durable
 * consumer on the shared bus, and a gRPC server on the port it was given.
 */
function recordingService(received: string[]): EmbeddedService {
  return {
    name: 'recorder',
    async start(env) {
      const store = await env.openStore('recorder');
      const notes = await store.collection<{ text: string }>({ name: 'notes' });
      await env.bus.ensureStream(STREAM);
      const consumer = await env.bus.consume(
        { durable: 'recorder', stream: STREAM.name, filterSubject: 'recorder.>', maxDeliver: 3, backoffMs: [10], ackWaitMs: 5_000, deadLetterSubject: 'dead.recorder' },
        async (event) => {
          const text = new TextDecoder().decode(event.data);
          await notes.put('t1', event.dedupeId ?? `seq-${event.sequence}`, { text });
          received.push(text);
        },
      );
      const server = new grpc.Server();
      const port = await new Promise<number>((resolve, reject) =>
        server.bindAsync(`${env.host}:${env.port}`, grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
      );
      return {
        name: 'recorder',
        address: `${env.host}:${port}`,
        grpcServices: ['test.Recorder'],
        async stop() {
          await consumer.close();
          server.forceShutdown();
        },
      };
    },
  };
}

async function shutdown(platform: RunningPlatform) {
  await platform.server.drain();
  await platform.stop();
}

describe('startPlatform', () => {
  let dir: TempDir;
  afterEach(() => dir?.remove());

  it('gives each service its own SQLite file and the shared bus, and reports its health', async () => {
    dir = await tempDir('aimass-runner-');
    const received: string[] = [];
    const platform = await startPlatform(config(dir.path), silent, [recordingService(received)]);
    try {
      expect(platform.services.map((s) => s.name)).toEqual(['recorder']);
      expect(platform.services[0]?.address).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(platform.services[0]?.address).not.toBe(platform.address);
      expect(existsSync(join(dir.path, 'recorder.sqlite'))).toBe(true);
      expect(await healthStatus(platform.address, 'test.Recorder')).toBe('SERVING');
      expect(await healthStatus(platform.address)).toBe('SERVING');

      await platform.bus.publish('recorder.a', new TextEncoder().encode('hello'), { dedupeId: 'e1' });
      await waitUntil(() => received.includes('hello'), 'the recorder to receive the event');
    } finally {
      await shutdown(platform);
    }
  });

  it('keeps an acknowledged event in the data directory until a consumer takes it after a restart', async () => {
    dir = await tempDir('aimass-runner-');
    const first = await startPlatform(config(dir.path), silent, []);
    await first.bus.ensureStream(STREAM);
    const ack = await first.bus.publish('recorder.b', new TextEncoder().encode('kept'), { dedupeId: 'e2' });
    expect(ack.duplicate).toBe(false);
    await shutdown(first);

    const received: string[] = [];
    const second = await startPlatform(config(dir.path), silent, [recordingService(received)]);
    try {
      await waitUntil(() => received.includes('kept'), 'the event published before the restart');
      expect(received).toEqual(['kept']);
    } finally {
      await shutdown(second);
    }
  });

  it('stops the services it already started when a later one fails to start', async () => {
    dir = await tempDir('aimass-runner-');
    const stopped: string[] = [];
    const ok: EmbeddedService = {
      name: 'ok',
      start: async () => ({ name: 'ok', address: 'n/a', grpcServices: [], stop: async () => void stopped.push('ok') }),
    };
    const broken: EmbeddedService = {
      name: 'broken',
      start: async () => {
        throw new Error('cannot open model repository');
      },
    };
    await expect(startPlatform(config(dir.path), silent, [ok, broken])).rejects.toThrow(/model repository/);
    expect(stopped).toEqual(['ok']);
  });
});
