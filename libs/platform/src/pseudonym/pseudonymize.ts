import { createHmac } from 'node:crypto';
import { base32Lower } from './base32.js';

/** Bytes of the HMAC kept: 20 bytes = 160 bits, which base32-encode to exactly 32 characters. */
export const PSEUDONYM_BYTES = 20;
/** Length of every pseudonym, in characters. */
export const PSEUDONYM_LENGTH = 32;
/** Matches a well-formed pseudonym (and nothing that could break a NATS subject). */
export const PSEUDONYM_PATTERN = /^[a-z2-7]{32}$/;

// Versioned so a future change of construction cannot collide with today's pseudonyms.
const DOMAIN = 'aimass/pseudonym/v1';

export type SecretInput = string | Uint8Array;

function lengthPrefixed(value: string): Buffer {
  const bytes = Buffer.from(value, 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32BE(bytes.length);
  return Buffer.concat([len, bytes]);
}

/**
 * The pseudonym of `userId` within `tenant`: HMAC-SHA256 keyed with the tenant's secret over
 * `"aimass/pseudonym/v1" || len(tenant) || tenant || len(userId) || userId`, truncated to 160
 * bits and encoded as lowercase base32 (32 characters of `[a-z2-7]`).
 *
 * Length prefixes keep (tenant "a", user "bc") and (tenant "ab", user "c") apart; the tenant is
 * in the message as well as (via derivation) in the key, so one secret reused by mistake for two
 * tenants still gives different pseudonyms. Without the secret a pseudonym cannot be linked to a
 * user id, and it never contains the id.
 */
export function pseudonymize(tenantSecret: SecretInput, tenant: string, userId: string): string {
  if (tenant.length === 0) throw new TypeError('pseudonymize: tenant must not be empty');
  if (userId.length === 0) throw new TypeError('pseudonymize: userId must not be empty');
  const key = typeof tenantSecret === 'string' ? Buffer.from(tenantSecret, 'utf8') : tenantSecret;
  if (key.length === 0) throw new TypeError('pseudonymize: tenant secret must not be empty');
  const mac = createHmac('sha256', key)
    .update(DOMAIN)
    .update(lengthPrefixed(tenant))
    .update(lengthPrefixed(userId))
    .digest();
  return base32Lower(mac.subarray(0, PSEUDONYM_BYTES));
}
