import type { v1 } from '@aimass/proto';

/** Whose key seals a payload. */
export interface SealScope {
  readonly tenant: string;
  readonly userPseudonym: string;
}

/**
 * Seals personal data carried in events and histories (EncryptedPayload). The associated data
 * binds a ciphertext to its event id, so it cannot be replayed under another event.
 * The privacy service's per-user keys (AES-256-GCM, crypto-shredding) implement this port; until a
 * deployment configures them, `plaintextSealer` keeps the same wire shape with algorithm NONE.
 */
export interface PayloadSealer {
  seal(scope: SealScope, plaintext: Uint8Array, associatedData: string): Promise<v1.EncryptedPayload>;
  /** Rejects when the payload cannot be opened (unknown algorithm, destroyed key, tampering). */
  open(scope: SealScope, payload: v1.EncryptedPayload, associatedData: string): Promise<Uint8Array>;
}

export const PLAINTEXT_ALGORITHM = 'NONE';

export class PayloadUnreadableError extends Error {
  override readonly name = 'PayloadUnreadableError';
}

/** No encryption: the ciphertext field holds the plaintext. Reads only what it wrote. */
export function plaintextSealer(): PayloadSealer {
  return {
    seal: (_scope, plaintext) => Promise.resolve({ keyId: '', algorithm: PLAINTEXT_ALGORITHM, nonce: Buffer.alloc(0), ciphertext: Buffer.from(plaintext.buffer, plaintext.byteOffset, plaintext.byteLength) }),
    open: (_scope, payload) =>
      payload.algorithm === PLAINTEXT_ALGORITHM
        ? Promise.resolve(payload.ciphertext)
        : Promise.reject(new PayloadUnreadableError(`payload sealed with ${payload.algorithm || '(no algorithm)'}; this service has no key provider for it`)),
  };
}
