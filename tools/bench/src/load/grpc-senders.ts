import * as grpc from '@grpc/grpc-js';
import { durationToMs, inference, v1 } from '@aimass/proto';
import type { Answer, Sender } from './loops.js';
import type { ResponseCheck } from './protocol.js';

/** Large enough for the heavy model's [batch,128,768] float32 tensors. */
export const MAX_MESSAGE_BYTES = 256 * 1024 * 1024;

export interface GrpcSenders {
  readonly senders: readonly Sender[];
  close(): void;
}

export interface GrpcSendersOptions {
  readonly address: string;
  /** Full method path, e.g. `/aimass.v1.InferenceService/Predict`. */
  readonly method: string;
  readonly connections: number;
  readonly response: ResponseCheck;
  readonly metadata?: Readonly<Record<string, string>> | undefined;
}

const passThrough = (payload: Uint8Array): Buffer => Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);

/** What an answer was: `bad` when it is not a valid answer, else what it said (tallied). */
type Verdict = { readonly bad: true } | ({ readonly bad: false } & Answer);

const BAD: Verdict = { bad: true };
const OK: Verdict = { bad: false };

/** Decodes an answer as a real client would and checks it holds what was asked for. */
function answerChecker(check: ResponseCheck): (bytes: Buffer) => Verdict {
  switch (check.kind) {
    case 'model-infer':
      return (bytes) => (inference.ModelInferResponse.decode(bytes).outputs.length === check.outputs ? OK : BAD);
    case 'classify':
      return (bytes) => {
        const r = v1.ClassifyResponse.decode(bytes);
        return r.results.length === check.results && r.results.every((x) => x.probabilities.length >= 2) ? OK : BAD;
      };
    case 'predict':
      return (bytes) => {
        const p = v1.PredictResponse.decode(bytes).prediction;
        if (p === undefined || p.probabilities.length < 2 || p.provenance === undefined) return BAD;
        const fallback = p.provenance.fallbacks[0];
        const outcome =
          fallback === undefined
            ? `applied:${shortName(v1.FusionStrategy[p.provenance.appliedStrategy], 'FUSION_STRATEGY_')}`
            : `fallback:${shortName(v1.FallbackReason[fallback.reason], 'FALLBACK_REASON_')}`;
        const stages = p.provenance.timings.map((t) => [shortName(v1.Stage[t.stage], 'STAGE_'), t.duration ? durationToMs(t.duration) : 0] as const);
        return { bad: false, outcome, stages };
      };
    case 'score':
      return (bytes) => {
        const r = v1.ScoreResponse.decode(bytes);
        if (r.results.length !== check.results) return BAD;
        return { bad: false, outcome: `status:${shortName(v1.ScoreStatus[r.results[0]?.status ?? 0], 'SCORE_STATUS_')}` };
      };
  }
}

function shortName(name: string | undefined, prefix: string): string {
  return (name ?? 'UNKNOWN').replace(prefix, '');
}

function metadataOf(entries: Readonly<Record<string, string>> | undefined): grpc.Metadata {
  const metadata = new grpc.Metadata();
  for (const [key, value] of Object.entries(entries ?? {})) metadata.set(key, value);
  return metadata;
}

/**
 * One grpc-js client per connection, each with its own subchannel (grpc-js would otherwise
 * share one TCP connection between clients to the same address). Answers are decoded as a
 * real client would, and an answer without what was asked for counts as a failure, so a
 * contender cannot win by answering nothing.
 */
export function createGrpcSenders(options: GrpcSendersOptions): GrpcSenders {
  const clients: grpc.Client[] = [];
  for (let i = 0; i < Math.max(1, options.connections); i++) {
    clients.push(
      new grpc.Client(options.address, grpc.credentials.createInsecure(), {
        'grpc.use_local_subchannel_pool': 1,
        'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
        'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
      }),
    );
  }
  const check = answerChecker(options.response);
  const metadata = metadataOf(options.metadata);
  const senders = clients.map((client): Sender => (payload, deadline, done) => {
    client.makeUnaryRequest(options.method, passThrough, (bytes: Buffer) => bytes, payload, metadata.clone(), { deadline }, (error, response) => {
      if (error) {
        done(grpc.status[error.code] ?? `CODE_${error.code}`);
        return;
      }
      let verdict: Verdict;
      try {
        verdict = response === undefined ? BAD : check(response);
      } catch {
        verdict = BAD;
      }
      if (verdict.bad) done('BAD_RESPONSE');
      else done(null, verdict);
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
