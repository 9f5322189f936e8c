import { createHash } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  FASTTEXT_ONNX,
  exportFastTextOnnx,
  trainTextModel,
  writeModelVersion,
  type BinaryMetrics,
  type FastTextModel,
  type TextModelProgress,
  type TokenizerConfig,
} from '@aimass/ml';
import { loadSpamAssassin, type Corpus } from './corpus.js';

export interface TrainGeneralOptions {
  /** Model repository root (Triton layout). */
  repository: string;
  model?: string;
  /** A version number, or 'auto' for one more than the highest present. */
  version?: number | 'auto';
  seed?: number;
  dim?: number;
  epochs?: number;
  learningRate?: number;
  bucketBits?: number;
  maxFeatures?: number;
  /** Train on a hash-chosen subset of this many mails (quick runs, tests). */
  limit?: number;
  /** Written into config.json when the model has no configuration yet. */
  maxBatchSize?: number;
  /** Refuse to write the version when the held-out accuracy is below this. */
  minAccuracy?: number;
  /** Defaults to the SpamAssassin corpus from npm. */
  corpus?: Corpus;
  onProgress?: (progress: TrainGeneralProgress) => void;
  signal?: AbortSignal;
}

export type TrainGeneralProgress =
  | { phase: 'load'; mails: number; elapsedMs: number }
  | TextModelProgress
  | { phase: 'export'; bytes: number; elapsedMs: number }
  | { phase: 'write'; path: string };

export interface TrainGeneralResult {
  model: string;
  version: number;
  /** Path of the written model.onnx. */
  path: string;
  metadata: GeneralModelMetadata;
  /** The trained model in memory (what model.onnx computes). */
  trained: FastTextModel;
}

/** metadata.json beside model.onnx: what the model is, what it was trained on, how well it does. */
export interface GeneralModelMetadata {
  model: string;
  version: number;
  architecture: 'fasttext-embedding-bag';
  labels: readonly string[];
  positiveLabel: string;
  inputs: { name: string; datatype: 'INT64'; shape: number[]; padding: 0 }[];
  outputs: { name: string; datatype: 'FP32'; shape: number[] }[];
  tokenizer: TokenizerConfig;
  data: { source: string; hash: string; examples: number; groups: Record<string, number>; train: number; heldOut: number; heldOutFraction: number };
  training: {
    seed: number;
    dim: number;
    epochs: number;
    learningRate: number;
    optimizer: 'sgd' | 'adagrad';
    combiner: 'mean' | 'sqrtn';
    featurizeMs: number;
    trainMs: number;
    evaluateMs: number;
    totalMs: number;
  };
  metrics: { heldOut: BinaryMetrics };
  onnx: { sha256: string; bytes: number };
  trainedAt: string;
}

export class QualityGateError extends Error {
  override name = 'QualityGateError';
}

/**
 * Loads the corpus, trains the default general model, exports it to ONNX and writes
 * `<repository>/<model>/<version>/{model.onnx,metadata.json}` (and `<model>/config.json` when the
 * model has no configuration yet).
 */
export async function trainGeneral(options: TrainGeneralOptions): Promise<TrainGeneralResult> {
  const started = performance.now();
  const modelName = options.model ?? 'general';
  const corpus = options.corpus ?? loadSpamAssassin({ limit: options.limit });
  options.onProgress?.({ phase: 'load', mails: corpus.items.length, elapsedMs: performance.now() - started });

  const tokenizer: Partial<TokenizerConfig> = {};
  if (options.bucketBits !== undefined) tokenizer.bucketBits = options.bucketBits;
  if (options.maxFeatures !== undefined) {
    tokenizer.maxFeatures = options.maxFeatures;
    tokenizer.maxHeaderFeatures = Math.min(512, Math.floor(options.maxFeatures / 4));
  }
  const result = await trainTextModel(corpus.items, {
    seed: options.seed,
    dim: options.dim,
    epochs: options.epochs,
    learningRate: options.learningRate,
    tokenizer,
    onProgress: options.onProgress,
    signal: options.signal,
  });
  if (options.minAccuracy !== undefined && !(result.metrics.accuracy >= options.minAccuracy)) {
    throw new QualityGateError(
      `held-out accuracy ${result.metrics.accuracy.toFixed(4)} is below --min-accuracy ${options.minAccuracy}; nothing written`,
    );
  }

  const version = options.version === undefined || options.version === 'auto' ? await nextVersion(options.repository, modelName) : options.version;
  const exportStart = performance.now();
  const bytes = exportFastTextOnnx(result.model, {
    tokenizer: result.tokenizer,
    modelName,
    modelVersion: version,
    dataHash: corpus.dataHash,
    metadata: { seed: String(result.options.seed) },
  });
  options.onProgress?.({ phase: 'export', bytes: bytes.length, elapsedMs: performance.now() - exportStart });

  const { model } = result;
  const width = result.tokenizer.maxFeatures;
  const metadata: GeneralModelMetadata = {
    model: modelName,
    version,
    architecture: 'fasttext-embedding-bag',
    labels: model.labels,
    positiveLabel: model.labels[model.labels.length - 1]!,
    inputs: [{ name: FASTTEXT_ONNX.input, datatype: 'INT64', shape: [-1, width], padding: 0 }],
    outputs: [
      { name: FASTTEXT_ONNX.probs, datatype: 'FP32', shape: [-1, model.classes] },
      { name: FASTTEXT_ONNX.embedding, datatype: 'FP32', shape: [-1, model.dim] },
    ],
    tokenizer: result.tokenizer,
    data: {
      source: corpus.source,
      hash: corpus.dataHash,
      examples: corpus.items.length,
      groups: corpus.groups,
      train: result.split.train,
      heldOut: result.split.test,
      heldOutFraction: result.options.heldOutFraction,
    },
    training: {
      seed: result.options.seed,
      dim: result.options.dim,
      epochs: result.options.epochs,
      learningRate: result.options.learningRate,
      optimizer: result.options.optimizer,
      combiner: result.options.combiner,
      featurizeMs: Math.round(result.timings.featurizeMs),
      trainMs: Math.round(result.timings.trainMs),
      evaluateMs: Math.round(result.timings.evaluateMs),
      totalMs: Math.round(performance.now() - started),
    },
    metrics: { heldOut: result.metrics },
    onnx: { sha256: createHash('sha256').update(bytes).digest('hex'), bytes: bytes.length },
    trainedAt: new Date().toISOString(),
  };
  const hasConfig = await hasModelConfig(options.repository, modelName);
  const path = await writeModelVersion(options.repository, modelName, version, bytes, {
    metadata,
    // A configuration already there may hold the operator's choices (version policy, batching): keep it.
    ...(hasConfig ? {} : { config: tritonConfig(modelName, width, model.classes, model.dim, options.maxBatchSize ?? DEFAULT_MAX_BATCH_SIZE) }),
  });
  options.onProgress?.({ phase: 'write', path });
  return { model: modelName, version, path, metadata, trained: model };
}

/**
 * max_batch_size of a new model's config.json. The graph is memory-bound: each row gathers a
 * [width, dim] block (512 KB at 2,048 × 64) that the bag then sums, so a batch past a few rows
 * spills the cache. Measured on the default model (onnxruntime 1.30, one intra-op thread, 2-core
 * AMD EPYC): 44-46 µs per row at batches of 4 to 16, 56-62 at 24, 66-70 at 32, 71-75 at 64.
 */
export const DEFAULT_MAX_BATCH_SIZE = 16;

/** Triton's JSON model configuration for the exported graph (dims exclude the batch dimension). */
export function tritonConfig(name: string, width: number, classes: number, dim: number, maxBatchSize: number): object {
  return {
    name,
    platform: 'onnxruntime_onnx',
    max_batch_size: maxBatchSize,
    input: [{ name: FASTTEXT_ONNX.input, data_type: 'TYPE_INT64', dims: [width] }],
    output: [
      { name: FASTTEXT_ONNX.probs, data_type: 'TYPE_FP32', dims: [classes] },
      { name: FASTTEXT_ONNX.embedding, data_type: 'TYPE_FP32', dims: [dim] },
    ],
  };
}

/** One more than the highest numeric version directory of the model, or 1. */
export async function nextVersion(repository: string, model: string): Promise<number> {
  let entries: string[];
  try {
    entries = await readdir(join(repository, model));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 1;
    throw err;
  }
  let highest = 0;
  for (const entry of entries) {
    if (!/^[1-9]\d*$/.test(entry)) continue;
    if ((await stat(join(repository, model, entry))).isDirectory()) highest = Math.max(highest, Number(entry));
  }
  return highest + 1;
}

async function hasModelConfig(repository: string, model: string): Promise<boolean> {
  for (const file of ['config.json', 'config.pbtxt']) {
    try {
      await stat(join(repository, model, file));
      return true;
    } catch {
      // absent
    }
  }
  return false;
}
