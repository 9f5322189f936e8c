import { describe, expect, it } from 'vitest';
import { isHeldOut, splitByKey } from './split.js';

describe('hold-out split', () => {
  const keys = Array.from({ length: 10000 }, (_, i) => `group-${i % 5}/${String(i).padStart(5, '0')}`);

  it('holds out about the requested fraction', () => {
    const held = keys.filter((k) => isHeldOut(k)).length / keys.length;
    expect(held).toBeGreaterThan(0.18);
    expect(held).toBeLessThan(0.22);
    expect(keys.filter((k) => isHeldOut(k, 0.5)).length / keys.length).toBeCloseTo(0.5, 1);
  });

  it('depends on the key only: not on order, not on the other items', () => {
    const forward = splitByKey(keys, (k) => k);
    const reversed = splitByKey([...keys].reverse(), (k) => k);
    expect(new Set(reversed.test)).toEqual(new Set(forward.test));
    const subset = splitByKey(keys.slice(0, 100), (k) => k);
    expect(subset.test).toEqual(forward.test.filter((k) => keys.slice(0, 100).includes(k)));
  });

  it('is pinned: these corpus keys fall where they always have', () => {
    // A change here moves mails between training and evaluation and makes old metrics incomparable.
    const pinned = ['easy-ham-1/00001', 'easy-ham-1/00002', 'easy-ham-1/00003', 'spam-2/00001', 'spam-2/00002', 'hard-ham-1/00010'];
    expect(pinned.map((k) => isHeldOut(k))).toMatchInlineSnapshot(`
      [
        true,
        false,
        false,
        false,
        false,
        true,
      ]
    `);
  });
});
