import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '@aimass/platform';
import { privacyConfigSchema, serviceConfigSchema } from './config.js';

const secret = 'x'.repeat(40);
const KEK = Buffer.alloc(32, 7).toString('base64');
/** A bus and a KEK: what every start needs besides the pseudonym secret. */
const bus = { AIMASS_EVENTS__KIND: 'nats', AIMASS_EVENTS__SERVERS: 'nats://a:4222', AIMASS_DATA_KEYS__KEK_SOURCE: 'config', AIMASS_DATA_KEYS__KEK_SECRET__DEFAULT: KEK };

describe('privacy configuration', () => {
  it('has working defaults: nothing granted until the user opts in', () => {
    const c = privacyConfigSchema.parse({});
    expect(c.consent).toEqual({ defaults: { personalization: 'denied', training: 'denied' }, tenants: {}, maxAppendAttempts: 16 });
    expect(c.limits).toMatchObject({ maxUserIdBytes: 256, maxPolicyVersionBytes: 128 });
    expect(c.outbox).toEqual({ sweepIntervalMs: 10_000, graceMs: 5_000 });
  });

  it('reads AIMASS_PRIVACY__* variables, per-tenant defaults as JSON', () => {
    const c = loadConfig(serviceConfigSchema, {
      env: {
        AIMASS_PSEUDONYM__SECRET: secret,
        ...bus,
        AIMASS_PRIVACY__CONSENT__DEFAULTS__TRAINING: 'granted',
        AIMASS_PRIVACY__CONSENT__TENANTS: '{"acme":{"personalization":"granted"}}',
        AIMASS_PRIVACY__OUTBOX__SWEEP_INTERVAL_MS: '0',
      },
    });
    expect(c.serviceName).toBe('privacy');
    expect(c.privacy.consent.defaults).toEqual({ personalization: 'denied', training: 'granted' });
    expect(c.privacy.consent.tenants).toEqual({ acme: { personalization: 'granted' } });
    expect(c.privacy.outbox.sweepIntervalMs).toBe(0);
    expect(c.store).toMatchObject({ kind: 'sqlite' });
  });

  it('refuses a default other than granted or denied, and a bad tenant id, naming the key', () => {
    expect(() => loadConfig(serviceConfigSchema, { env: { AIMASS_PSEUDONYM__SECRET: secret, ...bus, AIMASS_PRIVACY__CONSENT__DEFAULTS__TRAINING: 'withdrawn' } })).toThrow(
      /privacy\.consent\.defaults\.training.*expected granted or denied/,
    );
    expect(() => loadConfig(serviceConfigSchema, { env: { AIMASS_PSEUDONYM__SECRET: secret, ...bus, AIMASS_PRIVACY__CONSENT__TENANTS: '{"Acme!":{}}' } })).toThrow(/expected a tenant id/);
  });

  it('expects privacy, personal-model, updater and fusion to confirm an erasure unless told otherwise', () => {
    const c = privacyConfigSchema.parse({});
    expect(c.erasure).toEqual({
      services: ['privacy', 'personal-model', 'updater', 'fusion'],
      retryIntervalMs: 60_000,
      sweepIntervalMs: 10_000,
      graceMs: 5_000,
      consumer: { durable: 'privacy-erasure', maxDeliver: 5, backoffMs: [1_000, 5_000, 15_000], ackWaitMs: 60_000 },
    });
    const env = loadConfig(serviceConfigSchema, {
      env: { AIMASS_PSEUDONYM__SECRET: secret, ...bus, AIMASS_PRIVACY__ERASURE__SERVICES: 'personal-model,updater', AIMASS_PRIVACY__ERASURE__RETRY_INTERVAL_MS: '5000' },
    });
    expect(env.privacy.erasure).toMatchObject({ services: ['personal-model', 'updater'], retryIntervalMs: 5_000 });
    expect(() => loadConfig(serviceConfigSchema, { env: { AIMASS_PSEUDONYM__SECRET: secret, ...bus, AIMASS_PRIVACY__ERASURE__SERVICES: 'Personal.Model' } })).toThrow(
      /privacy\.erasure\.services.*expected service names/,
    );
  });

  it('refuses to start without tenant key-encryption keys, naming the variables to set', () => {
    const noKek = { AIMASS_PSEUDONYM__SECRET: secret, AIMASS_EVENTS__KIND: 'nats', AIMASS_EVENTS__SERVERS: 'nats://a:4222' };
    for (const env of [noKek, { ...noKek, AIMASS_DATA_KEYS__KEK_SOURCE: 'none' }]) {
      let err: unknown;
      try {
        loadConfig(serviceConfigSchema, { env });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      const message = (err as Error).message;
      expect(message).toMatch(/dataKeys\.kekSource/);
      for (const variable of ['AIMASS_DATA_KEYS__KEK_SOURCE', 'AIMASS_DATA_KEYS__KEK_SECRET__DEFAULT', 'AIMASS_DATA_KEYS__KEK_DIRECTORY']) expect(message).toContain(variable);
    }
    // config without a key, directory without a path: libs/crypto's own messages.
    expect(() => loadConfig(serviceConfigSchema, { env: { ...noKek, AIMASS_DATA_KEYS__KEK_SOURCE: 'directory' } })).toThrow(/AIMASS_DATA_KEYS__KEK_DIRECTORY/);
    const c = loadConfig(serviceConfigSchema, { env: { ...noKek, AIMASS_DATA_KEYS__KEK_SOURCE: 'directory', AIMASS_DATA_KEYS__KEK_DIRECTORY: '/var/run/secrets/aimass-kek' } });
    expect(c.dataKeys).toMatchObject({ kekSource: 'directory', kekDirectory: '/var/run/secrets/aimass-kek' });
  });

  it('hides the KEK in configuration errors', () => {
    let err: unknown;
    try {
      loadConfig(serviceConfigSchema, { env: { AIMASS_PSEUDONYM__SECRET: secret, ...bus, AIMASS_DATA_KEYS__KEK_SECRET__DEFAULT: 'not-a-key-but-secret-text' } });
    } catch (e) {
      err = e;
    }
    expect(String((err as Error).message)).toMatch(/dataKeys\.kekSecret\.default/);
    expect(String((err as Error).message)).not.toContain('not-a-key-but-secret-text');
  });

  it('bounds how long other services may keep a key, and reads the export addresses', () => {
    expect(privacyConfigSchema.parse({}).keyCacheSeconds).toBe(60);
    expect(privacyConfigSchema.parse({}).export).toEqual({ maxModelPages: 100 });
    const c = loadConfig(serviceConfigSchema, {
      env: {
        AIMASS_PSEUDONYM__SECRET: secret,
        ...bus,
        AIMASS_PRIVACY__KEY_CACHE_SECONDS: '15',
        AIMASS_PRIVACY__EXPORT__PERSONAL_MODEL_ADDRESS: 'personal-model:50051',
        AIMASS_PRIVACY__EXPORT__UPDATER_ADDRESS: 'updater:50051',
      },
    });
    expect(c.privacy.keyCacheSeconds).toBe(15);
    expect(c.privacy.export).toEqual({ personalModelAddress: 'personal-model:50051', updaterAddress: 'updater:50051', maxModelPages: 100 });
    expect(() => loadConfig(serviceConfigSchema, { env: { AIMASS_PSEUDONYM__SECRET: secret, ...bus, AIMASS_PRIVACY__KEY_CACHE_SECONDS: '0' } })).toThrow(/privacy\.keyCacheSeconds.*expected a number of seconds/);
  });

  it('refuses to start without a bus: every change is announced', () => {
    let err: unknown;
    try {
      loadConfig(serviceConfigSchema, { env: { AIMASS_PSEUDONYM__SECRET: secret } });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect(String((err as Error).message)).toMatch(/events\.kind.*announces consent changes/);
  });
});
