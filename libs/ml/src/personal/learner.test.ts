import { describe, expect, it } from 'vitest';
import {
  DEFAULT_PERSONAL_LEARNER_OPTIONS,
  PERSONAL_MODEL_FORMAT,
  PersonalModel,
  PersonalModelFormatError,
  PersonalModelInputError,
  crc32,
  serializedSize,
  softmax,
} from './learner.js';
import { EMBEDDING_DIM, syntheticWorld, type SyntheticItem } from './testing/synthetic.js';

const SHAPE = { classes: 2, embeddingDim: EMBEDDING_DIM, sparseDimension: 2 ** 16 };

const generalLabel = (t: SyntheticItem) => (t.generalLogits[1]! > t.generalLogits[0]! ? 1 : 0);
const stackedLabel = (m: PersonalModel, t: SyntheticItem) => (t.generalLogits[1]! - t.generalLogits[0]! + m.predict(t).correctionLogits[1]! > 0 ? 1 : 0);
const errorRate = (items: SyntheticItem[], predicted: (t: SyntheticItem) => number, truth: (t: SyntheticItem) => number) =>
  items.filter((t) => predicted(t) !== truth(t)).length / items.length;

/**
 * The experiment the defaults were chosen on: a user who calls one spam sender's mail ham (one
 * example in three is from that sender), and a neutral user who agrees with the crowd, both fed
 * until 20 mails of that sender were labelled.
 */
function divergentAndNeutral(seed: number) {
  const world = syntheticWorld(seed);
  const flipped = world.domains.find((d) => d.crowdLabel === 1)!.name;
  const divergent = PersonalModel.create(SHAPE);
  const neutral = PersonalModel.create(SHAPE);
  let fromFlipped = 0;
  for (let n = 0; fromFlipped < 20; n++) {
    const item = n % 3 === 0 ? world.item(flipped) : world.item();
    if (item.domain === flipped) fromFlipped++;
    divergent.update({ ...item, label: item.domain === flipped ? 0 : item.crowdLabel });
    neutral.update({ ...item, label: item.crowdLabel });
  }
  const others = Array.from({ length: 400 }, () => world.item()).filter((t) => t.domain !== flipped);
  const ofFlipped = Array.from({ length: 100 }, () => world.item(flipped));
  return { divergent, neutral, others, ofFlipped };
}

describe('PersonalModel learning', () => {
  it('tempers an overconfident general logit only where the user disagrees', () => {
    // A sender the general model is sure is spam (logit 15), labelled ham three times. A sender is
    // two header coordinates here (address and domain, as the featurizer makes them).
    const shape = { classes: 2, embeddingDim: 2, sparseDimension: 1 << 10 };
    const sender = { indices: [(1 << 9) + 5, (1 << 9) + 70], values: [1, 1] };
    const other = { indices: [(1 << 9) + 6, (1 << 9) + 71], values: [1, 1] };
    const model = PersonalModel.create(shape);
    const at = (sparse: { indices: number[]; values: number[] }, g: number) => ({ generalLogits: [0, g], embedding: [1, 0], sparse });
    // Fresh: exactly no correction, however confident the general model is.
    expect(model.predict(at(sender, 15)).correctionLogits).toEqual([0, 0]);
    for (let i = 0; i < 3; i++) model.update({ ...at(sender, 15), label: 0 });
    const flipped = model.predict(at(sender, 15));
    // Stacked logit = tempered general (clipped to ±3) + the head: below 0, so the answer is ham.
    expect(15 + flipped.correctionLogits[1]!).toBeLessThan(0);
    expect(15 + flipped.correctionLogits[1]!).toBeGreaterThan(-3 - 10);
    // Another sender the user has not labelled keeps the general answer and most of its confidence.
    const kept = model.predict(at(other, 15));
    expect(15 + kept.correctionLogits[1]!).toBeGreaterThan(10);
    // Without tempering (the offset clipped at LOGIT_CLIP only) three labels are not enough.
    const untempered = PersonalModel.create(shape, { correctionOffsetClip: 20 });
    for (let i = 0; i < 3; i++) untempered.update({ ...at(sender, 15), label: 0 });
    expect(15 + untempered.predict(at(sender, 15)).correctionLogits[1]!).toBeGreaterThan(0);
  });

  it('confirmations of the general answer leave the correction at exactly zero; they only restrain it', () => {
    // A user who only ever confirms what the general model says (a neutral user's feedback when the
    // general model is right): the tempered answer (p ≈ 0.95) makes each confirmation look like a
    // small error, but it is no evidence against the general answer, so the correction stays 0.
    const world = syntheticWorld(5);
    const confirmations = Array.from({ length: 150 }, () => world.item()).map((t) => ({ ...t, label: generalLabel(t) }));
    const probes = Array.from({ length: 50 }, () => world.item());
    const model = PersonalModel.create(SHAPE).train(confirmations);
    for (const t of probes) expect(model.predict(t).correctionLogits).toEqual([0, 0]);
    // Trained fully on them (confirmationWeight 1, as format v3 models learn), the same stream drifts.
    const legacy = PersonalModel.create(SHAPE, { confirmationWeight: 1 }).train(confirmations);
    expect(Math.max(...probes.map((t) => Math.abs(legacy.predict(t).correctionLogits[1]!)))).toBeGreaterThan(0.3);

    // A confirmation against a correction that argues with it does train: a sender the user called
    // ham although the general model says spam, then confirmed as spam, loses its correction.
    const shape = { classes: 2, embeddingDim: 2, sparseDimension: 1 << 10 };
    const at = { generalLogits: [0, 8], embedding: [1, 0], sparse: { indices: [(1 << 9) + 5, (1 << 9) + 70], values: [1, 1] } };
    const changing = PersonalModel.create(shape);
    for (let i = 0; i < 3; i++) changing.update({ ...at, label: 0 });
    const overturned = changing.predict(at).correctionLogits[1]!;
    expect(8 + overturned).toBeLessThan(0);
    for (let i = 0; i < 3; i++) changing.update({ ...at, label: 1 });
    expect(changing.predict(at).correctionLogits[1]!).toBeGreaterThan(overturned + 1);
  });

  it('reads the general logit tempered: beyond the clip its confidence does not change the correction', () => {
    // A user who wants one kind of mail the general model calls ham, confidently (logit -10): the
    // correction head learns a weight on the general logit difference too.
    const shape = { classes: 2, embeddingDim: 2, sparseDimension: 1 << 10 };
    const mail = (sender: number, g: number) => ({ generalLogits: [0, g], embedding: [1, 0], sparse: { indices: [(1 << 9) + sender], values: [1] } });
    const train = (options: Partial<typeof DEFAULT_PERSONAL_LEARNER_OPTIONS>) => {
      const model = PersonalModel.create(shape, options);
      for (let i = 0; i < 8; i++) model.update({ ...mail(i, -10), label: 1 });
      return model;
    };
    // An unseen sender's ham, the general model sure (-15) or fairly sure (-6): beyond the clip of 3
    // the correction is the same, tempered or not the general answer stands.
    const tempered = train({});
    const sure = tempered.predict(mail(100, -15)).correctionLogits[1]!;
    expect(sure).toBeGreaterThan(0);
    expect(tempered.predict(mail(100, -6)).correctionLogits[1]!).toBeCloseTo(sure, 12);
    // Read untempered (format v3 models), the surer the general model, the larger the push to spam.
    const untempered = train({ correctionLogitClip: 20 });
    expect(untempered.predict(mail(100, -15)).correctionLogits[1]! - untempered.predict(mail(100, -6)).correctionLogits[1]!).toBeGreaterThan(0.5);
  });

  it('starts at zero: no correction, no opinion', () => {
    const model = PersonalModel.create(SHAPE);
    const item = syntheticWorld(1).item();
    expect(model.predict(item)).toEqual({ logits: [0, 0], probabilities: [0.5, 0.5], correctionLogits: [0, 0] });
    expect(model.exampleCount).toBe(0);
  });

  it.each([7, 11, 23])('a divergent user flips one sender after ~20 labels and leaves the others alone; a neutral user stays near 0 (seed %i)', (seed) => {
    const { divergent, neutral, others, ofFlipped } = divergentAndNeutral(seed);
    const generalErr = errorRate(others, generalLabel, (t) => t.crowdLabel);
    // The general model calls this sender spam; the stacked answer follows the user.
    expect(errorRate(ofFlipped, generalLabel, () => 0)).toBeGreaterThan(0.9);
    expect(errorRate(ofFlipped, (t) => stackedLabel(divergent, t), () => 0)).toBeLessThanOrEqual(0.15);
    // Mail from other senders keeps (nearly) the general answer.
    expect(errorRate(others, (t) => stackedLabel(divergent, t), (t) => t.crowdLabel)).toBeLessThanOrEqual(generalErr + 0.02);
    // The neutral user's correction is small and costs nothing measurable. (Not as close to 0 as
    // with words alone at λ1 0.5: header coordinates learn at headerAlpha, and λ1 0.1 lets words
    // that recur in a user's mail carry weights too, which is what generalizes to new senders.)
    const meanCorrection = others.reduce((s, t) => s + Math.abs(neutral.predict(t).correctionLogits[1]!), 0) / others.length;
    expect(meanCorrection).toBeLessThan(0.45);
    expect(errorRate(others, (t) => stackedLabel(neutral, t), (t) => t.crowdLabel)).toBeLessThanOrEqual(generalErr + 0.01);
    // The standalone head has learnt a usable classifier of its own.
    expect(errorRate([...others, ...ofFlipped], (t) => (divergent.predict(t).logits[1]! > 0 ? 1 : 0), (t) => (ofFlipped.includes(t) ? 0 : t.crowdLabel))).toBeLessThan(0.2);
  });

  it('keeps the weights sparse (L1)', () => {
    const { divergent } = divergentAndNeutral(7);
    // Two heads over (embedding + logit difference + bias + touched sparse coordinates).
    const possible = 2 * (EMBEDDING_DIM + 2 + divergent.usedCoordinates);
    expect(divergent.nonZeroWeights()).toBeLessThan(possible / 3);
  });

  it('prunes weak coordinates without changing predictions, and to a budget strongest first', () => {
    const world = syntheticWorld(13);
    const model = PersonalModel.create(SHAPE).train(Array.from({ length: 60 }, () => world.item()).map((t) => ({ ...t, label: t.crowdLabel })));
    const probes = Array.from({ length: 30 }, () => world.item());
    const before = probes.map((t) => model.predict(t));
    const used = model.usedCoordinates;
    const removed = model.prune({ minAbsZ: DEFAULT_PERSONAL_LEARNER_OPTIONS.l1 });
    expect(removed).toBeGreaterThan(0);
    expect(model.usedCoordinates).toBe(used - removed);
    // Below λ1 every weight is exactly zero: nothing the model says changes.
    expect(probes.map((t) => model.predict(t))).toEqual(before);
    const nonZero = model.nonZeroWeights();
    // A tight budget keeps the strongest coordinates: the sender features that carry the weights.
    model.prune({ maxCoordinates: 10 });
    expect(model.usedCoordinates).toBe(10);
    expect(model.nonZeroWeights()).toBeGreaterThan(0);
    expect(model.nonZeroWeights()).toBeLessThanOrEqual(nonZero);
    // Still a valid model: it round-trips and keeps training.
    const back = PersonalModel.deserialize(model.serialize());
    expect(back.serialize()).toEqual(model.serialize());
    back.update({ ...probes[0]!, label: 1 });
    expect(back.exampleCount).toBe(61);
  });

  it('learns three classes with class 0 as the reference', () => {
    const model = PersonalModel.create({ classes: 3, embeddingDim: 2, sparseDimension: 16 });
    const ex = (c: number) => ({ generalLogits: [0, 0, 0], embedding: [1, 0], sparse: { indices: [c], values: [1] }, label: c });
    for (let i = 0; i < 30; i++) for (const c of [0, 1, 2]) model.update(ex(c));
    for (const c of [0, 1, 2]) {
      const p = model.predict(ex(c));
      expect(p.logits).toHaveLength(3);
      expect(p.logits[0]).toBe(0);
      expect(p.correctionLogits[0]).toBe(0);
      expect(p.probabilities.indexOf(Math.max(...p.probabilities))).toBe(c);
    }
  });

  it('is deterministic and update returns the prediction made before the step', () => {
    const world = syntheticWorld(3);
    const items = Array.from({ length: 30 }, () => world.item());
    const a = PersonalModel.create(SHAPE);
    const b = PersonalModel.create(SHAPE);
    for (const t of items) {
      const before = a.predict(t);
      expect(a.update({ ...t, label: t.crowdLabel })).toEqual(before);
    }
    b.train(items.map((t) => ({ ...t, label: t.crowdLabel })));
    expect(b.serialize()).toEqual(a.serialize());
    expect(a.exampleCount).toBe(30);
  });

  it('weights an example by `weight`', () => {
    const make = (weight: number) =>
      PersonalModel.create({ classes: 2, embeddingDim: 0, sparseDimension: 8 }).update({ generalLogits: [0, 0], embedding: [], sparse: { indices: [1], values: [1] }, label: 1, weight });
    const probe = { generalLogits: [0, 0], embedding: [], sparse: { indices: [1], values: [1] } };
    const m1 = PersonalModel.create({ classes: 2, embeddingDim: 0, sparseDimension: 8 });
    m1.update({ ...probe, label: 1, weight: 1 });
    const m3 = PersonalModel.create({ classes: 2, embeddingDim: 0, sparseDimension: 8 });
    m3.update({ ...probe, label: 1, weight: 3 });
    expect(m3.predict(probe).logits[1]!).toBeGreaterThan(m1.predict(probe).logits[1]!);
    expect(() => make(0)).toThrow(PersonalModelInputError);
  });

  it('clone is independent', () => {
    const world = syntheticWorld(5);
    const model = PersonalModel.create(SHAPE).train(Array.from({ length: 5 }, () => ({ ...world.item(), label: 1 })));
    const copy = model.clone();
    const bytes = model.serialize();
    copy.train(Array.from({ length: 5 }, () => ({ ...world.item(), label: 0 })));
    expect(model.serialize()).toEqual(bytes);
    expect(copy.exampleCount).toBe(10);
  });

  it('rejects inputs that do not fit, naming the field', () => {
    const model = PersonalModel.create(SHAPE);
    const ok = syntheticWorld(1).item();
    const field = (f: () => unknown) => {
      try {
        f();
      } catch (err) {
        expect(err).toBeInstanceOf(PersonalModelInputError);
        return (err as PersonalModelInputError).field;
      }
      return 'no error';
    };
    expect(field(() => model.predict({ ...ok, generalLogits: [0, 1, 2] }))).toBe('generalLogits');
    expect(field(() => model.predict({ ...ok, generalLogits: [0, Number.NaN] }))).toBe('generalLogits');
    expect(field(() => model.predict({ ...ok, embedding: [1] }))).toBe('embedding');
    expect(field(() => model.predict({ ...ok, embedding: ok.embedding.map(() => Infinity) }))).toBe('embedding');
    expect(field(() => model.predict({ ...ok, sparse: { dimension: 2 ** 20, indices: [], values: [] } }))).toBe('sparse');
    expect(field(() => model.predict({ ...ok, sparse: { indices: [2 ** 16], values: [1] } }))).toBe('sparse');
    expect(field(() => model.predict({ ...ok, sparse: { indices: [3, 3], values: [1, 1] } }))).toBe('sparse');
    expect(field(() => model.update({ ...ok, label: 2 }))).toBe('label');
    expect(model.exampleCount).toBe(0);
  });

  it('validates options and shape', () => {
    expect(() => PersonalModel.create(SHAPE, { alpha: 0 })).toThrow(/alpha/);
    expect(() => PersonalModel.create(SHAPE, { l1: -1 })).toThrow(/l1/);
    expect(() => PersonalModel.create({ ...SHAPE, classes: 1 })).toThrow(/classes/);
    expect(DEFAULT_PERSONAL_LEARNER_OPTIONS.alpha).toBeGreaterThan(0);
  });

  it('clips extreme but finite general logits', () => {
    const model = PersonalModel.create({ classes: 2, embeddingDim: 0, sparseDimension: 8 });
    model.update({ generalLogits: [0, -1e30], embedding: [], label: 1 });
    const p = model.predict({ generalLogits: [0, -1e30], embedding: [] });
    for (const v of [...p.logits, ...p.correctionLogits, ...p.probabilities]) expect(Number.isFinite(v)).toBe(true);
  });
});

describe('PersonalModel serialization', () => {
  const trained = (examples: number, seed = 9) => {
    const world = syntheticWorld(seed);
    return PersonalModel.create(SHAPE).train(Array.from({ length: examples }, () => world.item()).map((t) => ({ ...t, label: t.crowdLabel })));
  };

  it('round-trips exactly through format v1: same bytes, same predictions, same further training', () => {
    const model = trained(40);
    const bytes = model.serialize({ formatVersion: 1 });
    expect(bytes.length).toBe(serializedSize(2, EMBEDDING_DIM, model.usedCoordinates));
    const back = PersonalModel.deserialize(bytes);
    expect(back.serialize({ formatVersion: 1 })).toEqual(bytes);
    expect(back.exampleCount).toBe(40);
    expect(back.shape()).toEqual(model.shape());
    const world = syntheticWorld(99);
    const probes = Array.from({ length: 20 }, () => world.item());
    for (const t of probes) expect(back.predict(t)).toEqual(model.predict(t));
    model.update({ ...probes[0]!, label: 0 });
    back.update({ ...probes[0]!, label: 0 });
    expect(back.serialize({ formatVersion: 1 })).toEqual(model.serialize({ formatVersion: 1 }));
  });

  it('round-trips through format v2 (the default) to the same bytes and nearly the same predictions', () => {
    const model = trained(40);
    const bytes = model.serialize();
    expect(bytes.length).toBeLessThan(serializedSize(2, EMBEDDING_DIM, model.usedCoordinates) / 2);
    const back = PersonalModel.deserialize(bytes);
    expect(back.serialize()).toEqual(bytes);
    expect(back.exampleCount).toBe(40);
    expect(back.usedCoordinates).toBe(model.usedCoordinates);
    const world = syntheticWorld(99);
    for (let i = 0; i < 20; i++) {
      const t = world.item();
      const [p, q] = [model.predict(t), back.predict(t)];
      expect(Math.abs(p.logits[1]! - q.logits[1]!)).toBeLessThan(5e-3);
      expect(Math.abs(p.correctionLogits[1]! - q.correctionLogits[1]!)).toBeLessThan(5e-3);
    }
  });

  it('reads from a view inside a larger buffer', () => {
    for (const bytes of [trained(5).serialize(), trained(5).serialize({ formatVersion: 1 })]) {
      const padded = new Uint8Array(bytes.length + 3);
      padded.set(bytes, 3);
      expect(PersonalModel.deserialize(padded.subarray(3)).serialize({ formatVersion: bytes[4] as 1 | 2 })).toEqual(bytes);
    }
  });

  it('starts with the magic and format version', () => {
    const bytes = trained(1).serialize();
    expect(new TextDecoder().decode(bytes.subarray(0, 4))).toBe(PERSONAL_MODEL_FORMAT.magic);
    expect(bytes[4]).toBe(PERSONAL_MODEL_FORMAT.version);
  });

  it.each([1, 4] as const)('rejects truncated, extended, corrupt and foreign bytes with a clear error (format v%i)', (formatVersion) => {
    const bytes = trained(10).serialize({ formatVersion });
    const reject = (b: Uint8Array) => {
      expect(() => PersonalModel.deserialize(b)).toThrow(PersonalModelFormatError);
      try {
        PersonalModel.deserialize(b);
      } catch (err) {
        return (err as Error).message;
      }
      return '';
    };
    expect(reject(bytes.subarray(0, bytes.length - 1))).toMatch(/truncated/);
    expect(reject(bytes.subarray(0, 10))).toMatch(/truncated/);
    expect(reject(new Uint8Array([...bytes, 0]))).toMatch(/trailing bytes/);
    for (const at of [30, Math.floor(bytes.length / 2), bytes.length - 5]) {
      const corrupt = bytes.slice();
      corrupt[at]! ^= 0x10;
      expect(reject(corrupt)).toMatch(/checksum|invalid|sparse/);
    }
    expect(reject(new TextEncoder().encode('{"not":"a model"}'.padEnd(100)))).toMatch(/magic/);
    const future = bytes.slice();
    future[4] = 9;
    expect(reject(future)).toMatch(/format version 9/);
    const shape = bytes.slice();
    shape[8] = 3;
    // v1 derives its length from the shape; v4 announces it, so there the checksum catches it.
    expect(reject(shape)).toMatch(formatVersion === 1 ? /truncated|trailing/ : /checksum/);
  });

  it('serializedSize is the float32 (format v1) size: 20 bytes per sparse coordinate (binary, two heads)', () => {
    expect(serializedSize(2, 64, 0)).toBe(40 + 2 * 2 * 66 * 4 + 4);
    expect(serializedSize(2, 64, 100) - serializedSize(2, 64, 0)).toBe(100 * (4 + 2 * 2 * 4));
  });
});

describe('PersonalModel pruning and storage', () => {
  // The same training must give the same model whether or not it went through the store (format
  // v1, exact) between steps: what personal-model does on every Train call.
  const exact = (m: PersonalModel) => m.serialize({ formatVersion: 1 });

  it('a coordinate created after a prune starts from zero state, not a forgotten one', () => {
    const world = syntheticWorld(31);
    const items = Array.from({ length: 40 }, () => world.item());
    let memory = PersonalModel.create(SHAPE);
    let stored = PersonalModel.create(SHAPE);
    for (const t of items) {
      for (const m of [memory, stored]) {
        m.update({ ...t, label: t.crowdLabel });
        m.prune({ maxCoordinates: 40 });
      }
      stored = PersonalModel.deserialize(exact(stored));
      expect(exact(memory)).toEqual(exact(stored));
    }
    memory = PersonalModel.deserialize(exact(memory));
    expect(memory.usedCoordinates).toBe(40);
  });

  it('a budget breaks ties by index, so slot order (insertion vs read from bytes) does not matter', () => {
    const model = PersonalModel.create({ classes: 2, embeddingDim: 0, sparseDimension: 64 });
    // The three coordinates always come together: identical state, in slots 30, 10, 20.
    for (let i = 0; i < 3; i++) model.update({ generalLogits: [0, 0], embedding: [], sparse: { indices: [30, 10, 20], values: [1, 1, 1] }, label: 1 });
    const stored = PersonalModel.deserialize(exact(model));
    expect(model.prune({ maxCoordinates: 2 })).toBe(1);
    expect(stored.prune({ maxCoordinates: 2 })).toBe(1);
    expect(exact(model)).toEqual(exact(stored));
    // The two smaller indices keep their weight; 30 has only the bias left.
    const probe = (i: number) => model.predict({ generalLogits: [0, 0], embedding: [], sparse: { indices: [i], values: [1] } }).logits[1]!;
    expect(probe(10)).toBe(probe(20));
    expect(probe(30)).toBeLessThan(probe(10) - 0.1);
  });
});

describe('helpers', () => {
  it('crc32 matches the IEEE check value', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
  });
  it('softmax is stable for large logits', () => {
    expect(softmax([0, 1000])).toEqual([0, 1]);
  });
});
