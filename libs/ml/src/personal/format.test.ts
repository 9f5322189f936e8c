import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../models/random.js';
import { LEARNER_OPTION_KEYS, crc32, decodePersonalModel, encodeV2, fromHalf, toHalf, type PersonalModelState } from './format.js';
import { LOGIT_CLIP, PERSONAL_MODEL_FORMAT, PersonalModel, PersonalModelFormatError, serializedSize, type PersonalModelInput, type PersonalPrediction } from './learner.js';
import { EMBEDDING_DIM, syntheticWorld } from './testing/synthetic.js';

const SHAPE = { classes: 2, embeddingDim: EMBEDDING_DIM, sparseDimension: 2 ** 16 };

function trained(examples: number, seed = 9): PersonalModel {
  const world = syntheticWorld(seed);
  return PersonalModel.create(SHAPE).train(Array.from({ length: examples }, () => world.item()).map((t) => ({ ...t, label: t.crowdLabel })));
}

/** The model's state as the encoder sees it (the learner keeps it private). */
function stateOf(model: PersonalModel): PersonalModelState {
  return { ...decodePersonalModel(model.serialize({ formatVersion: 1 })), learner: LEARNER_OPTION_KEYS.map((k) => model.options[k]) };
}

/** Largest |Δ| over the standalone and correction logits of two predictions. */
function maxDelta(a: PersonalPrediction, b: PersonalPrediction): number {
  let d = 0;
  for (let k = 0; k < a.logits.length; k++) d = Math.max(d, Math.abs(a.logits[k]! - b.logits[k]!), Math.abs(a.correctionLogits[k]! - b.correctionLogits[k]!));
  return d;
}

/** The error deserialize throws, or undefined when it returned a model. */
function errorOf(bytes: Uint8Array): unknown {
  try {
    PersonalModel.deserialize(bytes);
    return undefined;
  } catch (err) {
    return err;
  }
}

/** Replaces the CRC so a corruption reaches the structural checks behind the checksum. */
function withValidCrc(bytes: Uint8Array): Uint8Array {
  const out = bytes.slice();
  new DataView(out.buffer).setUint32(out.length - 4, crc32(out.subarray(0, out.length - 4)), true);
  return out;
}

interface Fixture {
  binary: { bytes: string; exampleCount: number; usedCoordinates: number; probes: PersonalModelInput[]; predictions: PersonalPrediction[] };
  threeClass: { bytes: string; probes: PersonalModelInput[]; predictions: PersonalPrediction[] };
}
/** Written by the format-v1 serializer before format v2 existed (see the fixture's note). */
const fixture = JSON.parse(readFileSync(new URL('./testing/fixtures/model-v1.json', import.meta.url), 'utf8')) as Fixture;
const fromBase64 = (b: string) => new Uint8Array(Buffer.from(b, 'base64'));

describe('float16', () => {
  it('round-trips every finite half and rounds to nearest, ties to even', () => {
    // Plain comparisons in the loops (an expect per value would take seconds); the mismatches are asserted at the end.
    const wrong: string[] = [];
    for (let h = 0; h < 0x10000; h++) {
      const v = fromHalf(h);
      if (Number.isNaN(v)) {
        if (!Number.isNaN(fromHalf(toHalf(v)))) wrong.push(`NaN ${h}`);
        continue;
      }
      if (toHalf(v) !== h) wrong.push(`round trip ${h}`);
      // Halfway to the next half (same sign, larger magnitude): ties go to the even pattern.
      if ((h & 0x7fff) < 0x7bff) {
        const next = fromHalf(h + 1);
        const mid = (v + next) / 2;
        if (toHalf(mid) !== (h & 1 ? h + 1 : h)) wrong.push(`tie above ${h}`);
        if (toHalf(mid + (next - v) / 64) !== h + 1) wrong.push(`above the tie of ${h}`);
        if (toHalf(mid - (next - v) / 64) !== h) wrong.push(`below the tie of ${h}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('is the nearest half for random values across the whole range', () => {
    const random = seededRandom(3);
    const wrong: number[] = [];
    for (let i = 0; i < 20_000; i++) {
      const v = Math.fround((random.next() - 0.5) * 2 ** Math.floor(random.next() * 50 - 30));
      const h = toHalf(v);
      const got = fromHalf(h);
      if (Math.abs(v) >= 65520) {
        if (Math.abs(got) !== Infinity) wrong.push(v);
        continue;
      }
      // No other half is closer.
      for (const other of [h - 1, h + 1]) if ((other & 0x7c00) !== 0x7c00 && other >= 0 && Math.abs(fromHalf(other) - v) < Math.abs(got - v)) wrong.push(v);
      // Relative error of a normal half is at most 2^-11.
      if (Math.abs(v) >= 2 ** -14 && Math.abs(got - v) > Math.abs(v) * 2 ** -11) wrong.push(v);
    }
    expect(wrong).toEqual([]);
  });

  it('handles the edges: subnormals, overflow, signed zero, infinities', () => {
    expect(toHalf(2 ** -24)).toBe(0x0001);
    expect(toHalf(2 ** -25)).toBe(0x0000); // a tie: to even (zero)
    expect(toHalf(2 ** -25 * 1.01)).toBe(0x0001);
    expect(toHalf(65504)).toBe(0x7bff);
    expect(toHalf(65519)).toBe(0x7bff);
    expect(toHalf(65520)).toBe(0x7c00);
    expect(toHalf(-0)).toBe(0x8000);
    expect(toHalf(-Infinity)).toBe(0xfc00);
    expect(fromHalf(0x3c00)).toBe(1);
    expect(fromHalf(0xc000)).toBe(-2);
  });
});

describe('format v2', () => {
  it('round-trips canonically: reading and writing again gives the same bytes', () => {
    for (const n of [0, 1, 5, 40]) {
      const bytes = trained(n).serialize();
      expect(PersonalModel.deserialize(bytes).serialize()).toEqual(bytes);
    }
    const three = PersonalModel.create({ classes: 3, embeddingDim: 2, sparseDimension: 16 });
    for (let i = 0; i < 10; i++) for (const c of [0, 1, 2]) three.update({ generalLogits: [0, 0, 0], embedding: [1, 0], sparse: { indices: [c], values: [1] }, label: c });
    const bytes = three.serialize();
    expect(PersonalModel.deserialize(bytes).serialize()).toEqual(bytes);
  });

  it('predicts within 5e-3 of the model it was written from (float16 z and n)', () => {
    const model = trained(60);
    const back = PersonalModel.deserialize(model.serialize());
    const world = syntheticWorld(77);
    let worst = 0;
    for (let i = 0; i < 200; i++) {
      const t = world.item();
      worst = Math.max(worst, maxDelta(model.predict(t), back.predict(t)));
    }
    // The synthetic embedding is very telling, so its dense z are large: the real-mail test (format.mail.test.ts) sees ~3e-3.
    expect(worst).toBeLessThan(5e-3);
    expect(back.exampleCount).toBe(60);
    expect(back.usedCoordinates).toBe(model.usedCoordinates);
    expect(back.shape()).toEqual(model.shape());
  });

  it('continues training deterministically from stored bytes', () => {
    const bytes = trained(20).serialize();
    const a = PersonalModel.deserialize(bytes);
    const b = PersonalModel.deserialize(bytes);
    const world = syntheticWorld(5);
    const more = Array.from({ length: 10 }, () => world.item()).map((t) => ({ ...t, label: t.crowdLabel }));
    expect(a.train(more).serialize()).toEqual(b.train(more).serialize());
    expect(a.exampleCount).toBe(30);
  });

  it('stores a fresh model in about a hundred bytes and young models several times smaller than v1', () => {
    const fresh = PersonalModel.create({ classes: 2, embeddingDim: 64, sparseDimension: 2 ** 20 });
    // 41 bytes of shape and state, 88 of learner options.
    expect(fresh.serialize().length).toBeLessThan(136);
    expect(fresh.serialize({ formatVersion: 1 }).length).toBe(1100);
    for (const n of [5, 20, 60]) {
      const model = trained(n);
      const v2 = model.serialize().length;
      // Synthetic senders reuse a 30-word vocabulary, so coordinates share fewer histories than
      // in real mail (format.mail.test.ts): 23–36 % of v1 here.
      expect(v2).toBeLessThan(0.4 * model.serialize({ formatVersion: 1 }).length);
    }
  });

  it('shares one tuple between coordinates with the same history (the palette)', () => {
    // One example of 300 words: every word coordinate has the same z and n in both heads.
    const model = PersonalModel.create({ classes: 2, embeddingDim: 0, sparseDimension: 2 ** 20 });
    const indices = Array.from({ length: 300 }, (_, i) => i * 3000 + 7);
    model.update({ generalLogits: [0, 1], embedding: [], sparse: { indices, values: indices.map(() => Math.fround(1 / Math.sqrt(300))) }, label: 0 });
    const raw = encodeV2(stateOf(model), { deflate: false });
    // 300 two-byte index gaps and 300 one-byte references, one 8-byte tuple, a header with the
    // learner options (88 bytes) and the dense part.
    expect(raw.length).toBeLessThan(300 * 3 + 8 + 80 + 88);
    expect(PersonalModel.deserialize(raw).serialize()).toEqual(model.serialize());
  });

  it('keeps very large z and n finite with a per-column power-of-two scale', () => {
    const model = PersonalModel.create({ classes: 2, embeddingDim: 2, sparseDimension: 64 });
    const ex = (label: number, weight: number) => ({ generalLogits: [0, 0], embedding: [1, 1], sparse: { indices: [3, 9], values: [1, 0.5] }, label, weight });
    // Weighted examples push n (Σ g²) far beyond float16's 65,504.
    for (let i = 0; i < 20; i++) model.update(ex(i % 4 === 0 ? 0 : 1, 5e4));
    const v1 = PersonalModel.deserialize(model.serialize({ formatVersion: 1 }));
    expect(Math.max(...Array.from(stateOf(v1).sparseN[0]!))).toBeGreaterThan(1e9);
    const bytes = model.serialize();
    const back = PersonalModel.deserialize(bytes);
    expect(back.serialize()).toEqual(bytes);
    const state = stateOf(back);
    for (const a of [...state.denseZ, ...state.denseN, ...state.sparseZ, ...state.sparseN]) for (const v of a) expect(Number.isFinite(v)).toBe(true);
    const p = model.predict(ex(0, 1));
    const q = back.predict(ex(0, 1));
    expect(Math.abs(q.logits[1]! - p.logits[1]!)).toBeLessThanOrEqual(Math.abs(p.logits[1]!) * 2e-3 + 1e-6);
  });

  it('stores extreme header values exactly (varints up to 2^53 − 1, indices up to 2^32 − 2)', () => {
    const model = PersonalModel.create({ classes: 2, embeddingDim: 0, sparseDimension: 0xffffffff });
    for (let i = 0; i < 3; i++) model.update({ generalLogits: [0, 0], embedding: [], sparse: { indices: [0, 0xfffffffe], values: [1, 1] }, label: 1 });
    model.exampleCount = Number.MAX_SAFE_INTEGER;
    const back = PersonalModel.deserialize(model.serialize());
    expect(back.exampleCount).toBe(Number.MAX_SAFE_INTEGER);
    expect(back.sparseDimension).toBe(0xffffffff);
    expect(back.usedCoordinates).toBe(2);
    expect(back.predict({ generalLogits: [0, 0], embedding: [], sparse: { indices: [0xfffffffe], values: [1] } }).logits[1]).toBeGreaterThan(0);
  });

  it('is never larger than format v1 (serializedSize is an upper bound)', () => {
    const random = seededRandom(17);
    for (let i = 0; i < 20; i++) {
      const classes = 2 + Math.floor(random.next() * 3);
      const model = PersonalModel.create({ classes, embeddingDim: Math.floor(random.next() * 8), sparseDimension: 2 ** 20 });
      for (let e = 0; e < 1 + Math.floor(random.next() * 6); e++) {
        const indices = [...new Set(Array.from({ length: 1 + Math.floor(random.next() * 40) }, () => Math.floor(random.next() * 2 ** 20)))].sort((a, b) => a - b);
        model.update({
          generalLogits: Array.from({ length: classes }, () => random.normal()),
          embedding: Array.from({ length: model.embeddingDim }, () => random.normal()),
          // Distinct random values: the palette cannot share anything.
          sparse: { indices, values: indices.map(() => random.normal()) },
          label: Math.floor(random.next() * classes),
        });
      }
      const bytes = model.serialize();
      expect(bytes.length).toBeLessThanOrEqual(serializedSize(classes, model.embeddingDim, model.usedCoordinates));
      expect(PersonalModel.deserialize(bytes).serialize()).toEqual(bytes);
    }
  });

  it('writes format v1 on request, exactly', () => {
    const model = trained(15);
    const v1 = model.serialize({ formatVersion: 1 });
    expect(v1.length).toBe(serializedSize(2, EMBEDDING_DIM, model.usedCoordinates));
    expect(v1[4]).toBe(1);
    const back = PersonalModel.deserialize(v1);
    const world = syntheticWorld(4);
    for (let i = 0; i < 20; i++) {
      const t = world.item();
      expect(back.predict(t)).toEqual(model.predict(t));
    }
    expect(() => model.serialize({ formatVersion: 5 as 4 })).toThrow(/formatVersion/);
  });

  it('announces itself: magic, version, readable versions', () => {
    const bytes = trained(1).serialize();
    expect(new TextDecoder().decode(bytes.subarray(0, 4))).toBe(PERSONAL_MODEL_FORMAT.magic);
    expect(bytes[4]! | (bytes[5]! << 8)).toBe(PERSONAL_MODEL_FORMAT.version);
    expect(PERSONAL_MODEL_FORMAT.version).toBe(4);
    expect(PERSONAL_MODEL_FORMAT.readableVersions).toEqual([1, 2, 3, 4]);
  });
});

describe('format v1 written by the old code path', () => {
  // v1 does not store the learner options: it is read with those it was written with (the
  // defaults of the time), as personal-model reads it with its configured options.
  // Header coordinates then learnt at the word rate, the correction's offset and logit feature were
  // clipped only at LOGIT_CLIP, and every confirmation trained the correction.
  const V1_OPTIONS = { alpha: 1, l1: 0.5, correctionDenseAlpha: 0.05, headerAlpha: 1, correctionOffsetClip: LOGIT_CLIP, correctionLogitClip: LOGIT_CLIP, confirmationWeight: 1 };

  it('loads and predicts exactly as before the upgrade (binary and three classes)', () => {
    const binary = PersonalModel.deserialize(fromBase64(fixture.binary.bytes), V1_OPTIONS);
    expect(binary.exampleCount).toBe(fixture.binary.exampleCount);
    expect(binary.usedCoordinates).toBe(fixture.binary.usedCoordinates);
    fixture.binary.probes.forEach((t, i) => expect(binary.predict(t)).toEqual(fixture.binary.predictions[i]));
    const three = PersonalModel.deserialize(fromBase64(fixture.threeClass.bytes), V1_OPTIONS);
    fixture.threeClass.probes.forEach((t, i) => expect(three.predict(t)).toEqual(fixture.threeClass.predictions[i]));
    // And writes the same v1 bytes back.
    expect(binary.serialize({ formatVersion: 1 })).toEqual(fromBase64(fixture.binary.bytes));
  });

  it('upgrades to v2 on the next write: predictions within 1e-3, training goes on', () => {
    const v1 = fromBase64(fixture.binary.bytes);
    const v2 = PersonalModel.deserialize(v1, V1_OPTIONS).serialize();
    expect(v2.length).toBeLessThan(v1.length / 3);
    const upgraded = PersonalModel.deserialize(v2);
    fixture.binary.probes.forEach((t, i) => expect(maxDelta(upgraded.predict(t), fixture.binary.predictions[i]!)).toBeLessThan(1e-3));
    upgraded.update({ ...fixture.binary.probes[0]!, label: 0 });
    expect(upgraded.exampleCount).toBe(fixture.binary.exampleCount + 1);
  });
});

describe('corrupt bytes', () => {
  const v2 = trained(25).serialize();
  const v2Stored = encodeV2(stateOf(trained(25)), { deflate: false });
  const v1 = fromBase64(fixture.binary.bytes);

  const expectFormatError = (bytes: Uint8Array) => {
    const err = errorOf(bytes);
    expect(err).toBeInstanceOf(PersonalModelFormatError);
    return (err as Error).message;
  };

  it('rejects every truncation, naming it', () => {
    for (const bytes of [v2, v2Stored, v1]) {
      const wrong: string[] = [];
      for (let n = 0; n < bytes.length; n++) {
        const err = errorOf(bytes.subarray(0, n));
        if (!(err instanceof PersonalModelFormatError) || (n >= 60 && !/truncated|checksum/.test(err.message))) wrong.push(`${n}: ${String(err)}`);
      }
      expect(wrong).toEqual([]);
    }
    expect(expectFormatError(v2.subarray(0, v2.length - 1))).toMatch(/truncated/);
    expect(expectFormatError(v2.subarray(0, 10))).toMatch(/truncated/);
  });

  it('rejects extended bytes', () => {
    for (const bytes of [v2, v2Stored, v1]) expect(expectFormatError(new Uint8Array([...bytes, 0]))).toMatch(/trailing bytes/);
  });

  it('rejects random bit flips (the checksum), whichever the version', () => {
    const random = seededRandom(41);
    for (const bytes of [v2, v2Stored, v1]) {
      for (let i = 0; i < 400; i++) {
        const corrupt = bytes.slice();
        const flips = 1 + Math.floor(random.next() * 3);
        for (let f = 0; f < flips; f++) corrupt[Math.floor(random.next() * corrupt.length)]! ^= 1 << Math.floor(random.next() * 8);
        if (corrupt.every((b, j) => b === bytes[j])) continue;
        expectFormatError(corrupt);
      }
    }
  });

  it('behind a valid checksum, corrupt structure is a format error or a valid model, never a crash', () => {
    const random = seededRandom(43);
    let rejected = 0;
    let trials = 0;
    for (const bytes of [v2, v2Stored, v1]) {
      for (let i = 0; i < 150; i++) {
        const corrupt = bytes.slice(0, bytes.length);
        const at = 4 + Math.floor(random.next() * (corrupt.length - 8));
        corrupt[at] = Math.floor(random.next() * 256);
        const err = errorOf(withValidCrc(corrupt));
        trials++;
        if (err === undefined) {
          // It decoded: then it is a model with finite state that works.
          const model = PersonalModel.deserialize(withValidCrc(corrupt));
          expect(() => model.serialize()).not.toThrow();
        } else {
          expect(err).toBeInstanceOf(PersonalModelFormatError);
          rejected++;
        }
      }
    }
    // Most of them are caught by the structure itself (lengths, varints, float16 patterns, deflate).
    expect(rejected).toBeGreaterThan(trials / 10);
  });

  it('names what is wrong', () => {
    expect(expectFormatError(new TextEncoder().encode('{"not":"a model"}'.padEnd(100)))).toMatch(/magic/);
    const future = v2.slice();
    future[4] = 9;
    expect(expectFormatError(future)).toMatch(/format version 9 is not supported \(this build reads 1, 2, 3, 4\)/);
    const codec = v2.slice();
    codec[7] = 7;
    expect(expectFormatError(withValidCrc(codec))).toMatch(/codec 7/);
    const shape = v2.slice();
    shape[8] = 3; // classes 2 → 3
    expect(expectFormatError(shape)).toMatch(/checksum/);
    expect(expectFormatError(withValidCrc(shape))).toMatch(/body|does not fit|inflate/);
    // State no learner produces, written by the encoder: the reader checks every value.
    const nan = stateOf(trained(5));
    nan.sparseZ[1]![0] = Number.NaN;
    expect(expectFormatError(encodeV2(nan))).toMatch(/invalid sparse z value NaN/);
    const negative = stateOf(trained(5));
    negative.denseN[0]![3] = -1;
    expect(expectFormatError(encodeV2(negative))).toMatch(/invalid dense n value: negative/);
    expect(expectFormatError('not bytes' as unknown as Uint8Array)).toMatch(/Uint8Array/);
  });
});

describe('learner options stored with the model', () => {
  it('predicts and learns after a round trip as it did, whatever options the reader passes', () => {
    const custom = { alpha: 2, correctionDenseAlpha: 0.3, l1: 0.25 };
    const model = PersonalModel.create({ classes: 2, embeddingDim: 4, sparseDimension: 1024 }, custom);
    const example = { generalLogits: [0, 2], embedding: [0.1, 0.2, 0.3, 0.4], sparse: { indices: [3, 99], values: [1, 1] }, label: 0 };
    for (let i = 0; i < 5; i++) model.update(example);
    const bytes = model.serialize();
    const plain = PersonalModel.deserialize(bytes);
    const back = PersonalModel.deserialize(bytes, { alpha: 0.1, l1: 5 });
    expect(back.options).toEqual(model.options);
    expect(back.predict(example)).toEqual(plain.predict(example));
    back.update(example);
    plain.update(example);
    expect(back.serialize()).toEqual(plain.serialize());
  });

  it('reads v1 bytes, which have no options, with the options the reader passes', () => {
    const model = PersonalModel.create({ classes: 2, embeddingDim: 0, sparseDimension: 1024 }, { alpha: 2 });
    expect(PersonalModel.deserialize(model.serialize({ formatVersion: 1 }), { alpha: 3 }).options.alpha).toBe(3);
  });
});

describe('format v2 (seven learner options) and v3 (nine) next to v4', () => {
  it('reads v2 with the options then in effect, and writes v2 only for models it can describe', () => {
    const legacy = { alpha: 1.5, headerAlpha: 1.5, correctionOffsetClip: LOGIT_CLIP, correctionLogitClip: LOGIT_CLIP, confirmationWeight: 1 };
    const world = syntheticWorld(19);
    const model = PersonalModel.create({ classes: 2, embeddingDim: EMBEDDING_DIM, sparseDimension: 2 ** 16 }, legacy);
    model.train(Array.from({ length: 20 }, () => world.item()).map((t) => ({ ...t, label: t.crowdLabel })));
    const v2 = model.serialize({ formatVersion: 2 });
    expect(v2[4]).toBe(2);
    expect(v2.length).toBe(model.serialize().length - 32);
    const back = PersonalModel.deserialize(v2);
    expect(back.options).toEqual(model.options);
    expect(back.serialize()).toEqual(model.serialize());
    // A model learning headers faster than words, or tempering its offset, has no v2 form.
    const v4Only = PersonalModel.create({ classes: 2, embeddingDim: EMBEDDING_DIM, sparseDimension: 2 ** 16 });
    expect(() => v4Only.serialize({ formatVersion: 2 })).toThrow(/write v4/);
  });

  it('reads v3 with the options then in effect: it predicts and learns exactly as before', () => {
    // What a v3 model was: tempered offset, its logit feature untempered, confirmations trained fully.
    const v3Options = { correctionLogitClip: LOGIT_CLIP, confirmationWeight: 1 };
    const world = syntheticWorld(23);
    const items = Array.from({ length: 40 }, () => world.item());
    const model = PersonalModel.create({ classes: 2, embeddingDim: EMBEDDING_DIM, sparseDimension: 2 ** 16 }, v3Options);
    model.train(items.slice(0, 30).map((t) => ({ ...t, label: t.crowdLabel })));
    const v3 = model.serialize({ formatVersion: 3 });
    expect(v3[4]).toBe(3);
    expect(v3.length).toBe(model.serialize().length - 16);
    // Read without options (as personal-model reads a stored model), whatever the current defaults.
    const back = PersonalModel.deserialize(v3);
    expect(back.options).toEqual(model.options);
    expect(back.options).toMatchObject(v3Options);
    expect(back.serialize({ formatVersion: 3 })).toEqual(v3);
    // Training goes on as it would have: same state as the in-memory model after the same examples
    // (the in-memory one passed through the same float16 rounding first).
    const rounded = PersonalModel.deserialize(model.serialize());
    for (const t of items.slice(30)) {
      back.update({ ...t, label: t.crowdLabel });
      rounded.update({ ...t, label: t.crowdLabel });
    }
    expect(back.serialize({ formatVersion: 3 })).toEqual(rounded.serialize({ formatVersion: 3 }));
    // The current defaults have no v3 form.
    const v4Only = PersonalModel.create({ classes: 2, embeddingDim: EMBEDDING_DIM, sparseDimension: 2 ** 16 });
    expect(() => v4Only.serialize({ formatVersion: 3 })).toThrow(/write v4/);
  });
});
