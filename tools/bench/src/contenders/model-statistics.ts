import * as grpc from '@grpc/grpc-js';
import { inference } from '@aimass/proto';

/** Rows and batches a model has run so far (its ModelStatistics), summed over its loaded versions. */
export interface BatchingCounters {
  readonly rows: number;
  readonly batches: number;
  /**
   * Successful requests and their cumulative time in the server, and requests dispatched from the
   * queue (a request that then failed too) and their cumulative wait there; times in ns.
   */
  readonly requests?: { readonly count: number; readonly successNs: number; readonly queued: number; readonly queueNs: number };
  /** Cumulative time per batch stage, in ns: preparing inputs, the worker's run seen from the main thread, splitting outputs. */
  readonly stagesNs?: { readonly input: number; readonly infer: number; readonly output: number };
}

/** Where a request's time went over a run, from the service's own ModelStatistics. */
export interface ServiceStages {
  /** Mean time of a successful request in the server, from its arrival in the handler to its answer. */
  readonly request_ms: number;
  /** Mean wait of a request in the batcher's queue, over every request dispatched (failed ones too). */
  readonly queue_ms: number;
  /** Mean per batch: inputs concatenated, the run (handing the batch to a worker until its answer is read), outputs split. */
  readonly batch_input_ms: number;
  readonly batch_infer_ms: number;
  readonly batch_output_ms: number;
}

/** Reads a general-model service's batching through Triton's ModelStatistics. */
export class ModelStatisticsReader {
  readonly #client: inference.GRPCInferenceServiceClient;

  constructor(address: string, private readonly model: string) {
    this.#client = new inference.GRPCInferenceServiceClient(address, grpc.credentials.createInsecure());
  }

  counters(): Promise<BatchingCounters> {
    return new Promise((resolve, reject) => {
      this.#client.modelStatistics({ name: this.model, version: '' }, new grpc.Metadata(), { deadline: Date.now() + 10_000 }, (err, res) => {
        if (err) return reject(err);
        let rows = 0;
        let batches = 0;
        const requests = { count: 0, successNs: 0, queued: 0, queueNs: 0 };
        const stagesNs = { input: 0, infer: 0, output: 0 };
        for (const s of res?.modelStats ?? []) {
          rows += s.inferenceCount;
          batches += s.executionCount;
          const st = s.inferenceStats;
          if (!st) continue;
          requests.count += st.success?.count ?? 0;
          requests.successNs += st.success?.ns ?? 0;
          requests.queued += st.queue?.count ?? 0;
          requests.queueNs += st.queue?.ns ?? 0;
          stagesNs.input += st.computeInput?.ns ?? 0;
          stagesNs.infer += st.computeInfer?.ns ?? 0;
          stagesNs.output += st.computeOutput?.ns ?? 0;
        }
        resolve({ rows, batches, requests, stagesNs });
      });
    });
  }

  close(): void {
    this.#client.close();
  }
}

/** Mean rows per batch between two readings; NaN when no batch ran. */
export function meanBatchRows(before: BatchingCounters, after: BatchingCounters): number {
  const batches = after.batches - before.batches;
  return batches > 0 ? (after.rows - before.rows) / batches : Number.NaN;
}

/** Mean stage times between two readings; undefined when a reading lacks them or nothing ran. */
export function serviceStages(before: BatchingCounters, after: BatchingCounters): ServiceStages | undefined {
  if (!before.requests || !after.requests || !before.stagesNs || !after.stagesNs) return undefined;
  const requests = after.requests.count - before.requests.count;
  const queued = after.requests.queued - before.requests.queued;
  const batches = after.batches - before.batches;
  if (requests <= 0 || queued <= 0 || batches <= 0) return undefined;
  const ms = (ns: number, n: number) => Math.round((ns / n / 1e6) * 1000) / 1000;
  return {
    request_ms: ms(after.requests.successNs - before.requests.successNs, requests),
    queue_ms: ms(after.requests.queueNs - before.requests.queueNs, queued),
    batch_input_ms: ms(after.stagesNs.input - before.stagesNs.input, batches),
    batch_infer_ms: ms(after.stagesNs.infer - before.stagesNs.infer, batches),
    batch_output_ms: ms(after.stagesNs.output - before.stagesNs.output, batches),
  };
}
