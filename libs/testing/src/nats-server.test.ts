import { connect } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { NatsServer, makeTestPki, tempDir, type TempDir } from './index.js';

const reachable = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });

describe('NatsServer harness', () => {
  let server: NatsServer | undefined;
  afterAll(() => server?.dispose());

  it('starts on a free port, can be killed and restarted on the same port and store', async () => {
    server = await NatsServer.start();
    expect(server.url).toBe(`nats://127.0.0.1:${server.port}`);
    expect(server.port).not.toBe(4222);
    expect(await reachable(server.port)).toBe(true);
    await server.kill();
    expect(server.running).toBe(false);
    expect(await reachable(server.port)).toBe(false);
    await server.restart();
    expect(server.running).toBe(true);
    expect(await reachable(server.port)).toBe(true);
    expect(server.output).toContain('JetStream');
  });
});

describe('NatsServer harness with TLS', () => {
  let dir: TempDir | undefined;
  let server: NatsServer | undefined;
  afterAll(async () => {
    await server?.dispose();
    await dir?.remove();
  });

  it('requires TLS and client certificates when started with tls and a CA', async () => {
    dir = await tempDir('aimass-nats-tls-');
    const pki = await makeTestPki(dir.path);
    server = await NatsServer.start({ tls: { certFile: pki.server.cert, keyFile: pki.server.key, caFile: pki.ca.cert } });
    // The server's greeting, read in plain TCP, announces what clients must do.
    const info = await new Promise<string>((resolve, reject) => {
      const s = connect(server!.port, '127.0.0.1');
      s.once('data', (chunk) => (s.destroy(), resolve(chunk.toString())));
      s.once('error', reject);
    });
    expect(info).toMatch(/^INFO /);
    expect(info).toContain('"tls_required":true');
    expect(info).toContain('"tls_verify":true');
  });
});
