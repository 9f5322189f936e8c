import { randomBytes } from 'node:crypto';

/** Any RFC 9562 UUID in its canonical lower-case text form. */
export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function format(bytes: Uint8Array, version: number): string {
  bytes[6] = (version << 4) | (bytes[6]! & 0x0f);
  bytes[8] = 0x80 | (bytes[8]! & 0x3f);
  const hex = Buffer.from(bytes).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * A UUID v7 (RFC 9562): 48-bit Unix milliseconds, then random bits. Time-ordered, so ids sort by
 * creation and index well; random enough that they cannot be guessed or enumerated.
 */
export function uuidv7(now: number = Date.now(), random: Uint8Array = randomBytes(10)): string {
  const bytes = new Uint8Array(16);
  let ms = Math.max(0, Math.floor(now));
  for (let i = 5; i >= 0; i--) {
    bytes[i] = ms % 256;
    ms = Math.floor(ms / 256);
  }
  bytes.set(random.subarray(0, 10), 6);
  return format(bytes, 7);
}

/**
 * A UUID v8 (RFC 9562 "custom") made of the first 16 bytes of `digest`: for ids derived from
 * content, which must be the same on every replica and retry. It has the shape of every other id
 * and never equals a random v7 one.
 */
export function uuidv8FromDigest(digest: Uint8Array): string {
  if (digest.length < 16) throw new RangeError(`a UUID needs 16 bytes of digest, got ${digest.length}`);
  return format(new Uint8Array(digest.subarray(0, 16)), 8);
}
