import { describe, expect, it } from 'vitest';
import type { v1 } from '@aimass/proto';
import { NO_MODEL, blamedExample, examplesWithin, planApply, trainingExample } from './examples.js';

const g1 = { name: 'general', version: '1' };
const g2 = { name: 'general', version: '2' };
const paired = (general: typeof g1) => ({ version: 4, general, watermark: 30 });

describe('the path of new feedback', () => {
  it('trains on the paired version when every entry comes from it (or names none)', () => {
    expect(planApply(paired(g1), [g1, undefined, g1], g2)).toEqual({ kind: 'train', general: g1 });
  });

  it('refits when an entry comes from another version than the paired one', () => {
    expect(planApply(paired(g1), [g1, g2], g2)).toMatchObject({ kind: 'refit' });
    expect(planApply(paired(g2), [g1], g2)).toMatchObject({ kind: 'refit' });
    expect(planApply(paired(g1), [g2, g1, g2], undefined)).toMatchObject({ kind: 'refit' });
  });

  it('a stale user whose feedback matches its pairing keeps training (the refit job moves it)', () => {
    expect(planApply(paired(g1), [g1], g2)).toEqual({ kind: 'train', general: g1 });
  });

  it('a first model trains on the served version, or on the entries\' own when it is unknown', () => {
    expect(planApply(NO_MODEL, [g2, g2], g2)).toEqual({ kind: 'train', general: g2 });
    expect(planApply(NO_MODEL, [g1, g1], undefined)).toEqual({ kind: 'train', general: g1 });
    // Feedback from an old version arriving after the general model changed: refit on the new one.
    expect(planApply(NO_MODEL, [g1], g2)).toMatchObject({ kind: 'refit' });
  });

  it('refits (on the served version, asked for) when nothing names a version', () => {
    expect(planApply(NO_MODEL, [undefined], undefined)).toMatchObject({ kind: 'refit' });
    expect(planApply(NO_MODEL, [undefined], g2)).toEqual({ kind: 'train', general: g2 });
  });
});

describe('training examples', () => {
  const general: v1.GeneralOutput = { model: g1, logits: [0, 1], probabilities: [0.27, 0.73], embedding: [0.5, -0.5, 0.25] };
  const sparse: v1.SparseVector = { dimension: 1024, indices: [3, 70], values: [1, 0.5] };
  const entry = { eventId: 'e1', sequence: 17, label: 'spam', occurredAt: new Date('2025-01-02T03:04:05Z') };

  it('carry the event id, the stream sequence (the watermark unit) and weight 1', () => {
    expect(trainingExample(entry, general, sparse)).toEqual({
      general,
      sparseFeatures: sparse,
      label: 'spam',
      weight: 1,
      sourceEventId: 'e1',
      occurredAt: entry.occurredAt,
      sourceSequence: 17,
    });
  });

  it('fit a request size from the oldest (batches) or the newest (refits), at least one', () => {
    const examples = Array.from({ length: 10 }, (_, i) => trainingExample({ ...entry, sequence: i + 1 }, general, sparse));
    expect(examplesWithin(examples, 1e9, 'oldest')).toBe(10);
    const one = examplesWithin(examples, 1, 'oldest');
    expect(one).toBe(1);
    const size = examplesWithin(examples, 300, 'newest');
    expect(size).toBeGreaterThan(1);
    expect(size).toBeLessThan(10);
  });

  it('find the example an INVALID_ARGUMENT blames', () => {
    expect(blamedExample('examples[3].label')).toBe(3);
    expect(blamedExample('examples[12].general.embedding')).toBe(12);
    expect(blamedExample('idempotency_key')).toBeUndefined();
    expect(blamedExample(undefined)).toBeUndefined();
  });
});
