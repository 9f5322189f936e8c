import { createHmac, timingSafeEqual } from 'node:crypto';
import { UnauthenticatedError } from '@aimass/platform';

/** Service tokens start with this; `ams_<service>.<issued-at seconds>.<mac>`. */
export const SERVICE_TOKEN_PREFIX = 'ams_';
/** Shortest internal secret accepted (bytes): an HMAC key below 256 bits is guessable offline. */
export const MIN_INTERNAL_SECRET_BYTES = 32;
export const SERVICE_NAME_PATTERN = /^[a-z][a-z0-9-]{0,62}$/;
/** A token issued by a clock this far ahead is still accepted. */
export const CLOCK_SKEW_MS = 30_000;

const TOKEN_PATTERN = /^ams_([a-z][a-z0-9-]{0,62})\.(\d{1,12})\.([A-Za-z0-9_-]{43})$/;

function mac(secret: Uint8Array, service: string, iat: number): Buffer {
  return createHmac('sha256', secret).update(`${service}.${iat}`).digest();
}

function checkSecret(secret: Uint8Array): void {
  if (secret.length < MIN_INTERNAL_SECRET_BYTES) {
    throw new RangeError(`the internal token secret must be at least ${MIN_INTERNAL_SECRET_BYTES} bytes`);
  }
}

/**
 * A token a platform service sends on its calls to another: HMAC-SHA256(internal secret,
 * `<service>.<issued-at>`). Only holders of the secret (the platform's own pods) can make one;
 * its age is bounded, so one copied from a log or a trace stops working soon.
 */
export function issueServiceToken(secret: Uint8Array, service: string, nowMs = Date.now()): string {
  checkSecret(secret);
  if (!SERVICE_NAME_PATTERN.test(service)) throw new RangeError(`invalid service name ${JSON.stringify(service)}`);
  const iat = Math.floor(nowMs / 1000);
  return `${SERVICE_TOKEN_PREFIX}${service}.${iat}.${mac(secret, service, iat).toString('base64url')}`;
}

export interface VerifiedServiceToken {
  readonly service: string;
  readonly issuedAtMs: number;
}

/** Checks a service token; UNAUTHENTICATED saying what is wrong (never echoing the token). */
export function verifyServiceToken(secret: Uint8Array, token: string, maxAgeMs: number, nowMs = Date.now()): VerifiedServiceToken {
  checkSecret(secret);
  const match = TOKEN_PATTERN.exec(token);
  if (!match) throw new UnauthenticatedError('malformed service token: expected ams_<service>.<issued-at>.<mac>');
  const service = match[1]!;
  const iat = Number(match[2]);
  const expected = mac(secret, service, iat);
  const given = Buffer.from(match[3]!, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw new UnauthenticatedError('service token not signed with this platform\'s internal secret: check auth.internalTokenSecretFile is the same in every service');
  }
  const issuedAtMs = iat * 1000;
  if (issuedAtMs > nowMs + CLOCK_SKEW_MS) {
    throw new UnauthenticatedError('service token issued in the future: check the clocks of the calling and called pods');
  }
  if (nowMs - issuedAtMs > maxAgeMs) {
    throw new UnauthenticatedError(`service token expired (older than ${Math.round(maxAgeMs / 1000)} s): the caller must issue a fresh one per call`);
  }
  return { service, issuedAtMs };
}

/**
 * Issues tokens for one service, reusing one for a short while: an HMAC per call is cheap, but a
 * fresh string per call is pointless when the verifier accepts minutes of age.
 */
export class ServiceTokenIssuer {
  readonly #secret: Uint8Array;
  readonly #service: string;
  readonly #reuseMs: number;
  #current: { token: string; at: number } | undefined;

  constructor(secret: Uint8Array, service: string, options: { reuseMs?: number } = {}) {
    checkSecret(secret);
    this.#secret = secret;
    this.#service = service;
    this.#reuseMs = options.reuseMs ?? 10_000;
    // Fails now rather than on the first call.
    issueServiceToken(secret, service);
  }

  get service(): string {
    return this.#service;
  }

  token(nowMs = Date.now()): string {
    const current = this.#current;
    if (current && nowMs - current.at < this.#reuseMs && nowMs >= current.at) return current.token;
    const token = issueServiceToken(this.#secret, this.#service, nowMs);
    this.#current = { token, at: nowMs };
    return token;
  }
}
