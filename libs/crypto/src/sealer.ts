import { PLAINTEXT_ALGORITHM, PayloadUnreadableError, type PayloadSealer, type SealScope } from '@aimass/events';
import type { v1 } from '@aimass/proto';
import { AES_256_GCM, NONCE_BYTES, TAG_BYTES, gcmDecrypt, gcmEncrypt } from './aes-gcm.js';
import type { DataKeySource } from './data-keys/ring.js';
import { DataKeyError } from './errors.js';

export interface AesGcmSealerOptions {
  /** Users' data keys: a `DataKeyRing`, or anything else implementing the source. */
  readonly keys: DataKeySource;
  /**
   * Also open payloads written by `plaintextSealer` (algorithm NONE), while data written before
   * per-user keys were configured is still around. Off by default: a NONE payload is then refused,
   * so nobody can slip unencrypted data past a deployment that requires encryption.
   */
  readonly allowPlaintext?: boolean | undefined;
}

const encoder = new TextEncoder();

/**
 * Seals with the user's data key (AES-256-GCM, a random 12-byte nonce, the event id as associated
 * data), as `EncryptedPayload { keyId, algorithm: 'AES-256-GCM', nonce, ciphertext‖tag }`.
 *
 * `open` rejects with `PayloadUnreadableError` for what no retry will fix: the key was destroyed
 * (crypto-shredding) or belongs to another user, no user is named, the payload is malformed or fails
 * authentication, the algorithm is unknown, or it is plaintext and that is not allowed. Faults of configuration or
 * of the key store (`TenantKeyError`, `DataKeyError` `unwrap_failed`, the store unavailable) reject
 * with their own error, so consumers retry instead of dropping data as unreadable.
 */
export class AesGcmSealer implements PayloadSealer {
  readonly #keys: DataKeySource;
  readonly #allowPlaintext: boolean;

  constructor(options: AesGcmSealerOptions) {
    this.#keys = options.keys;
    this.#allowPlaintext = options.allowPlaintext ?? false;
  }

  async seal(scope: SealScope, plaintext: Uint8Array, associatedData: string): Promise<v1.EncryptedPayload> {
    const { keyId, key } = await this.#keys.currentKey(scope);
    const { nonce, ciphertext } = gcmEncrypt(key, plaintext, encoder.encode(associatedData));
    return { keyId, algorithm: AES_256_GCM, nonce, ciphertext };
  }

  async open(scope: SealScope, payload: v1.EncryptedPayload, associatedData: string): Promise<Uint8Array> {
    if (payload.algorithm === PLAINTEXT_ALGORITHM) {
      if (this.#allowPlaintext) return payload.ciphertext;
      throw new PayloadUnreadableError(
        'payload is not encrypted (algorithm NONE) and this service requires encryption; allow plaintext only while migrating data written before per-user keys were configured',
      );
    }
    if (payload.algorithm !== AES_256_GCM) {
      throw new PayloadUnreadableError(`payload sealed with ${payload.algorithm || '(no algorithm)'}, which this sealer does not know (it reads ${AES_256_GCM})`);
    }
    if (payload.keyId.length === 0) throw new PayloadUnreadableError('payload names no data key (empty key id)');
    if (payload.nonce.byteLength !== NONCE_BYTES) {
      throw new PayloadUnreadableError(`payload nonce is ${payload.nonce.byteLength} bytes, expected ${NONCE_BYTES}: truncated or altered`);
    }
    if (payload.ciphertext.byteLength < TAG_BYTES) {
      throw new PayloadUnreadableError(`payload ciphertext is ${payload.ciphertext.byteLength} bytes, shorter than its ${TAG_BYTES}-byte tag: truncated or altered`);
    }
    let key;
    try {
      ({ key } = await this.#keys.keyFor(scope, payload.keyId));
    } catch (err) {
      if (err instanceof DataKeyError && (err.code === 'not_found' || err.code === 'other_user' || err.code === 'invalid_scope')) {
        throw new PayloadUnreadableError(`payload cannot be opened: ${err.message}`, { cause: err });
      }
      throw err;
    }
    const plaintext = gcmDecrypt(key, payload.nonce, payload.ciphertext, encoder.encode(associatedData));
    if (!plaintext) {
      // GCM's single tag check cannot say which of these it was.
      throw new PayloadUnreadableError(
        `payload fails authentication with data key ${payload.keyId}: its ciphertext, nonce or tag was altered, or it was sealed under another event id than the one given`,
      );
    }
    return plaintext;
  }
}
