import { NatsServer } from '@aimass/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventBusUnavailableError, eventsConfigSchema, NatsEventBus, openConfiguredBus } from '../src/index.js';

describe('openConfiguredBus on a real nats-server', () => {
  let server: NatsServer;
  beforeAll(async () => {
    server = await NatsServer.start();
  });
  afterAll(async () => {
    await server?.dispose();
  });

  it('connects with the configured settings and publishes', async () => {
    const config = eventsConfigSchema.parse({ kind: 'nats', servers: `nats://127.0.0.1:1,${server.url}`, publishTimeoutMs: 700, publishRetries: 0 });
    const bus = await openConfiguredBus(config, { name: 'config-test' });
    expect(bus).toBeInstanceOf(NatsEventBus);
    try {
      const nats = bus as NatsEventBus;
      expect(nats.publishBoundMs).toBe(700);
      await nats.ensureStream({ name: 'CFG', subjects: ['cfg.>'], maxAgeMs: 60_000, duplicateWindowMs: 10_000 });
      expect((await nats.publish('cfg.a', new Uint8Array([1]), { dedupeId: 'a' })).sequence).toBe(1);
    } finally {
      await bus?.close();
    }
  });

  it('a server that is not there: EventBusUnavailableError naming it', async () => {
    const config = eventsConfigSchema.parse({ kind: 'nats', servers: 'nats://127.0.0.1:1', connectTimeoutMs: 500 });
    await expect(openConfiguredBus(config, { name: 'config-test' })).rejects.toBeInstanceOf(EventBusUnavailableError);
  });
});
