import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { DeadLetterHeaders, deadLetterSubject, feedbackSubject } from '@aimass/events';
import { waitUntil } from '@aimass/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningUpdater } from '../src/service.js';
import { expectExactlyOnce, waitForExamples } from './support/checks.js';
import { pseudonymizer, startStack, type Stack } from './support/stack.js';

/** Incremental updates from a real nats-server, a real personal-model and general-model, SQLite. */
describe('updater: feedback events become personal model versions', () => {
  let stack: Stack;
  let updater: RunningUpdater;

  beforeAll(async () => {
    stack = await startStack();
    updater = await stack.startUpdater();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('applies a stream of events per user, each exactly once, in consecutive versions, and leaves other users alone', async () => {
    const tenant = 'stream';
    const psn = (user: string) => pseudonymizer.pseudonymize(tenant, user);
    // A user with earlier feedback and none in the stream below.
    for (let i = 0; i < 2; i++) await stack.feedback({ tenant, user: 'dora', text: i });
    await waitForExamples(stack, tenant, psn('dora'), 2);
    const doraBefore = await stack.versions(tenant, psn('dora'));

    const users = ['ann', 'bob', 'cy'];
    const sent = new Map(users.map((u) => [u, 0]));
    // Bursts of concurrent publishes, as many Feedback calls would make them.
    for (let burst = 0; burst < 6; burst++) {
      await Promise.all(
        Array.from({ length: 6 }, (_, i) => {
          const user = users[(burst + i) % users.length]!;
          sent.set(user, sent.get(user)! + 1);
          return stack.feedback({ tenant, user, text: burst * 6 + i });
        }),
      );
    }
    for (const user of users) {
      await waitForExamples(stack, tenant, psn(user), sent.get(user)!);
      expectExactlyOnce(await stack.versions(tenant, psn(user)), sent.get(user)!);
    }
    await updater.whenIdle();
    expect(await stack.versions(tenant, psn('dora'))).toEqual(doraBefore);

    const state = await stack.adminCall(updater.address, 'getTrainingState', tenant, { userId: 'ann' });
    expect(state.pendingEvents).toBe(0);
    expect(state.user).toMatchObject({ userPseudonym: psn('ann'), pendingEvents: 0, refitPending: false, generalModel: { name: 'general', version: '1' } });
    const ann = await stack.model(tenant, psn('ann'));
    expect(state.user!.currentVersion).toBe(ann!.version);
    expect(state.user!.lastAppliedSequence).toBe(ann!.lastAppliedSequence);
    // Logs carry pseudonyms, never the user ids.
    expect(stack.logs.text()).not.toMatch(/"ann"|"bob"|"dora"/);
  });

  it('the same event twice (stream dedupe, then another message id with the same event id) has one effect', async () => {
    const tenant = 'dupes';
    const pseudonym = pseudonymizer.pseudonymize(tenant, 'dan');
    const first = await stack.feedback({ tenant, user: 'dan', text: 0 });
    const again = await stack.feedback({ tenant, user: 'dan', text: 0, eventId: first.eventId });
    expect(again).toMatchObject({ duplicate: true, sequence: first.sequence });
    const republished = await stack.republish({ tenant, user: 'dan', text: 0, eventId: first.eventId });
    expect(republished.duplicate).toBe(false);
    expect(republished.sequence).toBeGreaterThan(first.sequence);
    await stack.feedback({ tenant, user: 'dan', text: 1 });
    await stack.feedback({ tenant, user: 'dan', text: 2 });
    await waitForExamples(stack, tenant, pseudonym, 3);
    await updater.whenIdle();
    const duplicatesBefore = updater.stats().intake.duplicates;
    expect(duplicatesBefore).toBeGreaterThanOrEqual(1);

    // Long after it was applied, the event comes once more.
    await stack.republish({ tenant, user: 'dan', text: 0, eventId: first.eventId });
    await waitUntil(() => updater.stats().intake.duplicates > duplicatesBefore, 'the late copy to be taken in');
    await updater.whenIdle();
    expectExactlyOnce(await stack.versions(tenant, pseudonym), 3);
  });

  it('dead-letters poison events with their reason, and the user\'s next good events still apply', async () => {
    const tenant = 'poison';
    const pseudonym = pseudonymizer.pseudonymize(tenant, 'pat');
    const subject = feedbackSubject(tenant, pseudonym);
    const letters = await stack.deadLetters(deadLetterSubject('updater'));
    await stack.feedback({ tenant, user: 'pat', text: 0 });

    await stack.bus.publish(subject, new Uint8Array([0xff, 0xfe, 0x01]), { dedupeId: 'poison-garbage' });
    const otherUsers = await stack.encodedFeedback({ tenant, user: 'someone-else', eventId: 'poison-foreign' });
    await stack.bus.publish(subject, otherUsers.data, { dedupeId: 'poison-foreign' });
    const unlabelled = await stack.encodedFeedback({ tenant, user: 'pat', eventId: 'poison-label', label: '' });
    await stack.bus.publish(subject, unlabelled.data, { dedupeId: 'poison-label' });

    await stack.feedback({ tenant, user: 'pat', text: 1 });
    await stack.feedback({ tenant, user: 'pat', text: 2 });
    await waitForExamples(stack, tenant, pseudonym, 3);
    await waitUntil(() => letters.length >= 3, 'three dead letters', 10_000);

    const reasons = letters.map((l) => l.headers[DeadLetterHeaders.reason]);
    expect(reasons[0]).toMatch(/not a aimass.v1.FeedbackRecorded/);
    expect(reasons[1]).toMatch(/belong on/);
    expect(reasons[2]).toMatch(/without a label/);
    for (const l of letters) {
      expect(l.headers[DeadLetterHeaders.subject]).toBe(subject);
      expect(l.headers[DeadLetterHeaders.attempts]).toBe('3');
    }
    expect(letters.map((l) => l.headers[DeadLetterHeaders.dedupeId])).toEqual(['poison-garbage', 'poison-foreign', 'poison-label']);
    await updater.whenIdle();
    expectExactlyOnce(await stack.versions(tenant, pseudonym), 3);
    expect(updater.stats().intake.poison).toBeGreaterThanOrEqual(9);
  });

  it('feedback without a general output gets one from the general model', async () => {
    const tenant = 'nogeneral';
    const pseudonym = pseudonymizer.pseudonymize(tenant, 'gil');
    await stack.feedback({ tenant, user: 'gil', text: 3, withoutGeneral: true });
    await stack.feedback({ tenant, user: 'gil', text: 4, withoutGeneral: true });
    const model = await waitForExamples(stack, tenant, pseudonym, 2);
    expect(model.generalModel).toEqual({ name: 'general', version: '1' });
  });

  it('without the privacy service, keeps payloads as they came (plaintext: development only) and exports them', async () => {
    // The control of the sealed-history tests (privacy.test.ts, keys.test.ts): the same search of
    // the database files finds the content when it is not encrypted.
    const tenant = 'plain';
    const marker = `marker-${crypto.randomUUID()}`;
    const pseudonym = pseudonymizer.pseudonymize(tenant, 'pam');
    const sent = await stack.feedback({ tenant, user: 'pam', text: 1, marker });
    await waitForExamples(stack, tenant, pseudonym, 1);
    await updater.whenIdle();
    const names = (await readdir(stack.dir.path)).filter((n) => n.startsWith('updater.sqlite'));
    const files = Buffer.concat(await Promise.all(names.map((n) => readFile(join(stack.dir.path, n)))));
    expect(files.includes(Buffer.from(marker))).toBe(true);
    const exported = await stack.adminCall(updater.address, 'exportFeedback', tenant, { userPseudonym: pseudonym });
    expect(exported.feedback).toHaveLength(1);
    expect(exported.feedback[0]).toMatchObject({ eventId: sent.eventId, streamSequence: sent.sequence, applied: true, input: { kind: { $case: 'text', value: `meeting agenda for the project review ${marker}` } } });
    expect(updater.stats()).toMatchObject({ consent: undefined, keys: undefined });
  });

  it('answers GetTrainingState with clear errors for bad requests', async () => {
    const err = await stack.adminCall(updater.address, 'getTrainingState', 'Not A Tenant', { userId: '' }).catch((e: unknown) => e as { code: number; details: string });
    expect(err).toMatchObject({ code: 3 });
    const missing = await stack.adminCall(updater.address, 'refitUser', 'stream', { userId: 'nobody', generalModel: undefined }).catch((e: unknown) => e as { code: number; details: string });
    expect(missing).toMatchObject({ code: 5, details: expect.stringMatching(/no feedback history/) });
    const unknown = await stack.adminCall(updater.address, 'refitUser', 'stream', { userId: 'ann', generalModel: { name: 'general', version: '99' } }).catch((e: unknown) => e as { code: number; details: string });
    expect(unknown).toMatchObject({ code: 5, details: expect.stringMatching(/version 99 is not in the general model's repository/) });
    const empty = await stack.adminCall(updater.address, 'refitUser', 'stream', { userId: '', generalModel: undefined }).catch((e: unknown) => e as { code: number; details: string });
    expect(empty).toMatchObject({ code: 3, details: expect.stringMatching(/user_id is required/) });
    const long = await stack.adminCall(updater.address, 'refitUser', 'stream', { userId: 'x'.repeat(100_000), generalModel: undefined }).catch((e: unknown) => e as { code: number; details: string });
    expect(long).toMatchObject({ code: 3, details: expect.stringMatching(/user_id is longer than/) });
    // After every refusal the service still answers a good request.
    const state = await stack.adminCall(updater.address, 'getTrainingState', 'stream', { userId: 'never-seen' });
    expect(state.user).toMatchObject({ currentVersion: 0, pendingEvents: 0, lastAppliedSequence: 0 });
  });
});
