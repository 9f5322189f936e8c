import { describe, expect, it } from 'vitest';
import { fnv1a32, keyedSubject, partitionFilter, partitionOf, subjectMatches } from './subjects.js';

describe('partitionOf', () => {
  it('is FNV-1a 32 over UTF-8 (published test vectors), so any language computes the same partition', () => {
    expect(fnv1a32('')).toBe(0x811c9dc5);
    expect(fnv1a32('a')).toBe(0xe40c292c);
    expect(fnv1a32('foobar')).toBe(0xbf9cf968);
    expect(fnv1a32('é')).toBe(0x1e9de8c1);
    expect([partitionOf('alice', 8), partitionOf('bob', 8), partitionOf('carol', 8)]).toEqual([7, 4, 2]);
  });

  it('spreads keys over the partitions', () => {
    const counts = new Array<number>(8).fill(0);
    for (let i = 0; i < 8000; i++) counts[partitionOf(`user-${i}`, 8)]! += 1;
    for (const count of counts) expect(count).toBeGreaterThan(800);
  });

  it('rejects a partition count that is not a positive integer', () => {
    expect(() => partitionOf('a', 0)).toThrow(RangeError);
    expect(() => partitionOf('a', 1.5)).toThrow(RangeError);
  });
});

describe('keyedSubject', () => {
  it('puts the partition token right after the prefix, then the key and the optional suffix', () => {
    const p = partitionOf('ps1', 16);
    expect(keyedSubject('aimass.t1.feedback', 'ps1', 16)).toBe(`aimass.t1.feedback.${p}.ps1`);
    expect(keyedSubject('aimass.t1.erasure.completed', 'ps1', 16, 'updater')).toBe(
      `aimass.t1.erasure.completed.${p}.ps1.updater`,
    );
    expect(subjectMatches(partitionFilter('aimass.*.feedback', p), keyedSubject('aimass.t1.feedback', 'ps1', 16))).toBe(
      true,
    );
  });

  it('refuses keys and prefixes that would change the subject layout', () => {
    for (const key of ['', 'a.b', 'a*', '>', 'a b']) expect(() => keyedSubject('x', key, 4)).toThrow(RangeError);
    expect(() => keyedSubject('x.*', 'k', 4)).toThrow(RangeError);
    expect(() => keyedSubject('x..y', 'k', 4)).toThrow(RangeError);
  });
});

describe('subjectMatches', () => {
  it('follows NATS wildcard rules', () => {
    expect(subjectMatches('a.*.c', 'a.b.c')).toBe(true);
    expect(subjectMatches('a.*.c', 'a.b.d')).toBe(false);
    expect(subjectMatches('a.>', 'a.b.c')).toBe(true);
    expect(subjectMatches('a.>', 'a')).toBe(false);
    expect(subjectMatches('a.b', 'a.b.c')).toBe(false);
    expect(subjectMatches('a.b.c', 'a.b')).toBe(false);
  });
});
