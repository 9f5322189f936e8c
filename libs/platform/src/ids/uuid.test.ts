import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { UUID_PATTERN, uuidv7, uuidv8FromDigest } from './uuid.js';

describe('uuid', () => {
  it('v7: version and variant bits, time first so ids sort by creation', () => {
    const a = uuidv7(1_700_000_000_000, new Uint8Array(10));
    const b = uuidv7(1_700_000_000_001, new Uint8Array(10).fill(255));
    expect(a).toMatch(UUID_PATTERN);
    expect(a[14]).toBe('7');
    expect(['8', '9', 'a', 'b']).toContain(a[19]);
    expect(a < b).toBe(true);
    expect(a.slice(0, 13).replace('-', '')).toBe((1_700_000_000_000).toString(16).padStart(12, '0'));
    expect(uuidv7()).not.toBe(uuidv7());
  });

  it('v8 from a digest: deterministic, version 8, refuses a short digest', () => {
    const d = createHash('sha256').update('x').digest();
    expect(uuidv8FromDigest(d)).toBe(uuidv8FromDigest(d));
    expect(uuidv8FromDigest(d)[14]).toBe('8');
    expect(uuidv8FromDigest(d)).toMatch(UUID_PATTERN);
    expect(() => uuidv8FromDigest(new Uint8Array(8))).toThrow(/16 bytes/);
  });
});
