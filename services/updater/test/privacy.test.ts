import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { status, type ServiceError } from '@grpc/grpc-js';
import { AesGcmSealer, PrivacyDataKeySource } from '@aimass/crypto';
import { deadLetterSubject, type DeliveredEvent } from '@aimass/events';
import { openSqliteStore, type DocumentStore } from '@aimass/storage';
import { waitUntil } from '@aimass/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UpdaterStore } from '../src/adapters/updater-store.js';
import type { RunningUpdater } from '../src/service.js';
import { waitForExamples } from './support/checks.js';
import { startTestPrivacy, type TestPrivacy } from './support/privacy.js';
import { pseudonymizer, startStack, type Stack } from './support/stack.js';

const T = 'consent';
const psn = (user: string) => pseudonymizer.pseudonymize(T, user);

/**
 * The updater with the privacy service's address set, the production configuration: consent is
 * enforced at intake and again before training, and payloads are opened (and kept) sealed with
 * users' keys from privacy's DataKeyService. The test publishes FeedbackRecorded as fusion does,
 * sealed with the same users' keys. Real nats-server, privacy, personal-model and general-model,
 * SQLite.
 */
describe('updater with the privacy service: consent at intake and at apply, sealed history, ExportFeedback', () => {
  let stack: Stack;
  let privacy: TestPrivacy;
  let updater: RunningUpdater;
  let fusionKeys: PrivacyDataKeySource;
  let letters: DeliveredEvent[];
  let viewStore: DocumentStore;
  let view: UpdaterStore;

  beforeAll(async () => {
    stack = await startStack();
    privacy = await startTestPrivacy(stack);
    fusionKeys = new PrivacyDataKeySource({ address: privacy.address });
    stack.setSealer(new AesGcmSealer({ keys: fusionKeys }));
    // A long batch window: feedback stays taken in but unapplied long enough to withdraw consent meanwhile.
    updater = await stack.startUpdater({ privacy: { address: privacy.address }, apply: { batchWindowMs: 1_000 } });
    letters = await stack.deadLetters(deadLetterSubject('updater'));
    viewStore = await openSqliteStore({ path: stack.updaterDbPath });
    view = await UpdaterStore.open(viewStore);
  });
  afterAll(async () => {
    fusionKeys?.close();
    await viewStore?.close();
    await stack?.stop().catch(() => undefined);
    await privacy?.close();
  });

  const exportOf = (pseudonym: string) => stack.adminCall(updater.address, 'exportFeedback', T, { userPseudonym: pseudonym });
  const failure = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e as ServiceError);
  /** Every file of the updater's SQLite database (the write-ahead log included), as bytes. */
  const updaterFiles = async (): Promise<Buffer> => {
    const names = (await readdir(stack.dir.path)).filter((n) => n.startsWith('updater.sqlite'));
    expect(names).toContain('updater.sqlite');
    return Buffer.concat(await Promise.all(names.map((n) => readFile(join(stack.dir.path, n)))));
  };

  it('drops feedback of a user without training consent at intake: acknowledged, nothing stored, no dead letter', async () => {
    await privacy.setConsent(T, 'gus', 'granted');
    const before = updater.stats().intake;
    // nadia never decided: the tenant default (not granted) applies. omar denied.
    await privacy.setConsent(T, 'omar', 'denied');
    await stack.feedback({ tenant: T, user: 'nadia', text: 0 });
    await stack.feedback({ tenant: T, user: 'omar', text: 1 });
    await stack.feedback({ tenant: T, user: 'nadia', text: 2 });
    await stack.feedback({ tenant: T, user: 'gus', text: 3 });
    await waitForExamples(stack, T, psn('gus'), 1);
    await waitUntil(() => updater.stats().intake.noConsent >= before.noConsent + 3, 'three events dropped for lack of consent');

    for (const user of ['nadia', 'omar']) {
      expect(await view.exportHistory(T, psn(user), 100)).toEqual({ entries: [], total: 0 });
      expect(await view.state(T, psn(user))).toBeUndefined();
      expect(await stack.model(T, psn(user))).toBeUndefined();
      expect(await exportOf(psn(user))).toEqual({ feedback: [], omitted: 0 });
    }
    const after = updater.stats().intake;
    expect(after.poison).toBe(before.poison);
    expect(after.appended).toBe(before.appended + 1);
    expect(letters).toEqual([]);
    expect(stack.logs.text()).toMatch(/feedback dropped: the user has not granted training consent/);
  });

  it('keeps the history sealed at rest, and ExportFeedback answers it decrypted, oldest first', async () => {
    const marker = `marker-${crypto.randomUUID()}`;
    const mara = psn('mara');
    await privacy.setConsent(T, 'mara', 'granted');
    const sent = [];
    sent.push(await stack.feedback({ tenant: T, user: 'mara', text: 0 }));
    sent.push(await stack.feedback({ tenant: T, user: 'mara', text: 1, marker }));
    sent.push(await stack.feedback({ tenant: T, user: 'mara', text: 2, withoutGeneral: true }));
    await waitForExamples(stack, T, mara, 3);
    await updater.whenIdle();

    const stored = await view.exportHistory(T, mara, 100);
    expect(stored.entries.map((e) => e.input.algorithm)).toEqual(['AES-256-GCM', 'AES-256-GCM', 'AES-256-GCM']);
    const files = await updaterFiles();
    // The history is in the file (its event ids are), its content is not.
    for (const s of sent) expect(files.includes(Buffer.from(s.eventId))).toBe(true);
    expect(files.includes(Buffer.from(marker))).toBe(false);
    expect(files.includes(Buffer.from('meeting agenda for the project review'))).toBe(false);

    const exported = await exportOf(mara);
    expect(exported.omitted).toBe(0);
    expect(exported.feedback.map((f) => f.eventId)).toEqual(sent.map((s) => s.eventId));
    expect(exported.feedback.map((f) => f.streamSequence)).toEqual(sent.map((s) => s.sequence));
    expect(exported.feedback[0]).toMatchObject({
      label: 'spam',
      predictionId: '',
      input: { kind: { $case: 'text', value: 'win free money now' } },
      generalModel: { name: 'general', version: '1' },
      applied: true,
      rejected: '',
    });
    expect(exported.feedback[0]!.occurredAt).toBeInstanceOf(Date);
    expect(exported.feedback[1]!.input).toEqual({ kind: { $case: 'text', value: `meeting agenda for the project review ${marker}` } });
    expect(exported.feedback[2]).toMatchObject({ label: 'spam', generalModel: undefined, applied: true });
    // Nothing of the content in the logs either.
    expect(stack.logs.text()).not.toContain(marker);
  });

  it('answers ExportFeedback errors with INVALID_ARGUMENT naming the field', async () => {
    const empty = await failure(exportOf(''));
    expect(empty).toMatchObject({ code: status.INVALID_ARGUMENT, details: expect.stringMatching(/user_pseudonym is required/) });
    const oversized = await failure(exportOf('a'.repeat(10_000)));
    expect(oversized).toMatchObject({ code: status.INVALID_ARGUMENT, details: expect.stringMatching(/10000 characters long/) });
    const userId = await failure(exportOf('mara@example.com'));
    expect(userId).toMatchObject({ code: status.INVALID_ARGUMENT, details: expect.stringMatching(/not a pseudonym/) });
    const badTenant = await failure(stack.adminCall(updater.address, 'exportFeedback', 'Not A Tenant', { userPseudonym: psn('mara') }));
    expect(badTenant).toMatchObject({ code: status.INVALID_ARGUMENT });
    // Another tenant holds nothing of the user.
    expect(await stack.adminCall(updater.address, 'exportFeedback', 'other', { userPseudonym: psn('mara') })).toEqual({ feedback: [], omitted: 0 });
  });

  it('consent withdrawn while the event is in flight: it is removed untrained, and feedback after a new grant is learnt', async () => {
    const wes = psn('wes');
    await privacy.setConsent(T, 'wes', 'granted');
    const first = await stack.feedback({ tenant: T, user: 'wes', text: 0 });
    await waitForExamples(stack, T, wes, 1);
    await updater.whenIdle();
    const versions = await stack.versions(T, wes);

    const before = { intake: updater.stats().intake, applier: updater.stats().applier };
    const inFlight = await stack.feedback({ tenant: T, user: 'wes', text: 1 });
    // Taken in (stored, the user marked) with consent granted; the update waits for its batch window.
    await waitUntil(() => updater.stats().intake.appended > before.intake.appended, 'the event taken in');
    expect((await view.exportHistory(T, wes, 10)).entries.map((e) => e.eventId)).toEqual([first.eventId, inFlight.eventId]);
    await privacy.setConsent(T, 'wes', 'withdrawn');
    await waitUntil(() => updater.stats().applier.consentWithdrawn > before.applier.consentWithdrawn, 'the unapplied entry removed at apply', 10_000);
    await updater.whenIdle();

    expect(updater.stats().applier.consentWithdrawn).toBe(before.applier.consentWithdrawn + 1);
    expect(await stack.versions(T, wes)).toEqual(versions);
    // What was learnt before the withdrawal stays; the withdrawn event is gone, and nothing is pending.
    expect((await view.exportHistory(T, wes, 10)).entries.map((e) => e.eventId)).toEqual([first.eventId]);
    expect((await view.state(T, wes))?.state.pending).toBe(false);
    expect((await exportOf(wes)).feedback.map((f) => f.eventId)).toEqual([first.eventId]);

    // Later feedback is dropped at intake while consent stays withdrawn.
    await stack.feedback({ tenant: T, user: 'wes', text: 2 });
    await waitUntil(() => updater.stats().intake.noConsent > before.intake.noConsent, 'the next event dropped at intake');

    // A new grant: feedback from then on is learnt again.
    await privacy.setConsent(T, 'wes', 'granted');
    const granted = await stack.feedback({ tenant: T, user: 'wes', text: 3 });
    const model = await waitForExamples(stack, T, wes, 2);
    expect(model.exampleCount).toBe(2);
    expect(model.lastAppliedSequence).toBe(granted.sequence);
    // A refit does not bring the withdrawn event back either: it is not in the history.
    expect((await view.exportHistory(T, wes, 10)).entries.map((e) => e.eventId)).toEqual([first.eventId, granted.eventId]);
  });

  it('drops an event whose data key was destroyed, without a dead letter; other users\' events still apply', async () => {
    const kai = psn('kai');
    const lia = psn('lia');
    await privacy.setConsent(T, 'kai', 'granted');
    await privacy.setConsent(T, 'lia', 'granted');
    const before = updater.stats().intake;
    // Sealed with kai's key (as fusion did), then the key destroyed before the updater reads it.
    const sealed = await stack.encodedFeedback({ tenant: T, user: 'kai', eventId: crypto.randomUUID(), text: 4 });
    expect(await privacy.running.keys.destroy(T, kai)).toBe(true);
    await stack.bus.publish(sealed.subject, sealed.data, { dedupeId: 'kai-shredded', headers: { 'aimass-event-type': 'aimass.v1.FeedbackRecorded' } });
    await stack.feedback({ tenant: T, user: 'lia', text: 5 });
    await stack.feedback({ tenant: T, user: 'lia', text: 6 });
    await waitForExamples(stack, T, lia, 2);
    await waitUntil(() => updater.stats().intake.keyDestroyed > before.keyDestroyed, 'the shredded event dropped');

    expect(updater.stats().intake.keyDestroyed).toBe(before.keyDestroyed + 1);
    expect(updater.stats().intake.poison).toBe(before.poison);
    expect(await view.exportHistory(T, kai, 10)).toEqual({ entries: [], total: 0 });
    expect(await stack.model(T, kai)).toBeUndefined();
    await updater.whenIdle();
    expect(letters).toEqual([]);
    expect(stack.logs.text()).toMatch(/feedback dropped: its data key was destroyed/);
  });

  it('privacy unreachable: feedback waits (neither dropped nor dead-lettered) and is applied once privacy is back', async () => {
    const pia = psn('pia');
    await privacy.setConsent(T, 'pia', 'granted');
    // Sealed while privacy is up (fusion had the key); the updater has never seen pia.
    const sealed = await stack.encodedFeedback({ tenant: T, user: 'pia', eventId: crypto.randomUUID(), text: 7 });
    const before = updater.stats().intake;
    await privacy.stop();
    await stack.bus.publish(sealed.subject, sealed.data, { dedupeId: 'pia-1', headers: { 'aimass-event-type': 'aimass.v1.FeedbackRecorded' } });
    await waitUntil(() => updater.stats().intake.privacyRetries >= before.privacyRetries + 3, 'the intake to wait for privacy', 15_000);
    const waiting = updater.stats().intake;
    expect(waiting).toMatchObject({ noConsent: before.noConsent, keyDestroyed: before.keyDestroyed, poison: before.poison, appended: before.appended });
    expect(await view.state(T, pia)).toBeUndefined();

    await privacy.restart();
    await waitForExamples(stack, T, pia, 1, 30_000);
    expect(updater.stats().intake.appended).toBe(before.appended + 1);
    expect(letters).toEqual([]);
  });

  it('an erasure drops the user\'s consent and key from memory; feedback sealed before it and delivered after it is dropped', async () => {
    const eve = psn('eve');
    await privacy.setConsent(T, 'eve', 'granted');
    await stack.feedback({ tenant: T, user: 'eve', text: 0 });
    await waitForExamples(stack, T, eve, 1);
    await updater.whenIdle();
    const late = await stack.encodedFeedback({ tenant: T, user: 'eve', eventId: crypto.randomUUID(), text: 1 });
    const before = updater.stats();
    expect(before.keys!.users).toBeGreaterThan(0);

    await privacy.erase(T, 'eve');
    await waitUntil(() => updater.stats().erasure.completed > before.erasure.completed, 'the updater to complete the erasure');
    const after = updater.stats();
    expect(after.keys!.users).toBe(before.keys!.users - 1);
    expect(after.consent!.entries).toBe(before.consent!.entries - 1);

    await stack.bus.publish(late.subject, late.data, { dedupeId: 'eve-late', headers: { 'aimass-event-type': 'aimass.v1.FeedbackRecorded' } });
    await waitUntil(() => updater.stats().intake.erased > before.intake.erased, 'the late event dropped');
    await updater.whenIdle();
    expect(await stack.model(T, eve)).toBeUndefined();
    expect(await exportOf(eve)).toEqual({ feedback: [], omitted: 0 });
    // Logs carry pseudonyms, never the user ids.
    expect(stack.logs.text()).not.toMatch(/"(gus|nadia|omar|mara|wes|kai|lia|pia|eve)"/);
  });
});
