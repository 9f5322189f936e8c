/**
 * MurmurHash3 (x86, 32-bit) of a string's UTF-8 bytes. Chosen over FNV-1a because it takes a seed
 * natively and mixes short keys (most features are 3-grams) well; hashing the UTF-8 bytes rather
 * than UTF-16 code units keeps it reproducible by any other implementation (Python's mmh3,
 * `mmh3.hash(s.encode('utf-8'), seed, signed=False)`, gives the same numbers).
 */
export function murmur3(text: string, seed = 0): number {
  const bytes = utf8(text);
  const length = bytes.length;
  let h = seed >>> 0;
  const c1 = 0xcc9e2d51;
  const c2 = 0x1b873593;
  const blocks = length & ~3;
  for (let i = 0; i < blocks; i += 4) {
    let k = (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24)) >>> 0;
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, c2);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const tail = length & 3;
  if (tail > 0) {
    let k = 0;
    if (tail === 3) k ^= bytes[blocks + 2]! << 16;
    if (tail >= 2) k ^= bytes[blocks + 1]! << 8;
    k ^= bytes[blocks]!;
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, c2);
    h ^= k;
  }
  h ^= length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const encoder = new TextEncoder();
// Reused across calls: featurizing a corpus hashes millions of short strings, and a fresh
// Uint8Array per feature dominated the cost.
let scratch = new Uint8Array(256);

function utf8(text: string): Uint8Array {
  if (text.length * 3 > scratch.length) scratch = new Uint8Array(text.length * 3);
  const { written } = encoder.encodeInto(text, scratch);
  return scratch.subarray(0, written);
}

/**
 * The bucket of a feature in a table of `buckets` rows, never 0: row 0 is the padding id of the
 * ONNX input, so no real feature may land there.
 */
export function bucketOf(feature: string, seed: number, buckets: number): number {
  return 1 + (murmur3(feature, seed) % (buckets - 1));
}
