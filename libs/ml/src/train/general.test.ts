import { describe, expect, it } from 'vitest';
import { trainTextModel, type LabeledText, type TextModelProgress } from './general.js';
import { isHeldOut } from './split.js';

const items: LabeledText[] = Array.from({ length: 120 }, (_, i) => {
  const spam = i % 2 === 0;
  return {
    key: `g/${i}`,
    text: spam ? `Subject: win money ${i}\n\nfree cash prize now ${i}` : `Subject: meeting ${i}\n\nnotes from the review ${i}`,
    label: spam ? 'spam' : 'ham',
    group: spam ? 'spam-g' : 'ham-g',
  };
});
const small = { dim: 8, epochs: 2, tokenizer: { bucketBits: 12, maxFeatures: 64, maxHeaderFeatures: 16 } };

describe('trainTextModel', () => {
  it('splits by key, trains, and evaluates on the held-out part with per-group errors', async () => {
    const phases: TextModelProgress['phase'][] = [];
    const result = await trainTextModel(items, { ...small, onProgress: (p) => phases.push(p.phase) });
    const heldOut = items.filter((i) => isHeldOut(i.key)).length;
    expect(result.split).toEqual({ train: items.length - heldOut, test: heldOut });
    expect(result.metrics.count).toBe(heldOut);
    expect(Object.keys(result.metrics.byGroup)).toEqual(['ham-g', 'spam-g']);
    expect(result.metrics.accuracy).toBe(1);
    expect(result.tokenizer.maxFeatures).toBe(64);
    expect(result.options).toMatchObject({ dim: 8, epochs: 2, seed: 42, optimizer: 'adagrad', combiner: 'sqrtn' });
    expect(phases[0]).toBe('featurize');
    expect(phases).toContain('train');
    expect(phases.at(-1)).toBe('evaluate');
  });

  it('rejects labels that are not in the label list', async () => {
    await expect(trainTextModel([{ key: 'x', text: 'hi', label: 'eggs' }], small)).rejects.toThrow(/unknown label 'eggs'/);
  });
});
