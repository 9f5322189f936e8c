/**
 * The personal model: a per-user online learner on top of the general model.
 *
 * ## What it learns from
 * One feature vector per input, x = [general embedding (L2-normalised, scaled), general logit
 * differences g_k − g_0 (clipped, scaled), sparse features (hashed words, sender, domain, list id),
 * bias]. Two heads read it:
 * - the **standalone** head is a multinomial logistic regression of its own (`logits`), the
 *   personal model's answer without the general model's vote;
 * - the **correction** head is the same model fitted with the general logits as a fixed offset, so
 *   it learns only what the user disagrees with (`correctionLogits`; stacked logits = general
 *   logits + correction).
 *
 * The correction head sees the general logits tempered: clipped to ±`correctionOffsetClip` (3 by
 * default, p ≈ 0.95), both as its offset while learning and in the stacked answer it returns
 * (see `stackedCorrection`). A general model is overconfident on
 * mail like the mail it was trained on (logits of 10–20 are common), so an untempered correction has
 * to grow huge before it can overturn one, which takes dozens of labels through FTRL's shrinking
 * steps and then spills onto every similar mail. Tempered, a sender's correction flips the answer
 * after a few labels. Where the tempered answer keeps the general label, the general model's
 * confidence is kept too.
 *
 * The correction head reads the general logit differences as a dense feature tempered the same way
 * (clipped to ±`correctionLogitClip`, 3 by default), so a weight on it rescales the tempered answer
 * the head corrects: "this user's labels follow the general model more (or less) closely". Read
 * untempered (format v3 and older), a weight learnt from a few overturned confident answers grows
 * with the general model's confidence, so the mails it is surest about flip first; on corpus mail
 * that made a user who disagrees with one kind of ham lose ordinary ham to spam.
 *
 * **Confirmations only restrain the correction.** An example whose label is the general model's own
 * label says the general answer was right, not that it should be more confident; but measured
 * against the tempered answer (p ≈ 0.95) every such confirmation is a small error, and in a
 * stream of them (a user who agrees with the crowd and says so now and then) those pulls add up to
 * a drift toward the majority label, which turns borderline minority-label mail (spam the general
 * model barely catches) into mistakes. So a confirmation trains the correction head only where the
 * correction argues against it (makes the label less likely than the tempered general answer
 * does): it keeps the correction from overturning what the user confirmed, and a user who never
 * disagrees keeps a correction of exactly zero. `confirmationWeight` (0 by default; 1 in format v3
 * and older models) is the share of the gradient a confirmation the correction agrees with still
 * gives.
 *
 * Header coordinates (sender, domain, list id: the upper half of the sparse space, where the
 * personal featurizer puts them) learn at their own rate `headerAlpha`, above the words' α: a header
 * feature is one coordinate with value 1 that names exactly what people label by, while a mail's
 * words share an L2-normalised unit among hundreds of coordinates.
 *
 * Logits are K-vectors in the general model's label order with class 0 as the reference (its logit
 * is 0), so each head has K−1 weight vectors and a binary model has one.
 *
 * ## Why FTRL-Proximal
 * - **Few examples, a stream.** Feedback arrives one mail at a time and every example must count at
 *   once; there is no batch to run epochs over, and a user's history is too small to tune a
 *   learning-rate schedule on. FTRL-Proximal (McMahan et al., 2013, "Ad click prediction: a view
 *   from the trenches") is an online method whose only state per coordinate is two numbers.
 * - **Sparse, high-dimensional features with per-coordinate rates.** A sender seen for the first
 *   time takes a large step, one seen fifty times a small one (rate α/(β+√Σg²) per coordinate), so a
 *   new sender is learnt from two or three labels while frequent words do not drift. A single global
 *   rate (plain SGD) would have to choose between the two.
 * - **L1 keeps models tiny.** The proximal L1 term keeps a weight exactly at zero until the evidence
 *   for it (|z|) passes λ1: a word met once in a long mail (feature value ≈ 0.1) never gets a
 *   weight, a sender gets a small one from its first label and a real one from its second or
 *   third, and the dense coordinates (embedding, bias) need several consistent labels. Unlike
 *   truncated SGD the zeros are stable, not re-created by every step. (The z, n state of touched
 *   coordinates is kept so training can go on; the weights derived from it are what is sparse.)
 * - **Shrinkage toward zero is shrinkage toward the general answer.** The correction head's zero is
 *   "no correction", so with little or contradictory data the user gets the general model's answer,
 *   and only consistent disagreement (the same sender, list or topic labelled against the crowd)
 *   earns a weight. L2 bounds how far a few examples can push.
 * - **Cheap.** Scoring and updating touch only the non-zero coordinates of x (a few hundred), all in
 *   plain TypeScript; no framework, no worker threads.
 *
 * Training is deterministic: the same examples in the same order give bit-identical parameters, so
 * a refit of a history equals the incremental training on it in memory (as long as `prune` did not
 * forget coordinates in between). A model stored in between continues from its stored state, whose
 * z and n are rounded to float16 (format.ts): the same up to that rounding, which the tests bound.
 */
import type { SparseFeatures } from './featurizer.js';
import {
  CURRENT_FORMAT_VERSION,
  HEADS,
  PersonalModelFormatError,
  READABLE_FORMAT_VERSIONS,
  decodePersonalModel,
  encodeV1,
  encodeV2,
  LEARNER_OPTION_KEYS,
  LOGIT_CLIP,
  type PersonalModelState,
} from './format.js';

export { PersonalModelFormatError, crc32, serializedSize } from './format.js';

/** FTRL-Proximal hyper-parameters: per-coordinate rate α/(β+√n), penalties λ1|w| + λ2/2·w². */
export interface PersonalLearnerOptions {
  /** Learning-rate scale α. Larger learns faster from few examples and overshoots more. */
  alpha: number;
  /** β: smooths the first steps of a coordinate (rate α/β before any gradient). */
  beta: number;
  /** λ1 on sparse coordinates: the accumulated evidence a word, sender or list needs before it gets a weight. */
  l1: number;
  /** α of the standalone head's dense coordinates (embedding, general logit differences, bias). */
  denseAlpha: number;
  /**
   * α of the correction head's dense coordinates. Below the standalone head's: a topic-wide
   * correction learnt from one sender's labels would spill onto every mail of that topic, so the
   * correction should come from the sparse sender, list and word coordinates first and from the
   * embedding more slowly; but not so slowly that a taste for a whole topic is never learnt.
   */
  correctionDenseAlpha: number;
  /** λ1 on the dense coordinates. */
  denseL1: number;
  /** λ2 on every coordinate. */
  l2: number;
  /** α of the header coordinates (the upper half of the sparse space: sender, domain, list id). */
  headerAlpha: number;
  /** The general logit differences are clipped to ±this in the correction head (see the module docs). */
  correctionOffsetClip: number;
  /**
   * The general logit differences the correction head reads as a dense feature are clipped to ±this
   * (then multiplied by the shape's `logitScale`, as in the standalone head, which reads them
   * clipped at LOGIT_CLIP). Default 3, the offset's clip: a weight on the feature then rescales
   * the tempered answer. Format v3 and older models read LOGIT_CLIP.
   */
  correctionLogitClip: number;
  /**
   * Share (0 to 1) of its gradient that an example labelled as the general model labels it gives the
   * correction head when the correction does not argue against that label. Default 0: such
   * confirmations only restrain the correction (see the module docs); 1 is plain log-loss against
   * the tempered answer, as format v3 and older models learnt.
   */
  confirmationWeight: number;
}

/** Chosen on the synthetic users of learner.test.ts and the personalization eval: see the README. */
export const DEFAULT_PERSONAL_LEARNER_OPTIONS: Readonly<PersonalLearnerOptions> = Object.freeze({
  alpha: 2,
  beta: 1,
  l1: 0.1,
  denseAlpha: 1,
  correctionDenseAlpha: 0.3,
  denseL1: 1,
  l2: 1,
  headerAlpha: 8,
  correctionOffsetClip: 3,
  correctionLogitClip: 3,
  confirmationWeight: 0,
});

/** Fixed when a model is created and stored with it: they change what its weights mean. */
export interface PersonalModelShape {
  /** K, the general model's label count (≥ 2). */
  classes: number;
  /** Length of the general embedding (0 allowed: then only logits and sparse features). */
  embeddingDim: number;
  /** Dimension of the sparse feature space (e.g. 2^20); sparse indices must be below it. */
  sparseDimension: number;
  /** The L2-normalised embedding is multiplied by this. Default 1. */
  embeddingScale?: number;
  /** Logit differences g_k − g_0 are clipped to ±LOGIT_CLIP and multiplied by this. Default 0.25. */
  logitScale?: number;
}

/** What the personal model reads from one input. */
export interface PersonalModelInput {
  /** The general model's logits (K), in its label order. */
  generalLogits: ArrayLike<number>;
  /** The general model's embedding (embeddingDim). */
  embedding: ArrayLike<number>;
  /** Sparse features; `dimension` (when given) must equal the model's. */
  sparse?: Pick<SparseFeatures, 'indices' | 'values'> & { dimension?: number };
}

export interface PersonalExample extends PersonalModelInput {
  /** Index of the true label in the general model's label order. */
  label: number;
  /** Example weight (> 0); 1 when omitted. */
  weight?: number;
}

export interface PersonalPrediction {
  /** Standalone head: [0, s_1, …, s_{K−1}]. */
  logits: number[];
  /** softmax(logits). */
  probabilities: number[];
  /** Correction head: [0, c_1, …, c_{K−1}], to add to the general logits. */
  correctionLogits: number[];
}

export { LOGIT_CLIP };
const STANDALONE = 0;
const CORRECTION = 1;

/** What `features` makes of an input. */
interface Features {
  /** Embedding, logit differences clipped at LOGIT_CLIP and scaled, bias: the standalone head's dense features. */
  dense: Float64Array;
  /** The same with the logit differences clipped at `correctionLogitClip`: the correction head's. */
  correctionDense: Float64Array;
  /** The tempered general logit differences: the correction head's offset. */
  offsets: Float64Array;
  /** The general logit differences g_k − g_0 as given. */
  differences: Float64Array;
  sparseIndices: number[];
  sparseValues: number[];
}

/** Argmax of [0, ...v] (class 0 is the reference); ties go to the lower class. */
function argmaxWithReference(v: ArrayLike<number>): number {
  let best = 0;
  let max = 0;
  for (let k = 0; k < v.length; k++) {
    if (v[k]! > max) {
      max = v[k]!;
      best = k + 1;
    }
  }
  return best;
}

/** Thrown for inputs that do not fit the model (wrong lengths, out-of-range indices, non-finite values). */
export class PersonalModelInputError extends RangeError {
  constructor(
    message: string,
    /** The offending part of the input: `generalLogits`, `embedding`, `sparse`, `label` or `weight`. */
    readonly field: string,
  ) {
    super(message);
    this.name = 'PersonalModelInputError';
  }
}

function checkOptions(o: PersonalLearnerOptions): PersonalLearnerOptions {
  const positive = (name: keyof PersonalLearnerOptions) => {
    if (!(Number.isFinite(o[name]) && o[name] > 0)) throw new RangeError(`personal learner: ${name} must be a finite number > 0, got ${o[name]}`);
  };
  const nonNegative = (name: keyof PersonalLearnerOptions) => {
    if (!(Number.isFinite(o[name]) && o[name] >= 0)) throw new RangeError(`personal learner: ${name} must be a finite number >= 0, got ${o[name]}`);
  };
  positive('alpha');
  positive('denseAlpha');
  positive('correctionDenseAlpha');
  positive('headerAlpha');
  positive('correctionOffsetClip');
  positive('correctionLogitClip');
  nonNegative('beta');
  nonNegative('l1');
  nonNegative('denseL1');
  nonNegative('l2');
  if (!(Number.isFinite(o.confirmationWeight) && o.confirmationWeight >= 0 && o.confirmationWeight <= 1)) {
    throw new RangeError(`personal learner: confirmationWeight must be a number in [0, 1], got ${o.confirmationWeight}`);
  }
  return {
    alpha: o.alpha,
    beta: o.beta,
    l1: o.l1,
    denseAlpha: o.denseAlpha,
    correctionDenseAlpha: o.correctionDenseAlpha,
    denseL1: o.denseL1,
    l2: o.l2,
    headerAlpha: o.headerAlpha,
    correctionOffsetClip: o.correctionOffsetClip,
    correctionLogitClip: o.correctionLogitClip,
    confirmationWeight: o.confirmationWeight,
  };
}

/**
 * One user's model: FTRL-Proximal state (z, n) per used coordinate for both heads. Dense
 * coordinates are arrays; sparse ones live in growable arrays indexed through a map, holding only
 * the coordinates some example has touched.
 */
export class PersonalModel {
  readonly classes: number;
  readonly embeddingDim: number;
  readonly sparseDimension: number;
  readonly embeddingScale: number;
  readonly logitScale: number;
  /** Examples learnt from (their count, not their weights). */
  exampleCount = 0;
  options: PersonalLearnerOptions;

  /** K − 1 weight vectors per head. */
  private readonly m: number;
  /** embeddingDim + (K − 1) logit differences + bias. */
  private readonly denseDim: number;
  /** Per head, [coord · m + k]. */
  private readonly denseZ: Float32Array[];
  private readonly denseN: Float32Array[];
  /**
   * index → slot, built on the first update. A model read from bytes (the cached, scoring case) has
   * its indices sorted and is searched by bisection instead: no map to build on a cold load and
   * no per-entry overhead, so its memory is its format-v1 size (`serializedSize`, float32 state),
   * several times the compact bytes it was read from (`memoryBytes` says exactly).
   */
  private slotOf: Map<number, number> | undefined;
  private sparseIndex: Uint32Array;
  private sparseZ: Float32Array[];
  private sparseN: Float32Array[];
  private used = 0;

  /** A fresh model: every weight zero (both heads answer "no opinion", the correction is 0). */
  static create(shape: PersonalModelShape, options: Partial<PersonalLearnerOptions> = {}): PersonalModel {
    return new PersonalModel(shape, { ...DEFAULT_PERSONAL_LEARNER_OPTIONS, ...options }, 0);
  }

  private constructor(shape: PersonalModelShape, options: PersonalLearnerOptions, capacity: number) {
    const { classes, embeddingDim, sparseDimension } = shape;
    if (!Number.isInteger(classes) || classes < 2 || classes > 1024) throw new RangeError(`personal model: classes must be an integer in [2, 1024], got ${classes}`);
    if (!Number.isInteger(embeddingDim) || embeddingDim < 0 || embeddingDim > 65536) throw new RangeError(`personal model: embeddingDim must be an integer in [0, 65536], got ${embeddingDim}`);
    if (!Number.isInteger(sparseDimension) || sparseDimension < 0 || sparseDimension > 0xffffffff) throw new RangeError(`personal model: sparseDimension must be an integer in [0, 2^32-1], got ${sparseDimension}`);
    const embeddingScale = shape.embeddingScale ?? 1;
    const logitScale = shape.logitScale ?? 0.25;
    if (!Number.isFinite(embeddingScale) || embeddingScale < 0 || !Number.isFinite(logitScale) || logitScale < 0) {
      throw new RangeError('personal model: embeddingScale and logitScale must be finite numbers >= 0');
    }
    this.classes = classes;
    this.embeddingDim = embeddingDim;
    this.sparseDimension = sparseDimension;
    this.embeddingScale = Math.fround(embeddingScale);
    this.logitScale = Math.fround(logitScale);
    this.options = checkOptions(options);
    this.m = classes - 1;
    this.denseDim = embeddingDim + this.m + 1;
    this.denseZ = Array.from({ length: HEADS }, () => new Float32Array(this.denseDim * this.m));
    this.denseN = Array.from({ length: HEADS }, () => new Float32Array(this.denseDim * this.m));
    this.sparseIndex = new Uint32Array(capacity);
    this.sparseZ = Array.from({ length: HEADS }, () => new Float32Array(capacity * this.m));
    this.sparseN = Array.from({ length: HEADS }, () => new Float32Array(capacity * this.m));
  }

  /** Sparse coordinates with state (touched by some example). */
  get usedCoordinates(): number {
    return this.used;
  }

  /** Non-zero weights over both heads (what L1 keeps small). */
  nonZeroWeights(): number {
    let count = 0;
    for (let h = 0; h < HEADS; h++) {
      for (let c = 0; c < this.denseDim; c++) for (let k = 0; k < this.m; k++) if (this.denseWeight(h, c, k) !== 0) count++;
      for (let s = 0; s < this.used; s++) for (let k = 0; k < this.m; k++) if (this.sparseWeight(h, s, k) !== 0) count++;
    }
    return count;
  }

  /** A deep copy: train the copy, swap it in when the write succeeded. */
  clone(): PersonalModel {
    const copy = new PersonalModel(this.shape(), this.options, this.used);
    copy.exampleCount = this.exampleCount;
    for (let h = 0; h < HEADS; h++) {
      copy.denseZ[h]!.set(this.denseZ[h]!);
      copy.denseN[h]!.set(this.denseN[h]!);
      copy.sparseZ[h]!.set(this.sparseZ[h]!.subarray(0, this.used * this.m));
      copy.sparseN[h]!.set(this.sparseN[h]!.subarray(0, this.used * this.m));
    }
    copy.sparseIndex.set(this.sparseIndex.subarray(0, this.used));
    copy.slotOf = this.slotOf ? new Map(this.slotOf) : undefined;
    copy.used = this.used;
    return copy;
  }

  shape(): Required<PersonalModelShape> {
    return {
      classes: this.classes,
      embeddingDim: this.embeddingDim,
      sparseDimension: this.sparseDimension,
      embeddingScale: this.embeddingScale,
      logitScale: this.logitScale,
    };
  }

  predict(input: PersonalModelInput): PersonalPrediction {
    const x = this.features(input);
    const standalone = this.scores(STANDALONE, x);
    const correction = this.scores(CORRECTION, x);
    const logits = [0, ...standalone];
    return { logits, probabilities: softmax(logits), correctionLogits: this.stackedCorrection(correction, x) };
  }

  /**
   * The correction to add to the general logits. The head learnt against the tempered general
   * logits, so its answer is tempered + scores. Where that answer's label is the general label, the
   * scores are added to the untempered logits: same label, and the general model's confidence
   * stands (a fresh model's correction is exactly zero). Where it differs, the stacked logits are
   * the tempered answer itself.
   */
  private stackedCorrection(scores: readonly number[], x: { offsets: Float64Array; differences: Float64Array }): number[] {
    const tempered = scores.map((s, k) => s + x.offsets[k]!);
    if (argmaxWithReference(tempered) === argmaxWithReference(x.differences)) return [0, ...scores];
    return [0, ...tempered.map((t, k) => t - x.differences[k]!)];
  }

  /**
   * The share of its gradient an example gives the correction head (`p`: the head's tempered
   * answer before the step): all of it, except for a confirmation (label = the general label) the
   * correction does not argue against, which gives `confirmationWeight` of it (see the module docs).
   */
  private correctionShare(label: number, p: readonly number[], x: { offsets: Float64Array; differences: Float64Array }): number {
    if (label !== argmaxWithReference(x.differences)) return 1;
    const general = softmax([0, ...x.offsets]);
    return p[label]! < general[label]! ? 1 : this.options.confirmationWeight;
  }

  /** One online step on each head (predict, then update on the error); returns the prediction made before the step. */
  update(example: PersonalExample): PersonalPrediction {
    const { label } = example;
    if (!Number.isInteger(label) || label < 0 || label >= this.classes) throw new PersonalModelInputError(`label index ${label} is outside [0, ${this.classes - 1}]`, 'label');
    const weight = example.weight ?? 1;
    if (!Number.isFinite(weight) || weight <= 0) throw new PersonalModelInputError(`weight must be a finite number > 0, got ${weight}`, 'weight');
    const x = this.features(example);
    // Sparse slots are created before scoring so both heads see the same coordinates.
    const slots = x.sparseIndices.map((i) => this.slot(i));
    const before: number[][] = [];
    for (let h = 0; h < HEADS; h++) {
      const offset = h === CORRECTION ? x.offsets : undefined;
      const { scores, denseW, sparseW } = this.scoresWithWeights(h, x, slots);
      before.push(scores);
      const full = [0, ...scores.map((s, k) => s + (offset ? offset[k]! : 0))];
      const p = softmax(full);
      const grad = new Float64Array(this.m);
      const share = offset ? this.correctionShare(label, p, x) : 1;
      if (share > 0) for (let k = 0; k < this.m; k++) grad[k] = share * weight * (p[k + 1]! - (label === k + 1 ? 1 : 0));
      const { alpha } = this.options;
      const denseAlpha = this.denseAlphaOf(h);
      const step = (z: Float32Array, n: Float32Array, at: number, w: number, g: number, alpha: number) => {
        const nOld = n[at]!;
        const nNew = nOld + g * g;
        const sigma = (Math.sqrt(nNew) - Math.sqrt(nOld)) / alpha;
        z[at] = z[at]! + g - sigma * w;
        n[at] = nNew;
      };
      const dz = this.denseZ[h]!;
      const dn = this.denseN[h]!;
      const dense = this.denseOf(h, x);
      for (let c = 0; c < this.denseDim; c++) {
        const xc = dense[c]!;
        if (xc === 0) continue;
        for (let k = 0; k < this.m; k++) step(dz, dn, c * this.m + k, denseW[c * this.m + k]!, grad[k]! * xc, denseAlpha);
      }
      const sz = this.sparseZ[h]!;
      const sn = this.sparseN[h]!;
      for (let j = 0; j < slots.length; j++) {
        const xj = x.sparseValues[j]!;
        if (xj === 0) continue;
        const s = slots[j]!;
        const a = this.isHeader(this.sparseIndex[s]!) ? this.options.headerAlpha : alpha;
        for (let k = 0; k < this.m; k++) step(sz, sn, s * this.m + k, sparseW[j * this.m + k]!, grad[k]! * xj, a);
      }
    }
    this.exampleCount++;
    const logits = [0, ...before[STANDALONE]!];
    return { logits, probabilities: softmax(logits), correctionLogits: this.stackedCorrection(before[CORRECTION]!, x) };
  }

  /**
   * Forgets sparse coordinates, returning how many: those whose evidence is below `minAbsZ` in
   * every head and class (|z| < minAbsZ), and then the weakest (smallest max |z|) until at most
   * `maxCoordinates` remain. With minAbsZ ≤ λ1 the first rule never changes a prediction (those
   * weights are exactly zero); what is lost is the sub-threshold evidence and step-size history of
   * rare words, which restart from zero if they come back. The budget bounds the model's size: most
   * coordinates of a long-lived model are words met once or twice (McMahan et al. drop rare
   * features for the same reason), and the budget removes those first.
   */
  prune(options: { minAbsZ?: number; maxCoordinates?: number }): number {
    const m = this.m;
    const strength = new Float64Array(this.used);
    for (let s = 0; s < this.used; s++) {
      let v = 0;
      for (let h = 0; h < HEADS; h++) for (let k = 0; k < m; k++) v = Math.max(v, Math.abs(this.sparseZ[h]![s * m + k]!));
      strength[s] = v;
    }
    const minAbsZ = options.minAbsZ ?? 0;
    let candidates = 0;
    for (let s = 0; s < this.used; s++) if (strength[s]! >= minAbsZ) candidates++;
    const budget = options.maxCoordinates ?? Infinity;
    // Among the candidates keep the `budget` strongest. Ties (common: the words of one mail share
    // their state) go to the smaller index, not the earlier slot: slots are in insertion order in
    // a model trained in memory and in index order in one read from bytes, and the same training
    // must prune the same coordinates whether or not the model was stored in between.
    let cut = -1;
    let lastIndexAtCut = -1;
    if (candidates > budget) {
      const sorted = Array.from(strength).filter((v) => v >= minAbsZ).sort((a, b) => b - a);
      cut = sorted[budget]!;
      const keepAtCut = budget - Array.from(strength).filter((v) => v > cut).length;
      if (keepAtCut > 0) {
        const atCut: number[] = [];
        for (let s = 0; s < this.used; s++) if (strength[s] === cut) atCut.push(this.sparseIndex[s]!);
        atCut.sort((a, b) => a - b);
        lastIndexAtCut = atCut[keepAtCut - 1]!;
      }
    }
    const keep = (s: number): boolean => {
      const v = strength[s]!;
      if (v < minAbsZ) return false;
      if (cut < 0 || v > cut) return true;
      return v === cut && this.sparseIndex[s]! <= lastIndexAtCut;
    };
    let kept = 0;
    let sorted = true;
    for (let s = 0; s < this.used; s++) {
      if (!keep(s)) continue;
      if (kept !== s) {
        this.sparseIndex[kept] = this.sparseIndex[s]!;
        for (let h = 0; h < HEADS; h++) {
          this.sparseZ[h]!.copyWithin(kept * m, s * m, s * m + m);
          this.sparseN[h]!.copyWithin(kept * m, s * m, s * m + m);
        }
      }
      if (kept > 0 && this.sparseIndex[kept]! <= this.sparseIndex[kept - 1]!) sorted = false;
      kept++;
    }
    const removed = this.used - kept;
    if (removed === 0) return 0;
    // Freed slots are reused by the next new coordinates, which must start from zero state, not
    // from a forgotten coordinate's z and n.
    for (let h = 0; h < HEADS; h++) {
      this.sparseZ[h]!.fill(0, kept * m, this.used * m);
      this.sparseN[h]!.fill(0, kept * m, this.used * m);
    }
    this.used = kept;
    // Slots moved. Sorted indices (a model read from bytes) are found by bisection; others need the map.
    this.slotOf = undefined;
    if (!sorted) {
      this.slotOf = new Map();
      for (let s = 0; s < this.used; s++) this.slotOf.set(this.sparseIndex[s]!, s);
    }
    return removed;
  }

  /** Applies examples in order. */
  train(examples: Iterable<PersonalExample>): this {
    for (const e of examples) this.update(e);
    return this;
  }

  // -- serialization ------------------------------------------------------------------------

  /**
   * Compact little-endian bytes, format v2 by default (see `PERSONAL_MODEL_FORMAT` and format.ts):
   * z and n are stored as float16, so a model read back predicts within a few 1e-3 of this one (not
   * bit-identically), and reading and writing it again gives the same bytes. `formatVersion: 1`
   * writes the float32 format v1, which builds from before v2 can read (for a rolling upgrade).
   */
  serialize(options: { formatVersion?: 1 | 2 | 3 | 4 } = {}): Uint8Array {
    const version = options.formatVersion ?? CURRENT_FORMAT_VERSION;
    if (version !== 1 && version !== 2 && version !== 3 && version !== 4) throw new RangeError(`personal model: formatVersion must be 1, 2, 3 or 4, got ${String(version)}`);
    const state = this.state();
    return version === 1 ? encodeV1(state) : encodeV2(state, { version });
  }

  /**
   * Reads `serialize()`'s bytes, any readable format version; throws `PersonalModelFormatError` on
   * anything else. A v2 model keeps the learner options it was trained with (they give its z and n
   * their meaning); `options` apply to v1 bytes, which do not store them.
   */
  static deserialize(bytes: Uint8Array, options: Partial<PersonalLearnerOptions> = {}): PersonalModel {
    const state = decodePersonalModel(bytes);
    if (state.learner) {
      options = Object.fromEntries(LEARNER_OPTION_KEYS.map((k, i) => [k, state.learner![i]!])) as Partial<PersonalLearnerOptions>;
    }
    const { classes, embeddingDim, sparseDimension, embeddingScale, logitScale } = state;
    let model: PersonalModel;
    try {
      model = new PersonalModel({ classes, embeddingDim, sparseDimension, embeddingScale, logitScale }, { ...DEFAULT_PERSONAL_LEARNER_OPTIONS, ...options }, 0);
    } catch (err) {
      throw new PersonalModelFormatError(`personal model bytes: ${(err as Error).message}`);
    }
    model.exampleCount = state.exampleCount;
    // The decoded arrays are the model's: no second copy on a cold load.
    for (let h = 0; h < HEADS; h++) {
      model.denseZ[h] = state.denseZ[h]!;
      model.denseN[h] = state.denseN[h]!;
    }
    model.sparseIndex = state.sparseIndex;
    model.sparseZ = state.sparseZ;
    model.sparseN = state.sparseN;
    model.used = state.sparseIndex.length;
    return model;
  }

  /** The learner state in index order (a copy), as the formats store it. */
  private state(): PersonalModelState {
    const m = this.m;
    const used = this.used;
    // Slots in index order: the identity for a model read from bytes (bisection keeps them sorted).
    let order: Uint32Array | undefined;
    if (this.slotOf) {
      const sortedIndices = Uint32Array.from(this.sparseIndex.subarray(0, used)).sort();
      order = new Uint32Array(used);
      for (let i = 0; i < used; i++) order[i] = this.slotOf.get(sortedIndices[i]!)!;
    }
    const inOrder = (a: Float32Array): Float32Array => {
      if (!order) return a.slice(0, used * m);
      const out = new Float32Array(used * m);
      for (let i = 0; i < used; i++) for (let k = 0; k < m; k++) out[i * m + k] = a[order[i]! * m + k]!;
      return out;
    };
    const sparseIndex = order ? Uint32Array.from(order, (s) => this.sparseIndex[s]!) : this.sparseIndex.slice(0, used);
    return {
      classes: this.classes,
      embeddingDim: this.embeddingDim,
      sparseDimension: this.sparseDimension,
      embeddingScale: this.embeddingScale,
      logitScale: this.logitScale,
      exampleCount: this.exampleCount,
      denseZ: this.denseZ.map((a) => a.slice()),
      denseN: this.denseN.map((a) => a.slice()),
      sparseIndex,
      sparseZ: this.sparseZ.map(inOrder),
      sparseN: this.sparseN.map(inOrder),
      learner: LEARNER_OPTION_KEYS.map((k) => this.options[k]),
    };
  }

  // -- internals ------------------------------------------------------------------------------

  private features(input: PersonalModelInput): Features {
    const { generalLogits, embedding } = input;
    if (!generalLogits || generalLogits.length !== this.classes) {
      throw new PersonalModelInputError(`expected ${this.classes} general logits, got ${generalLogits?.length ?? 0}`, 'generalLogits');
    }
    if (!embedding || embedding.length !== this.embeddingDim) {
      throw new PersonalModelInputError(`expected an embedding of ${this.embeddingDim} values, got ${embedding?.length ?? 0}`, 'embedding');
    }
    const dense = new Float64Array(this.denseDim);
    let sumSquares = 0;
    for (let i = 0; i < this.embeddingDim; i++) {
      const v = embedding[i]!;
      if (!Number.isFinite(v)) throw new PersonalModelInputError(`embedding[${i}] is not a finite number`, 'embedding');
      sumSquares += v * v;
    }
    const scale = sumSquares > 0 ? this.embeddingScale / Math.sqrt(sumSquares) : 0;
    for (let i = 0; i < this.embeddingDim; i++) dense[i] = embedding[i]! * scale;
    const offsets = new Float64Array(this.m);
    const differences = new Float64Array(this.m);
    const clip = Math.min(LOGIT_CLIP, this.options.correctionOffsetClip);
    const g0 = generalLogits[0]!;
    for (let k = 0; k < this.classes; k++) {
      if (!Number.isFinite(generalLogits[k]!)) throw new PersonalModelInputError(`generalLogits[${k}] is not a finite number`, 'generalLogits');
    }
    for (let k = 0; k < this.m; k++) {
      differences[k] = generalLogits[k + 1]! - g0;
      const d = Math.max(-LOGIT_CLIP, Math.min(LOGIT_CLIP, differences[k]!));
      offsets[k] = Math.max(-clip, Math.min(clip, d));
      dense[this.embeddingDim + k] = d * this.logitScale;
    }
    dense[this.denseDim - 1] = 1;
    const sparse = input.sparse;
    const sparseIndices: number[] = [];
    const sparseValues: number[] = [];
    if (sparse) {
      if (sparse.dimension !== undefined && sparse.dimension !== this.sparseDimension) {
        throw new PersonalModelInputError(`sparse dimension ${sparse.dimension} differs from the model's ${this.sparseDimension}`, 'sparse');
      }
      if (sparse.indices.length !== sparse.values.length) throw new PersonalModelInputError('sparse indices and values differ in length', 'sparse');
      const seen = new Set<number>();
      for (let j = 0; j < sparse.indices.length; j++) {
        const i = sparse.indices[j]!;
        const v = sparse.values[j]!;
        if (!Number.isInteger(i) || i < 0 || i >= this.sparseDimension) throw new PersonalModelInputError(`sparse index ${i} is outside [0, ${this.sparseDimension})`, 'sparse');
        if (!Number.isFinite(v)) throw new PersonalModelInputError(`sparse value at index ${i} is not a finite number`, 'sparse');
        if (seen.has(i)) throw new PersonalModelInputError(`sparse index ${i} appears twice`, 'sparse');
        seen.add(i);
        sparseIndices.push(i);
        sparseValues.push(v);
      }
    }
    // The correction head's copy of the dense features, its logit differences tempered (the same
    // array when the clip does not bind).
    let correctionDense = dense;
    const featureClip = this.options.correctionLogitClip;
    if (featureClip < LOGIT_CLIP) {
      correctionDense = dense.slice();
      for (let k = 0; k < this.m; k++) correctionDense[this.embeddingDim + k] = Math.max(-featureClip, Math.min(featureClip, differences[k]!)) * this.logitScale;
    }
    return { dense, correctionDense, offsets, differences, sparseIndices, sparseValues };
  }

  private weightOf(z: number, n: number, alpha: number, l1: number): number {
    if (Math.abs(z) <= l1) return 0;
    const { beta, l2 } = this.options;
    return -(z - Math.sign(z) * l1) / ((beta + Math.sqrt(n)) / alpha + l2);
  }

  private denseWeight(h: number, c: number, k: number): number {
    const at = c * this.m + k;
    return this.weightOf(this.denseZ[h]![at]!, this.denseN[h]![at]!, this.denseAlphaOf(h), this.options.denseL1);
  }

  private denseAlphaOf(h: number): number {
    return h === CORRECTION ? this.options.correctionDenseAlpha : this.options.denseAlpha;
  }

  private sparseWeight(h: number, s: number, k: number): number {
    const at = s * this.m + k;
    const alpha = this.isHeader(this.sparseIndex[s]!) ? this.options.headerAlpha : this.options.alpha;
    return this.weightOf(this.sparseZ[h]![at]!, this.sparseN[h]![at]!, alpha, this.options.l1);
  }

  private isHeader(index: number): boolean {
    return index >= this.sparseDimension / 2;
  }

  /** The dense features head h reads. */
  private denseOf(h: number, x: Pick<Features, 'dense' | 'correctionDense'>): Float64Array {
    return h === CORRECTION ? x.correctionDense : x.dense;
  }

  private scores(h: number, x: Features): number[] {
    const out = new Array<number>(this.m).fill(0);
    const dense = this.denseOf(h, x);
    for (let c = 0; c < this.denseDim; c++) {
      const xc = dense[c]!;
      if (xc === 0) continue;
      for (let k = 0; k < this.m; k++) out[k]! += this.denseWeight(h, c, k) * xc;
    }
    for (let j = 0; j < x.sparseIndices.length; j++) {
      const s = this.find(x.sparseIndices[j]!);
      if (s < 0) continue;
      const xj = x.sparseValues[j]!;
      for (let k = 0; k < this.m; k++) out[k]! += this.sparseWeight(h, s, k) * xj;
    }
    return out;
  }

  private scoresWithWeights(
    h: number,
    x: Features,
    slots: number[],
  ): { scores: number[]; denseW: Float64Array; sparseW: Float64Array } {
    const scores = new Array<number>(this.m).fill(0);
    const dense = this.denseOf(h, x);
    const denseW = new Float64Array(this.denseDim * this.m);
    const sparseW = new Float64Array(slots.length * this.m);
    for (let c = 0; c < this.denseDim; c++) {
      for (let k = 0; k < this.m; k++) {
        const w = this.denseWeight(h, c, k);
        denseW[c * this.m + k] = w;
        scores[k]! += w * dense[c]!;
      }
    }
    for (let j = 0; j < slots.length; j++) {
      for (let k = 0; k < this.m; k++) {
        const w = this.sparseWeight(h, slots[j]!, k);
        sparseW[j * this.m + k] = w;
        scores[k]! += w * x.sparseValues[j]!;
      }
    }
    return { scores, denseW, sparseW };
  }

  /** The slot of a sparse index, or -1. */
  private find(index: number): number {
    if (this.slotOf) return this.slotOf.get(index) ?? -1;
    let lo = 0;
    let hi = this.used - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const v = this.sparseIndex[mid]!;
      if (v === index) return mid;
      if (v < index) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  /** The slot of a sparse index, created when new. */
  private slot(index: number): number {
    if (!this.slotOf) {
      this.slotOf = new Map();
      for (let s = 0; s < this.used; s++) this.slotOf.set(this.sparseIndex[s]!, s);
    }
    const existing = this.slotOf.get(index);
    if (existing !== undefined) return existing;
    if (this.used === this.sparseIndex.length) this.grow();
    const s = this.used++;
    this.sparseIndex[s] = index;
    this.slotOf.set(index, s);
    return s;
  }

  /** Bytes the model's arrays hold (what a cache should charge for it). */
  get memoryBytes(): number {
    let bytes = this.sparseIndex.byteLength;
    for (let h = 0; h < HEADS; h++) bytes += this.denseZ[h]!.byteLength + this.denseN[h]!.byteLength + this.sparseZ[h]!.byteLength + this.sparseN[h]!.byteLength;
    // A Map entry costs V8 about 40 bytes (hash table slot, key and value).
    return bytes + (this.slotOf ? this.slotOf.size * 40 : 0);
  }

  private grow(): void {
    const capacity = Math.max(64, this.sparseIndex.length * 2);
    const index = new Uint32Array(capacity);
    index.set(this.sparseIndex);
    this.sparseIndex = index;
    const widen = (a: Float32Array) => {
      const b = new Float32Array(capacity * this.m);
      b.set(a);
      return b;
    };
    this.sparseZ = this.sparseZ.map(widen);
    this.sparseN = this.sparseN.map(widen);
  }
}

export function softmax(logits: readonly number[]): number[] {
  let max = -Infinity;
  for (const v of logits) if (v > max) max = v;
  const e = logits.map((v) => Math.exp(v - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

/** The byte format of `PersonalModel.serialize()`: see format.ts. */
export const PERSONAL_MODEL_FORMAT = Object.freeze({
  /**
   * Names the family: every version starts with the magic and its version number and ends with a
   * CRC-32, and readers take every version they know; so a stored model's content type need not
   * change with the layout inside.
   */
  contentType: 'application/vnd.aimass.personal-model.v1',
  magic: 'AMPM',
  /** What `serialize()` writes. */
  version: CURRENT_FORMAT_VERSION,
  /** What `deserialize()` reads. */
  readableVersions: READABLE_FORMAT_VERSIONS,
});
