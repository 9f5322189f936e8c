import { ConfigError, loadConfig } from '@aimass/platform';
import { v1 } from '@aimass/proto';
import { describe, expect, it } from 'vitest';
import { fusionConfigSchema, serviceConfigSchema } from './config.js';

const S = v1.FusionStrategy;
const SECRET = 'x'.repeat(40);

describe('fusion configuration', () => {
  it('has working defaults', () => {
    const c = fusionConfigSchema.parse({});
    expect(c.defaults).toEqual({ strategy: S.FUSION_STRATEGY_STACKING, interpolation: { k: 20, maxWeight: 0.8 }, override: { threshold: 0.9, minExamples: 10 } });
    expect(c.tenants).toEqual({});
    expect(c.budget).toMatchObject({ minGeneralMs: 5, reserveMs: 3, personalShare: 0.8, minPersonalMs: 2, maxPersonalMs: 1000 });
    expect(c.limits).toMatchObject({ maxBatchItems: 256, maxStreamInFlight: 16 });
    expect(c.predictions.retentionHours).toBe(168);
    expect(c.erasure).toEqual({ durable: 'fusion-erasure', maxDeliver: 5, backoffMs: [1_000, 5_000, 15_000], ackWaitMs: 60_000 });
  });

  it('reads strategies by name and per-tenant overrides, and parses its own output again unchanged', () => {
    const c = fusionConfigSchema.parse({
      defaults: { strategy: 'INTERPOLATE' },
      tenants: { acme: { strategy: 'override', override: { threshold: 0.95 } }, 'beta-co': { interpolation: { k: 5 } } },
    });
    expect(c.defaults.strategy).toBe(S.FUSION_STRATEGY_INTERPOLATE);
    expect(c.tenants['acme']).toEqual({ strategy: S.FUSION_STRATEGY_OVERRIDE, override: { threshold: 0.95 } });
    expect(c.tenants['beta-co']).toEqual({ interpolation: { k: 5 } });
    expect(fusionConfigSchema.parse(c)).toEqual(c);
  });

  it('names what is wrong', () => {
    const bad = fusionConfigSchema.safeParse({ defaults: { strategy: 'blend' }, tenants: { 'Bad Tenant': {} }, budget: { personalShare: 2 } });
    expect(bad.success).toBe(false);
    const messages = bad.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('\n');
    expect(messages).toMatch(/defaults\.strategy: unknown strategy "blend": expected a strategy: one of general_only, personal_only, interpolate, stacking, override/);
    expect(messages).toMatch(/tenants\.Bad Tenant: invalid tenant id/);
    expect(messages).toMatch(/budget\.personalShare: expected a share in \(0, 1\]/);
  });

  it('loads from the environment, tenants as JSON', () => {
    const config = loadConfig(serviceConfigSchema, {
      env: {
        AIMASS_PSEUDONYM__SECRET: SECRET,
        AIMASS_FUSION__PERSONAL_MODEL__ADDRESS: 'personal:50051',
        AIMASS_FUSION__DEFAULTS__STRATEGY: 'general_only',
        AIMASS_FUSION__TENANTS: JSON.stringify({ acme: { strategy: 'stacking' } }),
        AIMASS_FUSION__LIMITS__MAX_BATCH_ITEMS: '32',
        AIMASS_FUSION__ERASURE__MAX_DELIVER: '3',
      },
    });
    expect(config.fusion.erasure).toMatchObject({ durable: 'fusion-erasure', maxDeliver: 3 });
    expect(config.serviceName).toBe('fusion');
    expect(config.fusion.personalModel.address).toBe('personal:50051');
    expect(config.fusion.defaults.strategy).toBe(S.FUSION_STRATEGY_GENERAL_ONLY);
    expect(config.fusion.tenants['acme']?.strategy).toBe(S.FUSION_STRATEGY_STACKING);
    expect(config.fusion.limits.maxBatchItems).toBe(32);
    expect(config.store).toEqual({ kind: 'sqlite', path: '.data/fusion.sqlite', database: 'fusion' });
  });

  it('coalesces by default, within the models\' per-call limits, configurable from the environment', () => {
    expect(fusionConfigSchema.parse({}).coalescing).toEqual({ enabled: true, maxItems: 256, maxDelayMs: 0, maxRequestBytes: 1024 * 1024 });
    const bad = fusionConfigSchema.safeParse({ coalescing: { maxItems: 2048, maxDelayMs: 500, maxRequestBytes: 0 } });
    const messages = bad.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('\n');
    expect(messages).toMatch(/coalescing\.maxItems: expected at most 1024 items/);
    expect(messages).toMatch(/coalescing\.maxDelayMs: expected at most 100 ms/);
    expect(messages).toMatch(/coalescing\.maxRequestBytes: expected a size in bytes/);
    const config = loadConfig(serviceConfigSchema, {
      env: { AIMASS_PSEUDONYM__SECRET: SECRET, AIMASS_FUSION__COALESCING__ENABLED: 'false', AIMASS_FUSION__COALESCING__MAX_DELAY_MS: '2' },
    });
    expect(config.fusion.coalescing).toMatchObject({ enabled: false, maxDelayMs: 2, maxItems: 256 });
  });

  it('caches users without a personal model by default (TTL chosen at start unless set); 0 entries turns it off', () => {
    expect(fusionConfigSchema.parse({}).personalModel).toEqual({
      address: '127.0.0.1:50053',
      circuitFailureThreshold: 5,
      circuitOpenMs: 5_000,
      noModelCacheMaxEntries: 100_000,
    });
    const config = loadConfig(serviceConfigSchema, {
      env: { AIMASS_PSEUDONYM__SECRET: SECRET, AIMASS_FUSION__PERSONAL_MODEL__NO_MODEL_CACHE_MAX_ENTRIES: '0', AIMASS_FUSION__PERSONAL_MODEL__NO_MODEL_CACHE_TTL_MS: '500' },
    });
    expect(config.fusion.personalModel).toMatchObject({ noModelCacheMaxEntries: 0, noModelCacheTtlMs: 500 });
    const bad = fusionConfigSchema.safeParse({ personalModel: { noModelCacheMaxEntries: -1, noModelCacheTtlMs: 0 } });
    const messages = bad.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('\n');
    expect(messages).toMatch(/personalModel\.noModelCacheMaxEntries: expected a number of entries \(a whole number >= 0\)/);
    expect(messages).toMatch(/personalModel\.noModelCacheTtlMs: expected a duration in milliseconds \(a whole number > 0\)/);
  });

  it('requires a pseudonym secret and a MongoDB url for the mongodb store', () => {
    expect(() => loadConfig(serviceConfigSchema, { env: {} })).toThrow(ConfigError);
    expect(() => loadConfig(serviceConfigSchema, { env: { AIMASS_PSEUDONYM__SECRET: SECRET, AIMASS_STORE__KIND: 'mongodb' } })).toThrow(/store\.url/);
  });

  it('has no event bus by default (Feedback trains directly); events.kind nats with servers from the environment', () => {
    expect(loadConfig(serviceConfigSchema, { env: { AIMASS_PSEUDONYM__SECRET: SECRET } }).events).toEqual({ kind: 'none' });
    const config = loadConfig(serviceConfigSchema, {
      env: { AIMASS_PSEUDONYM__SECRET: SECRET, AIMASS_EVENTS__KIND: 'nats', AIMASS_EVENTS__SERVERS: 'nats://nats-0:4222, nats://nats-1:4222' },
    });
    expect(config.events).toMatchObject({ kind: 'nats', servers: ['nats://nats-0:4222', 'nats://nats-1:4222'] });
    expect(() => loadConfig(serviceConfigSchema, { env: { AIMASS_PSEUDONYM__SECRET: SECRET, AIMASS_EVENTS__KIND: 'nats' } })).toThrow(/events\.servers/);
  });

  it('enforces no consent by default; privacy.address turns it on, with the consent cache defaults, and needs the event bus', () => {
    const dataKeys = { callTimeoutMs: 2_000, cacheTtlMs: 60_000, cacheMaxEntries: 100_000, recordWaitMs: 250, lateRecordWaitMs: 30_000, lateRecordsMax: 10_000, allowPlaintext: false };
    expect(fusionConfigSchema.parse({}).privacy).toEqual({ lookupTimeoutMs: 2_000, cache: { ttlMs: 30_000, failureTtlMs: 1_000, maxEntries: 100_000 }, dataKeys });
    const config = loadConfig(serviceConfigSchema, {
      env: {
        AIMASS_PSEUDONYM__SECRET: SECRET,
        AIMASS_EVENTS__KIND: 'nats',
        AIMASS_EVENTS__SERVERS: 'nats://nats:4222',
        AIMASS_FUSION__PRIVACY__ADDRESS: 'privacy:50051',
        AIMASS_FUSION__PRIVACY__LOOKUP_TIMEOUT_MS: '500',
        AIMASS_FUSION__PRIVACY__CACHE__TTL_MS: '10000',
        AIMASS_FUSION__PRIVACY__DATA_KEYS__RECORD_WAIT_MS: '100',
        AIMASS_FUSION__PRIVACY__DATA_KEYS__LATE_RECORD_WAIT_MS: '0',
        AIMASS_FUSION__PRIVACY__DATA_KEYS__ALLOW_PLAINTEXT: 'true',
      },
    });
    expect(config.fusion.privacy).toEqual({
      address: 'privacy:50051',
      lookupTimeoutMs: 500,
      cache: { ttlMs: 10_000, failureTtlMs: 1_000, maxEntries: 100_000 },
      dataKeys: { ...dataKeys, recordWaitMs: 100, lateRecordWaitMs: 0, allowPlaintext: true },
    });
    const withoutBus = () => loadConfig(serviceConfigSchema, { env: { AIMASS_PSEUDONYM__SECRET: SECRET, AIMASS_FUSION__PRIVACY__ADDRESS: 'privacy:50051' } });
    expect(withoutBus).toThrow(ConfigError);
    expect(withoutBus).toThrow(/fusion\.privacy\.address.*consent enforcement needs the event bus that carries ConsentChanged: set events\.kind to nats/);
    const bad = fusionConfigSchema.safeParse({ privacy: { address: 'no port', cache: { ttlMs: 0 }, dataKeys: { cacheTtlMs: 0, allowPlaintext: 'yes', lateRecordWaitMs: -1, lateRecordsMax: 0 } } });
    const messages = bad.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('\n');
    expect(messages).toMatch(/privacy\.address: expected host:port/);
    expect(messages).toMatch(/privacy\.dataKeys\.cacheTtlMs: expected a duration in milliseconds/);
    expect(messages).toMatch(/privacy\.dataKeys\.allowPlaintext: expected true or false/);
    expect(messages).toMatch(/privacy\.dataKeys\.lateRecordWaitMs: expected a duration in milliseconds/);
    expect(messages).toMatch(/privacy\.dataKeys\.lateRecordsMax: expected a count/);
    expect(messages).toMatch(/privacy\.cache\.ttlMs: expected a duration in milliseconds/);
  });
});
