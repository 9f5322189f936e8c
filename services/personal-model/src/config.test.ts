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
      AIMASS_EVENTS__TLS__CA_FILE: '/etc/nats/ca.pem',
    });
    expect(config.events).toEqual({ kind: 'nats', servers: ['nats://nats-0:4222', 'nats://nats-1:4222'], publishTimeoutMs: 1500, tls: { caFile: '/etc/nats/ca.pem' } });
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
