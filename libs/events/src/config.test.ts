import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { eventsConfigSchema, openConfiguredBus } from './config.js';

// A PEM certificate block is enough for the schema's readability check here; the real handshake
// with openssl-made certificates is in test/nats.tls.test.ts.
const dir = mkdtempSync(join(tmpdir(), 'events-config-'));
const notACert = join(dir, 'ca.pem');
writeFileSync(notACert, 'not a certificate\n');

const messages = (input: unknown) => {
  const result = eventsConfigSchema.safeParse(input);
  return result.success ? [] : result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

describe('eventsConfigSchema', () => {
  it('defaults to no bus', () => {
    expect(eventsConfigSchema.parse({})).toEqual({ kind: 'none' });
  });

  it('takes the servers as a list or as one comma-separated string (the form a variable has)', () => {
    expect(eventsConfigSchema.parse({ kind: 'nats', servers: 'nats://a:4222, nats://b:4222,' }).servers).toEqual(['nats://a:4222', 'nats://b:4222']);
    expect(eventsConfigSchema.parse({ kind: 'nats', servers: 'nats://a:4222,nats://b:4222' }).servers).toEqual(['nats://a:4222', 'nats://b:4222']);
    expect(eventsConfigSchema.parse({ kind: 'nats', servers: ['nats://a:4222'] }).servers).toEqual(['nats://a:4222']);
    const full = eventsConfigSchema.parse({
      kind: 'nats',
      servers: 'nats://a:4222',
      publishTimeoutMs: 1000,
      publishRetries: 0,
      user: 'svc',
      password: 'secret',
    });
    expect(full).toMatchObject({ publishTimeoutMs: 1000, publishRetries: 0, user: 'svc' });
  });

  it('says what is missing or inconsistent, naming the variable', () => {
    expect(messages({ kind: 'nats' })).toEqual(['servers: set events.servers (AIMASS_EVENTS__SERVERS) to the NATS server URLs for events.kind nats']);
    expect(messages({ servers: 'nats://a:4222' })[0]).toMatch(/^kind: events.servers is set but events.kind is none: set events.kind \(AIMASS_EVENTS__KIND\) to nats/);
    expect(messages({ kind: 'kafka' })).toEqual(['kind: expected none or nats']);
    expect(messages({ kind: 'nats', servers: ' , ' })[0]).toMatch(/^servers: expected NATS server URLs/);
    expect(messages({ kind: 'nats', servers: [] })[0]).toMatch(/^servers: expected NATS server URLs/);
    expect(messages({ kind: 'nats', servers: 'nats://a:4222', user: 'svc' })).toEqual(['password: set both events.user and events.password, or neither']);
    expect(messages({ kind: 'nats', servers: 'nats://a:4222', tls: { certFile: '/c.pem' } })).toContain(
      'tls: set both events.tls.certFile and events.tls.keyFile (client certificate), or neither',
    );
    expect(messages({ kind: 'nats', servers: 'nats://a:4222', tls: { caFile: notACert } })).toEqual([
      `tls.caFile: "${notACert}" holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)`,
    ]);
    expect(messages({ kind: 'nats', servers: 'nats://a:4222', pullExpiresMs: 500 })).toEqual(['pullExpiresMs: expected a duration in milliseconds >= 1000']);
    expect(messages({ kind: 'nats', servers: 'nats://a:4222', publishTimeoutMs: -1 })).toEqual(['publishTimeoutMs: expected a duration in milliseconds (a whole number > 0)']);
    expect(messages({ kind: 'none', port: 4222 })[0]).toMatch(/port/);
  });

  it('opens no bus for kind none', async () => {
    expect(await openConfiguredBus(eventsConfigSchema.parse({}), { name: 'test' })).toBeUndefined();
  });
});
