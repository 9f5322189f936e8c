import { DEFAULT_PERSONAL_LEARNER_OPTIONS } from '@aimass/ml';
import { ConfigError, loadConfig } from '@aimass/platform';
import { describe, expect, it } from 'vitest';
import { serviceConfigSchema } from './config.js';

const load = (env: Record<string, string>) => loadConfig(serviceConfigSchema, { env: { ...env, AIMASS_CONFIG: undefined } });

describe('personal-model configuration: the events section', () => {
  it('runs without a bus by default', () => {
    expect(load({}).events).toEqual({ kind: 'none' });
  });

  it('reads the bus from AIMASS_EVENTS__*', () => {
    const config = load({
      AIMASS_EVENTS__KIND: 'nats',
      AIMASS_EVENTS__SERVERS: 'nats://nats-0:4222,nats://nats-1:4222',
      AIMASS_EVENTS__PUBLISH_TIMEOUT_MS: '1500',
    });
    // events.tls (its files are read and checked at load) is covered by libs/events' own tests.
    expect(config.events).toEqual({ kind: 'nats', servers: ['nats://nats-0:4222', 'nats://nats-1:4222'], publishTimeoutMs: 1500 });
  });

  it('names the variable that is missing or contradicts another', () => {
    expect(() => load({ AIMASS_EVENTS__KIND: 'nats' })).toThrow(ConfigError);
    expect(() => load({ AIMASS_EVENTS__KIND: 'nats' })).toThrow(/events\.servers.*AIMASS_EVENTS__SERVERS/);
    expect(() => load({ AIMASS_EVENTS__SERVERS: 'nats://nats:4222' })).toThrow(/set events\.kind \(AIMASS_EVENTS__KIND\) to nats/);
    expect(() => load({ AIMASS_EVENTS__KIND: 'kafka' })).toThrow(/events\.kind \(from AIMASS_EVENTS__KIND="kafka"\): expected none or nats/);
  });
});

describe('personal-model configuration: the erasure consumer', () => {
  it('has its own consumer group by default and reads AIMASS_PERSONAL_MODEL__ERASURE__*', () => {
    expect(load({}).personalModel.erasure).toEqual({ durable: 'personal-model-erasure', maxDeliver: 5, backoffMs: [1_000, 5_000, 15_000], ackWaitMs: 60_000 });
    expect(load({ AIMASS_PERSONAL_MODEL__ERASURE__BACKOFF_MS: '100,200', AIMASS_PERSONAL_MODEL__ERASURE__MAX_DELIVER: '3' }).personalModel.erasure).toMatchObject({ backoffMs: [100, 200], maxDeliver: 3 });
    expect(() => load({ AIMASS_PERSONAL_MODEL__ERASURE__DURABLE: 'a.b' })).toThrow(/personalModel\.erasure\.durable.*consumer name/);
  });
});

describe('personal-model configuration: the privacy service', () => {
  it('is off by default: no address, plaintext refused once keys are used', () => {
    expect(load({}).personalModel.privacy).toEqual({
      lookupTimeoutMs: 2_000,
      cache: { ttlMs: 30_000, failureTtlMs: 1_000, maxEntries: 100_000 },
      keys: { callTimeoutMs: 2_000, cacheTtlMs: 60_000, cacheMaxEntries: 10_000 },
      allowPlaintext: false,
    });
  });

  it('reads AIMASS_PERSONAL_MODEL__PRIVACY__*', () => {
    const privacy = load({
      AIMASS_EVENTS__KIND: 'nats',
      AIMASS_EVENTS__SERVERS: 'nats://nats:4222',
      AIMASS_PERSONAL_MODEL__PRIVACY__ADDRESS: 'privacy:50051',
      AIMASS_PERSONAL_MODEL__PRIVACY__ALLOW_PLAINTEXT: 'true',
      AIMASS_PERSONAL_MODEL__PRIVACY__CACHE__TTL_MS: '5000',
      AIMASS_PERSONAL_MODEL__PRIVACY__KEYS__CACHE_TTL_MS: '10000',
    }).personalModel.privacy;
    expect(privacy).toMatchObject({ address: 'privacy:50051', allowPlaintext: true, cache: { ttlMs: 5_000 }, keys: { cacheTtlMs: 10_000 } });
  });

  it('refuses an address without the event bus that carries ConsentChanged, and a malformed address', () => {
    expect(() => load({ AIMASS_PERSONAL_MODEL__PRIVACY__ADDRESS: 'privacy:50051' })).toThrow(/personalModel\.privacy\.address.*needs the event bus that carries ConsentChanged/);
    expect(() => load({ AIMASS_EVENTS__KIND: 'nats', AIMASS_EVENTS__SERVERS: 'nats://nats:4222', AIMASS_PERSONAL_MODEL__PRIVACY__ADDRESS: 'privacy' })).toThrow(
      /personalModel\.privacy\.address.*expected host:port/,
    );
  });
});

describe('personal-model configuration: the learner', () => {
  it('defaults to libs/ml’s learner options, every one of them, and reads AIMASS_PERSONAL_MODEL__LEARNER__*', () => {
    expect(load({}).personalModel.learner).toEqual({ ...DEFAULT_PERSONAL_LEARNER_OPTIONS });
    const learner = load({ AIMASS_PERSONAL_MODEL__LEARNER__CONFIRMATION_WEIGHT: '1', AIMASS_PERSONAL_MODEL__LEARNER__CORRECTION_LOGIT_CLIP: '20' }).personalModel.learner;
    expect(learner).toMatchObject({ confirmationWeight: 1, correctionLogitClip: 20 });
  });

  it('refuses a confirmation weight outside [0, 1] and a clip that is not positive', () => {
    expect(() => load({ AIMASS_PERSONAL_MODEL__LEARNER__CONFIRMATION_WEIGHT: '1.5' })).toThrow(/confirmationWeight.*from 0 to 1/);
    expect(() => load({ AIMASS_PERSONAL_MODEL__LEARNER__CORRECTION_LOGIT_CLIP: '0' })).toThrow(/correctionLogitClip.*> 0/);
  });
});
