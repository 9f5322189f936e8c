import { describe, expect, it } from 'vitest';
import { clearPending, markPending, splitAtWatermark } from './pending.js';

const at = new Date('2025-01-01T00:00:00Z');

describe('pending bookkeeping', () => {
  it('a mark keeps the highest sequence and counts events', () => {
    const first = markPending(undefined, 7, at);
    expect(first).toEqual({ pending: true, markedSequence: 7, events: 1, lastEventAt: at, clearedAt: undefined });
    const second = markPending(first, 9, at);
    expect(second.markedSequence).toBe(9);
    expect(second.events).toBe(2);
    // A replayed dead letter can arrive with a lower sequence than one already marked.
    expect(markPending(second, 8, at).markedSequence).toBe(9);
  });

  it('a clear keeps the counts, and the next mark makes the user pending again', () => {
    const cleared = clearPending(markPending(undefined, 7, at), at);
    expect(cleared.pending).toBe(false);
    expect(cleared.markedSequence).toBe(7);
    expect(cleared.clearedAt).toBe(at);
    const again = markPending(cleared, 11, at);
    expect(again.pending).toBe(true);
    expect(again.events).toBe(2);
  });

  it('splits entries at the watermark: at or below is applied, above is fresh', () => {
    const entries = [5, 9, 10, 12].map((sequence) => ({ sequence }));
    const { fresh, applied } = splitAtWatermark(entries, 9);
    expect(applied.map((e) => e.sequence)).toEqual([5, 9]);
    expect(fresh.map((e) => e.sequence)).toEqual([10, 12]);
    expect(splitAtWatermark(entries, 0).fresh).toHaveLength(4);
  });
});
