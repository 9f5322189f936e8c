import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AesGcmSealer, DataKeyRing, InMemoryWrappedKeyStore, tenantKeysFromConfig } from '@aimass/crypto';
import { encodeEvent, feedbackSubject, newEnvelope, plaintextSealer, type PayloadSealer } from '@aimass/events';
import { v1 } from '@aimass/proto';
import { KeyDestroyedError, PoisonEventError, entryGeneral, hasPlaintext, openEntry, openInput, parseFeedback, sealPlaintext } from './feedback.js';

const psn = 'abcdefghijklmnopqrstuvwxyz234567';
const other = '234567abcdefghijklmnopqrstuvwxyz';
const sealer = plaintextSealer();
const g1 = { name: 'general', version: '1' };
const publishedAt = new Date('2025-03-04T05:06:07Z');

async function feedbackEvent(overrides: Partial<v1.FeedbackRecorded> = {}, options: { tenant?: string; pseudonym?: string; eventId?: string; sealer?: PayloadSealer } = {}) {
  const tenant = options.tenant ?? 't1';
  const pseudonym = options.pseudonym ?? psn;
  const eventId = options.eventId ?? 'e-1';
  const s = options.sealer ?? sealer;
  const scope = { tenant, userPseudonym: pseudonym };
  const general: v1.GeneralOutput = { model: g1, logits: [0, 1.5], probabilities: [0.2, 0.8], embedding: [0.1, 0.2, 0.3] };
  const message: v1.FeedbackRecorded = {
    envelope: newEnvelope({ type: 'aimass.v1.FeedbackRecorded', tenant, userPseudonym: pseudonym, producer: 'test', eventId, occurredAt: new Date('2025-01-01T00:00:00Z') }),
    predictionId: 'p-1',
    label: 'spam',
    input: await s.seal(scope, v1.InputPayload.encode({ kind: { $case: 'text', value: 'win money' } }).finish(), eventId),
    idempotencyKey: '',
    generalModel: g1,
    generalOutput: await s.seal(scope, v1.GeneralOutput.encode(general).finish(), eventId),
    sparseFeatures: await s.seal(scope, v1.SparseVector.encode({ dimension: 64, indices: [1, 5], values: [1, 1] }).finish(), eventId),
    ...overrides,
  };
  return { subject: feedbackSubject(tenant, pseudonym), data: encodeEvent('aimass.v1.FeedbackRecorded', message), sequence: 42, publishedAt };
}

describe('taking a FeedbackRecorded in', () => {
  it('becomes a history entry that keeps the sealed payloads as they came', async () => {
    const delivery = await feedbackEvent();
    const entry = parseFeedback(delivery);
    expect(entry).toMatchObject({ tenant: 't1', pseudonym: psn, eventId: 'e-1', sequence: 42, label: 'spam', predictionId: 'p-1', generalModel: g1 });
    expect(entry.occurredAt).toEqual(new Date('2025-01-01T00:00:00Z'));
    expect(entry.input.algorithm).toBe('NONE');
    const opened = await openEntry(entry, sealer);
    expect(opened.input.kind).toEqual({ $case: 'text', value: 'win money' });
    expect(opened.generalOutput?.embedding).toHaveLength(3);
    expect(opened.sparseFeatures?.indices).toEqual([1, 5]);
    expect(entryGeneral(opened)).toEqual(g1);
  });

  it('takes general output and sparse features as optional', async () => {
    const entry = parseFeedback(await feedbackEvent({ generalOutput: undefined, sparseFeatures: undefined, generalModel: undefined }));
    const opened = await openEntry(entry, sealer);
    expect(opened.generalOutput).toBeUndefined();
    expect(opened.sparseFeatures).toBeUndefined();
    expect(entryGeneral(opened)).toBeUndefined();
  });

  it('refuses malformed bytes and events of another type as poison', () => {
    expect(() => parseFeedback({ subject: feedbackSubject('t1', psn), data: new Uint8Array([0xff, 0xff, 0xff]), sequence: 1, publishedAt })).toThrow(PoisonEventError);
    const updated = encodeEvent('aimass.v1.PersonalModelUpdated', {
      ...v1.PersonalModelUpdated.fromPartial({}),
      envelope: newEnvelope({ type: 'aimass.v1.PersonalModelUpdated', tenant: 't1', userPseudonym: psn, producer: 'test' }),
    });
    expect(() => parseFeedback({ subject: feedbackSubject('t1', psn), data: updated, sequence: 1, publishedAt })).toThrow(/expected aimass.v1.FeedbackRecorded/);
  });

  it('refuses an event filed under another user\'s or tenant\'s subject', async () => {
    const delivery = await feedbackEvent();
    expect(() => parseFeedback({ ...delivery, subject: feedbackSubject('t1', other) })).toThrow(/belong on/);
    expect(() => parseFeedback({ ...delivery, subject: feedbackSubject('t2', psn) })).toThrow(PoisonEventError);
  });

  it('refuses a missing label, input or pseudonym', async () => {
    expect(() => parseFeedback(feedbackEventSync({ label: '' }))).toThrow(/without a label/);
    const noInput = await feedbackEvent({ input: undefined });
    expect(() => parseFeedback(noInput)).toThrow(/without its input/);
    const badPseudonym = await feedbackEvent({}, { pseudonym: 'not-a-pseudonym' });
    expect(() => parseFeedback(badPseudonym)).toThrow(/pseudonym/);
  });

  it('refuses payloads that cannot be opened or decoded, or do not say what they claim', async () => {
    const sealed = (bytes: Uint8Array, algorithm = 'NONE'): v1.EncryptedPayload => ({ keyId: '', algorithm, nonce: Buffer.alloc(0), ciphertext: Buffer.from(bytes) });
    const cases: Array<[Partial<v1.FeedbackRecorded>, RegExp]> = [
      [{ input: sealed(new Uint8Array([1, 2, 3]), 'AES-256-GCM') }, /input cannot be opened/],
      [{ input: sealed(new Uint8Array([0xff, 0xff])) }, /input is not a valid message/],
      [{ input: sealed(new Uint8Array()) }, /input is empty/],
      [{ generalOutput: sealed(v1.GeneralOutput.encode({ model: g1, logits: [0, 1], probabilities: [], embedding: [] }).finish()) }, /no embedding/],
      [{ generalOutput: sealed(v1.GeneralOutput.encode({ model: { name: 'general', version: '2' }, logits: [0, 1], probabilities: [], embedding: [1] }).finish()) }, /but the event says/],
      [{ generalOutput: sealed(v1.GeneralOutput.encode({ model: g1, logits: [0, NaN], probabilities: [], embedding: [1] }).finish()) }, /non-finite/],
      [{ sparseFeatures: sealed(v1.SparseVector.encode({ dimension: 4, indices: [1, 9], values: [1, 1] }).finish()) }, /strictly increasing and below/],
      [{ sparseFeatures: sealed(v1.SparseVector.encode({ dimension: 4, indices: [1], values: [1, 1] }).finish()) }, /1 indices but 2 values/],
    ];
    for (const [overrides, reason] of cases) {
      const entry = parseFeedback(await feedbackEvent(overrides));
      await expect(openEntry(entry, sealer), String(reason)).rejects.toThrow(reason);
      await expect(openEntry(entry, sealer)).rejects.toBeInstanceOf(PoisonEventError);
    }
  });

  it('lets a sealer failure that is not "unreadable" pass through, to be retried', async () => {
    const flaky: PayloadSealer = { seal: sealer.seal, open: () => Promise.reject(new Error('key service timeout')) };
    const entry = parseFeedback(await feedbackEvent());
    const err = await openEntry(entry, flaky).catch((e: unknown) => e);
    expect(err).not.toBeInstanceOf(PoisonEventError);
    expect(String(err)).toMatch(/key service timeout/);
  });
});

function flipFirst(bytes: Uint8Array): Buffer {
  const copy = Buffer.from(bytes);
  copy[0] = copy[0]! ^ 0x01;
  return copy;
}

/** Real per-user keys: a ring over an in-memory key store, a random tenant KEK. */
function keyed(options: { allowPlaintext?: boolean } = {}) {
  const ring = new DataKeyRing({ kek: tenantKeysFromConfig({ default: randomBytes(32).toString('base64') }), store: new InMemoryWrappedKeyStore() });
  return { ring, sealer: new AesGcmSealer({ keys: ring, allowPlaintext: options.allowPlaintext }) };
}

describe('feedback sealed with users\' keys', () => {
  it('opens with the user\'s key; a destroyed key is KeyDestroyedError (a PoisonEventError), tampering a plain poison', async () => {
    const { ring, sealer: aes } = keyed();
    const entry = parseFeedback(await feedbackEvent({}, { sealer: aes }));
    expect(entry.input.algorithm).toBe('AES-256-GCM');
    expect(Buffer.from(entry.input.ciphertext).includes(Buffer.from('win money'))).toBe(false);
    expect((await openEntry(entry, aes)).input.kind).toEqual({ $case: 'text', value: 'win money' });
    expect(await openInput(entry, aes)).toEqual({ kind: { $case: 'text', value: 'win money' } });

    const tampered = { ...entry, input: { ...entry.input, ciphertext: flipFirst(entry.input.ciphertext) } };
    const poison = await openEntry(tampered, aes).catch((e: unknown) => e);
    expect(poison).toBeInstanceOf(PoisonEventError);
    expect(poison).not.toBeInstanceOf(KeyDestroyedError);
    expect(await openInput(tampered, aes)).toBeUndefined();

    await ring.destroy('t1', psn);
    const gone = await openEntry(entry, aes).catch((e: unknown) => e);
    expect(gone).toBeInstanceOf(KeyDestroyedError);
    expect(gone).toBeInstanceOf(PoisonEventError);
    expect(String(gone)).toMatch(/input cannot be opened: .*does not exist/);
    expect(await openInput(entry, aes)).toBeUndefined();
  });

  it('does not mistake a key service failure for a destroyed key', async () => {
    const down: PayloadSealer = { seal: sealer.seal, open: () => Promise.reject(new Error('privacy unreachable')) };
    const entry = parseFeedback(await feedbackEvent());
    await expect(openInput(entry, down)).rejects.toThrow(/privacy unreachable/);
    const err = await openEntry(entry, down).catch((e: unknown) => e);
    expect(err).not.toBeInstanceOf(PoisonEventError);
  });

  it('seals plaintext payloads with the user\'s key, keeping what they say and what was encrypted already', async () => {
    const { sealer: aes } = keyed({ allowPlaintext: true });
    const entry = parseFeedback(await feedbackEvent());
    expect(hasPlaintext(entry)).toBe(true);
    const opened = await openEntry(entry, aes);
    const sealed = await sealPlaintext(opened, aes);
    expect(hasPlaintext(sealed)).toBe(false);
    for (const p of [sealed.input, sealed.generalOutput!, sealed.sparseFeatures!]) {
      expect(p.algorithm).toBe('AES-256-GCM');
      expect(Buffer.from(p.ciphertext).includes(Buffer.from('win money'))).toBe(false);
    }
    const reopened = await openEntry(sealed, keyed().sealer).catch((e: unknown) => e);
    // Another ring (another KEK and store) cannot read it: it really is under this user's key.
    expect(reopened).toBeInstanceOf(PoisonEventError);
    const again = await openEntry(sealed, aes);
    expect(again.input).toEqual(opened.input);
    expect(again.generalOutput).toEqual(opened.generalOutput);
    expect(again.sparseFeatures).toEqual(opened.sparseFeatures);
    expect({ ...sealed, input: undefined, generalOutput: undefined, sparseFeatures: undefined }).toEqual({ ...entry, input: undefined, generalOutput: undefined, sparseFeatures: undefined });

    const encrypted = parseFeedback(await feedbackEvent({}, { sealer: aes }));
    const kept = await sealPlaintext(await openEntry(encrypted, aes), aes);
    expect(kept.input).toBe(encrypted.input);
  });
});

function feedbackEventSync(overrides: Partial<v1.FeedbackRecorded>) {
  const message: v1.FeedbackRecorded = {
    envelope: newEnvelope({ type: 'aimass.v1.FeedbackRecorded', tenant: 't1', userPseudonym: psn, producer: 'test', eventId: 'e-2' }),
    predictionId: '',
    label: 'spam',
    input: { keyId: '', algorithm: 'NONE', nonce: Buffer.alloc(0), ciphertext: Buffer.from(v1.InputPayload.encode({ kind: { $case: 'text', value: 'x' } }).finish()) },
    idempotencyKey: '',
    generalModel: undefined,
    generalOutput: undefined,
    sparseFeatures: undefined,
    ...overrides,
  };
  return { subject: feedbackSubject('t1', psn), data: encodeEvent('aimass.v1.FeedbackRecorded', message), sequence: 3, publishedAt };
}
