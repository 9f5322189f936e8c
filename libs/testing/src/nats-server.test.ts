import { connect } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { NatsServer } from './index.js';

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
