import { Prng } from './prng.js';

/**
 * A fastText-style classifier: an embedding bag (the mean of the rows of E picked by a text's
 * feature ids) gives the text's embedding h, and one linear layer with a softmax gives the class
 * probabilities. Row 0 of E is the padding id and stays zero; id 0 is also left out of the mean,
 * exactly as the exported ONNX graph does.
 */
/**
 * How the bag of rows becomes one vector: 'mean' divides their sum by the id count (fastText),
 * 'sqrtn' by its square root (TensorFlow's combiner of that name). With mean, each feature of a
 * 2,000-feature mail weighs 1/2000, so a few telling features drown in a long one; sqrtn keeps the
 * embedding's scale bounded while diluting less, and measured better here (see the README).
 */
export type BagCombiner = 'mean' | 'sqrtn';

export interface FastTextParameters {
  buckets: number;
  dim: number;
  labels: readonly string[];
  combiner: BagCombiner;
  /** E, row-major [buckets, dim]. */
  embeddings: Float32Array;
  /** W, row-major [dim, classes] (the ONNX MatMul layout). */
  weights: Float32Array;
  /** b, [classes]. */
  bias: Float32Array;
}

/**
 * A fastText-style classifier: an embedding bag (the rows of E picked by a text's feature ids,
 * combined by mean or sqrtn) gives the text's embedding h, and one linear layer with a softmax
 * gives the class probabilities. Row 0 of E is the padding id and stays zero; id 0 is also left
 * out of the count, exactly as the exported ONNX graph does.
 */
export class FastTextModel implements FastTextParameters {
  readonly buckets: number;
  readonly dim: number;
  readonly labels: readonly string[];
  readonly combiner: BagCombiner;
  readonly embeddings: Float32Array;
  readonly weights: Float32Array;
  readonly bias: Float32Array;

  constructor(p: FastTextParameters) {
    const { buckets, dim, labels, embeddings, weights, bias } = p;
    if (embeddings.length !== buckets * dim) throw new RangeError(`embeddings: expected ${buckets * dim} values, got ${embeddings.length}`);
    if (weights.length !== dim * labels.length) throw new RangeError(`weights: expected ${dim * labels.length} values, got ${weights.length}`);
    if (bias.length !== labels.length) throw new RangeError(`bias: expected ${labels.length} values, got ${bias.length}`);
    this.buckets = buckets;
    this.dim = dim;
    this.labels = [...labels];
    this.combiner = p.combiner;
    this.embeddings = embeddings;
    this.weights = weights;
    this.bias = bias;
  }

  /**
   * fastText's initialisation: E uniform in ±1/dim, W and b zero. The random part of E is kept on
   * purpose: rows of rare features stay a random projection of the bag of features, which gives
   * the embedding output content beyond the one direction a binary classifier learns.
   */
  static initial(shape: { buckets: number; dim: number; labels: readonly string[]; combiner?: BagCombiner }, seed: number): FastTextModel {
    const { buckets, dim, labels } = shape;
    const rng = new Prng(seed);
    const embeddings = new Float32Array(buckets * dim);
    const scale = 1 / dim;
    for (let i = dim; i < embeddings.length; i++) embeddings[i] = (rng.nextFloat() * 2 - 1) * scale;
    return new FastTextModel({
      buckets,
      dim,
      labels,
      combiner: shape.combiner ?? 'mean',
      embeddings,
      weights: new Float32Array(dim * labels.length),
      bias: new Float32Array(labels.length),
    });
  }

  get classes(): number {
    return this.labels.length;
  }

  /** The combined rows of E for the ids in [1, buckets) (zeros when there are none). */
  embed(ids: ArrayLike<number>, out: Float32Array = new Float32Array(this.dim)): Float32Array {
    const sum = new Float64Array(this.dim);
    const count = accumulate(this.embeddings, this.dim, ids, sum);
    const inv = bagScale(this.combiner, count);
    for (let d = 0; d < this.dim; d++) out[d] = sum[d]! * inv;
    return out;
  }

  /** Class probabilities (softmax of hW + b) and the embedding h. */
  predict(ids: ArrayLike<number>): { probs: Float32Array; embedding: Float32Array } {
    const embedding = this.embed(ids);
    const probs = new Float32Array(this.classes);
    const logits = new Float64Array(this.classes);
    linear(this.weights, this.bias, embedding, logits);
    softmax(logits);
    probs.set(logits);
    return { probs, embedding };
  }
}

/** The factor the summed rows are multiplied by: 1/max(n,1) or 1/sqrt(max(n,1)). */
export function bagScale(combiner: BagCombiner, count: number): number {
  const n = Math.max(count, 1);
  return combiner === 'sqrtn' ? 1 / Math.sqrt(n) : 1 / n;
}

function accumulate(embeddings: Float32Array, dim: number, ids: ArrayLike<number>, sum: Float64Array): number {
  let count = 0;
  const buckets = embeddings.length / dim;
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    // Padding and out-of-vocabulary ids count for nothing, as in the exported graph.
    if (!(id > 0 && id < buckets)) continue;
    count++;
    const row = id * dim;
    for (let d = 0; d < dim; d++) sum[d]! += embeddings[row + d]!;
  }
  return count;
}

function linear(weights: Float32Array, bias: Float32Array, h: ArrayLike<number>, out: Float64Array): void {
  const classes = bias.length;
  for (let c = 0; c < classes; c++) out[c] = bias[c]!;
  for (let d = 0; d < h.length; d++) {
    const x = h[d]!;
    const row = d * classes;
    for (let c = 0; c < classes; c++) out[c]! += x * weights[row + c]!;
  }
}

function softmax(values: Float64Array): void {
  let max = -Infinity;
  for (const v of values) max = Math.max(max, v);
  let total = 0;
  for (let i = 0; i < values.length; i++) {
    values[i] = Math.exp(values[i]! - max);
    total += values[i]!;
  }
  for (let i = 0; i < values.length; i++) values[i]! /= total;
}

export interface TrainExample {
  ids: Int32Array;
  /** Index into the labels. */
  label: number;
}

export interface TrainProgress {
  epoch: number;
  epochs: number;
  /** Examples processed in this epoch. */
  processed: number;
  total: number;
  /** Mean cross-entropy over this epoch so far. */
  loss: number;
  learningRate: number;
  examplesPerSecond: number;
  elapsedMs: number;
}

export interface TrainOptions {
  labels: readonly string[];
  buckets: number;
  dim?: number;
  epochs?: number;
  /** Start of the linear decay to zero over all steps, as in fastText. */
  learningRate?: number;
  seed?: number;
  /**
   * 'adagrad' scales each row's step by its own gradient history (one accumulator per row of E,
   * one per weight of W), so rare features (most hashed n-grams) still move far enough; 'sgd' is
   * fastText's plain SGD.
   */
  optimizer?: 'sgd' | 'adagrad';
  combiner?: BagCombiner;
  onProgress?: (progress: TrainProgress) => void;
  /** Examples between progress reports (and between yields to the event loop). */
  reportEvery?: number;
  signal?: AbortSignal;
}

export const DEFAULT_TRAIN_OPTIONS = Object.freeze({ dim: 64, epochs: 5, learningRate: 0.1, seed: 42, reportEvery: 256, optimizer: 'adagrad' as 'sgd' | 'adagrad', combiner: 'sqrtn' as BagCombiner });

const EPSILON = 1e-10;

/**
 * Plain SGD on softmax cross-entropy with sparse updates of E (only the rows of a text's ids are
 * touched). It yields to the event loop between progress reports so a process that trains while
 * serving (the one-process runner) stays responsive; yields never change the arithmetic, so the
 * same seed and data give bit-identical weights.
 */
export async function trainFastText(examples: readonly TrainExample[], options: TrainOptions): Promise<FastTextModel> {
  const dim = options.dim ?? DEFAULT_TRAIN_OPTIONS.dim;
  const epochs = options.epochs ?? DEFAULT_TRAIN_OPTIONS.epochs;
  const lr0 = options.learningRate ?? DEFAULT_TRAIN_OPTIONS.learningRate;
  const seed = options.seed ?? DEFAULT_TRAIN_OPTIONS.seed;
  const reportEvery = Math.max(1, options.reportEvery ?? DEFAULT_TRAIN_OPTIONS.reportEvery);
  const rng = new Prng(seed);
  const combiner = options.combiner ?? DEFAULT_TRAIN_OPTIONS.combiner;
  const model = FastTextModel.initial({ buckets: options.buckets, dim, labels: options.labels, combiner }, rng.nextUint32());
  const { embeddings: E, weights: W, bias: b } = model;
  const classes = options.labels.length;
  for (const e of examples) {
    if (e.label < 0 || e.label >= classes) throw new RangeError(`label ${e.label} outside [0, ${classes})`);
    for (const id of e.ids) {
      if (id < 0 || id >= options.buckets) throw new RangeError(`id ${id} outside [0, ${options.buckets})`);
    }
  }
  const adagrad = (options.optimizer ?? DEFAULT_TRAIN_OPTIONS.optimizer) === 'adagrad';
  const gE = adagrad ? new Float32Array(options.buckets) : undefined;
  const gW = adagrad ? new Float64Array(W.length) : undefined;
  const gb = adagrad ? new Float64Array(classes) : undefined;
  const h = new Float64Array(dim);
  const dh = new Float64Array(dim);
  const p = new Float64Array(classes);
  const order = examples.map((_, i) => i);
  const totalSteps = Math.max(1, epochs * examples.length);
  const started = performance.now();
  let step = 0;
  for (let epoch = 1; epoch <= epochs; epoch++) {
    rng.shuffle(order);
    let lossSum = 0;
    const epochStart = performance.now();
    for (let k = 0; k < order.length; k++) {
      options.signal?.throwIfAborted();
      const example = examples[order[k]!]!;
      const lr = lr0 * (1 - step / totalSteps);
      step++;
      h.fill(0);
      const count = accumulate(E, dim, example.ids, h);
      const inv = bagScale(combiner, count);
      for (let d = 0; d < dim; d++) h[d]! *= inv;
      linear(W, b, h, p);
      softmax(p);
      lossSum -= Math.log(Math.max(p[example.label]!, 1e-12));
      // dL/dlogits = p - onehot; dh uses W before this step's update, as backprop requires.
      p[example.label]! -= 1;
      dh.fill(0);
      for (let d = 0; d < dim; d++) {
        const row = d * classes;
        let acc = 0;
        for (let c = 0; c < classes; c++) {
          const j = row + c;
          acc += W[j]! * p[c]!;
          const g = h[d]! * p[c]!;
          if (gW) {
            gW[j]! += g * g;
            W[j]! -= (lr * g) / Math.sqrt(gW[j]! + EPSILON);
          } else {
            W[j]! -= lr * g;
          }
        }
        dh[d] = acc;
      }
      for (let c = 0; c < classes; c++) {
        if (gb) {
          gb[c]! += p[c]! * p[c]!;
          b[c]! -= (lr * p[c]!) / Math.sqrt(gb[c]! + EPSILON);
        } else {
          b[c]! -= lr * p[c]!;
        }
      }
      let rowScale = lr * inv;
      if (gE) {
        let norm = 0;
        for (let d = 0; d < dim; d++) norm += dh[d]! * dh[d]!;
        // Row-wise AdaGrad: the accumulator holds the mean squared gradient of the row's entries.
        const meanSquare = (norm / dim) * inv * inv;
        for (let i = 0; i < example.ids.length; i++) {
          const id = example.ids[i]!;
          if (id === 0) continue;
          gE[id]! += meanSquare;
          const row = id * dim;
          const scale = (lr * inv) / Math.sqrt(gE[id]! + EPSILON);
          for (let d = 0; d < dim; d++) E[row + d]! -= scale * dh[d]!;
        }
        rowScale = 0;
      }
      for (let i = 0; rowScale !== 0 && i < example.ids.length; i++) {
        const id = example.ids[i]!;
        if (id === 0) continue;
        const row = id * dim;
        for (let d = 0; d < dim; d++) E[row + d]! -= rowScale * dh[d]!;
      }
      const processed = k + 1;
      if (processed % reportEvery === 0 || processed === order.length) {
        const now = performance.now();
        options.onProgress?.({
          epoch,
          epochs,
          processed,
          total: order.length,
          loss: lossSum / processed,
          learningRate: lr,
          examplesPerSecond: processed / Math.max((now - epochStart) / 1000, 1e-9),
          elapsedMs: now - started,
        });
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
  }
  return model;
}
