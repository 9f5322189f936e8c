// Entry of the load process (child_process.fork): runs measurements the parent sends over IPC.
// A separate process so the clients' own CPU is not the server's event loop; on a 2-core
// machine it still competes with the server for the cores, as any co-located client would.
import { createGrpcSenders } from './grpc-senders.js';
import { runLoad } from './loops.js';
import type { ChildMessage, ParentMessage } from './protocol.js';
import { UserRequests } from './users.js';

function send(message: ChildMessage): void {
  process.send?.(message);
}

process.on('message', (message: ParentMessage) => {
  if (message.type !== 'run') return;
  const { id, spec } = message;
  let grpcSenders: ReturnType<typeof createGrpcSenders>;
  let users: UserRequests | undefined;
  try {
    // Before the clock starts: a user table of a million pseudonyms takes seconds to make.
    users = spec.users === undefined ? undefined : new UserRequests(spec.users);
    grpcSenders = createGrpcSenders({
      address: spec.address,
      method: spec.method,
      connections: spec.connections,
      response: spec.response ?? { kind: 'model-infer', outputs: spec.expectedOutputs },
      metadata: spec.metadata,
    });
  } catch (error) {
    send({ type: 'failed', id, message: error instanceof Error ? error.message : String(error) });
    return;
  }
  const hooks = {
    request: users === undefined ? undefined : (template: Uint8Array) => (users as UserRequests).request(template),
    onWindow: (phase: 'start' | 'end') => send({ type: 'window', id, phase }),
  };
  runLoad(spec, grpcSenders.senders, hooks)
    .then((result) => send({ type: 'result', id, result }))
    .catch((error: unknown) => send({ type: 'failed', id, message: error instanceof Error ? error.message : String(error) }))
    .finally(() => grpcSenders.close());
});

process.on('disconnect', () => process.exit(0));
send({ type: 'ready' });
