import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fusionConfigSchema } from '@aimass/fusion';
import { personalModelConfigSchema } from '@aimass/personal-model';
import { loadSpamAssassin } from '@aimass/train-general';
import { packageMainPath, startServiceProcess } from '../contenders/service-process.js';
import type { LoadGenerator } from '../load/load-generator.js';
import type { Progress } from '../progress.js';
import { goalChecks, type PersonalRecord, type StoreFigures } from '../report/personal-record.js';
import { environment, freeTcpPort, loadAverages, round, warnIfBusy } from './common.js';
import { DEFAULT_SERVED_NAME, prepareDefaultRepository } from './default-model.js';
import { fusionPartPlanMs, runFusionPart } from './personal/fusion-part.js';
import { classifyMails } from './personal/general-outputs.js';
import { personalFeatures, sampleMails } from './personal/mails.js';
import { BENCH_TENANT } from './personal/measure.js';
import { trainModelPool, type TrainingMail } from './personal/model-pool.js';
import { ensurePersonalStore } from './personal/store-builder.js';
import { runStorePart, STORE_KEY, storePartPlanMs } from './personal/store-part.js';
import { serviceEnvironment, writeBatchingConfig } from './service-config.js';

import type { PersonalPart } from './personal/parts.js';

export { PERSONAL_PARTS, type PersonalPart } from './personal/parts.js';

export interface PersonalSuiteOptions {
  readonly quick: boolean;
  /** Which parts to run: `fusion` (fused vs general-only) and `store` (the million-user store). */
  readonly parts: readonly PersonalPart[];
  /** Concurrency sweep of the fused vs general-only comparison; the largest is the headline. */
  readonly concurrency: readonly number[];
  /** General-only/fused pairs at the headline concurrency; the ratio is their median (default 3, quick 1). */
  readonly rounds: number | undefined;
  /** Measured seconds per sweep point (default 8, quick 1). */
  readonly durationS: number | undefined;
  /** HTTP/2 connections the load clients share at most. */
  readonly connections: number;
  /** general-model worker threads and onnxruntime intra-op threads per worker. */
  readonly workers: number;
  readonly intraOp: number;
  /** Users of the fusion part (default 2,000, quick 200). */
  readonly users: number | undefined;
  /** Share of users with a personal model. */
  readonly modelShare: number;
  /** Feedback examples per user with a model: Zipf over 1..examplesMax with exponent examplesS. */
  readonly examplesMax: number;
  readonly examplesS: number;
  /** Exponent of the Zipf traffic over users (both parts). */
  readonly zipfS: number;
  /** Users in the store part (default 1,000,000, quick 20,000). */
  readonly storeUsers: number | undefined;
  /** Trained models per example count in the store's pool (default 3, quick 1). */
  readonly poolVariants: number | undefined;
  /** Measured seconds of each store run (default 20, quick 2). */
  readonly storeDurationS: number | undefined;
  /** Concurrent Score clients of the store part. */
  readonly storeClients: number;
  /** Cold loads timed (default 2,000, quick 300). */
  readonly coldLoads: number | undefined;
  /** Where the trained default model and the built store are cached between runs. */
  readonly cacheDir: string;
  readonly progress: Progress;
  readonly load: LoadGenerator;
}

/** Mails sampled from the corpus: feedback and training draw from all of them, requests from the first REQUEST_MAILS. */
const SAMPLE_MAILS = 1500;
const REQUEST_MAILS = 512;
/** Inputs above this are left out of the sample (fusion's limit is 256 KiB; a few corpus mails are attachments). */
const MAX_MAIL_BYTES = 64 * 1024;

/** The suite's settings once --quick and the defaults are applied. */
export function personalSettings(o: Omit<PersonalSuiteOptions, 'progress' | 'load' | 'cacheDir'>) {
  return {
    users: o.users ?? (o.quick ? 200 : 2000),
    rounds: o.rounds ?? (o.quick ? 1 : 3),
    storeUsers: o.storeUsers ?? (o.quick ? 20_000 : 1_000_000),
    poolVariants: o.poolVariants ?? (o.quick ? 1 : 3),
    durationMs: (o.durationS ?? (o.quick ? 1 : 8)) * 1000,
    warmupMs: o.quick ? 500 : 2000,
    storeDurationMs: (o.storeDurationS ?? (o.quick ? 2 : 20)) * 1000,
    fillRoundMs: o.quick ? 1000 : 10_000,
    fillMaxMs: o.quick ? 1000 : 300_000,
    hotSetMax: o.quick ? 2000 : Number.POSITIVE_INFINITY,
    coldLoads: o.coldLoads ?? (o.quick ? 300 : 2000),
    // A quick run's store is small and rebuilt each time (it is seconds); a full one is kept.
    cacheStore: !o.quick,
  };
}

/**
 * The `personal` suite: fused Predict against general-only Classify (part A), and a million
 * users' models in the SQLite store under Zipf traffic (part B), on one machine in one run.
 */
export async function runPersonalSuite(options: PersonalSuiteOptions): Promise<PersonalRecord> {
  const { progress } = options;
  const s = personalSettings(options);
  const sweep = [...options.concurrency].sort((a, b) => a - b);
  const parts = new Set(options.parts);
  const feedback = { modelShare: options.modelShare, examplesMax: options.examplesMax, examplesS: options.examplesS };
  if (parts.has('fusion')) progress.plan(fusionPartPlanMs({ sweep, rounds: s.rounds, warmupMs: s.warmupMs, durationMs: s.durationMs }));
  if (parts.has('store')) progress.plan(storePartPlanMs({ fillRoundMs: s.fillRoundMs, warmupMs: s.warmupMs, durationMs: s.storeDurationMs, coldLoads: s.coldLoads }) + 5000);
  progress.plan(5000);
  warnIfBusy(progress);
  const loadBefore = loadAverages();
  const work = await mkdtemp(join(tmpdir(), 'aimass-bench-personal-'));
  let fusion: PersonalRecord['fusion'] = null;
  let store: StoreFigures | null = null;
  const setup: Record<string, unknown> = {};
  try {
    progress.step('preparing the general model and the mails', 0);
    const corpus = loadSpamAssassin();
    const repository = join(work, 'repository');
    const versionDir = await prepareDefaultRepository(repository, options.cacheDir, progress, corpus);
    // As the general suite serves it: batches up to 64, no queue delay.
    await writeBatchingConfig(join(repository, DEFAULT_SERVED_NAME, 'config.json'), { maxBatch: 64, queueDelayMs: 0 });
    const generalModel = createHash('sha256')
      .update(await readFile(join(versionDir, 'model.onnx')))
      .digest('hex');
    const mails = sampleMails(corpus, SAMPLE_MAILS, MAX_MAIL_BYTES);
    const requestMails = mails.slice(0, REQUEST_MAILS);

    progress.step('starting general-model', 5000);
    const generalPort = await freeTcpPort();
    const general = await startServiceProcess({
      mainPath: packageMainPath('@aimass/general-model'),
      port: generalPort,
      env: serviceEnvironment({ repository, model: DEFAULT_SERVED_NAME, port: generalPort, workers: options.workers, intraOp: options.intraOp }),
      ready: { kind: 'model', model: DEFAULT_SERVED_NAME },
      startTimeoutMs: 120_000,
    });
    let trainingMails: TrainingMail[] = [];
    try {
      if (parts.has('fusion')) {
        fusion = await runFusionPart({
          work,
          generalAddress: general.address,
          users: s.users,
          zipfS: options.zipfS,
          feedback,
          feedbackMails: mails,
          requestMails,
          sweep,
          rounds: s.rounds,
          connections: options.connections,
          warmupMs: s.warmupMs,
          durationMs: s.durationMs,
          load: options.load,
          progress,
        });
      }
      if (parts.has('store')) {
        progress.step(`store: the general model's outputs and the personal features of ${mails.length} mails`, 0);
        const outputs = await classifyMails(general.address, BENCH_TENANT, mails);
        const sparse = personalFeatures(mails);
        trainingMails = mails.map((mail, i) => ({ mail, general: outputs[i]!, sparse: sparse[i]! }));
      }
    } catch (error) {
      throw new Error(`${(error as Error).message}\n--- general-model log ---\n${general.logTail()}`, { cause: error });
    } finally {
      await general.close();
    }

    if (parts.has('store')) {
      progress.step(`store: training a pool of ${options.examplesMax * s.poolVariants} personal models (1..${options.examplesMax} examples × ${s.poolVariants})`, 0);
      const pool = await trainModelPool(trainingMails, { examplesMax: options.examplesMax, variants: s.poolVariants });
      progress.note(`pool trained in ${pool.trainSeconds.toFixed(1)} s`);
      progress.step(`store: ${s.storeUsers.toLocaleString('en-US')} users' models in SQLite (built once per parameters, then reused)`, 0);
      const built = await ensurePersonalStore(
        { users: s.storeUsers, key: STORE_KEY, examplesMax: options.examplesMax, examplesS: options.examplesS, generalModel },
        pool,
        { dir: s.cacheStore ? join(options.cacheDir, 'personal-store') : work, cache: s.cacheStore, onProgress: (line) => progress.note(line) },
      );
      if (!built.cached) progress.note(`built in ${built.buildSeconds.toFixed(0)} s (${Math.round(built.usersPerSecond)} users/s), ${(built.fileBytes / 1e9).toFixed(2)} GB`);
      const measured = await runStorePart({
        store: built,
        pool,
        examplesS: options.examplesS,
        zipfS: options.zipfS,
        requestMails: trainingMails.slice(0, REQUEST_MAILS),
        clients: options.storeClients,
        connections: options.connections,
        fillRoundMs: s.fillRoundMs,
        fillMaxMs: s.fillMaxMs,
        hotSetMax: s.hotSetMax,
        warmupMs: s.warmupMs,
        durationMs: s.storeDurationMs,
        coldLoads: s.coldLoads,
        load: options.load,
        progress,
      });
      store = {
        ...measured,
        store: {
          path: built.path,
          cached: built.cached,
          key: built.key,
          file_bytes: built.fileBytes,
          build_seconds: round(built.buildSeconds, 1),
          build_users_per_s: round(built.usersPerSecond, 0),
          pool_models: options.examplesMax * s.poolVariants,
          pool_train_seconds: round(pool.trainSeconds, 1),
          examples: { min: 1, max: options.examplesMax, zipf_s: options.examplesS, mean: round(built.examplesMean, 2), histogram: built.examplesHistogram },
          how:
            `one model per user (pointer + version 1, written by personal-model's PersonalModelStore, ~250 users per transaction), each a copy of one of ${options.examplesMax * s.poolVariants} real models ` +
            `trained by personal-model's runtime on corpus mails (1..${options.examplesMax} examples × ${s.poolVariants} users each), chosen per user by a Zipf(s=${options.examplesS}) example count`,
        },
        bytes_per_model: {
          parameters_mean: round(built.parameterBytesMean, 0),
          document_mean: round(built.documentBytesMean, 0),
          file_per_user: round(built.fileBytes / built.users, 0),
        },
      };
    }
    Object.assign(setup, {
      tenant: BENCH_TENANT,
      general_model: { process: 'services/general-model/dist/main.js', model: `${DEFAULT_SERVED_NAME} (tools/train-general, cached)`, workers: options.workers, intra_op_threads: options.intraOp, max_batch_size: 64, max_queue_delay_ms: 0 },
      // Nothing of either is configured but addresses and files: these are their defaults as built.
      personal_model: {
        process: 'fusion part: services/personal-model/dist/main.js; store part: the same service started by dist/contenders/personal-model-host.js (IPC for its cache counters)',
        defaults_used: personalModelConfigSchema.parse({}),
      },
      fusion: { process: 'services/fusion/dist/main.js, its own SQLite file; the addresses of both models set, the rest at these defaults', defaults_used: fusionConfigSchema.parse({}) },
      clients: `closed loop from a separate load process, ${options.connections} HTTP/2 connections at most, ${s.durationMs / 1000} s measured after ${s.warmupMs / 1000} s warm-up per point; store runs ${s.storeDurationMs / 1000} s after ${s.warmupMs / 1000} s warm-up, once Zipf traffic has filled the cache (rounds of ${s.fillRoundMs / 1000} s, at most ${s.fillMaxMs / 1000} s)`,
      deadline_ms: 30_000,
    });
  } finally {
    await rm(work, { recursive: true, force: true });
  }

  // The median pair's ratio (rounded per pair, as reported in fusion.rounds).
  const ratio = fusion === null ? null : (fusion.rounds[fusion.median_round - 1]?.ratio ?? null);
  const coldP99 = store === null ? null : store.cold_load.p99_ms;
  return {
    suite: 'personal',
    fused_vs_general_throughput: ratio,
    cache_hit_ratio: store === null ? null : store.zipf.cache_hit_ratio,
    cold_load_p99_ms: coldP99,
    bytes_per_model: store === null ? null : store.bytes_per_model.document_mean,
    goals: goalChecks(ratio, coldP99),
    fusion,
    store,
    setup,
    environment: { ...environment(options.quick), load_average_before: loadBefore, load_average_after: loadAverages() },
  };
}
