import { createCipheriv, createDecipheriv, randomBytes, type KeyObject } from 'node:crypto';

/** The algorithm name written in `EncryptedPayload.algorithm` and in wrapped data keys. */
export const AES_256_GCM = 'AES-256-GCM';
export const KEY_BYTES = 32;
export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;

export interface GcmSealed {
  readonly nonce: Buffer;
  /** Ciphertext followed by the 16-byte tag. */
  readonly ciphertext: Buffer;
}

/**
 * AES-256-GCM with a fresh random 96-bit nonce. Random nonces are safe up to about 2^32 messages
 * per key; each user has their own key, far below that.
 */
export function gcmEncrypt(key: KeyObject, plaintext: Uint8Array, aad: Uint8Array): GcmSealed {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad);
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
  return { nonce, ciphertext };
}

/**
 * The plaintext, or undefined when authentication fails. GCM cannot tell a wrong key, a wrong
 * associated data and an altered nonce, ciphertext or tag apart: all fail the same tag check.
 * Callers check lengths first so that malformed input gets its own message.
 */
export function gcmDecrypt(key: KeyObject, nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Buffer | undefined {
  if (nonce.byteLength !== NONCE_BYTES || sealed.byteLength < TAG_BYTES) return undefined;
  const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
  decipher.setAAD(aad);
  decipher.setAuthTag(sealed.subarray(sealed.byteLength - TAG_BYTES));
  const body = decipher.update(sealed.subarray(0, sealed.byteLength - TAG_BYTES));
  try {
    return Buffer.concat([body, decipher.final()]);
  } catch {
    // Unauthenticated output must not outlive the failed check.
    body.fill(0);
    return undefined;
  }
}
