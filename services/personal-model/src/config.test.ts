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
