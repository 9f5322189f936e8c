import * as grpc from '@grpc/grpc-js';
import { inference } from '@aimass/proto';

/** Rows and batches a model has run so far (its ModelStatistics), summed over its loaded versions. */
export interface BatchingCounters {
  readonly rows: number;
  readonly batches: number;
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
        for (const s of res?.modelStats ?? []) {
          rows += s.inferenceCount;
          batches += s.executionCount;
        }
        resolve({ rows, batches });
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
