/** A cumulative count and duration (Triton's StatisticDuration), in nanoseconds. */
export interface DurationStat {
  count: number;
  ns: number;
}

export interface BatchSizeStats {
  batchSize: number;
  computeInput: DurationStat;
  computeInfer: DurationStat;
  computeOutput: DurationStat;
}

/** What a model version did since it was loaded (Triton's ModelStatistics, without name and version). */
export interface ModelStatisticsSnapshot {
  /** Epoch ms of the last request answered (success or failure); 0 before any. */
  lastInferenceMs: number;
  /** Rows of successful requests. */
  inferenceCount: number;
  /** Batches run successfully. */
  executionCount: number;
  success: DurationStat;
  fail: DurationStat;
  queue: DurationStat;
  computeInput: DurationStat;
  computeInfer: DurationStat;
  computeOutput: DurationStat;
  /** Ascending batch size. */
  batches: BatchSizeStats[];
}

const NS_PER_MS = 1e6;

const zero = (): DurationStat => ({ count: 0, ns: 0 });

function add(stat: DurationStat, ms: number): void {
  stat.count += 1;
  // A clock that went backwards (it cannot with performance.now, but a test clock may) adds nothing.
  stat.ns += Math.max(0, Math.round(ms * NS_PER_MS));
}

/**
 * Cumulative statistics of one model version: requests (success, failure, time in the server and
 * in the queue) and executions (per batch size: preparing inputs, running, splitting outputs), the
 * figures Triton's statistics extension reports. Durations are taken in milliseconds (what
 * `performance.now` gives) and kept in nanoseconds, as the protocol reports them.
 */
export class ModelStatisticsRecorder {
  #lastInferenceMs = 0;
  #inferenceCount = 0;
  #executionCount = 0;
  readonly #success = zero();
  readonly #fail = zero();
  readonly #queue = zero();
  readonly #computeInput = zero();
  readonly #computeInfer = zero();
  readonly #computeOutput = zero();
  readonly #batches = new Map<number, BatchSizeStats>();

  constructor(private readonly now: () => number = Date.now) {}

  /** A request answered: `rows` counts only when it succeeded. */
  request(outcome: 'success' | 'fail', rows: number, elapsedMs: number): void {
    this.#lastInferenceMs = this.now();
    if (outcome === 'success') {
      add(this.#success, elapsedMs);
      this.#inferenceCount += rows;
    } else {
      add(this.#fail, elapsedMs);
    }
  }

  /** A request's wait in the queue until its batch was dispatched. */
  queued(waitedMs: number): void {
    add(this.#queue, waitedMs);
  }

  /** A batch of `rows` rows run successfully, with the time of each of its three stages. */
  execution(rows: number, stages: { inputMs: number; inferMs: number; outputMs: number }): void {
    this.#executionCount += 1;
    add(this.#computeInput, stages.inputMs);
    add(this.#computeInfer, stages.inferMs);
    add(this.#computeOutput, stages.outputMs);
    let batch = this.#batches.get(rows);
    if (!batch) {
      batch = { batchSize: rows, computeInput: zero(), computeInfer: zero(), computeOutput: zero() };
      this.#batches.set(rows, batch);
    }
    add(batch.computeInput, stages.inputMs);
    add(batch.computeInfer, stages.inferMs);
    add(batch.computeOutput, stages.outputMs);
  }

  snapshot(): ModelStatisticsSnapshot {
    const copy = (s: DurationStat): DurationStat => ({ count: s.count, ns: s.ns });
    return {
      lastInferenceMs: this.#lastInferenceMs,
      inferenceCount: this.#inferenceCount,
      executionCount: this.#executionCount,
      success: copy(this.#success),
      fail: copy(this.#fail),
      queue: copy(this.#queue),
      computeInput: copy(this.#computeInput),
      computeInfer: copy(this.#computeInfer),
      computeOutput: copy(this.#computeOutput),
      batches: [...this.#batches.values()]
        .sort((a, b) => a.batchSize - b.batchSize)
        .map((b) => ({ batchSize: b.batchSize, computeInput: copy(b.computeInput), computeInfer: copy(b.computeInfer), computeOutput: copy(b.computeOutput) })),
    };
  }
}
