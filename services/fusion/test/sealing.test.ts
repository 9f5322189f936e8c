import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { AES_256_GCM, AesGcmSealer, PrivacyDataKeySource } from '@aimass/crypto';
import { PLAINTEXT_ALGORITHM, connectNatsBus, type NatsEventBus } from '@aimass/events';
import { Pseudonymizer } from '@aimass/platform';
import { v1 } from '@aimass/proto';
import { NatsServer, freePort, waitUntil } from '@aimass/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FeedbackKeys } from '../src/adapters/feedback-keys.js';
import type { FusionDataKeys } from '../src/service.js';
import { TEST_SECRET, type TestFusion } from './support/fusion.js';
import { callError, feedback, mail, predict, type InferenceClient } from './support/grpc.js';
import { startTestPrivacy, type TestPrivacy } from './support/privacy.js';
import { startStack, type Stack } from './support/stack.js';
import { FeedbackStreamReader, type StoredFeedback } from './support/stream.js';

const TENANT = 'acme';
/** A string that must never be readable at rest or on the wire once keys are configured. */
const MARKER = 'MARKER-sealing-c0ffee-7d21';
const markedMail = (tag: number | string) => mail('shop@deals.example', `weekly offers ${tag}`, `${MARKER} our newsletter ${tag}, this week only`);
/** How long fusion holds a key in memory here (short, so a destroyed key lapses within a test). */
const KEY_TTL_MS = 300;

const pseudonymizer = new Pseudonymizer({ rootSecret: TEST_SECRET });
const pseudonym = (userId: string) => pseudonymizer.pseudonymize(TENANT, userId);

interface SealedDoc {
  sealed: { keyId: string; algorithm: string; nonce: Uint8Array; ciphertext: Uint8Array };
}

/**
 * Fusion with `privacy.address` set, against the real privacy service (consent and users' data
 * keys, DataKeyService) on a real nats-server, with its records in a SQLite file: what it
 * publishes and stores is read back raw, from the JetStream stream and from the file's bytes.
 */
describe("personal data sealed with users' keys (integration, real privacy service, nats-server and SQLite file)", () => {
  let nats: NatsServer;
  let privacyBus: NatsEventBus;
  let fusionBus: NatsEventBus;
  let stack: Stack;
  let privacy: TestPrivacy;
  let sealed: { fusion: TestFusion; client: InferenceClient };
  let plain: { fusion: TestFusion; client: InferenceClient };
  let reader: FeedbackStreamReader;
  let sealedPath: string;
  let plainPath: string;

  const grant = async (userId: string) => {
    await privacy.setConsent(userId, 'personalization', 'granted');
    await privacy.setConsent(userId, 'training', 'granted');
  };
  const recordIds = async (of: TestFusion, userId: string) =>
    (await (await of.store.collection({ name: 'predictions' })).query(TENANT, { limit: 1_000 })).items.filter((d) => d.user === pseudonym(userId)).map((d) => d.id);
  const sealedRecord = async (of: TestFusion, predictionId: string) => (await (await of.store.collection<SealedDoc>({ name: 'predictions' })).get(TENANT, predictionId))?.data.sealed;
  /** Every byte of a SQLite store on disk: the file, its WAL and shared memory. */
  const bytesAtRest = async (path: string) => {
    const dir = join(path, '..');
    const base = path.slice(dir.length + 1);
    const files = (await readdir(dir)).filter((f) => f.startsWith(base));
    expect(files).toContain(base);
    return Buffer.concat(await Promise.all(files.map((f) => readFile(join(dir, f)))));
  };
  const eventsOf = (userId: string) => reader.events(pseudonym(userId));
  const sealedFields = (e: StoredFeedback) => (['input', 'generalOutput', 'sparseFeatures'] as const).map((f) => e.event[f]!);

  beforeAll(async () => {
    nats = await NatsServer.start();
    const connect = (name: string) => connectNatsBus({ servers: nats.url, name, reconnectTimeWaitMs: 200, pullExpiresMs: 1_000 });
    [privacyBus, fusionBus] = await Promise.all([connect('privacy-sealing-test'), connect('fusion-sealing-test')]);
    stack = await startStack();
    privacy = await startTestPrivacy(privacyBus, stack.downstreamLogs.logger);
    sealedPath = join(stack.dir.path, 'sealed-fusion.sqlite');
    plainPath = join(stack.dir.path, 'plain-fusion.sqlite');
    sealed = await stack.addFusion(
      // Its own erasure group: the other fusions on this bus are other deployments.
      { privacy: { address: privacy.address, dataKeys: { cacheTtlMs: KEY_TTL_MS } }, erasure: { durable: 'fusion-sealed-erasure', backoffMs: [50], leaseTtlMs: 2_000 } },
      {},
      { bus: fusionBus },
      sealedPath,
    );
    // The control: the same service without the privacy service (no keys: algorithm NONE).
    plain = await stack.addFusion({}, {}, { bus: fusionBus }, plainPath);
    reader = await FeedbackStreamReader.open(fusionBus);
  });
  afterAll(async () => {
    await stack?.stop();
    await privacy?.stop();
    await fusionBus?.close();
    await privacyBus?.close();
    await nats?.dispose();
  });

  it('FeedbackRecorded carries AES-256-GCM payloads under the user’s key: no marker in the stored message; the updater’s sealer opens them', async () => {
    await grant('Sealed-Sam');
    const input = markedMail(1);
    const p = await predict(sealed.client, 'Sealed-Sam', input);
    const res = await feedback(sealed.client, { userId: 'Sealed-Sam', predictionId: p.predictionId, label: 'spam', idempotencyKey: 's-1' });
    const [e, ...more] = await eventsOf('Sealed-Sam');
    expect(more).toEqual([]);
    expect(e!.event.envelope.eventId).toBe(res.eventId);
    const fields = sealedFields(e!);
    for (const f of fields) {
      expect(f.algorithm).toBe(AES_256_GCM);
      expect(f.algorithm).not.toBe(PLAINTEXT_ALGORITHM);
      expect(f.nonce.byteLength).toBe(12);
      expect(f.keyId).toBe(fields[0]!.keyId);
    }
    expect(fields[0]!.keyId).not.toBe('');
    // The stream's own bytes, as any reader of the stream (or its backup) gets them.
    expect(Buffer.from(e!.data).includes(MARKER)).toBe(false);

    // What the updater does: open with the user's key from the privacy service, bound to the event id.
    const keys = new PrivacyDataKeySource({ address: privacy.address });
    try {
      const opener = new AesGcmSealer({ keys });
      const scope = { tenant: TENANT, userPseudonym: pseudonym('Sealed-Sam') };
      expect(v1.InputPayload.decode(await opener.open(scope, e!.event.input!, res.eventId))).toEqual(input);
      expect(v1.GeneralOutput.decode(await opener.open(scope, e!.event.generalOutput!, res.eventId)).model).toEqual({ name: 'general', version: '1' });
      await expect(opener.open(scope, e!.event.input!, 'another-event-id')).rejects.toThrow(/fails authentication/);
    } finally {
      keys.close();
    }

    // The control: without keys the marker is there to be read, so the check above can fail.
    await feedback(plain.client, { userId: 'Plain-Pat', input: markedMail(2), label: 'spam' });
    const [control] = await eventsOf('Plain-Pat');
    expect(control!.event.input!.algorithm).toBe(PLAINTEXT_ALGORITHM);
    expect(Buffer.from(control!.data).includes(MARKER)).toBe(true);
  });

  it('a prediction record at rest holds no marker: the SQLite file has only its ciphertext, under the same user key', async () => {
    await grant('Rest-Rita');
    const p = await predict(sealed.client, 'Rest-Rita', markedMail(3));
    const control = await predict(plain.client, 'Rest-Rita', markedMail(3));
    expect(await recordIds(sealed.fusion, 'Rest-Rita')).toEqual([p.predictionId]);
    const doc = await sealedRecord(sealed.fusion, p.predictionId);
    expect(doc).toMatchObject({ algorithm: AES_256_GCM });
    expect(Buffer.from(doc!.ciphertext).includes(MARKER)).toBe(false);

    expect((await bytesAtRest(sealedPath)).includes(MARKER)).toBe(false);
    // The control store, written the same way without keys, does hold it.
    expect(await sealedRecord(plain.fusion, control.predictionId)).toMatchObject({ algorithm: PLAINTEXT_ALGORITHM });
    expect((await bytesAtRest(plainPath)).includes(MARKER)).toBe(true);

    // And the record is usable: Feedback by its id carries the input into a sealed event under the same key.
    const res = await feedback(sealed.client, { userId: 'Rest-Rita', predictionId: p.predictionId, label: 'ham' });
    const [e] = await eventsOf('Rest-Rita');
    expect(e!.event.envelope.eventId).toBe(res.eventId);
    expect(e!.event.input!.keyId).toBe(doc!.keyId);
    expect((await bytesAtRest(sealedPath)).includes(MARKER)).toBe(false);
  });

  it('after the user’s key is destroyed (crypto-shredding), Feedback by an old prediction id is NOT_FOUND; new predictions use a new key', async () => {
    await grant('Shred-Sue');
    const p = await predict(sealed.client, 'Shred-Sue', markedMail(4));
    const oldKey = (await sealedRecord(sealed.fusion, p.predictionId))!.keyId;
    await privacy.keys.destroy(TENANT, pseudonym('Shred-Sue'));
    // Fusion's memory of the key lapses (its ErasureRequested would drop it at once).
    await new Promise((r) => setTimeout(r, KEY_TTL_MS + 100));
    const unreadable = sealed.fusion.recordStats().unreadable;

    const err = await callError(feedback(sealed.client, { userId: 'Shred-Sue', predictionId: p.predictionId, label: 'spam', idempotencyKey: 'shred-1' }));
    expect(err.code).toBe(status.NOT_FOUND);
    expect(err.details).toMatch(/^prediction '[0-9a-f-]+' is unknown or expired for this user: ids are kept 168 hours and belong to the user they were made for; send the input instead$/);
    expect(sealed.fusion.recordStats().unreadable).toBe(unreadable + 1);
    expect(await eventsOf('Shred-Sue')).toEqual([]);
    expect(await (await FeedbackKeys.open(sealed.fusion.store, { retentionMs: 3_600_000 })).get(TENANT, pseudonym('Shred-Sue'), 'shred-1')).toBeUndefined();

    const q = await predict(sealed.client, 'Shred-Sue', markedMail(5));
    const newKey = (await sealedRecord(sealed.fusion, q.predictionId))!.keyId;
    expect(newKey).not.toBe(oldKey);
    expect(await feedback(sealed.client, { userId: 'Shred-Sue', predictionId: q.predictionId, label: 'spam' })).toMatchObject({ accepted: true });
    expect((await eventsOf('Shred-Sue')).map((e) => e.event.input!.keyId)).toEqual([newKey]);
  });

  it('without training consent no record is kept and no key asked for; Feedback by that id says why (FAILED_PRECONDITION)', async () => {
    await privacy.setConsent('Private-Paul', 'personalization', 'granted');
    const fetches = sealed.fusion.dataKeyStats()!.fetches;
    const withoutConsent = sealed.fusion.recordStats().withoutConsent;
    const p = await predict(sealed.client, 'Private-Paul', markedMail(6));
    expect(await recordIds(sealed.fusion, 'Private-Paul')).toEqual([]);
    expect(sealed.fusion.recordStats().withoutConsent).toBe(withoutConsent + 1);
    expect(sealed.fusion.dataKeyStats()!.fetches).toBe(fetches);
    const err = await callError(feedback(sealed.client, { userId: 'Private-Paul', predictionId: p.predictionId, label: 'spam' }));
    expect(err.code).toBe(status.FAILED_PRECONDITION);
    expect(err.details).toMatch(/^the user has not granted training consent/);
  });

  it('with the privacy service’s keys unreachable: Predict still answers, the record is skipped (warning, counter); Feedback by its id is NOT_FOUND, by input UNAVAILABLE with nothing published', async () => {
    const dead = new PrivacyDataKeySource({ address: `127.0.0.1:${await freePort()}`, callTimeoutMs: 500 });
    try {
      // Consent from the real privacy service, keys from nowhere: only the key path fails.
      const blind = await stack.addFusion({ privacy: { address: privacy.address }, erasure: { durable: 'fusion-blind-erasure' } }, {}, { bus: fusionBus, dataKeys: dead });
      await grant('Keyless-Kim');
      const p = await predict(blind.client, 'Keyless-Kim', markedMail(7));
      expect(p.predictionId).not.toBe('');
      // As without key trouble: consent granted, personal model asked (the user has none yet).
      expect(p.provenance!.fallbacks.map((f) => f.reason)).toEqual([v1.FallbackReason.FALLBACK_REASON_NO_PERSONAL_MODEL]);
      expect(blind.fusion.recordStats()).toMatchObject({ stored: 0, keyUnavailable: 1 });
      expect(await recordIds(blind.fusion, 'Keyless-Kim')).toEqual([]);
      expect(blind.fusion.logs.text()).toContain("prediction records not stored: the users' data keys could not be had in time");

      const byId = await callError(feedback(blind.client, { userId: 'Keyless-Kim', predictionId: p.predictionId, label: 'spam' }));
      expect(byId.code).toBe(status.NOT_FOUND);
      const byInput = await callError(feedback(blind.client, { userId: 'Keyless-Kim', input: markedMail(7), label: 'spam', idempotencyKey: 'k-1' }));
      expect(byInput.code).toBe(status.UNAVAILABLE);
      expect(byInput.details).toBe(
        "feedback not recorded: the user's data key could not be had in time (the privacy service, which holds users' keys, is unreachable or slow); retry",
      );
      expect(await eventsOf('Keyless-Kim')).toEqual([]);
      expect(await (await FeedbackKeys.open(blind.fusion.store, { retentionMs: 3_600_000 })).get(TENANT, pseudonym('Keyless-Kim'), 'k-1')).toBeUndefined();
      // Nothing personal in the logs: no user id, no input text.
      expect(blind.fusion.logs.text()).not.toContain('Keyless-Kim');
      expect(blind.fusion.logs.text()).not.toContain(MARKER);
    } finally {
      dead.close();
    }
  });

  it("with the user's key slower than recordWaitMs: Predict answers without it, the record is written when the key comes, and Feedback by its id right after is accepted", async () => {
    const keys = new PrivacyDataKeySource({ address: privacy.address, callTimeoutMs: 5_000 });
    // The real privacy service behind a gate: as a key that takes it long to create.
    let openGate!: () => void;
    const gate = new Promise<void>((resolve) => (openGate = resolve));
    const slow: FusionDataKeys = {
      currentKey: async (scope) => {
        await gate;
        return keys.currentKey(scope);
      },
      keyFor: (scope, keyId) => keys.keyFor(scope, keyId),
      forget: (tenant, userPseudonym) => keys.forget(tenant, userPseudonym),
    };
    try {
      const late = await stack.addFusion({ privacy: { address: privacy.address }, erasure: { durable: 'fusion-late-erasure' } }, {}, { bus: fusionBus, dataKeys: slow });
      await grant('Late-Lou');
      const p = await predict(late.client, 'Late-Lou', markedMail(10));
      expect(p.predictionId).not.toBe('');
      expect(await recordIds(late.fusion, 'Late-Lou')).toEqual([]);
      expect(late.fusion.recordStats()).toMatchObject({ stored: 0, keyUnavailable: 0, pendingLate: 1 });
      // Feedback naming the prediction waits for its record instead of answering NOT_FOUND.
      const answer = feedback(late.client, { userId: 'Late-Lou', predictionId: p.predictionId, label: 'spam', idempotencyKey: 'late-1' });
      await new Promise((r) => setTimeout(r, 50));
      openGate();
      expect(await answer).toMatchObject({ accepted: true, duplicate: false });
      expect(await recordIds(late.fusion, 'Late-Lou')).toEqual([p.predictionId]);
      expect((await sealedRecord(late.fusion, p.predictionId))!.algorithm).toBe(AES_256_GCM);
      expect(late.fusion.recordStats()).toMatchObject({ stored: 1, storedLate: 1, pendingLate: 0, keyUnavailable: 0 });
      const [event, ...more] = await eventsOf('Late-Lou');
      expect(more).toEqual([]);
      expect(event!.event.predictionId).toBe(p.predictionId);
      expect(late.fusion.logs.text()).not.toContain('prediction records not stored');
    } finally {
      openGate();
      keys.close();
    }
  });

  it('on ErasureRequested fusion forgets the user’s key and consent before deleting their records; their Feedback is refused after', async () => {
    await grant('Erased-Eve');
    const p = await predict(sealed.client, 'Erased-Eve', markedMail(8));
    await feedback(sealed.client, { userId: 'Erased-Eve', predictionId: p.predictionId, label: 'spam' });
    expect(await recordIds(sealed.fusion, 'Erased-Eve')).toHaveLength(1);
    const heldKeys = sealed.fusion.dataKeyStats()!.users;
    const completed = sealed.fusion.erasure!.stats().completed;

    await privacy.erase('Erased-Eve');
    await waitUntil(() => sealed.fusion.erasure!.stats().completed === completed + 1, "fusion's erasure of the user");
    expect(await recordIds(sealed.fusion, 'Erased-Eve')).toEqual([]);
    expect(sealed.fusion.dataKeyStats()!.users).toBe(heldKeys - 1);

    // Consent is read again from privacy, which reports nothing granted for an erased user.
    const err = await callError(feedback(sealed.client, { userId: 'Erased-Eve', input: markedMail(9), label: 'spam' }));
    expect(err.code).toBe(status.FAILED_PRECONDITION);
    expect(err.details).toMatch(/^the user has not granted training consent: they denied it/);
    expect(sealed.fusion.logs.text()).not.toContain('Erased-Eve');
    expect(sealed.fusion.logs.text()).not.toContain(MARKER);
  });
});
