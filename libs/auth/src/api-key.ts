import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { UnauthenticatedError } from '@aimass/platform';

/** Every API key starts with this, so secret scanners and people recognise one. */
export const API_KEY_PREFIX = 'amk_';
/** Characters of the key id: 80 random bits in lower-case base32. */
export const KEY_ID_LENGTH = 16;
/** Random bytes of the secret part (256 bits). */
export const SECRET_BYTES = 32;
/** `amk_<keyId>_<secret>`: the key id is public (listable, safe to log); the secret is not. */
export const API_KEY_PATTERN = /^amk_([a-z2-7]{16})_([A-Za-z0-9_-]{43})$/;
export const KEY_ID_PATTERN = /^[a-z2-7]{16}$/;

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

export interface GeneratedApiKey {
  readonly keyId: string;
  /** The whole key to hand to the caller once: `amk_<keyId>_<secret>`. */
  readonly key: string;
  /** SHA-256 of the secret part: the only form that is stored. */
  readonly secretSha256: Buffer;
}

export interface ParsedApiKey {
  readonly keyId: string;
  readonly secret: string;
}

function randomKeyId(): string {
  // 10 bytes = 80 bits = 16 base32 characters exactly.
  const bytes = randomBytes(10);
  let out = '';
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(buffer >>> (bits - 5)) & 31];
      bits -= 5;
    }
    buffer &= (1 << bits) - 1;
  }
  return out;
}

/**
 * SHA-256 of a key's secret part. A fast hash is enough here, unlike for passwords: the secret is
 * 256 random bits, so there is no dictionary to try and a stolen hash cannot be brute-forced;
 * a slow hash (bcrypt, scrypt) would only cost CPU on every authenticated call.
 */
export function hashSecret(secret: string): Buffer {
  return createHash('sha256').update(secret, 'utf8').digest();
}

/** A new random key. Show `key` once; store `keyId` and `secretSha256`. */
export function generateApiKey(): GeneratedApiKey {
  const keyId = randomKeyId();
  const secret = randomBytes(SECRET_BYTES).toString('base64url');
  return { keyId, key: `${API_KEY_PREFIX}${keyId}_${secret}`, secretSha256: hashSecret(secret) };
}

/**
 * Splits `amk_<keyId>_<secret>`. A malformed key is UNAUTHENTICATED with a message that says what
 * is wrong and never repeats the value (it may be a real secret pasted in the wrong place).
 */
export function parseApiKey(key: string): ParsedApiKey {
  const match = API_KEY_PATTERN.exec(key);
  if (!match) {
    const hint = key.startsWith(API_KEY_PREFIX)
      ? `it must look like ${API_KEY_PREFIX}<16 characters a-z2-7>_<43 characters base64url> (${4 + KEY_ID_LENGTH + 1 + 43} characters in all): was it cut or padded when copied?`
      : `API keys start with "${API_KEY_PREFIX}": send "authorization: Bearer ${API_KEY_PREFIX}…" with the key CreateApiKey returned`;
    throw new UnauthenticatedError(`malformed API key: ${hint}`);
  }
  return { keyId: match[1]!, secret: match[2]! };
}

/** Whether `secret` hashes to `storedSha256`, compared in constant time. */
export function secretMatches(secret: string, storedSha256: Uint8Array): boolean {
  const actual = hashSecret(secret);
  if (storedSha256.length !== actual.length) return false;
  return timingSafeEqual(actual, storedSha256);
}

/** Whether `value` is a well-formed key id (what may be logged or listed). */
export function isKeyId(value: string): boolean {
  return KEY_ID_PATTERN.test(value);
}
