import { describe, expect, it } from 'vitest';
import { FastTextModel, bagScale, trainFastText, type TrainExample, type TrainProgress } from './fasttext.js';
import { Prng } from './prng.js';

/** Two classes told apart by which half of a small vocabulary their ids come from, plus shared noise. */
function toyData(n: number, seed: number): TrainExample[] {
  const rng = new Prng(seed);
  return Array.from({ length: n }, (_, i) => {
    const label = i % 2;
    const ids = Int32Array.from({ length: 12 }, (_, j) => (j < 4 ? 1 + label * 50 + rng.nextInt(50) : 101 + rng.nextInt(100)));
    return { ids, label };
  });
}

const options = { labels: ['ham', 'spam'], buckets: 256, dim: 8, epochs: 3, seed: 5 };

describe('trainFastText', () => {
  it('learns a separable toy problem', async () => {
    const model = await trainFastText(toyData(400, 1), options);
    const test = toyData(200, 2);
    const correct = test.filter((e) => {
      const { probs } = model.predict(e.ids);
      return (probs[1]! > 0.5 ? 1 : 0) === e.label;
    }).length;
    expect(correct / test.length).toBeGreaterThan(0.95);
  });

  it('gives bit-identical weights for the same seed and data, other weights for another seed', async () => {
    const data = toyData(100, 3);
    const a = await trainFastText(data, { ...options, reportEvery: 7 });
    const b = await trainFastText(data, { ...options, reportEvery: 50 });
    expect(Buffer.from(b.embeddings.buffer).equals(Buffer.from(a.embeddings.buffer))).toBe(true);
    expect(Array.from(b.weights)).toEqual(Array.from(a.weights));
    expect(Array.from(b.bias)).toEqual(Array.from(a.bias));
    const c = await trainFastText(data, { ...options, seed: 6 });
    expect(Array.from(c.weights)).not.toEqual(Array.from(a.weights));
  });

  it('trains with plain SGD and the mean combiner too', async () => {
    const model = await trainFastText(toyData(400, 1), { ...options, optimizer: 'sgd', combiner: 'mean', learningRate: 2, epochs: 5 });
    expect(model.combiner).toBe('mean');
    const test = toyData(100, 2);
    const correct = test.filter((e) => (model.predict(e.ids).probs[1]! > 0.5 ? 1 : 0) === e.label).length;
    expect(correct / test.length).toBeGreaterThan(0.9);
  });

  it('reports progress per epoch with a falling loss, and stops on abort', async () => {
    const reports: TrainProgress[] = [];
    await trainFastText(toyData(200, 1), { ...options, reportEvery: 100, onProgress: (p) => reports.push(p) });
    expect(reports.map((r) => [r.epoch, r.processed])).toEqual([
      [1, 100],
      [1, 200],
      [2, 100],
      [2, 200],
      [3, 100],
      [3, 200],
    ]);
    expect(reports.at(-1)!.loss).toBeLessThan(reports[1]!.loss);
    expect(reports.every((r) => r.examplesPerSecond > 0)).toBe(true);
    const controller = new AbortController();
    controller.abort();
    await expect(trainFastText(toyData(10, 1), { ...options, signal: controller.signal })).rejects.toThrow();
  });

  it('rejects labels outside the label list and ids outside the vocabulary', async () => {
    await expect(trainFastText([{ ids: Int32Array.of(1), label: 2 }], options)).rejects.toThrow(/label 2/);
    await expect(trainFastText([{ ids: Int32Array.of(256), label: 0 }], options)).rejects.toThrow(/id 256/);
  });
});

describe('FastTextModel', () => {
  const model = FastTextModel.initial({ buckets: 32, dim: 4, labels: ['a', 'b', 'c'], combiner: 'sqrtn' }, 9);

  it('keeps the padding row at zero and ignores id 0 and out-of-vocabulary ids in the bag', () => {
    expect(Array.from(model.embeddings.subarray(0, 4))).toEqual([0, 0, 0, 0]);
    expect(Array.from(model.embed([3, 7, 0, 0]))).toEqual(Array.from(model.embed([3, 7])));
    expect(Array.from(model.embed([3, -1, 7, 32, 99]))).toEqual(Array.from(model.embed([3, 7])));
    expect(Array.from(model.embed([]))).toEqual([0, 0, 0, 0]);
  });

  it('combines by sqrtn: the sum of the rows over sqrt(count)', () => {
    const e = model.embed([3, 7]);
    for (let d = 0; d < 4; d++) {
      expect(e[d]).toBeCloseTo((model.embeddings[3 * 4 + d]! + model.embeddings[7 * 4 + d]!) / Math.SQRT2, 6);
    }
    expect(bagScale('mean', 4)).toBe(0.25);
    expect(bagScale('sqrtn', 4)).toBe(0.5);
    expect(bagScale('mean', 0)).toBe(1);
  });

  it('predicts a probability distribution over its labels', () => {
    const { probs, embedding } = model.predict([1, 2, 3]);
    expect(probs).toHaveLength(3);
    expect(embedding).toHaveLength(4);
    expect(probs.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
  });

  it('checks parameter shapes', () => {
    expect(
      () =>
        new FastTextModel({
          buckets: 4,
          dim: 2,
          labels: ['a', 'b'],
          combiner: 'mean',
          embeddings: new Float32Array(7),
          weights: new Float32Array(4),
          bias: new Float32Array(2),
        }),
    ).toThrow(/embeddings/);
  });
});
