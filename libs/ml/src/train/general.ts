import { createFeaturizer, tokenizerConfig, type TokenizerConfig } from '../text/featurizer.js';
import { DEFAULT_TRAIN_OPTIONS, trainFastText, type BagCombiner, type FastTextModel, type TrainExample, type TrainProgress } from './fasttext.js';
import { binaryMetrics, type BinaryMetrics } from './metrics.js';
import { splitByKey } from './split.js';

export interface LabeledText {
  /** Stable identity for the hold-out split (the corpus uses `<group>/<id>`). */
  key: string;
  text: string;
  label: string;
  /** Reported separately in the metrics (e.g. easy-ham-1, spam-2). */
  group?: string;
}

export type TextModelProgress =
  | { phase: 'featurize'; done: number; total: number; elapsedMs: number }
  | ({ phase: 'train' } & TrainProgress)
  | { phase: 'evaluate'; done: number; total: number; elapsedMs: number };

export interface TextModelOptions {
  /** Class names; the last one is the positive class of the binary metrics. Default ["ham", "spam"]. */
  labels?: readonly string[];
  tokenizer?: Partial<Omit<TokenizerConfig, 'version' | 'hash'>>;
  dim?: number;
  epochs?: number;
  learningRate?: number;
  seed?: number;
  optimizer?: 'sgd' | 'adagrad';
  combiner?: BagCombiner;
  heldOutFraction?: number;
  onProgress?: (progress: TextModelProgress) => void;
  signal?: AbortSignal;
}

export interface TextModelResult {
  model: FastTextModel;
  tokenizer: TokenizerConfig;
  /** On the held-out set. */
  metrics: BinaryMetrics;
  split: { train: number; test: number };
  timings: { featurizeMs: number; trainMs: number; evaluateMs: number };
  /** The settings used, defaults filled in. */
  options: {
    dim: number;
    epochs: number;
    learningRate: number;
    seed: number;
    heldOutFraction: number;
    optimizer: 'sgd' | 'adagrad';
    combiner: BagCombiner;
  };
}

export const DEFAULT_LABELS: readonly string[] = Object.freeze(['ham', 'spam']);

/**
 * Featurize, split by key, train, evaluate on the held-out part. The corpus-free core of the
 * default general model, so the CLI and the one-process runner train the same way.
 */
export async function trainTextModel(items: readonly LabeledText[], options: TextModelOptions = {}): Promise<TextModelResult> {
  const labels = options.labels ?? DEFAULT_LABELS;
  const tokenizer = tokenizerConfig(options.tokenizer);
  const featurizer = createFeaturizer(tokenizer);
  const settings = {
    dim: options.dim ?? DEFAULT_TRAIN_OPTIONS.dim,
    epochs: options.epochs ?? DEFAULT_TRAIN_OPTIONS.epochs,
    learningRate: options.learningRate ?? DEFAULT_TRAIN_OPTIONS.learningRate,
    seed: options.seed ?? DEFAULT_TRAIN_OPTIONS.seed,
    heldOutFraction: options.heldOutFraction ?? 0.2,
    optimizer: options.optimizer ?? DEFAULT_TRAIN_OPTIONS.optimizer,
    combiner: options.combiner ?? DEFAULT_TRAIN_OPTIONS.combiner,
  };
  const labelIndex = new Map(labels.map((l, i) => [l, i]));
  for (const item of items) {
    if (!labelIndex.has(item.label)) throw new RangeError(`example ${item.key}: unknown label '${item.label}' (labels: ${labels.join(', ')})`);
  }
  const { train, test } = splitByKey(items, (item) => item.key, settings.heldOutFraction);
  if (train.length === 0) throw new RangeError('no training examples after the hold-out split');

  const t0 = performance.now();
  const encodeAll = async (subset: readonly LabeledText[], offset: number): Promise<TrainExample[]> => {
    const out: TrainExample[] = [];
    for (const item of subset) {
      options.signal?.throwIfAborted();
      out.push({ ids: featurizer.encode(item.text).ids, label: labelIndex.get(item.label)! });
      const done = offset + out.length;
      if (done % 200 === 0 || done === items.length) {
        options.onProgress?.({ phase: 'featurize', done, total: items.length, elapsedMs: performance.now() - t0 });
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
    return out;
  };
  const trainExamples = await encodeAll(train, 0);
  const testExamples = await encodeAll(test, train.length);
  const t1 = performance.now();

  const model = await trainFastText(trainExamples, {
    labels,
    buckets: featurizer.buckets,
    dim: settings.dim,
    epochs: settings.epochs,
    learningRate: settings.learningRate,
    seed: settings.seed,
    optimizer: settings.optimizer,
    combiner: settings.combiner,
    signal: options.signal,
    onProgress: options.onProgress ? (p) => options.onProgress?.({ phase: 'train', ...p }) : undefined,
  });
  const t2 = performance.now();

  const positive = labels.length - 1;
  const scored = testExamples.map((example, i) => ({
    label: (example.label === positive ? 1 : 0) as 0 | 1,
    score: model.predict(example.ids).probs[positive]!,
    group: test[i]!.group,
  }));
  const metrics = binaryMetrics(scored);
  const t3 = performance.now();
  options.onProgress?.({ phase: 'evaluate', done: test.length, total: test.length, elapsedMs: t3 - t2 });
  return {
    model,
    tokenizer,
    metrics,
    split: { train: train.length, test: test.length },
    timings: { featurizeMs: t1 - t0, trainMs: t2 - t1, evaluateMs: t3 - t2 },
    options: settings,
  };
}
