import { createConnection, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy in front of a real service that can hold every byte for `delayMs` in both
 * directions: a slow network (or an overloaded host) between two services, without changing either.
 */
export class SlowProxy {
  delayMs = 0;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  #port = 0;

  private constructor(upstream: { host: string; port: number }) {
    this.#server = createServer((client) => {
      const server = createConnection(upstream);
      for (const s of [client, server]) {
        this.#sockets.add(s);
        s.on('close', () => this.#sockets.delete(s));
        s.on('error', () => {
          client.destroy();
          server.destroy();
        });
      }
      const relay = (from: Socket, to: Socket) =>
        from.on('data', (chunk) => {
          const send = () => {
            if (!to.destroyed) to.write(chunk);
          };
          if (this.delayMs > 0) setTimeout(send, this.delayMs);
          else send();
        });
      relay(client, server);
      relay(server, client);
    });
  }

  static async start(upstreamAddress: string): Promise<SlowProxy> {
    const at = upstreamAddress.lastIndexOf(':');
    const proxy = new SlowProxy({ host: upstreamAddress.slice(0, at), port: Number(upstreamAddress.slice(at + 1)) });
    await new Promise<void>((resolve) => proxy.#server.listen(0, '127.0.0.1', resolve));
    proxy.#port = (proxy.#server.address() as { port: number }).port;
    return proxy;
  }

  get address(): string {
    return `127.0.0.1:${this.#port}`;
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
