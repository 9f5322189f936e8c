import { performance } from 'node:perf_hooks';
import * as ort from 'onnxruntime-node';

export interface RawBatchPoint {
  readonly batch: number;
  readonly runs: number;
  /** Median wall time of one session.run at this batch size. */
  readonly msPerRun: number;
  readonly rowsPerS: number;
}

export interface RawSessionOptions {
  readonly modelPath: string;
  readonly sessionOptions?: ort.InferenceSession.SessionOptions;
  /** Inputs for a batch of `batch` rows. */
  readonly feeds: (batch: number) => Record<string, ort.Tensor>;
  readonly batchSizes: readonly number[];
  /** Time spent measuring each batch size (at least `minRuns` runs are made). */
  readonly durationMs: number;
  readonly warmupRuns?: number;
  readonly minRuns?: number;
  readonly onBatch?: (point: RawBatchPoint) => void;
}

/**
 * onnxruntime in-process, no transport, no queue: session.run back to back at each batch size.
 * The best rows/s over the batch sizes is what the hardware gives this model; the median time
 * of one run at a batch size is what a batch costs.
 */
export async function measureRawSession(options: RawSessionOptions): Promise<RawBatchPoint[]> {
  const session = await ort.InferenceSession.create(options.modelPath, options.sessionOptions ?? {});
  try {
    const points: RawBatchPoint[] = [];
    for (const batch of options.batchSizes) {
      const feeds = options.feeds(batch);
      for (let i = 0; i < (options.warmupRuns ?? 2); i++) await session.run(feeds);
      const times: number[] = [];
      const start = performance.now();
      while (times.length < (options.minRuns ?? 3) || performance.now() - start < options.durationMs) {
        const t = performance.now();
        await session.run(feeds);
        times.push(performance.now() - t);
      }
      const elapsed = performance.now() - start;
      times.sort((a, b) => a - b);
      const point = { batch, runs: times.length, msPerRun: times[Math.floor(times.length / 2)] as number, rowsPerS: (batch * times.length * 1000) / elapsed };
      points.push(point);
      options.onBatch?.(point);
    }
    return points;
  } finally {
    await session.release();
  }
}

/** Batch sizes 1, 2, 4, ... up to and including `max`. */
export function powersOfTwoUpTo(max: number): number[] {
  const sizes: number[] = [];
  for (let b = 1; b < max; b *= 2) sizes.push(b);
  sizes.push(max);
  return sizes;
}
