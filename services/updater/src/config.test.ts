import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '@aimass/platform';
import { serviceConfigSchema, updaterConfigSchema } from './config.js';

const secret = 'x'.repeat(40);

describe('updater configuration', () => {
  it('has working defaults for everything but the bus and the pseudonym secret', () => {
    const c = updaterConfigSchema.parse({});
    expect(c.apply).toMatchObject({ batchWindowMs: 20, maxBatch: 256, concurrency: 32 });
    expect(c.consumer).toMatchObject({ durable: 'updater', maxDeliver: 3, backoffMs: [200, 1000], ackWaitMs: 10_000 });
    expect(c.sweep.intervalMs).toBe(30_000);
    expect(c.watch.intervalMs).toBe(30_000);
    expect(c.erasure).toEqual({ durable: 'updater-erasure', maxDeliver: 5, backoffMs: [1_000, 5_000, 15_000], ackWaitMs: 60_000 });
  });

  it('reads AIMASS_UPDATER__* and AIMASS_EVENTS__* variables', () => {
    const c = loadConfig(serviceConfigSchema, {
      env: {
        AIMASS_PSEUDONYM__SECRET: secret,
        AIMASS_EVENTS__KIND: 'nats',
        AIMASS_EVENTS__SERVERS: 'nats://a:4222,nats://b:4222',
        AIMASS_UPDATER__APPLY__BATCH_WINDOW_MS: '5',
        AIMASS_UPDATER__CONSUMER__BACKOFF_MS: '[10,20]',
        AIMASS_UPDATER__PERSONAL_MODEL__ADDRESS: 'personal-model:50051',
      },
    });
    expect(c.events.servers).toEqual(['nats://a:4222', 'nats://b:4222']);
    expect(c.updater.apply.batchWindowMs).toBe(5);
    expect(c.updater.consumer.backoffMs).toEqual([10, 20]);
    expect(c.updater.personalModel.address).toBe('personal-model:50051');
    expect(c.serviceName).toBe('updater');
  });

  it('has the privacy service off by default, and reads its address and options from AIMASS_UPDATER__PRIVACY__*', () => {
    const off = updaterConfigSchema.parse({});
    expect(off.privacy).toEqual({
      address: undefined,
      lookupTimeoutMs: 2_000,
      cache: { ttlMs: 30_000, failureTtlMs: 1_000, maxEntries: 100_000 },
      keys: { callTimeoutMs: 2_000, cacheTtlMs: 60_000, cacheMaxEntries: 10_000 },
      allowPlaintext: false,
    });
    expect(off.export).toEqual({ maxEntries: 10_000, maxBytes: 3_800_000 });
    const c = loadConfig(serviceConfigSchema, {
      env: {
        AIMASS_PSEUDONYM__SECRET: secret,
        AIMASS_EVENTS__KIND: 'nats',
        AIMASS_EVENTS__SERVERS: 'nats://a:4222',
        AIMASS_UPDATER__PRIVACY__ADDRESS: 'privacy:50051',
        AIMASS_UPDATER__PRIVACY__CACHE__TTL_MS: '5000',
        AIMASS_UPDATER__PRIVACY__ALLOW_PLAINTEXT: 'true',
        AIMASS_UPDATER__EXPORT__MAX_ENTRIES: '500',
      },
    });
    expect(c.updater.privacy).toMatchObject({ address: 'privacy:50051', cache: { ttlMs: 5_000 }, allowPlaintext: true });
    expect(c.updater.export.maxEntries).toBe(500);
    expect(() => updaterConfigSchema.parse({ privacy: { address: 'not an address' } })).toThrow(/host:port/);
  });

  it('refuses to start without a bus, naming the key', () => {
    const err = (() => {
      try {
        loadConfig(serviceConfigSchema, { env: { AIMASS_PSEUDONYM__SECRET: secret } });
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(ConfigError);
    expect(String((err as Error).message)).toMatch(/events\.kind/);
  });

  it('refuses a bad value with the key and what was expected', () => {
    expect(() => loadConfig(serviceConfigSchema, { env: { AIMASS_PSEUDONYM__SECRET: secret, AIMASS_EVENTS__KIND: 'nats', AIMASS_EVENTS__SERVERS: 'nats://a:1', AIMASS_UPDATER__APPLY__MAX_BATCH: '0' } })).toThrow(
      /updater\.apply\.maxBatch.*a whole number > 0/,
    );
  });
});
