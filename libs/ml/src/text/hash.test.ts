import { describe, expect, it } from 'vitest';
import { bucketOf, murmur3 } from './hash.js';

describe('murmur3', () => {
  it('matches the reference MurmurHash3_x86_32 vectors', () => {
    expect(murmur3('', 0)).toBe(0);
    expect(murmur3('', 1)).toBe(0x514e28b7);
    expect(murmur3('', 0xffffffff)).toBe(0x81f16f39);
    expect(murmur3('test', 0)).toBe(0xba6bd213);
    expect(murmur3('Hello, world!', 1234)).toBe(0xfaf6cdb3);
    expect(murmur3('The quick brown fox jumps over the lazy dog', 0x9747b28c)).toBe(0x2fa826cd);
    expect(murmur3('aaaa', 0x9747b28c)).toBe(0x5a97808a);
    expect(murmur3('abc', 0)).toBe(0xb3dd93fa);
  });

  it('hashes the UTF-8 bytes, so non-ASCII text is stable across implementations', () => {
    // Same bytes as the UTF-8 of 'é' written as two Latin-1 code units would differ: check that it does.
    expect(murmur3('é', 0)).not.toBe(murmur3('\u00c3\u00a9', 0));
    expect(murmur3('你好', 7)).toBe(murmur3('你好', 7));
  });
});

describe('bucketOf', () => {
  it('never returns the padding bucket 0 and stays below the bucket count', () => {
    for (let i = 0; i < 5000; i++) {
      const b = bucketOf(`feature-${i}`, 3, 16);
      expect(b).toBeGreaterThanOrEqual(1);
      expect(b).toBeLessThan(16);
    }
  });
});
