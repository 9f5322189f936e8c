import * as grpc from '@grpc/grpc-js';
import { widenFlowControlWindows, type FlowControlWindows } from '@aimass/platform';
import { MAX_MESSAGE_BYTES } from '../load/grpc-senders.js';

/** A started server contender. */
export interface RunningServer {
  readonly address: string;
  /** CPU seconds the server's process has used so far (all its threads); NaN where unknown. */
  cpuSeconds(): number;
  close(): Promise<void>;
}

/** CPU seconds of this process: what an in-process contender costs (the load runs in its own process). */
export function ownCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/**
 * Binds a bare grpc-js server on 127.0.0.1 (port 0 lets the OS pick) with large message limits;
 * `windows`: the HTTP/2 receive windows the platform's servers use, instead of HTTP/2's 64 KiB.
 */
export async function bindServer(server: grpc.Server, port = 0, windows?: FlowControlWindows): Promise<RunningServer> {
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (error, p) => (error ? reject(error) : resolve(p))),
  );
  if (windows && !widenFlowControlWindows(server, windows)) throw new Error('bench: could not widen the HTTP/2 windows of a contender');
  return {
    address: `127.0.0.1:${bound}`,
    cpuSeconds: ownCpuSeconds,
    close: () =>
      new Promise<void>((resolve) => {
        server.tryShutdown(() => resolve());
        // Calls still open after a moment (a stopped load process) must not hold the bench.
        setTimeout(() => server.forceShutdown(), 2000).unref();
      }),
  };
}

export function newServer(): grpc.Server {
  return new grpc.Server({ 'grpc.max_receive_message_length': MAX_MESSAGE_BYTES, 'grpc.max_send_message_length': MAX_MESSAGE_BYTES });
}
