import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildBenchmarkRepository } from '@aimass/ml';
import { DEFAULT_FLOW_CONTROL_WINDOWS } from '@aimass/platform';
import { startEchoServer } from '../contenders/echo-server.js';
import type { RunningServer } from '../contenders/grpc-host.js';
import { ModelStatisticsReader, meanBatchRows, serviceStages, type ServiceStages } from '../contenders/model-statistics.js';
import { startNaiveServer } from '../contenders/naive-server.js';
import { measureRawSession, powersOfTwoUpTo, type RawBatchPoint } from '../contenders/raw-onnx.js';
import { serviceMainPath, startServiceProcess, type ServiceProcess } from '../contenders/service-process.js';
import type { LoadGenerator } from '../load/load-generator.js';
import { MODEL_INFER_METHOD, type LoadMode, type LoadResult, type LoadSpec } from '../load/protocol.js';
import type { Progress } from '../progress.js';
import { goalRatioOf, type BenchRecord, type GeneralRound, type LimitKind, type ModelName, type SweepPoint } from '../report/record.js';
import { environment, freeTcpPort, loadAverages, lowerMedianBy, round, sweepPoint, warnIfBusy } from './common.js';
import { prepareDefaultWorkload } from './default-model.js';
import { serviceEnvironment, writeBatchingConfig } from './service-config.js';
import { makeWorkload, randomFloatRows, randomTokenRows, type Workload } from './workload.js';

export interface GeneralSuiteOptions {
  readonly models: readonly ModelName[];
  readonly quick: boolean;
  readonly heavyBlocks: number;
  /** What a heavy row is: token ids the model embeds (default) or float32 embeddings. */
  readonly heavyInput?: 'token_ids' | 'embeddings' | undefined;
  /** Concurrency sweep; the largest is the headline figure. */
  readonly concurrency: readonly number[];
  /** Measured seconds per point (default 8, quick 1). */
  readonly durationS: number | undefined;
  /** Service worker threads and onnxruntime intra-op threads per worker. */
  readonly workers: number;
  readonly intraOp: number;
  /** HTTP/2 connections the clients share at most. */
  readonly connections: number;
  /**
   * Rounds at the headline concurrency (the sweep's is the first): the limit, the naive server and
   * the service measured back to back in each; the ratios are the median round's (by the goal's
   * ratio). Default 3, quick 1.
   */
  readonly rounds?: number | undefined;
  /** Override every model's service batching (max_batch_size, max_queue_delay). */
  readonly maxBatch?: number | undefined;
  readonly queueDelayMs?: number | undefined;
  /** Where the trained default model is cached between runs. */
  readonly cacheDir: string;
  readonly progress: Progress;
  readonly load: LoadGenerator;
}

/** How each model is served and judged. */
interface ModelPlan {
  readonly limit: LimitKind;
  readonly goal: { readonly against: 'limit' | 'naive'; readonly factor: number };
  /** Service batching: the model's config.json in the repository. */
  readonly maxBatch: number;
  readonly queueDelayMs: number;
  /** Largest batch the in-process sweep tries. */
  readonly rawMaxBatch: number;
}

const PLANS: Readonly<Record<ModelName, ModelPlan>> = {
  // No queue delay anywhere: while the workers are busy the queue fills and batches grow by
// themselves; a delay only adds latency at low load (2 ms cut the 1-client rate to a third and
// gained nothing at 64 clients here). --queue-delay-ms overrides it.
// Tiny compute: the transport is the limit. 16 is the model's own max_batch_size (train-general's
// default): per row, batches past 16 cost more (the bag's [batch, 2048, 64] gather spills the cache).
  default: { limit: 'echo', goal: { against: 'limit', factor: 0.7 }, maxBatch: 16, queueDelayMs: 0, rawMaxBatch: 256 },
  // Batching turns 64 matrix-vector products into one matrix product.
  medium: { limit: 'onnxruntime', goal: { against: 'naive', factor: 3 }, maxBatch: 64, queueDelayMs: 0, rawMaxBatch: 128 },
  // Each row is already 128 positions of matrix products: small batches keep the cores busy,
  // larger ones only add latency (in-process, rows/s fell slightly from batch 2 to 16).
  heavy: { limit: 'onnxruntime', goal: { against: 'limit', factor: 0.9 }, maxBatch: 4, queueDelayMs: 0, rawMaxBatch: 16 },
};

const DEADLINE_MS = 120_000;

/** One round's rows/s at the headline concurrency, before rounding. */
export interface RoundRows {
  readonly limitRowsPerS: number;
  readonly serviceRowsPerS: number;
  readonly naiveRowsPerS: number;
}

/**
 * The rounds' figures and the round whose ratio against the goal's contender (`limit` or `naive`)
 * is the median. A ratio whose contender answered nothing (0 or unmeasured rows/s) is 0, the
 * lowest: a broken contender must not make the service look fast.
 */
export function medianGeneralRound(rows: readonly RoundRows[], against: 'limit' | 'naive'): { rounds: GeneralRound[]; median: GeneralRound } {
  const rounds = rows.map((r, i) => ({
    round: i + 1,
    limit_rows_per_s: round(r.limitRowsPerS, 1),
    service_rows_per_s: round(r.serviceRowsPerS, 1),
    naive_rows_per_s: round(r.naiveRowsPerS, 1),
    ratio_vs_limit: ratio(r.serviceRowsPerS, r.limitRowsPerS),
    ratio_vs_naive: ratio(r.serviceRowsPerS, r.naiveRowsPerS),
  }));
  return { rounds, median: lowerMedianBy(rounds, (r) => goalRatioOf(r, against)) };
}

function ratio(service: number, other: number): number {
  return other > 0 && Number.isFinite(service) ? round(service / other, 3) : 0;
}

/** The general suite: every selected model against its limit and the naive server, one at a time. */
export async function runGeneralSuite(options: GeneralSuiteOptions): Promise<BenchRecord[]> {
  const { progress } = options;
  const durationMs = (options.durationS ?? (options.quick ? 1 : 8)) * 1000;
  const warmupMs = options.quick ? 500 : 2000;
  const pointMs = durationMs + warmupMs;
  // The limit is the best of several batch sizes, so each is measured long enough that the best is
  // not just the luckiest second (1 s per size moved the heavy limit by ±7 % between runs).
  const rawMs = options.quick ? 250 : 2500;
  const sweep = [...options.concurrency];
  const headline = Math.max(...sweep);
  const roundCount = options.rounds ?? (options.quick ? 1 : 3);

  const planOf = (model: ModelName): ModelPlan => ({
    ...PLANS[model],
    ...(options.maxBatch === undefined ? {} : { maxBatch: options.maxBatch }),
    ...(options.queueDelayMs === undefined ? {} : { queueDelayMs: options.queueDelayMs }),
  });
  for (const model of options.models) {
    const plan = planOf(model);
    const contenders = model === 'default' ? 3 : 2;
    progress.plan(contenders * (sweep.length + roundCount - 1) * pointMs + 2 * pointMs + 5000);
    if (plan.limit === 'onnxruntime') progress.plan(roundCount * rawMs);
    progress.plan(model === 'default' ? 1000 : powersOfTwoUpTo(plan.rawMaxBatch).length * rawMs + 1000);
  }

  warnIfBusy(progress);
  const work = await mkdtemp(join(tmpdir(), 'aimass-bench-'));
  const records: BenchRecord[] = [];
  try {
    for (const model of options.models) {
      const plan = planOf(model);
      // Other work on the machine skews every figure; the report keeps what the load was (the
      // 1-minute figure includes the bench's own previous model).
      const loadBefore = loadAverages();
      progress.step(`${model}: preparing the model and requests`, 0);
      const repository = join(work, `repo-${model}`);
      const workload = await prepare(model, repository, options);
      await writeBatchingConfig(join(repository, workload.servedName, 'config.json'), plan);
      progress.note(`${model}: ${workload.description}; outputs ${workload.outputs.map((o) => `${o.name} ${o.datatype}[batch,${o.rowShape.join(',')}]`).join(', ')}`);

      const base = {
        method: MODEL_INFER_METHOD,
        payloads: workload.payloads,
        rowsPerRequest: 1,
        expectedOutputs: workload.outputs.length,
        deadlineMs: DEADLINE_MS,
        warmupMs,
        durationMs,
      };
      type Measured = LoadResult & { serverCpuCores: number; meanBatchRows?: number; stages?: ServiceStages };
      // `batching`: the service's own ModelStatistics, read around the run (warm-up included).
      const measure = async (label: string, server: RunningServer, mode: LoadMode, batching?: ModelStatisticsReader): Promise<Measured> => {
        progress.step(label, pointMs);
        const connections = mode.kind === 'closed' ? Math.min(mode.concurrency, options.connections) : options.connections;
        const spec: LoadSpec = { ...base, address: server.address, connections, mode };
        const batchesBefore = await batching?.counters();
        const cpuBefore = server.cpuSeconds();
        const wallBefore = performance.now();
        const result = await options.load.run(spec);
        const serverCpuCores = (server.cpuSeconds() - cpuBefore) / ((performance.now() - wallBefore) / 1000);
        const batchesAfter = await batching?.counters();
        const rowsPerBatch = batchesBefore && batchesAfter ? meanBatchRows(batchesBefore, batchesAfter) : undefined;
        const errors = result.errorCount > 0 ? `, errors ${JSON.stringify(result.errors)}` : '';
        const cpu = Number.isFinite(serverCpuCores) ? `, server ${serverCpuCores.toFixed(2)} cores (${Math.round((serverCpuCores * 1e6) / result.rowsPerS)} µs/row)` : '';
        const stages = batchesBefore && batchesAfter ? serviceStages(batchesBefore, batchesAfter) : undefined;
        const batched =
          (rowsPerBatch === undefined ? '' : `, ${rowsPerBatch.toFixed(2)} rows per batch`) +
          (stages === undefined ? '' : `; in the service: request ${stages.request_ms} ms, queued ${stages.queue_ms} ms, per batch input ${stages.batch_input_ms} ms, run ${stages.batch_infer_ms} ms, output ${stages.batch_output_ms} ms`);
        progress.note(`${Math.round(result.rowsPerS)} rows/s, p50 ${result.latencyMs.p50.toFixed(2)} ms, p99 ${result.latencyMs.p99.toFixed(2)} ms, load process ${result.clientCpuCores.toFixed(2)} cores${cpu}${batched}${errors}`);
        return { ...result, serverCpuCores, ...(rowsPerBatch === undefined ? {} : { meanBatchRows: rowsPerBatch }), ...(stages === undefined ? {} : { stages }) };
      };
      const closedSweep = async (who: string, server: RunningServer, batching?: ModelStatisticsReader): Promise<SweepPoint[]> => {
        const points: SweepPoint[] = [];
        for (const c of sweep) {
          const r = await measure(`${model}: ${who}, ${c} clients`, server, { kind: 'closed', concurrency: c }, batching);
          const point = sweepPoint(c, r, r.serverCpuCores);
          const batched = r.meanBatchRows === undefined || !Number.isFinite(r.meanBatchRows) ? point : { ...point, mean_batch_rows: round(r.meanBatchRows, 2) };
          points.push(r.stages === undefined ? batched : { ...batched, service_stages: r.stages });
        }
        return points;
      };

      // The limit, and the cost of one batch at the service's max batch size.
      let rawBatches: RawBatchPoint[] = [];
      if (plan.limit === 'onnxruntime') {
        const sizes = powersOfTwoUpTo(plan.rawMaxBatch);
        progress.step(`${model}: onnxruntime in-process, batch ${sizes.join(', ')}`, sizes.length * rawMs);
        rawBatches = await measureRawSession({ modelPath: workload.modelPath, feeds: workload.feeds, batchSizes: sizes, durationMs: rawMs });
        progress.note(rawBatches.map((p) => `batch ${p.batch}: ${Math.round(p.rowsPerS)} rows/s`).join(', '));
      }
      progress.step(`${model}: one batch of ${plan.maxBatch} with the service's session settings`, 1000);
      const [batchRun] = await measureRawSession({
        modelPath: workload.modelPath,
        sessionOptions: { intraOpNumThreads: options.intraOp },
        feeds: workload.feeds,
        batchSizes: [plan.maxBatch],
        durationMs: options.quick ? 300 : 1000,
        minRuns: 5,
      });
      const batchRunMs = batchRun?.msPerRun ?? Number.NaN;
      const bestRaw = rawBatches.reduce<RawBatchPoint | undefined>((best, p) => (best === undefined || p.rowsPerS > best.rowsPerS ? p : best), undefined);
      // Each round measures the sweep's best batch size afresh. The sweep's own figure for it is
      // the largest of several noisy ones, so it over-states that size's rate (heavy on a 2-core
      // VM: round 1 used it and was 2-13 % above what rounds 2 and 3 measured of the same size).
      const rawRound = async (label: string): Promise<number> => {
        progress.step(`${model}: onnxruntime in-process, batch ${bestRaw?.batch ?? '-'}, ${label}`, rawMs);
        const [raw] = bestRaw ? await measureRawSession({ modelPath: workload.modelPath, feeds: workload.feeds, batchSizes: [bestRaw.batch], durationMs: rawMs }) : [];
        const rows = raw?.rowsPerS ?? Number.NaN;
        progress.note(`${Math.round(rows)} rows/s`);
        return rows;
      };
      const firstRaw = plan.limit === 'onnxruntime' ? await rawRound(`round 1 of ${roundCount}`) : Number.NaN;

      // Every contender stays up until the rounds are done; an idle one costs nothing.
      let echo: RunningServer | undefined;
      let naive: RunningServer | undefined;
      let service: ServiceProcess | undefined;
      let batching: ModelStatisticsReader | undefined;
      let echoSweep: SweepPoint[] | undefined;
      let naiveSweep: SweepPoint[];
      let serviceSweep: SweepPoint[];
      let halfLoad: LoadResult & { stages?: ServiceStages };
      let halfRate: number;
      let echoHalf: LoadResult;
      const later: RoundRows[] = [];
      try {
        if (plan.limit === 'echo') {
          echo = await startEchoServer({ outputs: workload.outputs });
          echoSweep = await closedSweep('echo server', echo);
        }
        naive = await startNaiveServer({ modelPath: workload.modelPath });
        naiveSweep = await closedSweep('naive server', naive);

        progress.step(`${model}: starting the service`, 5000);
        const port = await freeTcpPort();
        service = await startServiceProcess({
          mainPath: serviceMainPath(),
          port,
          env: serviceEnvironment({ repository, model: workload.servedName, port, workers: options.workers, intraOp: options.intraOp }),
          ready: { kind: 'model', model: workload.servedName },
          startTimeoutMs: 120_000,
        });
        batching = new ModelStatisticsReader(service.address, workload.servedName);
        const running = service;
        const serviceLog = async <T>(fn: () => Promise<T>): Promise<T> => {
          try {
            return await fn();
          } catch (error) {
            throw new Error(`${(error as Error).message}\n--- service log ---\n${running.logTail()}`, { cause: error });
          }
        };
        serviceSweep = await serviceLog(() => closedSweep('service', running, batching));
        const peak = Math.max(...serviceSweep.map((p) => p.rows_per_s));
        halfRate = peak / 2;
        halfLoad = await serviceLog(() => measure(`${model}: service at half load, ${Math.round(halfRate)} rows/s open loop`, running, { kind: 'open', ratePerS: halfRate, maxOutstanding: 100_000 }, batching));

        // The same open loop against the echo server: how much of the half-load latency the
        // client and the transport on this machine cost by themselves.
        const echoRef = echo ?? (await startEchoServer({ outputs: workload.outputs }));
        try {
          echoHalf = await measure(`${model}: echo server at the same ${Math.round(halfRate)} rows/s (transport reference)`, echoRef, {
            kind: 'open',
            ratePerS: halfRate,
            maxOutstanding: 100_000,
          });
        } finally {
          if (echoRef !== echo) await echoRef.close();
        }

        const closed = { kind: 'closed', concurrency: headline } as const;
        for (let n = 2; n <= roundCount; n++) {
          const of = `${headline} clients, round ${n} of ${roundCount}`;
          let limitRows: number;
          if (echo) {
            limitRows = (await measure(`${model}: echo server, ${of}`, echo, closed)).rowsPerS;
          } else {
            limitRows = await rawRound(`round ${n} of ${roundCount}`);
          }
          const naiveRows = (await measure(`${model}: naive server, ${of}`, naive, closed)).rowsPerS;
          const serviceRows = (await serviceLog(() => measure(`${model}: service, ${of}`, running, closed, batching))).rowsPerS;
          later.push({ limitRowsPerS: limitRows, serviceRowsPerS: serviceRows, naiveRowsPerS: naiveRows });
        }
      } finally {
        batching?.close();
        await service?.close();
        await naive?.close();
        await echo?.close();
      }

      const at = (points: readonly SweepPoint[] | undefined): number => points?.find((p) => p.concurrency === headline)?.rows_per_s ?? Number.NaN;
      const first: RoundRows = {
        limitRowsPerS: plan.limit === 'echo' ? at(echoSweep) : firstRaw,
        serviceRowsPerS: at(serviceSweep),
        naiveRowsPerS: at(naiveSweep),
      };
      const { rounds, median } = medianGeneralRound([first, ...later], plan.goal.against);
      const serviceRows = median.service_rows_per_s;
      const naiveRows = median.naive_rows_per_s;
      const limitRows = median.limit_rows_per_s;
      const ratioVsLimit = median.ratio_vs_limit;
      const ratioVsNaive = median.ratio_vs_naive;
      if (rounds.length > 1) {
        progress.note(`${model}: service/${plan.goal.against} per round: ${rounds.map((r) => goalRatioOf(r, plan.goal.against).toFixed(3)).join(', ')}; median round ${median.round}`);
      }
      const bound = plan.queueDelayMs + 2 * batchRunMs;
      const goalRatio = goalRatioOf(median, plan.goal.against);
      const goalName = plan.goal.against === 'limit' ? (plan.limit === 'echo' ? 'echo' : 'onnxruntime') : 'naive';
      records.push({
        model,
        limit_kind: plan.limit,
        limit_rows_per_s: limitRows,
        service_rows_per_s: serviceRows,
        naive_rows_per_s: naiveRows,
        ratio_vs_limit: ratioVsLimit,
        ratio_vs_naive: ratioVsNaive,
        p50_ms: round(halfLoad.latencyMs.p50, 3),
        p99_ms_half_load: round(halfLoad.latencyMs.p99, 3),
        goal: `service >= ${plan.goal.factor} x ${goalName}`,
        goal_against: plan.goal.against,
        goal_met: goalRatio >= plan.goal.factor,
        p99_bound_ms: round(bound, 3),
        p99_bound_met: halfLoad.latencyMs.p99 <= bound && halfLoad.errorCount === 0,
        queue_delay_ms: plan.queueDelayMs,
        max_batch_size: plan.maxBatch,
        batch_run_ms: round(batchRunMs, 3),
        half_load_rows_per_s: round(halfRate, 1),
        half_load_errors: halfLoad.errorCount,
        echo_p50_ms_half_load: round(echoHalf.latencyMs.p50, 3),
        echo_p99_ms_half_load: round(echoHalf.latencyMs.p99, 3),
        ...(halfLoad.stages ? { service_stages_half_load: halfLoad.stages } : {}),
        service_peak_rows_per_s: round(Math.max(...serviceSweep.map((p) => p.rows_per_s)), 1),
        headline_concurrency: headline,
        flops_per_row: workload.flopsPerRow,
        request: workload.description,
        setup: {
          service: { workers: options.workers, intra_op_threads: options.intraOp, max_batch_size: plan.maxBatch, max_queue_delay_ms: plan.queueDelayMs },
          naive: "one onnxruntime session with default options, session.run per request on the main thread; grpc-js's default 64 KiB HTTP/2 windows",
          http2_windows: `service${plan.limit === 'echo' ? ' and echo' : ''}: ${DEFAULT_FLOW_CONTROL_WINDOWS.streamBytes} B per stream, ${DEFAULT_FLOW_CONTROL_WINDOWS.connectionBytes} B per connection (the platform's defaults)`,
          onnxruntime_limit:
            plan.limit === 'onnxruntime' ? "one session with default options, session.run back to back; the sweep's best batch size (raw_batches), measured again in each round" : null,
          batch_run: `median session.run at batch ${plan.maxBatch}, intra-op threads ${options.intraOp}`,
          clients: `closed loop, ${options.connections} HTTP/2 connections at most, ${durationMs / 1000} s measured after ${warmupMs / 1000} s warm-up per point`,
          rounds: `${roundCount} at ${headline} clients (the sweep's is the first), limit, naive and service back to back in each; the headline rows/s and ratios are the round with the median ${plan.goal.against === 'limit' ? 'service/limit' : 'service/naive'} ratio`,
        },
        sweep: { service: serviceSweep, naive: naiveSweep, ...(echoSweep ? { echo: echoSweep } : {}) },
        rounds,
        median_round: median.round,
        raw_batches: rawBatches.map((p) => ({ batch: p.batch, ms_per_run: round(p.msPerRun, 3), rows_per_s: round(p.rowsPerS, 1) })),
        environment: { ...environment(options.quick), load_average_before: loadBefore, load_average_after: loadAverages() },
      });
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return records;
}

async function prepare(model: ModelName, repository: string, options: GeneralSuiteOptions): Promise<Workload> {
  if (model === 'default') return prepareDefaultWorkload(repository, options.cacheDir, options.progress);
  const heavyInput = options.heavyInput ?? 'token_ids';
  const [entry] = await buildBenchmarkRepository(repository, { include: [model], heavyBlocks: options.heavyBlocks, heavy: { input: heavyInput } });
  if (entry === undefined) throw new Error(`buildBenchmarkRepository wrote no ${model} model`);
  const rowShape = entry.inputDims.slice(1).map(Number);
  const count = model === 'heavy' ? 16 : 64;
  const gflop = `${(entry.flopsPerRow / 1e9).toFixed(3)} GFLOP/row`;
  if (model === 'heavy' && heavyInput === 'token_ids') {
    const vocab = Number(entry.spec['vocab']);
    return makeWorkload({
      model,
      modelPath: entry.path,
      servedName: model,
      input: { name: entry.inputName, datatype: 'INT64', rowShape },
      rows: randomTokenRows(count, rowShape, vocab, 2),
      flopsPerRow: entry.flopsPerRow,
      description: `${count} distinct int64 [1,${rowShape.join(',')}] rows of uniform random token ids below ${vocab} (fixed seed), ${gflop}`,
    });
  }
  return makeWorkload({
    model,
    modelPath: entry.path,
    servedName: model,
    input: { name: entry.inputName, datatype: 'FP32', rowShape },
    rows: randomFloatRows(count, rowShape, model === 'heavy' ? 2 : 1),
    flopsPerRow: entry.flopsPerRow,
    description: `${count} distinct random float32 [1,${rowShape.join(',')}] rows (N(0,1), fixed seed), ${gflop}`,
  });
}
