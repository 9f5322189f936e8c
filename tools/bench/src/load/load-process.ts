// Entry of the load process (child_process.fork): runs measurements the parent sends over IPC.
// A separate process so the clients' own CPU is not the server's event loop; on a 2-core
// machine it still competes with the server for the cores, as any co-located client would.
import { createGrpcSenders } from './grpc-senders.js';
import { runLoad } from './loops.js';
import type { ChildMessage, ParentMessage } from './protocol.js';

function send(message: ChildMessage): void {
  process.send?.(message);
}

process.on('message', (message: ParentMessage) => {
  if (message.type !== 'run') return;
  const { id, spec } = message;
  const grpcSenders = createGrpcSenders(spec.address, spec.method, spec.connections, spec.expectedOutputs);
  runLoad(spec, grpcSenders.senders)
    .then((result) => send({ type: 'result', id, result }))
    .catch((error: unknown) => send({ type: 'failed', id, message: error instanceof Error ? error.message : String(error) }))
    .finally(() => grpcSenders.close());
});

process.on('disconnect', () => process.exit(0));
send({ type: 'ready' });
