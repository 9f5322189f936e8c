import { describe, expect, it } from 'vitest';
import { ByteLruCache } from './cache.js';

describe('ByteLruCache', () => {
  it('evicts the least recently used entries until the bytes fit', () => {
    const cache = new ByteLruCache<string>(100);
    cache.set('a', 'A', 40);
    cache.set('b', 'B', 40);
    expect(cache.get('a')).toBe('A'); // a is now the most recent
    cache.set('c', 'C', 40); // 120 > 100: b goes
    expect(cache.has('b')).toBe(false);
    expect(cache.has('a')).toBe(true);
    expect(cache.stats()).toMatchObject({ entries: 2, bytes: 80, hits: 1, misses: 0, evictions: 1 });
  });

  it('counts misses and replaces an entry without double-counting its bytes', () => {
    const cache = new ByteLruCache<number>(100);
    expect(cache.get('x')).toBeUndefined();
    cache.set('x', 1, 30);
    cache.set('x', 2, 50);
    expect(cache.stats()).toMatchObject({ entries: 1, bytes: 50, misses: 1 });
    expect(cache.peek('x')).toBe(2);
  });

  it('evicts several small entries for one large one', () => {
    const cache = new ByteLruCache<number>(100);
    for (let i = 0; i < 10; i++) cache.set(`k${i}`, i, 10);
    cache.set('big', 99, 75);
    expect(cache.stats()).toMatchObject({ entries: 3, bytes: 95, evictions: 8 });
    expect(cache.has('k9')).toBe(true);
    expect(cache.has('k8')).toBe(true);
    expect(cache.has('k7')).toBe(false);
  });

  it('refuses an entry larger than the whole cache and drops the old value', () => {
    const cache = new ByteLruCache<number>(100);
    cache.set('x', 1, 10);
    expect(cache.set('x', 2, 101)).toBe(false);
    expect(cache.has('x')).toBe(false);
    expect(cache.stats()).toMatchObject({ entries: 0, bytes: 0, rejected: 1 });
  });

  it('deletes by prefix', () => {
    const cache = new ByteLruCache<number>(100);
    cache.set('t1/u1', 1, 10);
    cache.set('t1/u2', 2, 10);
    cache.set('t2/u1', 3, 10);
    expect(cache.deletePrefix('t1/')).toBe(2);
    expect(cache.stats()).toMatchObject({ entries: 1, bytes: 10 });
  });

  it('rejects a non-positive bound', () => {
    expect(() => new ByteLruCache(0)).toThrow(/maxBytes/);
  });
});
