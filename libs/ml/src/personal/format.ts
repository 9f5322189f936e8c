/**
 * The stored form of a personal model (`PersonalModel.serialize` / `deserialize`).
 *
 * A million users' models sit in the store, so bytes per model are what this file is about.
 * Format v1 wrote the learner's float32 state as it is: 1,100 bytes + 20 bytes per sparse
 * coordinate (a uint32 index and z, n for each of the two heads). Format v2 (written since) keeps
 * the same state in a fifth to a sixth of that for young models and under a third at the
 * 4,096-coordinate budget (measured on corpus mails, see the README), through four steps:
 *
 * 1. **float16 z and n.** The learner computes in float64 and keeps float32; float16 (11
 *    significant bits) moves a weight by at most 2^-11 of its z divided by the rate denominator
 *    (≥ 2 with the default β, λ2), which is |Δ logit| < 4e-3 on corpus mail, mostly from the dense
 *    coordinates (tested < 1e-2); n only enters through √n. The dense part is float16 as well:
 *    float32 would cost ~500 bytes a model (+14 % at 10 examples) for nothing measurable. A power-of-two scale per stored column (not needed below ~32k examples,
 *    then exact) keeps large z and n of very long-lived models finite instead of overflowing
 *    float16's 65,504. Halves the values.
 * 2. **Sorted indices as varint deltas.** A model's indices are spread over 2^20 hashed
 *    coordinates; the gaps take 1–2 bytes instead of 4.
 * 3. **A palette of (z, n) tuples.** Two coordinates that saw the same examples with the same
 *    feature values have bit-identical FTRL state in both heads (the update of a coordinate depends
 *    only on its own state, the example's gradient and its feature value). Binary word features of
 *    one mail all have the value 1/√words, and a sender's address, domain and organisation domain
 *    always come together, so most coordinates share their tuple with others: after 10 feedback
 *    examples ~1,070 coordinates hold ~115 distinct tuples, after 50 ~3,800 hold ~950. Each
 *    distinct tuple is stored once, most used first, and each coordinate names its tuple with a
 *    varint (one byte for the 128 most used). Lossless on top of step 1.
 * 4. **deflate** (raw, zlib) over the body when it shrinks it: the float16 values are far from
 *    random (shared exponents, many tiny correction-head values that round to 0), worth 18–35 %
 *    more; a stored body otherwise. Inflating a capped model takes ~0.15 ms.
 *
 * Not done: an 8-bit z or n (estimated, not built: a step of a few % of |z| near λ1 would move a
 * sender's weight by ~1e-2 on its own) and one n for both heads (it would change learning: the
 * correction head's gradients are ~0 wherever the general model is right, so in young models its n
 * is orders of magnitude below the standalone head's, median ratio 1e-11 after 10 examples, and a
 * shared n would shrink its steps with the standalone head's errors).
 *
 * Every version starts with magic "AMPM" and a u16 version and ends with a CRC-32 of all that
 * precedes it; v1 stays readable, so stored models survive the upgrade. v3 and v4 add learner
 * options (v2 → v3: headerAlpha, correctionOffsetClip; v3 → v4: correctionLogitClip,
 * confirmationWeight); an older model is read with the values that were in effect when it was
 * written, so it predicts and learns as before. Anything that is not an
 * intact model (truncated, extended, flipped bits, another format, a future version) throws
 * `PersonalModelFormatError` saying which, never a crash or a silently wrong model.
 */
import * as zlib from 'node:zlib';

/** Thrown by `PersonalModel.deserialize` for bytes that are not an intact model. */
export class PersonalModelFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PersonalModelFormatError';
  }
}

/** A model's learner state in index order: what a format stores. */
export interface PersonalModelState {
  classes: number;
  embeddingDim: number;
  sparseDimension: number;
  embeddingScale: number;
  logitScale: number;
  exampleCount: number;
  /** Per head, (E + K) · (K − 1) values, [coordinate · (K − 1) + k]. */
  denseZ: Float32Array[];
  denseN: Float32Array[];
  /** Strictly increasing, each below sparseDimension. */
  sparseIndex: Uint32Array;
  /** Per head, S · (K − 1) values, [slot · (K − 1) + k], slots in index order. */
  sparseZ: Float32Array[];
  sparseN: Float32Array[];
  /**
   * The FTRL hyper-parameters the state was trained with, in LEARNER_OPTION_KEYS order. Weights are
   * derived from z and n through them, so they belong to the model like its shape: a model read
   * back predicts and learns as it did, whatever the reader's configuration. Absent in v1.
   */
  learner?: readonly number[] | undefined;
}

/**
 * The learner options format v4 stores, in order (float64 each, so a model read back learns exactly
 * as before). Format v2 stored the first seven, v3 the first nine; the last two came with v4.
 */
export const LEARNER_OPTION_KEYS = [
  'alpha',
  'beta',
  'l1',
  'denseAlpha',
  'correctionDenseAlpha',
  'denseL1',
  'l2',
  'headerAlpha',
  'correctionOffsetClip',
  'correctionLogitClip',
  'confirmationWeight',
] as const;
const V2_LEARNER_OPTIONS = 7;
const V3_LEARNER_OPTIONS = 9;

/** General logit differences beyond this carry no more information and would dominate a step. */
export const LOGIT_CLIP = 20;

/**
 * What a v3 model's missing options were in effect: the correction head read the general logit
 * differences clipped at LOGIT_CLIP, and every confirmation trained it fully. Reading them this way
 * keeps a v3 model's predictions and training exactly as they were.
 */
function v3LearnerOptions(nine: number[]): number[] {
  return [...nine, LOGIT_CLIP, 1];
}

/**
 * What a v2 model's missing options were in effect: header coordinates learnt at the word rate α,
 * the correction head's offset clipped only at LOGIT_CLIP, and v3's missing options.
 */
function v2LearnerOptions(seven: number[]): number[] {
  return v3LearnerOptions([...seven, seven[0]!, LOGIT_CLIP]);
}

/** The options a model written as `version` (2, 3 or 4) is read with, from those it stores. */
function learnerOptionsOf(version: number, stored: number[]): number[] {
  return version === V2 ? v2LearnerOptions(stored) : version === V3 ? v3LearnerOptions(stored) : stored;
}

/** How many learner options format `version` (2, 3 or 4) stores. */
function storedLearnerOptions(version: number): number {
  return version === V2 ? V2_LEARNER_OPTIONS : version === V3 ? V3_LEARNER_OPTIONS : LEARNER_OPTION_KEYS.length;
}

export const HEADS = 2;
const MAGIC = Uint8Array.of(0x41, 0x4d, 0x50, 0x4d); // "AMPM"
const V1 = 1;
const V2 = 2;
const V3 = 3;
const V4 = 4;
export const CURRENT_FORMAT_VERSION = V4;
export const READABLE_FORMAT_VERSIONS: readonly number[] = Object.freeze([V1, V2, V3, V4]);
const V1_HEADER_BYTES = 40;
/** magic, version (u16), heads (u8), codec (u8). */
const V2_FIXED_BYTES = 8;
const CODEC_STORED = 0;
const CODEC_DEFLATE = 1;
/** Per head: dense z, dense n, sparse z, sparse n. */
const COLUMNS = 4 * HEADS;
/** 65,504 · 2^112 is just inside float32's range: every finite float32 state value fits. */
const MAX_EXPONENT = 112;
/** The format is little-endian; on such hosts v1's sections are copied in bulk. */
const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/**
 * Bytes of a model in format v1 (float32 state): header, per head dense z and n ((E + K) · (K − 1)
 * each), sparse indices (S), per head sparse z and n (S · (K − 1) each), CRC-32. Also what a
 * loaded model's arrays occupy, and an upper bound of what format v2 writes for the same shape.
 */
export function serializedSize(classes: number, embeddingDim: number, sparseCoordinates: number): number {
  const m = classes - 1;
  const denseDim = embeddingDim + m + 1;
  return V1_HEADER_BYTES + HEADS * 2 * denseDim * m * 4 + sparseCoordinates * 4 + HEADS * 2 * sparseCoordinates * m * 4 + 4;
}

// -- format v2 ----------------------------------------------------------------------------------

/**
 * Format v2, v3 and v4, little-endian (they differ only in how many learner options they store:
 * v2 seven, v3 nine, v4 eleven):
 *
 * ```
 * "AMPM" | u16 version = 2, 3 or 4 | u8 heads = 2 | u8 codec (0 stored, 1 deflate-raw)
 * varint K, E, sparse dimension, S (sparse coordinates), P (palette tuples), example count,
 *        raw body length, stored body length
 * f32 embedding scale | f32 logit scale
 * f64 × 7 (v2), 9 (v3) or 11 (v4) learner options (alpha, beta, l1, denseAlpha, correctionDenseAlpha,
 *        denseL1, l2; v3: headerAlpha, correctionOffsetClip; v4: correctionLogitClip, confirmationWeight)
 * body (raw, or deflated) | u32 CRC-32 of everything before it
 *
 * raw body:
 *   u8 exponent per column: per head dense z, dense n; then per head sparse z, sparse n
 *   per head: dense z, dense n            float16 × (E + K)·(K − 1) each
 *   sparse indices                        varint × S: the first index, then gaps − 1
 *   palette                               P tuples of float16: per head z[K − 1], n[K − 1]
 *   tuple of each coordinate              varint × S: palette position (most used first)
 * ```
 *
 * A float16 v of a column with exponent e stands for v · 2^e; e is the smallest e ≥ 0 that keeps
 * the column's largest value finite (0 below ~32k examples). Varints are unsigned LEB128,
 * minimal. The encoding is canonical: `serialize(deserialize(b))` gives `b` back.
 */
export function encodeV2(state: PersonalModelState, options: { deflate?: boolean; version?: 2 | 3 | 4 } = {}): Uint8Array {
  const version = options.version ?? V4;
  const learnerCount = storedLearnerOptions(version);
  if (state.learner?.length !== LEARNER_OPTION_KEYS.length) throw new RangeError(`format v${version} needs the ${LEARNER_OPTION_KEYS.length} learner options`);
  if (version === V2 && v2LearnerOptions(state.learner.slice(0, V2_LEARNER_OPTIONS)).some((v, i) => v !== state.learner![i])) {
    throw new RangeError(
      'format v2 cannot store headerAlpha ≠ alpha, correctionOffsetClip or correctionLogitClip ≠ LOGIT_CLIP, or confirmationWeight ≠ 1: write v4',
    );
  }
  if (version === V3 && v3LearnerOptions(state.learner.slice(0, V3_LEARNER_OPTIONS)).some((v, i) => v !== state.learner![i])) {
    throw new RangeError('format v3 cannot store correctionLogitClip ≠ LOGIT_CLIP or confirmationWeight ≠ 1: write v4');
  }
  const m = state.classes - 1;
  const used = state.sparseIndex.length;
  const denseLen = state.denseZ[0]!.length;
  const tupleValues = HEADS * 2 * m;

  // Sparse values quantised per column, then grouped into distinct tuples.
  const exponents = new Uint8Array(COLUMNS);
  const sparseColumns: Float32Array[] = [];
  for (let h = 0; h < HEADS; h++) {
    exponents[h * 2] = exponentFor(state.denseZ[h]!, denseLen);
    exponents[h * 2 + 1] = exponentFor(state.denseN[h]!, denseLen);
    exponents[2 * HEADS + h * 2] = exponentFor(state.sparseZ[h]!, used * m);
    exponents[2 * HEADS + h * 2 + 1] = exponentFor(state.sparseN[h]!, used * m);
    sparseColumns.push(state.sparseZ[h]!, state.sparseN[h]!);
  }
  const halves = new Uint16Array(used * tupleValues);
  for (let c = 0; c < sparseColumns.length; c++) {
    const column = sparseColumns[c]!;
    const exponent = exponents[2 * HEADS + c]!;
    const scale = 2 ** -exponent;
    // The usual case (no scaling) converts the float32 bits without a float round trip.
    const bits = exponent === 0 ? new Uint32Array(column.buffer, column.byteOffset, used * m) : undefined;
    for (let s = 0; s < used; s++) {
      for (let k = 0; k < m; k++) halves[s * tupleValues + c * m + k] = bits ? halfOfFloat32Bits(bits[s * m + k]!) : toHalf(column[s * m + k]! * scale);
    }
  }
  const { palette, refs } = buildPalette(halves, used, tupleValues);
  const paletteSize = palette.length;

  const maxRaw = COLUMNS + HEADS * 2 * denseLen * 2 + used * 5 + paletteSize * tupleValues * 2 + used * 5;
  const raw = new Uint8Array(maxRaw);
  let at = 0;
  raw.set(exponents, at);
  at += COLUMNS;
  const putHalves = (a: Float32Array, exponent: number) => {
    const scale = 2 ** -exponent;
    for (let i = 0; i < a.length; i++, at += 2) {
      const h = toHalf(a[i]! * scale);
      raw[at] = h & 0xff;
      raw[at + 1] = h >>> 8;
    }
  };
  for (let h = 0; h < HEADS; h++) {
    putHalves(state.denseZ[h]!, exponents[h * 2]!);
    putHalves(state.denseN[h]!, exponents[h * 2 + 1]!);
  }
  let previous = -1;
  for (let s = 0; s < used; s++) {
    const index = state.sparseIndex[s]!;
    at = putVarint(raw, at, index - previous - 1);
    previous = index;
  }
  for (const tuple of palette) {
    for (let i = 0; i < tupleValues; i++, at += 2) {
      const h = halves[tuple * tupleValues + i]!;
      raw[at] = h & 0xff;
      raw[at + 1] = h >>> 8;
    }
  }
  for (let s = 0; s < used; s++) at = putVarint(raw, at, refs[s]!);
  const body = raw.subarray(0, at);

  let codec = CODEC_STORED;
  let stored: Uint8Array = body;
  if (options.deflate ?? true) {
    const deflated = zlib.deflateRawSync(body, { level: DEFLATE_LEVEL });
    if (deflated.length < body.length) {
      codec = CODEC_DEFLATE;
      stored = deflated;
    }
  }

  const header = new Uint8Array(V2_FIXED_BYTES + 8 * 10 + 8 + 8 * learnerCount);
  header.set(MAGIC, 0);
  header[4] = version & 0xff;
  header[5] = version >>> 8;
  header[6] = HEADS;
  header[7] = codec;
  let h = V2_FIXED_BYTES;
  for (const v of [state.classes, state.embeddingDim, state.sparseDimension, used, paletteSize, state.exampleCount, body.length, stored.length]) h = putVarint(header, h, v);
  const view = new DataView(header.buffer);
  view.setFloat32(h, state.embeddingScale, true);
  view.setFloat32(h + 4, state.logitScale, true);
  h += 8;
  for (const v of state.learner.slice(0, learnerCount)) {
    view.setFloat64(h, v, true);
    h += 8;
  }

  const out = new Uint8Array(h + stored.length + 4);
  out.set(header.subarray(0, h), 0);
  out.set(stored, h);
  new DataView(out.buffer).setUint32(h + stored.length, crc32(out.subarray(0, h + stored.length)), true);
  return out;
}

/**
 * zlib level 1: on model bodies it comes within 1.5 % of level 9 at a fraction of the time (the
 * gain is in the entropy coding of the float16 bytes, not in long matches).
 */
const DEFLATE_LEVEL = 1;

/**
 * Distinct tuples ordered by use count (most used first, ties by first use in index order), so
 * the most common tuples get one-byte references; `refs[s]` is slot s's position in that order.
 * `palette` holds each tuple's first slot. Grouping is an open-addressing hash over the float16
 * words (a Map keyed by strings cost more than the rest of the encoding).
 */
function buildPalette(halves: Uint16Array, used: number, tupleValues: number): { palette: number[]; refs: Uint32Array } {
  let capacity = 16;
  while (capacity < used * 2) capacity *= 2;
  const mask = capacity - 1;
  const table = new Int32Array(capacity).fill(-1);
  const tupleOf = new Uint32Array(used);
  const counts = new Uint32Array(used);
  const first = new Uint32Array(used);
  let paletteSize = 0;
  for (let s = 0; s < used; s++) {
    const base = s * tupleValues;
    let hash = 0x811c9dc5;
    for (let i = 0; i < tupleValues; i++) hash = Math.imul(hash ^ halves[base + i]!, 0x01000193);
    let at = (hash ^ (hash >>> 15)) & mask;
    let t: number;
    for (;;) {
      t = table[at]!;
      if (t < 0) {
        t = paletteSize++;
        table[at] = t;
        first[t] = s;
        break;
      }
      const other = first[t]! * tupleValues;
      let same = true;
      for (let i = 0; i < tupleValues && same; i++) same = halves[other + i] === halves[base + i];
      if (same) break;
      at = (at + 1) & mask;
    }
    counts[t]!++;
    tupleOf[s] = t;
  }
  // A counting sort (counts are at most `used`): stable, so ties keep first-use order.
  let maxCount = 0;
  for (let t = 0; t < paletteSize; t++) if (counts[t]! > maxCount) maxCount = counts[t]!;
  const start = new Uint32Array(maxCount + 2);
  for (let t = 0; t < paletteSize; t++) start[maxCount - counts[t]! + 1]!++;
  for (let c = 1; c <= maxCount + 1; c++) start[c]! += start[c - 1]!;
  const rank = new Uint32Array(paletteSize);
  const palette = new Array<number>(paletteSize);
  for (let t = 0; t < paletteSize; t++) {
    const r = start[maxCount - counts[t]!]!++;
    rank[t] = r;
    palette[r] = first[t]!;
  }
  const refs = new Uint32Array(used);
  for (let s = 0; s < used; s++) refs[s] = rank[tupleOf[s]!]!;
  return { palette, refs };
}

/** The smallest e ≥ 0 with every |v| · 2^-e finite as a float16. */
function exponentFor(values: Float32Array, count: number): number {
  let max = 0;
  for (let i = 0; i < count; i++) {
    const a = Math.abs(values[i]!);
    if (a > max) max = a;
  }
  let e = 0;
  // Rounding cannot carry max · 2^-e back over the limit on the next encode, so this is stable.
  while (toHalf(max * 2 ** -e) >= 0x7c00) {
    if (++e > MAX_EXPONENT) throw new RangeError(`personal model: a state value of ${max} is too large to store`);
  }
  return e;
}

function decodeV2(bytes: Uint8Array, version: number, fail: (why: string) => never): PersonalModelState {
  const heads = bytes[6]!;
  if (heads !== HEADS) fail(`expected ${HEADS} heads, found ${heads}`);
  const codec = bytes[7]!;
  if (codec !== CODEC_STORED && codec !== CODEC_DEFLATE) fail(`unknown body codec ${codec}`);
  const header = new ByteReader(bytes, V2_FIXED_BYTES, bytes.length, fail, 'header');
  const classes = header.varint();
  const embeddingDim = header.varint();
  const sparseDimension = header.varint();
  const used = header.varint();
  const paletteSize = header.varint();
  const exampleCount = header.varint();
  const rawLength = header.varint();
  const storedLength = header.varint();
  const embeddingScale = header.float32();
  const logitScale = header.float32();
  const storedOptions = Array.from({ length: storedLearnerOptions(version) }, () => header.float64());
  if (!storedOptions.every((v) => Number.isFinite(v) && v >= 0)) fail(`invalid learner options ${storedOptions.join(', ')}`);
  const learner = learnerOptionsOf(version, storedOptions);
  const bodyStart = header.at;
  const expected = bodyStart + storedLength + 4;
  if (bytes.length !== expected) fail(`${bytes.length < expected ? 'truncated' : 'trailing bytes'}: ${bytes.length} bytes, the header announces ${expected}`);
  checkCrc(bytes, fail);
  if (classes < 2 || classes > 1024 || embeddingDim > 65536) fail(`implausible shape: ${classes} classes, embedding ${embeddingDim}`);
  if (sparseDimension > 0xffffffff) fail(`implausible sparse dimension ${sparseDimension}`);
  if (used > sparseDimension) fail(`${used} sparse coordinates in a dimension of ${sparseDimension}`);
  if (paletteSize > used || (used > 0 && paletteSize === 0)) fail(`a palette of ${paletteSize} tuples for ${used} sparse coordinates`);
  const m = classes - 1;
  const denseLen = (embeddingDim + m + 1) * m;
  const tupleValues = HEADS * 2 * m;
  const fixed = COLUMNS + HEADS * 2 * denseLen * 2 + paletteSize * tupleValues * 2;
  if (rawLength < fixed + 2 * used || rawLength > fixed + 10 * used) fail(`body length ${rawLength} does not fit ${used} sparse coordinates and ${paletteSize} tuples`);

  const stored = bytes.subarray(bodyStart, bodyStart + storedLength);
  let raw: Uint8Array;
  if (codec === CODEC_STORED) {
    if (storedLength !== rawLength) fail(`stored body of ${storedLength} bytes, the header announces ${rawLength}`);
    raw = stored;
  } else {
    try {
      raw = zlib.inflateRawSync(stored, { maxOutputLength: Math.max(rawLength, 1) });
    } catch (err) {
      return fail(`the deflated body does not inflate (${(err as Error).message})`);
    }
    if (raw.length !== rawLength) fail(`the body inflates to ${raw.length} bytes, the header announces ${rawLength}`);
  }

  const body = new ByteReader(raw, 0, raw.length, fail, 'body');
  const exponents = body.take(COLUMNS);
  for (const e of exponents) if (e > MAX_EXPONENT) fail(`invalid scale exponent ${e}`);
  const readHalves = (out: Float32Array, count: number, exponent: number, what: string, nonNegative: boolean) => {
    const scale = 2 ** exponent;
    const src = body.take(count * 2);
    for (let i = 0; i < count; i++) out[i] = halfValue(src[i * 2]! | (src[i * 2 + 1]! << 8), scale, what, nonNegative, fail);
  };
  const denseZ: Float32Array[] = [];
  const denseN: Float32Array[] = [];
  for (let h = 0; h < HEADS; h++) {
    const z = new Float32Array(denseLen);
    const n = new Float32Array(denseLen);
    readHalves(z, denseLen, exponents[h * 2]!, 'dense z', false);
    readHalves(n, denseLen, exponents[h * 2 + 1]!, 'dense n', true);
    denseZ.push(z);
    denseN.push(n);
  }
  const sparseIndex = new Uint32Array(used);
  let previous = -1;
  for (let s = 0; s < used; s++) {
    const index = previous + 1 + body.varint();
    if (index >= sparseDimension) fail(`sparse index ${index} outside dimension ${sparseDimension}`);
    sparseIndex[s] = index;
    previous = index;
  }
  // Palette values as floats, column-major per head: [z_k..., n_k...] per head.
  const palette = new Float32Array(paletteSize * tupleValues);
  const src = body.take(paletteSize * tupleValues * 2);
  for (let t = 0; t < paletteSize; t++) {
    for (let h = 0; h < HEADS; h++) {
      for (let zn = 0; zn < 2; zn++) {
        const scale = 2 ** exponents[2 * HEADS + h * 2 + zn]!;
        for (let k = 0; k < m; k++) {
          const i = t * tupleValues + (h * 2 + zn) * m + k;
          palette[i] = halfValue(src[i * 2]! | (src[i * 2 + 1]! << 8), scale, zn === 0 ? 'sparse z' : 'sparse n', zn === 1, fail);
        }
      }
    }
  }
  const sparseZ = Array.from({ length: HEADS }, () => new Float32Array(used * m));
  const sparseN = Array.from({ length: HEADS }, () => new Float32Array(used * m));
  for (let s = 0; s < used; s++) {
    const t = body.varint();
    if (t >= paletteSize) fail(`coordinate ${s} names tuple ${t} of a palette of ${paletteSize}`);
    for (let h = 0; h < HEADS; h++) {
      for (let k = 0; k < m; k++) {
        sparseZ[h]![s * m + k] = palette[t * tupleValues + (h * 2) * m + k]!;
        sparseN[h]![s * m + k] = palette[t * tupleValues + (h * 2 + 1) * m + k]!;
      }
    }
  }
  if (body.at !== raw.length) fail(`${raw.length - body.at} unread bytes at the end of the body`);
  return { classes, embeddingDim, sparseDimension, embeddingScale, logitScale, exampleCount, denseZ, denseN, sparseIndex, sparseZ, sparseN, learner };
}

function halfValue(h: number, scale: number, what: string, nonNegative: boolean, fail: (why: string) => never): number {
  if ((h & 0x7c00) === 0x7c00) fail(`invalid ${what} value ${h & 0x3ff ? 'NaN' : 'Infinity'}`);
  if (nonNegative && h & 0x8000) fail(`invalid ${what} value: negative`);
  const v = fromHalf(h) * scale;
  if (!Number.isFinite(Math.fround(v))) fail(`invalid ${what} value: beyond float32`);
  return v;
}

// -- format v1 ----------------------------------------------------------------------------------

/**
 * Format v1, little-endian: magic, version (u16), heads (u16), K, E, sparse dimension, S (u32
 * each), example count (f64), embedding and logit scales (f32); per head dense z and n (f32);
 * sparse indices (u32, increasing); per head sparse z and n (f32); CRC-32. Kept as a writer so a
 * deployment can keep writing what replicas of an older build read until all of them read v2.
 */
export function encodeV1(state: PersonalModelState): Uint8Array {
  const m = state.classes - 1;
  const used = state.sparseIndex.length;
  const size = serializedSize(state.classes, state.embeddingDim, used);
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  bytes.set(MAGIC, 0);
  view.setUint16(4, V1, true);
  view.setUint16(6, HEADS, true);
  view.setUint32(8, state.classes, true);
  view.setUint32(12, state.embeddingDim, true);
  view.setUint32(16, state.sparseDimension, true);
  view.setUint32(20, used, true);
  view.setFloat64(24, state.exampleCount, true);
  view.setFloat32(32, state.embeddingScale, true);
  view.setFloat32(36, state.logitScale, true);
  let at = V1_HEADER_BYTES;
  const put = (a: Float32Array) => {
    // Every section starts at a multiple of 4 in a fresh buffer, so a typed view can write it.
    if (LITTLE_ENDIAN) new Float32Array(bytes.buffer, at, a.length).set(a);
    else for (let i = 0; i < a.length; i++) view.setFloat32(at + i * 4, a[i]!, true);
    at += a.length * 4;
  };
  for (let h = 0; h < HEADS; h++) {
    put(state.denseZ[h]!);
    put(state.denseN[h]!);
  }
  for (let i = 0; i < used; i++) view.setUint32(at + i * 4, state.sparseIndex[i]!, true);
  at += used * 4;
  for (let h = 0; h < HEADS; h++) {
    put(state.sparseZ[h]!.subarray(0, used * m));
    put(state.sparseN[h]!.subarray(0, used * m));
  }
  view.setUint32(at, crc32(bytes.subarray(0, at)), true);
  return bytes;
}

function decodeV1(bytes: Uint8Array, fail: (why: string) => never): PersonalModelState {
  if (bytes.length < V1_HEADER_BYTES + 4) fail(`truncated: ${bytes.length} bytes, a model has at least ${V1_HEADER_BYTES + 4}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint16(6, true) !== HEADS) fail(`expected ${HEADS} heads, found ${view.getUint16(6, true)}`);
  const classes = view.getUint32(8, true);
  const embeddingDim = view.getUint32(12, true);
  const sparseDimension = view.getUint32(16, true);
  const used = view.getUint32(20, true);
  if (classes < 2 || classes > 1024 || embeddingDim > 65536) fail(`implausible shape: ${classes} classes, embedding ${embeddingDim}`);
  const expected = serializedSize(classes, embeddingDim, used);
  if (bytes.length !== expected) fail(`${bytes.length < expected ? 'truncated' : 'trailing bytes'}: ${bytes.length} bytes, the header announces ${expected}`);
  checkCrc(bytes, fail);
  const exampleCount = view.getFloat64(24, true);
  if (!Number.isInteger(exampleCount) || exampleCount < 0) fail(`invalid example count ${exampleCount}`);
  const m = classes - 1;
  const denseLen = (embeddingDim + m + 1) * m;
  let at = V1_HEADER_BYTES;
  const take = (count: number, what: string, nonNegative: boolean): Float32Array => {
    const a = new Float32Array(count);
    if (LITTLE_ENDIAN) {
      // One copy of the section, then a check: a cold load is mostly this.
      new Uint8Array(a.buffer).set(bytes.subarray(at, at + count * 4));
      at += count * 4;
    } else {
      for (let i = 0; i < count; i++, at += 4) a[i] = view.getFloat32(at, true);
    }
    for (let i = 0; i < count; i++) {
      const v = a[i]!;
      if (!Number.isFinite(v) || (nonNegative && v < 0)) fail(`invalid ${what} value ${v}`);
    }
    return a;
  };
  const denseZ: Float32Array[] = [];
  const denseN: Float32Array[] = [];
  for (let h = 0; h < HEADS; h++) {
    denseZ.push(take(denseLen, 'dense z', false));
    denseN.push(take(denseLen, 'dense n', true));
  }
  const sparseIndex = new Uint32Array(used);
  let previous = -1;
  for (let s = 0; s < used; s++, at += 4) {
    const index = view.getUint32(at, true);
    if (index <= previous) fail(`sparse indices not strictly increasing at ${s}`);
    if (index >= sparseDimension) fail(`sparse index ${index} outside dimension ${sparseDimension}`);
    sparseIndex[s] = index;
    previous = index;
  }
  const sparseZ: Float32Array[] = [];
  const sparseN: Float32Array[] = [];
  for (let h = 0; h < HEADS; h++) {
    sparseZ.push(take(used * m, 'sparse z', false));
    sparseN.push(take(used * m, 'sparse n', true));
  }
  return {
    classes,
    embeddingDim,
    sparseDimension,
    embeddingScale: view.getFloat32(32, true),
    logitScale: view.getFloat32(36, true),
    exampleCount,
    denseZ,
    denseN,
    sparseIndex,
    sparseZ,
    sparseN,
  };
}

// -- reading any version ------------------------------------------------------------------------

/** Reads a model in any readable format version; throws `PersonalModelFormatError` on anything else. */
export function decodePersonalModel(bytes: Uint8Array): PersonalModelState {
  const fail = (why: string): never => {
    throw new PersonalModelFormatError(`personal model bytes: ${why}`);
  };
  if (!(bytes instanceof Uint8Array)) fail('expected a Uint8Array');
  if (bytes.length < V2_FIXED_BYTES + 4) fail(`truncated: ${bytes.length} bytes, a model has at least ${V2_FIXED_BYTES + 4}`);
  for (let i = 0; i < MAGIC.length; i++) if (bytes[i] !== MAGIC[i]) fail('bad magic: not a personal model');
  const version = bytes[4]! | (bytes[5]! << 8);
  try {
    if (version === V1) return decodeV1(bytes, fail);
    if (version === V2 || version === V3 || version === V4) return decodeV2(bytes, version, fail);
  } catch (err) {
    if (err instanceof PersonalModelFormatError) throw err;
    // A check missed something: still the caller's "unreadable model", never an arbitrary error.
    return fail(`unreadable (${(err as Error).message})`);
  }
  return fail(`format version ${version} is not supported (this build reads ${READABLE_FORMAT_VERSIONS.join(', ')})`);
}

function checkCrc(bytes: Uint8Array, fail: (why: string) => never): void {
  const end = bytes.length - 4;
  const stored = (bytes[end]! | (bytes[end + 1]! << 8) | (bytes[end + 2]! << 16) | (bytes[end + 3]! << 24)) >>> 0;
  if (crc32(bytes.subarray(0, end)) !== stored) fail('checksum mismatch: the bytes are corrupt');
}

/** Bounds-checked reads; running past the end is a format error, not an exception of the runtime. */
class ByteReader {
  constructor(
    private readonly data: Uint8Array,
    public at: number,
    private readonly end: number,
    private readonly fail: (why: string) => never,
    private readonly what: string,
  ) {}

  /** Unsigned LEB128 up to 2^53 − 1, minimal encoding only (so every value has one encoding). */
  varint(): number {
    let value = 0;
    let scale = 1;
    for (let i = 0; ; i++) {
      if (this.at >= this.end) this.fail(`truncated ${this.what}`);
      const b = this.data[this.at++]!;
      value += (b & 0x7f) * scale;
      if (!(b & 0x80)) {
        if (b === 0 && i > 0) this.fail(`non-minimal varint in the ${this.what}`);
        if (value > Number.MAX_SAFE_INTEGER) this.fail(`varint too large in the ${this.what}`);
        return value;
      }
      if (i >= 7) this.fail(`varint too long in the ${this.what}`);
      scale *= 128;
    }
  }

  take(count: number): Uint8Array {
    if (this.at + count > this.end) this.fail(`truncated ${this.what}`);
    const out = this.data.subarray(this.at, this.at + count);
    this.at += count;
    return out;
  }

  float32(): number {
    const b = this.take(4);
    return new DataView(b.buffer, b.byteOffset, 4).getFloat32(0, true);
  }

  float64(): number {
    const b = this.take(8);
    return new DataView(b.buffer, b.byteOffset, 8).getFloat64(0, true);
  }
}

/** Writes an unsigned LEB128 varint (v an integer in [0, 2^53)) at `at`; returns the end. */
export function putVarint(out: Uint8Array, at: number, v: number): number {
  while (v >= 0x80) {
    out[at++] = (v % 0x80) | 0x80;
    v = Math.floor(v / 0x80);
  }
  out[at++] = v;
  return at;
}

// -- float16 ------------------------------------------------------------------------------------

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/**
 * IEEE 754 binary16 bits of a number, rounded to nearest, ties to even (through float32 first,
 * which is exact for the float32 state and its power-of-two multiples). Overflow gives ±Infinity
 * (0x7c00): the caller's exponent keeps values away from it. Branch-light after F. Giesen's
 * float_to_half_fast3_rtne: in the normal range the rounding is an integer add on the float32
 * bits; below it, adding 0.5 in float32 arithmetic leaves the rounded half in the low bits.
 */
export function toHalf(v: number): number {
  f32[0] = v;
  return halfOfFloat32Bits(u32[0]!);
}

/** `toHalf` of the float32 with these bits: the encoder reads a column's bits directly. */
function halfOfFloat32Bits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const abs = x & 0x7fffffff;
  // ≥ 65520 (rounds to Infinity), Infinity, NaN.
  if (abs >= 0x477ff000) return sign | (abs > 0x7f800000 ? 0x7e00 : 0x7c00);
  if (abs < 0x38800000) {
    // Below 2^-14: subnormal half or zero. 0.5 + |v| rounded to float32 has the half's bits at the bottom.
    u32[0] = abs;
    f32[0] = f32[0]! + 0.5;
    return sign | (u32[0]! - 0x3f000000);
  }
  // Rebias the exponent (127 → 15), round to nearest even on the 13 dropped bits.
  return sign | ((abs - 0x38000000 + 0xfff + ((abs >>> 13) & 1)) >>> 13);
}

/** 2^(e − 25) for the 31 finite binary16 exponents (e = 0: subnormals, 2^-24). */
const HALF_SCALE = Float64Array.from({ length: 32 }, (_, e) => 2 ** (e === 0 ? -24 : e - 25));

/** The number a binary16 bit pattern stands for. */
export function fromHalf(h: number): number {
  const e = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (e === 0x1f) return mant ? Number.NaN : h & 0x8000 ? -Infinity : Infinity;
  const v = (e === 0 ? mant : mant + 1024) * HALF_SCALE[e]!;
  return h & 0x8000 ? -v : v;
}

// -- CRC-32 -------------------------------------------------------------------------------------

const nativeCrc32: ((data: Uint8Array) => number) | undefined = typeof zlib.crc32 === 'function' ? zlib.crc32 : undefined;

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[i] = c >>> 0;
  }
  return table;
})();

/** CRC-32 (IEEE, as zlib): catches a flipped or cut byte a store or a copy may introduce. */
export function crc32(bytes: Uint8Array): number {
  // zlib's (Node >= 20.15) is several times faster than the table; the table is the fallback.
  if (nativeCrc32) return nativeCrc32(bytes) >>> 0;
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
