import { describe, expect, it } from 'vitest';
import { MAX_ABS_LOGIT, addLogits, argmax, generalLogits, isVectorOf, logitsFromProbabilities, mixLogits, referenceLogits, softmax } from './logits.js';

describe('logits', () => {
  it('softmax sums to one, is shift invariant and stable for large logits', () => {
    const p = softmax([0, 1, 2]);
    expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    expect(softmax([100, 101, 102])).toEqual(p.map((x) => expect.closeTo(x, 12)));
    expect(softmax([0, 1000])).toEqual([expect.closeTo(0, 12), 1]);
    expect(softmax([])).toEqual([]);
  });

  it('softmax of [0, z] is the logistic function of z', () => {
    for (const z of [-3, 0, 0.5, 4]) expect(softmax([0, z])[1]).toBeCloseTo(1 / (1 + Math.exp(-z)), 12);
  });

  it('argmax takes the lower index on ties', () => {
    expect(argmax([0.2, 0.5, 0.3])).toBe(1);
    expect(argmax([0.5, 0.5])).toBe(0);
    expect(argmax([1])).toBe(0);
  });

  it('references logits to class 0 and clips them', () => {
    expect(referenceLogits([2, 3, -1])).toEqual([0, 1, -3]);
    expect(referenceLogits([0, 1e6])).toEqual([0, MAX_ABS_LOGIT]);
    expect(referenceLogits([0, -1e6])).toEqual([0, -MAX_ABS_LOGIT]);
  });

  it('turns probabilities into referenced logits whose softmax gives them back', () => {
    const z = logitsFromProbabilities([0.2, 0.8]);
    expect(z[0]).toBe(0);
    expect(z[1]).toBeCloseTo(Math.log(4), 12);
    expect(softmax(z)[1]).toBeCloseTo(0.8, 12);
    // A probability of exactly 0 stays finite.
    expect(logitsFromProbabilities([1, 0]).every(Number.isFinite)).toBe(true);
  });

  it("reads the general model's log-probabilities, rebuilding them when one is -Infinity or missing", () => {
    expect(generalLogits([Math.log(0.25), Math.log(0.75)], [0.25, 0.75])[1]).toBeCloseTo(Math.log(3), 6);
    const underflow = generalLogits([0, -Infinity], [1, 0]);
    expect(underflow.every(Number.isFinite)).toBe(true);
    expect(softmax(underflow)[0]).toBeGreaterThan(0.999999);
    expect(generalLogits([], [0.5, 0.5])).toEqual([0, 0]);
  });

  it('adds and mixes element-wise in referenced form', () => {
    expect(addLogits([0, 1], [0.5, 2])).toEqual([0, 2.5]);
    expect(mixLogits([0, 2], [0, -2], 0.25)).toEqual([0, 1]);
    expect(mixLogits([0, 2], [0, -2], 0)).toEqual([0, 2]);
  });

  it('checks vector shape', () => {
    expect(isVectorOf([0, 1], 2)).toBe(true);
    expect(isVectorOf([0, 1], 3)).toBe(false);
    expect(isVectorOf([0, NaN], 2)).toBe(false);
  });
});
