import { status } from '@grpc/grpc-js';
import { CONSENT_STREAM, consentChangedSubject, subjectMatches } from '@aimass/events';
import { INVALID_FIELD_KEY } from '@aimass/platform';
import { v1 } from '@aimass/proto';
import { waitUntil } from '@aimass/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consentEventId } from '../src/domain/ids.js';
import { P, S, failure, getRequest, pseudonymizer, setRequest, startStack, type Stack } from './support/stack.js';

const T = 't1';

/**
 * The consent API on a real nats-server and a SQLite file: records, announcements, idempotency,
 * the verified history and tampering with it, concurrent appends, bad input.
 */
describe('consent (integration)', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack({ consent: { tenants: { acme: { training: 'granted' } } } });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  const eventsOf = (pseudonym: string) => stack.seen.filter((e) => e.event.envelope?.userPseudonym === pseudonym);
  const storedOf = (pseudonym: string) => stack.stored.filter((e) => e.subject === consentChangedSubject(T, pseudonym));

  it('records a decision and announces it on the user pseudonym subject before answering, never with the user id', async () => {
    const userId = 'alice@example.com';
    const pseudonym = pseudonymizer.pseudonymize(T, userId);
    const res = await stack.call('setConsent', T, setRequest(userId, P.PURPOSE_PERSONALIZATION, S.CONSENT_STATE_GRANTED, { source: 'web-settings', policyVersion: '2026-11' }));
    expect(res).toMatchObject({ changed: true, duplicate: false });
    expect(res.record).toMatchObject({ sequence: 1, purpose: P.PURPOSE_PERSONALIZATION, state: S.CONSENT_STATE_GRANTED, policyVersion: '2026-11', source: 'web-settings', prevHash: '', verified: true });
    expect(res.record!.hash).toMatch(/^[0-9a-f]{64}$/);

    await waitUntil(() => eventsOf(pseudonym).length === 1 && storedOf(pseudonym).length === 1, 'the ConsentChanged');
    const [seen] = eventsOf(pseudonym);
    expect(seen!.subject).toBe(`aimass.${T}.consent.changed.${pseudonym}`);
    expect(CONSENT_STREAM.subjects.some((s) => subjectMatches(s, seen!.subject))).toBe(true);
    expect(seen!.event).toMatchObject({
      purpose: P.PURPOSE_PERSONALIZATION,
      state: S.CONSENT_STATE_GRANTED,
      previousState: S.CONSENT_STATE_UNSPECIFIED,
      policyVersion: '2026-11',
      source: 'web-settings',
      recordSequence: 1,
      recordHash: res.record!.hash,
    });
    expect(seen!.event.envelope).toMatchObject({ tenant: T, userPseudonym: pseudonym, producer: 'privacy', eventType: 'aimass.v1.ConsentChanged', eventId: consentEventId(res.record!.hash) });
    expect(seen!.dedupeId).toBe(consentEventId(res.record!.hash));
    // The user id is nowhere: not in the subject, the payload, the logs.
    expect(Buffer.from(seen!.raw).includes(userId)).toBe(false);
    expect(seen!.subject.includes(userId)).toBe(false);
    expect(stack.logs.text()).not.toContain(userId);
    expect(stack.logs.text()).toContain(pseudonym);
  });

  it('answers the current decision per purpose: the record, or the tenant default where the user never decided', async () => {
    const userId = 'bob';
    expect((await stack.call('getConsent', T, getRequest(userId))).decisions).toEqual([
      { purpose: P.PURPOSE_PERSONALIZATION, state: S.CONSENT_STATE_DENIED, isDefault: true, record: undefined },
      { purpose: P.PURPOSE_TRAINING, state: S.CONSENT_STATE_DENIED, isDefault: true, record: undefined },
    ]);
    // A tenant that assumes training until the user says otherwise.
    expect((await stack.call('getConsent', 'acme', getRequest(userId, [P.PURPOSE_TRAINING]))).decisions).toMatchObject([{ state: S.CONSENT_STATE_GRANTED, isDefault: true }]);

    await stack.call('setConsent', T, setRequest(userId, P.PURPOSE_TRAINING, S.CONSENT_STATE_GRANTED));
    const withdrawn = await stack.call('setConsent', T, setRequest(userId, P.PURPOSE_TRAINING, S.CONSENT_STATE_WITHDRAWN));
    expect(withdrawn).toMatchObject({ changed: true, record: { sequence: 2 } });
    const { decisions } = await stack.call('getConsent', T, getRequest(userId, [P.PURPOSE_TRAINING, P.PURPOSE_PERSONALIZATION]));
    expect(decisions[0]).toMatchObject({ purpose: P.PURPOSE_TRAINING, state: S.CONSENT_STATE_WITHDRAWN, isDefault: false, record: { sequence: 2, hash: withdrawn.record!.hash, verified: true } });
    expect(decisions[1]).toMatchObject({ purpose: P.PURPOSE_PERSONALIZATION, state: S.CONSENT_STATE_DENIED, isDefault: true });

    // Services behind the edge ask by pseudonym.
    const pseudonym = pseudonymizer.pseudonymize(T, userId);
    const byPseudonym = await stack.call('getConsent', T, getRequest('', [P.PURPOSE_TRAINING], { userPseudonym: pseudonym }));
    expect(byPseudonym.decisions[0]).toMatchObject({ state: S.CONSENT_STATE_WITHDRAWN, record: { sequence: 2, hash: withdrawn.record!.hash } });
    // A pseudonym of another tenant names nobody here: the tenant's default.
    const elsewhere = await stack.call('getConsent', 'acme', getRequest('', [P.PURPOSE_TRAINING], { userPseudonym: pseudonym }));
    expect(elsewhere.decisions).toMatchObject([{ state: S.CONSENT_STATE_GRANTED, isDefault: true }]);
    const both = await failure(stack.call('getConsent', T, getRequest(userId, [], { userPseudonym: pseudonym })));
    expect(both.code).toBe(status.INVALID_ARGUMENT);
    expect(both.metadata.get(INVALID_FIELD_KEY)).toEqual(['user_pseudonym']);
    expect(both.details).toMatch(/both set/);
    const neither = await failure(stack.call('getConsent', T, getRequest('')));
    expect(neither.code).toBe(status.INVALID_ARGUMENT);
    expect(neither.metadata.get(INVALID_FIELD_KEY)).toEqual(['user_id']);
    const notPseudonym = await failure(stack.call('getConsent', T, getRequest('', [], { userPseudonym: 'bob' })));
    expect(notPseudonym.code).toBe(status.INVALID_ARGUMENT);
    expect(notPseudonym.metadata.get(INVALID_FIELD_KEY)).toEqual(['user_pseudonym']);
    expect(notPseudonym.details).toMatch(/not a user pseudonym/);
  });

  it('converges on retries: the same key answers its record, an identical decision appends nothing, each record is announced once', async () => {
    const userId = 'carol';
    const pseudonym = pseudonymizer.pseudonymize(T, userId);
    const keyed = setRequest(userId, P.PURPOSE_TRAINING, S.CONSENT_STATE_GRANTED, { idempotencyKey: 'k-1' });
    const first = await stack.call('setConsent', T, keyed);
    const again = await stack.call('setConsent', T, keyed);
    expect(first).toMatchObject({ changed: true, duplicate: false });
    expect(again).toMatchObject({ changed: true, duplicate: true, record: { sequence: 1, hash: first.record!.hash } });

    const reused = await failure(stack.call('setConsent', T, { ...keyed, state: S.CONSENT_STATE_DENIED }));
    expect(reused.code).toBe(status.INVALID_ARGUMENT);
    expect(reused.metadata.get(INVALID_FIELD_KEY)).toEqual(['idempotency_key']);

    // Without a key: the same state under the same policy version is the current decision already.
    const keyless = await stack.call('setConsent', T, setRequest(userId, P.PURPOSE_TRAINING, S.CONSENT_STATE_GRANTED, { source: 'mobile' }));
    expect(keyless).toMatchObject({ changed: false, duplicate: false, record: { sequence: 1 } });
    // A new key for it records nothing new either, and the key answers the same from then on.
    const newKey = await stack.call('setConsent', T, setRequest(userId, P.PURPOSE_TRAINING, S.CONSENT_STATE_GRANTED, { idempotencyKey: 'k-2' }));
    expect(newKey).toMatchObject({ changed: false, duplicate: false, record: { sequence: 1 } });
    expect(await stack.call('setConsent', T, setRequest(userId, P.PURPOSE_TRAINING, S.CONSENT_STATE_GRANTED, { idempotencyKey: 'k-2' }))).toMatchObject({ changed: false, duplicate: true });
    // A new policy version is a new decision, recorded but not a change of state.
    const newPolicy = await stack.call('setConsent', T, setRequest(userId, P.PURPOSE_TRAINING, S.CONSENT_STATE_GRANTED, { policyVersion: 'v2' }));
    expect(newPolicy).toMatchObject({ changed: false, record: { sequence: 2, policyVersion: 'v2' } });

    const history = await stack.call('getConsentHistory', T, { userId, purpose: P.PURPOSE_UNSPECIFIED, page: undefined });
    expect(history.records.map((r) => r.sequence)).toEqual([1, 2]);
    await new Promise((r) => setTimeout(r, 200));
    await waitUntil(() => storedOf(pseudonym).length >= 1, 'the stored event');
    expect(storedOf(pseudonym).map((e) => e.dedupeId)).toEqual([consentEventId(first.record!.hash)]);
  });

  it('serves the history oldest first, verified, in pages and by purpose', async () => {
    const userId = 'dave';
    const states = [S.CONSENT_STATE_GRANTED, S.CONSENT_STATE_WITHDRAWN, S.CONSENT_STATE_GRANTED, S.CONSENT_STATE_DENIED, S.CONSENT_STATE_GRANTED];
    for (const [i, state] of states.entries()) {
      await stack.call('setConsent', T, setRequest(userId, i % 2 === 0 ? P.PURPOSE_PERSONALIZATION : P.PURPOSE_TRAINING, state, { policyVersion: `v${i}` }));
    }
    const all = await stack.call('getConsentHistory', T, { userId, purpose: P.PURPOSE_UNSPECIFIED, page: undefined });
    expect(all.chainVerified).toBe(true);
    expect(all.nextPageToken).toBe('');
    expect(all.records.map((r) => [r.sequence, r.state, r.verified])).toEqual(states.map((s, i) => [i + 1, s, true]));
    all.records.forEach((r, i) => expect(r.prevHash).toBe(i === 0 ? '' : all.records[i - 1]!.hash));

    const pages: number[][] = [];
    let pageToken = '';
    do {
      const page = await stack.call('getConsentHistory', T, { userId, purpose: P.PURPOSE_UNSPECIFIED, page: { pageSize: 2, pageToken } });
      expect(page.chainVerified).toBe(true);
      pages.push(page.records.map((r) => r.sequence));
      pageToken = page.nextPageToken;
    } while (pageToken);
    expect(pages).toEqual([[1, 2], [3, 4], [5]]);

    const personal = await stack.call('getConsentHistory', T, { userId, purpose: P.PURPOSE_PERSONALIZATION, page: { pageSize: 2, pageToken: '' } });
    expect(personal.records.map((r) => r.sequence)).toEqual([1, 3]);
    const rest = await stack.call('getConsentHistory', T, { userId, purpose: P.PURPOSE_PERSONALIZATION, page: { pageSize: 2, pageToken: personal.nextPageToken } });
    expect(rest.records.map((r) => r.sequence)).toEqual([5]);
    const mixed = await failure(stack.call('getConsentHistory', T, { userId, purpose: P.PURPOSE_TRAINING, page: { pageSize: 2, pageToken: personal.nextPageToken } }));
    expect(mixed.code).toBe(status.INVALID_ARGUMENT);
    expect(mixed.details).toMatch(/page_token belongs to a request for another purpose/);
    expect((await stack.call('getConsentHistory', T, { userId: 'nobody', purpose: P.PURPOSE_UNSPECIFIED, page: undefined })).records).toEqual([]);
  });

  it('detects a record edited in the database, names it, and keeps serving everyone else', async () => {
    const userId = 'erin';
    const pseudonym = pseudonymizer.pseudonymize(T, userId);
    for (const state of [S.CONSENT_STATE_GRANTED, S.CONSENT_STATE_WITHDRAWN, S.CONSENT_STATE_DENIED]) {
      await stack.call('setConsent', T, setRequest(userId, P.PURPOSE_TRAINING, state));
    }
    await stack.call('setConsent', T, setRequest(userId, P.PURPOSE_PERSONALIZATION, S.CONSENT_STATE_GRANTED));
    // Someone with access to the database turns the withdrawal (record 2) back into a grant.
    stack.sql(`UPDATE doc_consent_records SET data = json_set(data, '$.state', 'granted') WHERE tenant = ? AND id = ?`, T, `${pseudonym}:000000000002`);

    const err = await failure(stack.call('getConsentHistory', T, { userId, purpose: P.PURPOSE_UNSPECIFIED, page: undefined }));
    expect(err.code).toBe(status.FAILED_PRECONDITION);
    expect(err.details).toMatch(/fails verification at record 2: record 2 does not match its hash: its content was modified/);
    expect(stack.logs.text()).toMatch(/consent history fails verification/);

    // The latest decisions rest on records 3 and 4, which still check out.
    expect((await stack.call('getConsent', T, getRequest(userId))).decisions.map((d) => d.state)).toEqual([S.CONSENT_STATE_GRANTED, S.CONSENT_STATE_DENIED]);
    // Editing the record a current decision rests on is caught by GetConsent too.
    stack.sql(`UPDATE doc_consent_records SET data = json_set(data, '$.state', 'granted') WHERE tenant = ? AND id = ?`, T, `${pseudonym}:000000000003`);
    const current = await failure(stack.call('getConsent', T, getRequest(userId, [P.PURPOSE_TRAINING])));
    expect(current.code).toBe(status.FAILED_PRECONDITION);
    expect(current.details).toMatch(/record 3 does not match its hash/);
    // A retry that would answer with the altered record is refused, and its key is not spent on it.
    const retry = setRequest(userId, P.PURPOSE_TRAINING, S.CONSENT_STATE_DENIED, { idempotencyKey: 'x' });
    expect((await failure(stack.call('setConsent', T, retry))).code).toBe(status.FAILED_PRECONDITION);
    // Appending goes on (the key was free), and the evidence stays: later records link to the original hashes.
    expect((await stack.call('setConsent', T, { ...retry, state: S.CONSENT_STATE_WITHDRAWN })).record?.sequence).toBe(5);
    expect((await failure(stack.call('getConsentHistory', T, { userId, purpose: P.PURPOSE_UNSPECIFIED, page: undefined }))).details).toMatch(/at record 2:/);

    expect((await stack.call('getConsentHistory', T, { userId: 'dave', purpose: P.PURPOSE_UNSPECIFIED, page: undefined })).chainVerified).toBe(true);
  });

  it('detects deleted records, in the middle and at the end of the history', async () => {
    const middle = 'frank';
    const end = 'grace';
    for (const userId of [middle, end]) {
      for (const state of [S.CONSENT_STATE_GRANTED, S.CONSENT_STATE_WITHDRAWN, S.CONSENT_STATE_GRANTED]) await stack.call('setConsent', T, setRequest(userId, P.PURPOSE_TRAINING, state));
    }
    stack.sql('DELETE FROM doc_consent_records WHERE tenant = ? AND id = ?', T, `${pseudonymizer.pseudonymize(T, middle)}:000000000002`);
    stack.sql('DELETE FROM doc_consent_records WHERE tenant = ? AND id = ?', T, `${pseudonymizer.pseudonymize(T, end)}:000000000003`);
    const a = await failure(stack.call('getConsentHistory', T, { userId: middle, purpose: P.PURPOSE_UNSPECIFIED, page: undefined }));
    expect(a.details).toMatch(/at record 2: record 2 is missing/);
    const b = await failure(stack.call('getConsentHistory', T, { userId: end, purpose: P.PURPOSE_UNSPECIFIED, page: undefined }));
    expect(b.details).toMatch(/at record 3: record 3 is missing: the history ends at record 2/);
    expect((await failure(stack.call('getConsent', T, getRequest(end)))).code).toBe(status.FAILED_PRECONDITION);
  });

  it('keeps one linear chain when many SetConsent calls for one user race', async () => {
    const userId = 'heidi';
    const pseudonym = pseudonymizer.pseudonymize(T, userId);
    const n = 12;
    const results = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        stack.call('setConsent', T, setRequest(userId, i % 2 === 0 ? P.PURPOSE_TRAINING : P.PURPOSE_PERSONALIZATION, i % 3 === 0 ? S.CONSENT_STATE_WITHDRAWN : S.CONSENT_STATE_GRANTED, { policyVersion: `v${i}` })),
      ),
    );
    expect(new Set(results.map((r) => r.record!.sequence)).size).toBe(n);
    const history = await stack.call('getConsentHistory', T, { userId, purpose: P.PURPOSE_UNSPECIFIED, page: undefined });
    expect(history.chainVerified).toBe(true);
    expect(history.records.map((r) => r.sequence)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    expect(new Set(history.records.map((r) => r.prevHash)).size).toBe(n);
    // Each record that changed a state was announced, once.
    const changed = results.filter((r) => r.changed).map((r) => consentEventId(r.record!.hash));
    await waitUntil(() => storedOf(pseudonym).length >= changed.length, 'the events of the race');
    expect(storedOf(pseudonym).map((e) => e.dedupeId).sort()).toEqual(changed.sort());
  });

  it('refuses bad input with INVALID_ARGUMENT naming the field, and keeps serving', async () => {
    const cases: [v1.SetConsentRequest, string][] = [
      [setRequest('', P.PURPOSE_TRAINING, S.CONSENT_STATE_GRANTED), 'user_id'],
      [setRequest('u'.repeat(257), P.PURPOSE_TRAINING, S.CONSENT_STATE_GRANTED), 'user_id'],
      [setRequest('ivan', P.PURPOSE_UNSPECIFIED, S.CONSENT_STATE_GRANTED), 'purpose'],
      [setRequest('ivan', 42 as v1.Purpose, S.CONSENT_STATE_GRANTED), 'purpose'],
      [setRequest('ivan', P.PURPOSE_TRAINING, S.CONSENT_STATE_UNSPECIFIED), 'state'],
      [setRequest('ivan', P.PURPOSE_TRAINING, 9 as v1.ConsentState), 'state'],
      [setRequest('ivan', P.PURPOSE_TRAINING, S.CONSENT_STATE_GRANTED, { policyVersion: '' }), 'policy_version'],
      [setRequest('ivan', P.PURPOSE_TRAINING, S.CONSENT_STATE_GRANTED, { source: 's'.repeat(300) }), 'source'],
      [setRequest('ivan', P.PURPOSE_TRAINING, S.CONSENT_STATE_GRANTED, { idempotencyKey: 'k'.repeat(300) }), 'idempotency_key'],
      [setRequest('ivan', P.PURPOSE_TRAINING, S.CONSENT_STATE_GRANTED, { decidedAt: new Date(Date.now() + 3_600_000) }), 'decided_at'],
    ];
    for (const [request, field] of cases) {
      const err = await failure(stack.call('setConsent', T, request));
      expect(err.code, field).toBe(status.INVALID_ARGUMENT);
      expect(err.metadata.get(INVALID_FIELD_KEY)).toEqual([field]);
    }
    const badPurposes = await failure(stack.call('getConsent', T, getRequest('ivan', [P.PURPOSE_TRAINING, 77 as v1.Purpose])));
    expect(badPurposes.metadata.get(INVALID_FIELD_KEY)).toEqual(['purposes[1]']);
    const badHistory = await failure(stack.call('getConsentHistory', T, { userId: 'ivan', purpose: P.PURPOSE_UNSPECIFIED, page: { pageSize: 10, pageToken: 'garbage' } }));
    expect(badHistory.metadata.get(INVALID_FIELD_KEY)).toEqual(['page.page_token']);

    const noTenant = await failure(stack.call('getConsent', T, getRequest('ivan'), { noTenant: true }));
    expect(noTenant.code).toBe(status.INVALID_ARGUMENT);
    expect(noTenant.details).toMatch(/tenant required/);
    const noDeadline = await failure(stack.call('getConsent', T, getRequest('ivan'), { noDeadline: true }));
    expect(noDeadline.code).toBe(status.INVALID_ARGUMENT);
    expect(noDeadline.details).toMatch(/deadline required/);

    expect((await stack.call('setConsent', T, setRequest('ivan', P.PURPOSE_TRAINING, S.CONSENT_STATE_GRANTED))).record?.sequence).toBe(1);
    expect(stack.logs.text()).not.toContain('u'.repeat(257));
  });

  it('answers Export with FAILED_PRECONDITION when the other services are not configured (test/export.test.ts has the rest)', async () => {
    const err = await failure(stack.call('export', T, { userId: 'judy', format: v1.ExportFormat.EXPORT_FORMAT_JSON }));
    expect(err.code).toBe(status.FAILED_PRECONDITION);
    expect(err.details).toMatch(/AIMASS_PRIVACY__EXPORT__PERSONAL_MODEL_ADDRESS/);
  });
});
