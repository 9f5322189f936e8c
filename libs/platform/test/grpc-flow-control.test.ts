import { connect, type ClientHttp2Session } from 'node:http2';
import { Server } from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { callUnary, createGrpcServer, unary, type GrpcServer } from '../src/index.js';
import { HTTP2_DEFAULT_WINDOW_BYTES, widenFlowControlWindows } from '../src/grpc/flow-control.js';
import { captureLogs, deadlineIn, loadEcho, rawClient, serverConfig, type EchoRequest, type EchoResponse } from './support.js';

/** What a client connecting now is allowed to send: the server's stream window and connection window. */
async function grantedWindows(address: string): Promise<{ stream: number; connection: number }> {
  const session: ClientHttp2Session = connect(`http://${address}`);
  try {
    await new Promise<void>((resolve, reject) => {
      session.once('remoteSettings', () => resolve());
      session.once('error', reject);
    });
    // The connection-level WINDOW_UPDATE is sent with the server's first frames; a ping answered
    // means everything the server sent before it has been read.
    await new Promise<void>((resolve, reject) => session.ping((err) => (err ? reject(err) : resolve())));
    return { stream: session.remoteSettings.initialWindowSize ?? Number.NaN, connection: session.state.remoteWindowSize ?? Number.NaN };
  } finally {
    session.close();
  }
}

describe('HTTP/2 flow-control windows', () => {
  const logs = captureLogs('flow');
  const { definition } = loadEcho();
  let server: GrpcServer | undefined;

  afterEach(async () => {
    server?.forceShutdown();
    server = undefined;
  });

  async function start(overrides: Parameters<typeof serverConfig>[0]): Promise<string> {
    server = createGrpcServer({
      config: serverConfig({ maxReceiveMessageBytes: 8 * 1024 * 1024, ...overrides }),
      logger: logs.logger,
      services: [
        {
          definition,
          implementation: {
            Get: unary<EchoRequest, EchoResponse>(async (req) => ({ text: String(req.text.length), attempt: 0, trace_id: '' })),
          },
        },
      ],
    });
    return (await server.start()).address;
  }

  it('grants clients the configured stream and connection windows', async () => {
    const address = await start({ flowControlWindowBytes: 1024 * 1024, connectionFlowControlWindowBytes: 8 * 1024 * 1024 });
    expect(await grantedWindows(address)).toEqual({ stream: 1024 * 1024, connection: 8 * 1024 * 1024 });
    expect(logs.lines().filter((l) => String(l['msg']).includes('flow-control'))).toEqual([]);
  });

  it("keeps HTTP/2's 64 KiB windows when none are configured", async () => {
    const address = await start({});
    expect(await grantedWindows(address)).toEqual({ stream: HTTP2_DEFAULT_WINDOW_BYTES, connection: HTTP2_DEFAULT_WINDOW_BYTES });
  });

  it('uses the stream window for the connection when only the stream window is set', async () => {
    const address = await start({ flowControlWindowBytes: 512 * 1024 });
    expect(await grantedWindows(address)).toEqual({ stream: 512 * 1024, connection: 512 * 1024 });
  });

  it('still receives requests larger than either window', async () => {
    const address = await start({ flowControlWindowBytes: 128 * 1024, connectionFlowControlWindowBytes: 256 * 1024 });
    const client = rawClient(address);
    try {
      const text = 'x'.repeat(3 * 1024 * 1024);
      const answers = await Promise.all(
        [0, 1, 2].map(() => callUnary<EchoRequest, EchoResponse>(client['Get']!.bind(client) as never, { text, count: 1 }, { deadline: deadlineIn(10_000) })),
      );
      expect(answers.map((a) => a.text)).toEqual([String(text.length), String(text.length), String(text.length)]);
    } finally {
      client.close();
    }
  });

  it('reports false, and changes nothing, on a server whose http2 servers it cannot find', () => {
    expect(widenFlowControlWindows(new Server(), { streamBytes: 1 << 20, connectionBytes: 1 << 23 })).toBe(false);
    const impostor = Object.assign(new Server(), { http2Servers: new Map([[{}, {}]]) });
    expect(widenFlowControlWindows(impostor, { streamBytes: 1 << 20, connectionBytes: 1 << 23 })).toBe(false);
  });
});
