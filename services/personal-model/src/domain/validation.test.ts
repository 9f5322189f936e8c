import { InvalidArgumentError } from '@aimass/platform';
import { describe, expect, it } from 'vitest';
import { checkCount, checkGeneralOutput, checkIdempotencyKey, checkLabel, checkPseudonym, checkSparse, checkWeight, modelInput } from './validation.js';

const fieldOf = (f: () => unknown): string | undefined => {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidArgumentError);
    return (err as InvalidArgumentError).field;
  }
  return 'no error';
};

describe('validation', () => {
  it('accepts pseudonyms only', () => {
    expect(checkPseudonym('abcdefghijklmnopqrstuvwxyz234567')).toBe('abcdefghijklmnopqrstuvwxyz234567');
    expect(fieldOf(() => checkPseudonym(''))).toBe('user_pseudonym');
    expect(fieldOf(() => checkPseudonym('alice@example.com', 'items[0].user_pseudonym'))).toBe('items[0].user_pseudonym');
  });

  it('checks general outputs', () => {
    const ok = { model: { name: 'g', version: '1' }, logits: [0, 1], embedding: [0.5] };
    expect(checkGeneralOutput(ok, 'g').model).toEqual({ name: 'g', version: '1' });
    expect(fieldOf(() => checkGeneralOutput(undefined, 'items[0].general'))).toBe('items[0].general');
    expect(fieldOf(() => checkGeneralOutput({ ...ok, model: undefined }, 'x'))).toBe('x.model');
    expect(fieldOf(() => checkGeneralOutput({ ...ok, logits: [] }, 'x'))).toBe('x.logits');
    expect(fieldOf(() => checkGeneralOutput({ ...ok, logits: [0, Number.NaN] }, 'x'))).toBe('x.logits');
    expect(fieldOf(() => checkGeneralOutput({ ...ok, embedding: [Infinity] }, 'x'))).toBe('x.embedding');
  });

  it('checks sparse vectors', () => {
    expect(checkSparse(undefined, 's', 10)).toBeUndefined();
    expect(checkSparse({ dimension: 0, indices: [], values: [] }, 's', 10)).toBeUndefined();
    expect(checkSparse({ dimension: 8, indices: [1, 3], values: [1, 1] }, 's', 10)).toBeDefined();
    expect(fieldOf(() => checkSparse({ dimension: 8, indices: [3, 1], values: [1, 1] }, 's', 10))).toBe('s.indices');
    expect(fieldOf(() => checkSparse({ dimension: 8, indices: [8], values: [1] }, 's', 10))).toBe('s.indices');
    expect(fieldOf(() => checkSparse({ dimension: 8, indices: [1], values: [1, 2] }, 's', 10))).toBe('s');
    expect(fieldOf(() => checkSparse({ dimension: 8, indices: [1], values: [Number.NaN] }, 's', 10))).toBe('s.values');
    expect(fieldOf(() => checkSparse({ dimension: 0, indices: [1], values: [1] }, 's', 10))).toBe('s.dimension');
    expect(fieldOf(() => checkSparse({ dimension: 8, indices: [1, 2], values: [1, 1] }, 's', 1))).toBe('s.indices');
  });

  it('checks inputs against the model shape', () => {
    const shape = { labels: ['ham', 'spam'], embeddingDim: 2, sparseDimension: 16 };
    const general = { logits: [0, 1], embedding: [1, 2] };
    expect(modelInput(general, undefined, shape, 'g', 's')).toEqual({ generalLogits: [0, 1], embedding: [1, 2] });
    expect(fieldOf(() => modelInput({ ...general, logits: [0, 1, 2] }, undefined, shape, 'g', 's'))).toBe('g.logits');
    expect(fieldOf(() => modelInput({ ...general, embedding: [1] }, undefined, shape, 'g', 's'))).toBe('g.embedding');
    expect(fieldOf(() => modelInput(general, { dimension: 8, indices: [1], values: [1] }, shape, 'g', 's'))).toBe('s.dimension');
  });

  it('checks labels, weights, keys and counts', () => {
    expect(checkLabel('spam', ['ham', 'spam'], 'l')).toBe(1);
    expect(fieldOf(() => checkLabel('eggs', ['ham', 'spam'], 'examples[0].label'))).toBe('examples[0].label');
    expect(checkWeight(0, 'w')).toBe(1);
    expect(checkWeight(2.5, 'w')).toBe(2.5);
    expect(fieldOf(() => checkWeight(-1, 'w'))).toBe('w');
    expect(checkWeight(1000, 'w')).toBe(1000);
    expect(fieldOf(() => checkSparse({ dimension: 8, indices: [1], values: [3e38] }, 's', 10))).toBe('s.values');
    expect(checkSparse({ dimension: 8, indices: [1], values: [10_000] }, 's', 10)).toBeDefined();
    expect(fieldOf(() => checkWeight(3.4028234663852886e38, 'w'))).toBe('w');
    expect(checkIdempotencyKey('', 'k', 10)).toBeUndefined();
    expect(fieldOf(() => checkIdempotencyKey('a b', 'k', 10))).toBe('k');
    expect(fieldOf(() => checkIdempotencyKey('x'.repeat(11), 'k', 10))).toBe('k');
    expect(fieldOf(() => checkCount(0, 'items', 5, 'item'))).toBe('items');
    expect(fieldOf(() => checkCount(6, 'items', 5, 'item'))).toBe('items');
  });
});
