// The event bus over TLS with client certificates (issue 7): a real nats-server with
// `tls { verify: true }`, certificates made by openssl for the run, the bus opened from an
// `events` configuration section as a service main opens it.
import { join } from 'node:path';
import { NatsServer, makeTestPki, tempDir, type TempDir, type TestPki } from '@aimass/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventBusUnavailableError, eventsConfigSchema, openConfiguredBus, type DeliveredEvent, type EventBus } from '../src/index.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

describe('NATS over TLS with client certificates', () => {
  let dir: TempDir;
  let pki: TestPki;
  let server: NatsServer;
  const buses: EventBus[] = [];
  beforeAll(async () => {
    dir = await tempDir('events-tls-');
    pki = await makeTestPki(join(dir.path, 'pki'));
    server = await NatsServer.start({ tls: { certFile: pki.server.cert, keyFile: pki.server.key, caFile: pki.ca.cert, verify: true } });
  });
  afterAll(async () => {
    for (const bus of buses) await bus.close();
    await server?.dispose();
    await dir?.remove();
  });

  const open = async (tls: Record<string, string> | undefined) => {
    const config = eventsConfigSchema.parse({ kind: 'nats', servers: server.url, connectTimeoutMs: 2_000, ...(tls ? { tls } : {}) });
    const bus = (await openConfiguredBus(config, { name: 'tls-test' }))!;
    buses.push(bus);
    return bus;
  };

  it('publishes and consumes through the EventBus with the CA and a client certificate', async () => {
    const bus = await open({ caFile: pki.ca.cert, certFile: pki.client.cert, keyFile: pki.client.key });
    await bus.ensureStream({ name: 'TLS', subjects: ['tls.>'], maxAgeMs: 60_000, duplicateWindowMs: 10_000 });
    await bus.ensureStream({ name: 'TLSDLQ', subjects: ['tlsdlq.>'], maxAgeMs: 60_000, duplicateWindowMs: 10_000 });
    const ack = await bus.publish('tls.t1.events', encoder.encode('over tls'), { dedupeId: 'e1' });
    expect(ack).toMatchObject({ stream: 'TLS', sequence: 1, duplicate: false });
    let delivered!: (event: DeliveredEvent) => void;
    const received = new Promise<DeliveredEvent>((resolve) => (delivered = resolve));
    const consumer = await bus.consume(
      { durable: 'tls-reader', stream: 'TLS', filterSubject: 'tls.t1.events', maxDeliver: 3, backoffMs: [50], ackWaitMs: 5_000, deadLetterSubject: 'tlsdlq.t1' },
      async (event) => delivered(event),
    );
    const event = await received;
    await consumer.close();
    expect(decoder.decode(event.data)).toBe('over tls');
    expect(event.dedupeId).toBe('e1');
  });

  it('fails to connect, saying why, with a CA that did not sign the server certificate', async () => {
    const err = await open({ caFile: pki.otherCa.cert, certFile: pki.client.cert, keyFile: pki.client.key }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EventBusUnavailableError);
    expect((err as Error).message).toBe(
      `cannot connect to NATS at ${server.url}: unable to verify the first certificate (TLS: the server's certificate does not verify against the CA in ${pki.otherCa.cert})`,
    );
  });

  it('is refused without a client certificate, or with one from another CA', async () => {
    const err = await open({ caFile: pki.ca.cert }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EventBusUnavailableError);
    expect((err as Error).message).toMatch(/requires client certificates .* check the TLS certFile and keyFile/);
    await expect(open({ caFile: pki.ca.cert, certFile: pki.otherClient.cert, keyFile: pki.otherClient.key })).rejects.toBeInstanceOf(EventBusUnavailableError);
  });

  it('is refused in plaintext: the server requires TLS', async () => {
    await expect(open(undefined)).rejects.toBeInstanceOf(EventBusUnavailableError);
  });

  it('reports a missing or wrong TLS file when the configuration is loaded, by key and path', () => {
    const issues = (tls: Record<string, string>) => {
      const r = eventsConfigSchema.safeParse({ kind: 'nats', servers: server.url, tls });
      return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    };
    const missing = join(dir.path, 'missing-ca.pem');
    expect(issues({ caFile: missing })).toEqual([`tls.caFile: cannot read "${missing}": file not found`]);
    expect(issues({ caFile: pki.ca.key })).toEqual([`tls.caFile: "${pki.ca.key}" holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)`]);
    expect(issues({ caFile: pki.ca.cert, certFile: pki.client.cert, keyFile: pki.server.key })).toEqual([
      `tls.keyFile: "${pki.server.key}" is not the private key of the certificate in "${pki.client.cert}"`,
    ]);
  });
});
