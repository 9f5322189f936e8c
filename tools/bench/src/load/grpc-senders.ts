import * as grpc from '@grpc/grpc-js';
import { inference } from '@aimass/proto';
import type { Sender } from './loops.js';

/** Large enough for the heavy model's [batch,128,768] float32 tensors. */
export const MAX_MESSAGE_BYTES = 256 * 1024 * 1024;

export interface GrpcSenders {
  readonly senders: readonly Sender[];
  close(): void;
}

const passThrough = (payload: Uint8Array): Buffer => Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);

/**
 * One grpc-js client per connection, each with its own subchannel (grpc-js would otherwise
 * share one TCP connection between clients to the same address). Answers are decoded as a
 * real client would, and an answer without the expected outputs counts as a failure, so a
 * contender cannot win by answering nothing.
 */
export function createGrpcSenders(address: string, method: string, connections: number, expectedOutputs: number): GrpcSenders {
  const clients: grpc.Client[] = [];
  for (let i = 0; i < Math.max(1, connections); i++) {
    clients.push(
      new grpc.Client(address, grpc.credentials.createInsecure(), {
        'grpc.use_local_subchannel_pool': 1,
        'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
        'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
      }),
    );
  }
  const senders = clients.map((client): Sender => (payload, deadline, done) => {
    client.makeUnaryRequest(method, passThrough, (bytes: Buffer) => inference.ModelInferResponse.decode(bytes), payload, new grpc.Metadata(), { deadline }, (error, response) => {
      if (error) done(grpc.status[error.code] ?? `CODE_${error.code}`);
      else if (response === undefined || response.outputs.length !== expectedOutputs) done('BAD_RESPONSE');
      else done(null);
    });
  });
  return {
    senders,
    close: () => {
      for (const client of clients) client.close();
    },
  };
}

/** Waits until every connection is up, so connection setup is not part of a measurement. */
export async function waitForConnections(address: string, timeoutMs: number): Promise<void> {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  try {
    await new Promise<void>((resolve, reject) => client.waitForReady(Date.now() + timeoutMs, (error) => (error ? reject(error) : resolve())));
  } finally {
    client.close();
  }
}
