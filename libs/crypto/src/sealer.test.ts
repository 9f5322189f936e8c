import { randomBytes } from 'node:crypto';
import { PayloadUnreadableError, plaintextSealer } from '@aimass/events';
import type { v1 } from '@aimass/proto';
import { describe, expect, it } from 'vitest';
import { DataKeyRing } from './data-keys/ring.js';
import { InMemoryWrappedKeyStore } from './data-keys/store.js';
import { DataKeyError, TenantKeyError } from './errors.js';
import { AesGcmSealer } from './sealer.js';
import { tenantKeysFromConfig } from './tenant-keys/from-config.js';

const A = { tenant: 'acme', userPseudonym: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' };
const B = { tenant: 'acme', userPseudonym: 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb' };
const text = (s: string) => new TextEncoder().encode(s);
const str = (b: Uint8Array) => new TextDecoder().decode(b);

function setup(options: { allowPlaintext?: boolean } = {}) {
  const store = new InMemoryWrappedKeyStore();
  const kek = tenantKeysFromConfig({ default: randomBytes(32).toString('base64') });
  const ring = new DataKeyRing({ kek, store });
  return { store, kek, ring, sealer: new AesGcmSealer({ keys: ring, allowPlaintext: options.allowPlaintext }) };
}

async function unreadable(promise: Promise<unknown>): Promise<PayloadUnreadableError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(PayloadUnreadableError);
  return err as PayloadUnreadableError;
}

function flip(bytes: Uint8Array, at: number): Buffer {
  const copy = Buffer.from(bytes);
  copy[at] = copy[at]! ^ 0x01;
  return copy;
}

describe('AesGcmSealer', () => {
  it('round-trips, with the wire shape of EncryptedPayload', async () => {
    const { sealer, ring } = setup();
    const sealed = await sealer.seal(A, text('secret marker 42'), 'event-1');
    expect(sealed.algorithm).toBe('AES-256-GCM');
    expect(sealed.keyId).toBe((await ring.currentKey(A)).keyId);
    expect(sealed.nonce.byteLength).toBe(12);
    expect(sealed.ciphertext.byteLength).toBe(16 + 16);
    expect(Buffer.from(sealed.ciphertext).includes(Buffer.from('secret'))).toBe(false);
    expect(str(await sealer.open(A, sealed, 'event-1'))).toBe('secret marker 42');
    // Random nonce: the same plaintext seals differently.
    const again = await sealer.seal(A, text('secret marker 42'), 'event-1');
    expect(again.nonce.equals(sealed.nonce)).toBe(false);
    expect(again.ciphertext.equals(sealed.ciphertext)).toBe(false);
    // Empty plaintexts too.
    expect((await sealer.open(A, await sealer.seal(A, new Uint8Array(0), 'e'), 'e')).byteLength).toBe(0);
  });

  it('binds the payload to its event id (associated data)', async () => {
    const { sealer } = setup();
    const sealed = await sealer.seal(A, text('x'), 'event-1');
    const err = await unreadable(sealer.open(A, sealed, 'event-2'));
    expect(err.message).toContain('sealed under another event id');
  });

  it('detects tampering with ciphertext, tag, nonce and key id, and says why', async () => {
    const { sealer } = setup();
    const sealed = await sealer.seal(A, text('hello world, long enough to outlast a tag'), 'e1');
    const body = sealed.ciphertext.byteLength - 16;
    const cases: Array<[string, v1.EncryptedPayload, RegExp]> = [
      ['ciphertext', { ...sealed, ciphertext: flip(sealed.ciphertext, 0) }, /fails authentication/],
      ['tag', { ...sealed, ciphertext: flip(sealed.ciphertext, body + 3) }, /fails authentication/],
      ['nonce', { ...sealed, nonce: flip(sealed.nonce, 11) }, /fails authentication/],
      ['short nonce', { ...sealed, nonce: sealed.nonce.subarray(0, 8) }, /nonce is 8 bytes, expected 12/],
      ['truncated', { ...sealed, ciphertext: sealed.ciphertext.subarray(0, 10) }, /shorter than its 16-byte tag/],
      ['tag cut off', { ...sealed, ciphertext: sealed.ciphertext.subarray(0, body) }, /fails authentication/],
      ['key id', { ...sealed, keyId: `${sealed.keyId.split('.')[0]!}.AAAAAAAAAAAAAAAAAAAAAA` }, /does not exist any more|does not exist/],
      ['empty key id', { ...sealed, keyId: '' }, /names no data key/],
      ['algorithm', { ...sealed, algorithm: 'ChaCha20-Poly1305' }, /ChaCha20-Poly1305, which this sealer does not know/],
    ];
    for (const [what, payload, message] of cases) {
      const err = await unreadable(sealer.open(A, payload, 'e1'));
      expect(err.message, what).toMatch(message);
    }
    // The original still opens.
    expect(str(await sealer.open(A, sealed, 'e1'))).toBe('hello world, long enough to outlast a tag');
  });

  it("user A's payload cannot be opened as user B's, even under B's scope with B's own key existing", async () => {
    const { sealer } = setup();
    const forA = await sealer.seal(A, text('for a'), 'e1');
    await sealer.seal(B, text('for b'), 'e2');
    const err = await unreadable(sealer.open(B, forA, 'e1'));
    expect(err.message).toContain('belongs to another user');
    // Nor with B's key id pasted in: B's key does not authenticate A's ciphertext.
    const forB = await sealer.seal(B, text('for b'), 'e1');
    await unreadable(sealer.open(B, { ...forA, keyId: forB.keyId }, 'e1'));
    // Nor in another tenant, nor for no user at all.
    await unreadable(sealer.open({ tenant: 'globex', userPseudonym: A.userPseudonym }, forA, 'e1'));
    expect((await unreadable(sealer.open({ tenant: 'acme', userPseudonym: '' }, forA, 'e1'))).message).toMatch(/needs a tenant and a user pseudonym/);
  });

  it('destroying the key makes every payload it sealed unreadable; a new key seals what comes after', async () => {
    const { sealer, ring } = setup();
    const before = await Promise.all([1, 2, 3].map((i) => sealer.seal(A, text(`m${i}`), `e${i}`)));
    await ring.destroy(A.tenant, A.userPseudonym);
    for (const [i, sealed] of before.entries()) {
      const err = await unreadable(sealer.open(A, sealed, `e${i + 1}`));
      expect(err.message).toMatch(/destroyed/);
      expect(err.cause).toBeInstanceOf(DataKeyError);
    }
    const after = await sealer.seal(A, text('new'), 'e9');
    expect(after.keyId).not.toBe(before[0]!.keyId);
    expect(str(await sealer.open(A, after, 'e9'))).toBe('new');
    await unreadable(sealer.open(A, before[0]!, 'e1'));
  });

  it('two sealers sharing one store, racing on a first use, seal with one key and read each other', async () => {
    const store = new InMemoryWrappedKeyStore();
    const kek = tenantKeysFromConfig({ default: randomBytes(32).toString('base64') });
    const s1 = new AesGcmSealer({ keys: new DataKeyRing({ kek, store }) });
    const s2 = new AesGcmSealer({ keys: new DataKeyRing({ kek, store }) });
    const [p1, p2] = await Promise.all([s1.seal(A, text('one'), 'e1'), s2.seal(A, text('two'), 'e2')]);
    expect(p1.keyId).toBe(p2.keyId);
    expect(str(await s2.open(A, p1, 'e1'))).toBe('one');
    expect(str(await s1.open(A, p2, 'e2'))).toBe('two');
    expect(store.size).toBe(1);
  });

  it('refuses plaintextSealer payloads unless allowed for a migration', async () => {
    const plain = await plaintextSealer().seal(A, text('old data'), 'e1');
    const strict = setup().sealer;
    const err = await unreadable(strict.open(A, plain, 'e1'));
    expect(err.message).toMatch(/not encrypted \(algorithm NONE\)/);
    const migrating = setup({ allowPlaintext: true }).sealer;
    expect(str(await migrating.open(A, plain, 'e1'))).toBe('old data');
    // It still never writes plaintext.
    expect((await migrating.seal(A, text('new'), 'e2')).algorithm).toBe('AES-256-GCM');
  });

  it('passes configuration faults through instead of calling the payload unreadable', async () => {
    const store = new InMemoryWrappedKeyStore();
    const sealer = new AesGcmSealer({ keys: new DataKeyRing({ kek: tenantKeysFromConfig({ tenants: { acme: randomBytes(32).toString('base64') } }), store }) });
    const sealed = await sealer.seal(A, text('x'), 'e1');
    // The tenant's KEK was replaced in configuration instead of rotated to a new version.
    const wrongKek = new AesGcmSealer({ keys: new DataKeyRing({ kek: tenantKeysFromConfig({ tenants: { acme: randomBytes(32).toString('base64') } }), store }) });
    const err = await wrongKek.open(A, sealed, 'e1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataKeyError);
    expect(err).not.toBeInstanceOf(PayloadUnreadableError);
    expect(err).toMatchObject({ code: 'unwrap_failed' });
    // A tenant without a key and no default: seal fails with the reason.
    await expect(sealer.seal({ tenant: 'globex', userPseudonym: 'p' }, text('x'), 'e')).rejects.toBeInstanceOf(TenantKeyError);
  });

  it('never puts key material into its error messages', async () => {
    const { sealer, ring } = setup();
    const sealed = await sealer.seal(A, text('x'), 'e1');
    const key = (await ring.currentKey(A)).key.export();
    const messages = [
      (await unreadable(sealer.open(A, sealed, 'e2'))).message,
      (await unreadable(sealer.open(B, sealed, 'e1'))).message,
      (await unreadable(sealer.open(A, { ...sealed, nonce: flip(sealed.nonce, 0) }, 'e1'))).message,
    ];
    for (const m of messages) {
      expect(m).not.toContain(key.toString('base64'));
      expect(m).not.toContain(key.toString('hex'));
      expect(m).not.toContain(key.toString('base64url'));
    }
  });
});
