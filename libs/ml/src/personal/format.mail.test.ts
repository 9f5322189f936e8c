/**
 * Format v2 on real mail: SpamAssassin corpus mails, their personal features as fusion computes
 * them, and a small fastText general model's logits and 64-float embedding. What float16 storage
 * costs in prediction and in continued training, and what it saves in bytes.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../models/random.js';
import { PersonalModel, type PersonalPrediction } from './learner.js';
import { corpusMails, realItems, type RealItem } from './testing/corpus.js';

const SHAPE = { classes: 2, embeddingDim: 64, sparseDimension: 2 ** 20 };
/** personal-model's default `pruning.maxSparseCoordinates`. */
const BUDGET = 4096;
const CHECKPOINTS = [10, 50, 200];

let probes: RealItem[] = [];
/** Per user: the model trained in memory without and with the budget, and with the budget stored after every example. */
let users: { free: Map<number, PersonalModel>; capped: Map<number, PersonalModel>; stored: Map<number, PersonalModel> }[] = [];

beforeAll(async () => {
  const mails = corpusMails(520);
  // A quarter trains the general model (small hash space, 512 features: fast); the rest are the users' mail.
  const items = await realItems(
    mails.filter((_, i) => i % 4 === 0),
    mails.filter((_, i) => i % 4 !== 0),
    { tokenizer: { bucketBits: 14, maxFeatures: 512 }, epochs: 2 },
  );
  probes = items.slice(0, 100);
  const pool = items.slice(100);
  // Three users, each labelling (truthfully) their own order of the pool.
  const streams = [1, 2, 3].map((seed) => {
    const random = seededRandom(seed);
    const order = pool.map((_, i) => i);
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(random.next() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    return order.slice(0, 200).map((i) => pool[i]!);
  });
  users = streams.map((stream) => ({
    free: snapshots(stream, {}),
    capped: snapshots(stream, { budget: BUDGET }),
    stored: snapshots(stream, { budget: BUDGET, storeEveryStep: true }),
  }));
}, 120_000);

function maxDelta(a: PersonalPrediction, b: PersonalPrediction): number {
  return Math.max(Math.abs(a.logits[1]! - b.logits[1]!), Math.abs(a.correctionLogits[1]! - b.correctionLogits[1]!));
}

/** A user's model at each checkpoint; `storeEveryStep` round-trips it after every example, as one-example Train calls do. */
function snapshots(stream: RealItem[], options: { budget?: number; storeEveryStep?: boolean }): Map<number, PersonalModel> {
  let model = PersonalModel.create(SHAPE);
  const out = new Map<number, PersonalModel>();
  stream.forEach((item, i) => {
    model.update({ ...item, label: item.label });
    if (options.budget) model.prune({ maxCoordinates: options.budget });
    if (options.storeEveryStep) model = PersonalModel.deserialize(model.serialize());
    if (CHECKPOINTS.includes(i + 1)) out.set(i + 1, model.clone());
  });
  return out;
}

describe('format v2 on real mail', () => {
  it('a stored model predicts within 1e-2 of the model it was written from (|Δ logit|, both heads)', () => {
    let worst = 0;
    for (const user of users) {
      for (const models of [user.free, user.capped]) {
        for (const model of models.values()) {
          const bytes = model.serialize();
          const back = PersonalModel.deserialize(bytes);
          expect(back.serialize()).toEqual(bytes);
          for (const t of probes) worst = Math.max(worst, maxDelta(model.predict(t), back.predict(t)));
        }
      }
    }
    // Measured: ~3e-3 at most (float16 z of the dense coordinates, mostly).
    expect(worst).toBeLessThan(1e-2);
  });

  it('training that goes through the store after every example stays close to training in memory', () => {
    let worst = 0;
    let disagreements = 0;
    for (const user of users) {
      for (const n of CHECKPOINTS) {
        const a = user.capped.get(n)!;
        const b = user.stored.get(n)!;
        expect(b.exampleCount).toBe(n);
        for (const t of probes) {
          const p = a.predict(t);
          const q = b.predict(t);
          worst = Math.max(worst, maxDelta(p, q));
          const g = t.generalLogits[1]! - t.generalLogits[0]!;
          if (g + p.correctionLogits[1]! > 0 !== g + q.correctionLogits[1]! > 0) disagreements++;
          if (p.logits[1]! > 0 !== q.logits[1]! > 0) disagreements++;
        }
      }
    }
    // 200 round trips add up (rounding errors of z and n carry into later steps) but stay small:
    // measured 1.7e-2 at most, no changed decision. (Through format v1 the two are identical.)
    expect(worst).toBeLessThan(5e-2);
    expect(disagreements).toBeLessThanOrEqual(1);
  });

  it('is 4–6 times smaller than format v1 for young models, about half at the 4,096-coordinate budget', () => {
    // These users label every mail against a weak general model, so their correction heads carry
    // more than those of the README's measurement (feedback on mistakes): measured 0.17, 0.20,
    // 0.24 and 0.44 of v1.
    const ratio = (m: PersonalModel) => m.serialize().length / m.serialize({ formatVersion: 1 }).length;
    for (const user of users) {
      expect(ratio(user.free.get(10)!)).toBeLessThan(0.25);
      expect(ratio(user.free.get(50)!)).toBeLessThan(0.3);
      expect(ratio(user.free.get(200)!)).toBeLessThan(0.3);
      expect(user.capped.get(200)!.usedCoordinates).toBe(BUDGET);
      expect(ratio(user.capped.get(200)!)).toBeLessThan(0.5);
    }
  });
});
