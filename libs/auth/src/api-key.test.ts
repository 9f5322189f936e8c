import { UnauthenticatedError } from '@aimass/platform';
import { describe, expect, it } from 'vitest';
import { API_KEY_PATTERN, generateApiKey, hashSecret, isKeyId, parseApiKey, secretMatches } from './api-key.js';

describe('API keys', () => {
  it('generates amk_<16 base32>_<43 base64url> keys, each different', () => {
    const a = generateApiKey();
    const b = generateApiKey();
    expect(a.key).toMatch(API_KEY_PATTERN);
    expect(a.key.startsWith(`amk_${a.keyId}_`)).toBe(true);
    expect(isKeyId(a.keyId)).toBe(true);
    expect(a.keyId).not.toBe(b.keyId);
    expect(a.key).not.toBe(b.key);
  });

  it('stores only SHA-256 of the secret part, which the key then matches', () => {
    const { key, secretSha256 } = generateApiKey();
    const { secret } = parseApiKey(key);
    expect(secretSha256).toHaveLength(32);
    expect(secretSha256.equals(hashSecret(secret))).toBe(true);
    expect(secretMatches(secret, secretSha256)).toBe(true);
    expect(secretMatches(`${secret.slice(0, -1)}${secret.endsWith('A') ? 'B' : 'A'}`, secretSha256)).toBe(false);
    expect(secretMatches(secret, secretSha256.subarray(0, 16))).toBe(false);
  });

  it('refuses malformed keys with UNAUTHENTICATED that never repeats the value', () => {
    const { key } = generateApiKey();
    for (const bad of [key.slice(0, -1), `${key}x`, key.replace('amk_', 'amx_'), 'sk-live-123', '', key.toUpperCase()]) {
      let caught: unknown;
      try {
        parseApiKey(bad);
      } catch (err) {
        caught = err;
      }
      expect(caught, bad).toBeInstanceOf(UnauthenticatedError);
      const message = (caught as Error).message;
      expect(message).toMatch(/^malformed API key: /);
      if (bad.length > 8) expect(message).not.toContain(bad.slice(4, 30));
    }
  });

  it('tells a truncated key from a key of another kind', () => {
    const { key } = generateApiKey();
    expect(() => parseApiKey(key.slice(0, 30))).toThrow(/was it cut or padded/);
    expect(() => parseApiKey('sk-live-123')).toThrow(/start with "amk_"/);
  });
});
