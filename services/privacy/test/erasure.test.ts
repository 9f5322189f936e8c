import { status } from '@grpc/grpc-js';
import {
  ALL_ERASURE_REQUESTED,
  ERASURE_STREAM,
  decodeEvent,
  deadLetterSubject,
  erasureRequestedEventId,
  erasureRequestedSubject,
  startErasureParticipant,
  type DeliveredEvent,
  type ErasureParticipant,
} from '@aimass/events';
import { v1 } from '@aimass/proto';
import { waitUntil } from '@aimass/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { P, S, failure, getRequest, pseudonymizer, setRequest, startStack, type Stack } from './support/stack.js';

const T = 't1';
const E = v1.ErasureStatus;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

const eraseRequest = (userId: string, more: Partial<v1.EraseRequest> = {}): v1.EraseRequest => ({ userId, reason: 'gdpr-art17', idempotencyKey: '', ...more });

/** Every ErasureRequested the stream stored, read by a durable consumer of the test's own. */
async function readRequests(stack: Stack, name: string): Promise<DeliveredEvent[]> {
  const bus = await stack.newBus(`${name}-reader`);
  const seen: DeliveredEvent[] = [];
  await bus.consume(
    { durable: `${name}-reader`, stream: ERASURE_STREAM.name, filterSubject: ALL_ERASURE_REQUESTED, maxDeliver: 1, backoffMs: [0], ackWaitMs: 5_000, deadLetterSubject: deadLetterSubject('privacy-test'), leaseTtlMs: 2_000 },
    async (e) => void seen.push(e),
  );
  return seen;
}

const countRows = (stack: Stack, table: string, pseudonym: string) =>
  stack.sql<{ n: number }>(`SELECT count(*) AS n FROM ${table} WHERE tenant = ? AND "user" = ?`, T, pseudonym)[0]!.n;

describe('erasure: privacy on its own (integration)', () => {
  let stack: Stack;
  let requests: DeliveredEvent[];

  beforeAll(async () => {
    stack = await startStack({ erasure: { sweepIntervalMs: 0, graceMs: 0 } });
    requests = await readRequests(stack, 'alone');
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('writes the tombstone, deletes the consent records and publishes ErasureRequested before it answers; the receipt lists each service', async () => {
    const alice = pseudonymizer.pseudonymize(T, 'alice');
    await stack.call('setConsent', T, setRequest('alice', P.PURPOSE_TRAINING, S.CONSENT_STATE_GRANTED));
    await stack.call('setConsent', T, setRequest('alice', P.PURPOSE_PERSONALIZATION, S.CONSENT_STATE_GRANTED));
    expect(countRows(stack, 'doc_consent_records', alice)).toBe(2);

    const erased = await stack.call('erase', T, eraseRequest('alice'));
    expect(erased).toMatchObject({ status: E.ERASURE_STATUS_PENDING, duplicate: false });
    expect(erased.erasureId).toMatch(UUID);

    // Nothing of the consent history is left; the tombstone is, without the user id.
    for (const table of ['doc_consent_records', 'doc_consent_heads', 'doc_consent_keys', 'doc_consent_outbox']) expect(countRows(stack, table, alice), table).toBe(0);
    const tombstones = stack.sql<{ id: string; user: string | null; data: string }>('SELECT id, "user", data FROM doc_erasure_tombstones WHERE tenant = ?', T);
    expect(tombstones.map((t) => [t.id, t.user])).toEqual([[alice, null]]);
    expect(tombstones[0]!.data).toContain(erased.erasureId);
    expect(tombstones[0]!.data).not.toContain('alice');

    await waitUntil(() => requests.length === 1, 'ErasureRequested read from the stream');
    const stored = requests[0]!;
    expect(stored.subject).toBe(erasureRequestedSubject(T, alice));
    expect(stored.dedupeId).toBe(erasureRequestedEventId(erased.erasureId, 0));
    expect(decodeEvent('aimass.v1.ErasureRequested', stored.data)).toMatchObject({
      erasureId: erased.erasureId,
      services: ['privacy', 'personal-model', 'updater', 'fusion'],
      envelope: { tenant: T, userPseudonym: alice, producer: 'privacy' },
    });

    const { receipt } = await stack.call('getErasureReceipt', T, { erasureId: erased.erasureId });
    expect(receipt).toMatchObject({ erasureId: erased.erasureId, userPseudonym: alice, status: E.ERASURE_STATUS_PENDING, completedAt: undefined });
    expect(receipt!.requestedAt).toBeInstanceOf(Date);
    // The data key went first (test/data-keys.test.ts shows what that does to sealed data).
    expect(receipt!.keyDestroyedAt!.getTime()).toBeGreaterThanOrEqual(receipt!.requestedAt!.getTime());
    expect(receipt!.keyDestroyedAt!.getTime()).toBeLessThanOrEqual(receipt!.confirmations[0]!.confirmedAt!.getTime());
    expect(receipt!.confirmations.map((c) => [c.service, c.status])).toEqual([
      ['privacy', E.ERASURE_STATUS_COMPLETED],
      ['personal-model', E.ERASURE_STATUS_PENDING],
      ['updater', E.ERASURE_STATUS_PENDING],
      ['fusion', E.ERASURE_STATUS_PENDING],
    ]);
    // Two records, the head and the outbox entry.
    expect(receipt!.confirmations[0]).toMatchObject({ itemsDeleted: 4 });
    expect(receipt!.confirmations[0]!.confirmedAt!.getTime()).toBeGreaterThanOrEqual(receipt!.requestedAt!.getTime());
    expect(receipt!.confirmations[1]!.confirmedAt).toBeUndefined();
    expect(stack.logs.text()).not.toContain('"alice"');
  });

  it('answers a second Erase with the same erasure, refuses SetConsent and reports nothing granted for an erased user', async () => {
    const bob = pseudonymizer.pseudonymize(T, 'bob');
    await stack.call('setConsent', T, setRequest('bob', P.PURPOSE_TRAINING, S.CONSENT_STATE_GRANTED));
    const first = await stack.call('erase', T, eraseRequest('bob', { idempotencyKey: 'k1' }));
    const again = await stack.call('erase', T, eraseRequest('bob', { idempotencyKey: 'k2', reason: 'another reason' }));
    expect(again).toEqual({ erasureId: first.erasureId, status: E.ERASURE_STATUS_PENDING, duplicate: true });
    await waitUntil(() => requests.some((r) => r.subject === erasureRequestedSubject(T, bob)), 'ErasureRequested for bob');
    await new Promise((r) => setTimeout(r, 200));
    // The repeat published nothing new.
    expect(requests.filter((r) => r.subject === erasureRequestedSubject(T, bob))).toHaveLength(1);
    expect(stack.sql<{ n: number }>('SELECT count(*) AS n FROM doc_erasure_tombstones WHERE tenant = ? AND id = ?', T, bob)[0]!.n).toBe(1);

    const refused = await failure(stack.call('setConsent', T, setRequest('bob', P.PURPOSE_TRAINING, S.CONSENT_STATE_GRANTED)));
    expect(refused.code).toBe(status.FAILED_PRECONDITION);
    expect(refused.details).toMatch(/erased/);
    expect(countRows(stack, 'doc_consent_records', bob)).toBe(0);

    const consent = await stack.call('getConsent', T, getRequest('', [], { userPseudonym: bob }));
    expect(consent.decisions.map((d) => [d.state, d.isDefault])).toEqual([
      [S.CONSENT_STATE_DENIED, false],
      [S.CONSENT_STATE_DENIED, false],
    ]);
    const history = await stack.call('getConsentHistory', T, { userId: 'bob', purpose: P.PURPOSE_UNSPECIFIED, page: undefined });
    expect(history).toMatchObject({ records: [], chainVerified: true });
  });

  it('refuses bad input naming the field, and knows erasures only in their tenant', async () => {
    const { erasureId } = await stack.call('erase', T, eraseRequest('cy'));
    const other = await failure(stack.call('getErasureReceipt', 't2', { erasureId }));
    expect(other.code).toBe(status.NOT_FOUND);
    expect(other.details).toMatch(/no erasure/);
    for (const [err, field] of [
      [await failure(stack.call('getErasureReceipt', T, { erasureId: '' })), /erasure_id is required/],
      [await failure(stack.call('getErasureReceipt', T, { erasureId: 'e1' })), /erasure_id is not an erasure id/],
      [await failure(stack.call('erase', T, eraseRequest(''))), /user_id is required/],
      [await failure(stack.call('erase', T, eraseRequest('dan', { reason: 'r'.repeat(257) }))), /reason is 257 bytes/],
    ] as const) {
      expect(err.code).toBe(status.INVALID_ARGUMENT);
      expect(err.details).toMatch(field);
    }
    expect((await failure(stack.call('erase', T, eraseRequest('dan'), { noTenant: true }))).code).toBe(status.INVALID_ARGUMENT);
    // Nothing was written for the refused calls.
    expect(stack.sql('SELECT id FROM doc_erasure_tombstones WHERE id = ?', pseudonymizer.pseudonymize(T, 'dan'))).toEqual([]);
  });

  it('NATS down: Erase answers UNAVAILABLE with the tombstone kept; the retry or the sweep publishes the request once NATS is back', async () => {
    const erin = pseudonymizer.pseudonymize(T, 'erin');
    const fay = pseudonymizer.pseudonymize(T, 'fay');
    await stack.call('setConsent', T, setRequest('erin', P.PURPOSE_TRAINING, S.CONSENT_STATE_GRANTED));

    await stack.nats.kill();
    const started = Date.now();
    const down = await failure(stack.call('erase', T, eraseRequest('erin'), { deadlineMs: 4_000 }));
    expect(down.code).toBe(status.UNAVAILABLE);
    expect(down.details).toMatch(/erasure not announced.*retry Erase/);
    expect(Date.now() - started).toBeLessThan(4_000);
    // fay's caller gives up: the sweep announces hers.
    expect((await failure(stack.call('erase', T, eraseRequest('fay'), { deadlineMs: 4_000 }))).code).toBe(status.UNAVAILABLE);

    // The tombstone stands and does its work while the bus is down.
    expect(stack.sql('SELECT id FROM doc_erasure_tombstones WHERE tenant = ? AND id IN (?, ?) ORDER BY id', T, erin, fay)).toHaveLength(2);
    expect(countRows(stack, 'doc_consent_records', erin)).toBe(0);
    expect((await failure(stack.call('setConsent', T, setRequest('erin', P.PURPOSE_TRAINING, S.CONSENT_STATE_GRANTED)))).code).toBe(status.FAILED_PRECONDITION);

    await stack.nats.restart();
    let retried: v1.EraseResponse | undefined;
    await waitUntil(
      async () => {
        retried = await stack.call('erase', T, eraseRequest('erin'), { deadlineMs: 3_000 }).catch(() => undefined);
        return retried !== undefined;
      },
      'the retried Erase to succeed',
      15_000,
      200,
    );
    expect(retried).toMatchObject({ duplicate: true, status: E.ERASURE_STATUS_PENDING });
    expect(await stack.privacy.sweepErasures()).toBe(1);
    expect(await stack.privacy.sweepErasures()).toBe(0);

    const requested = (p: string) => requests.filter((r) => r.subject === erasureRequestedSubject(T, p));
    await waitUntil(() => requested(erin).length === 1 && requested(fay).length === 1, 'both requests stored', 15_000);
    expect(requested(erin)[0]!.dedupeId).toBe(erasureRequestedEventId(retried!.erasureId, 0));
  });
});

describe('erasure: confirmations and retries (integration)', () => {
  let stack: Stack;
  let participant: ErasureParticipant | undefined;

  beforeAll(async () => {
    // One participant besides privacy, asked again 300 ms after a round it has not completed.
    stack = await startStack({ erasure: { services: ['archive'], sweepIntervalMs: 0, retryIntervalMs: 300, graceMs: 0, consumer: { backoffMs: [50], leaseTtlMs: 2_000 } } });
  });
  afterAll(async () => {
    await participant?.close();
    await stack?.stop();
  });

  it('records a FAILED answer, asks again after the retry interval, and completes the receipt once the service confirms', async () => {
    const gus = pseudonymizer.pseudonymize(T, 'gus');
    const asked: string[] = [];
    participant = await startErasureParticipant({
      bus: await stack.newBus('archive'),
      service: 'archive',
      consumer: { maxDeliver: 1, backoffMs: [0], ackWaitMs: 5_000, leaseTtlMs: 2_000 },
      erase: (r) => {
        asked.push(r.requestEventId);
        return asked.length === 1 ? Promise.reject(new Error('archive store unreachable')) : Promise.resolve({ itemsDeleted: 5 });
      },
    });

    const { erasureId } = await stack.call('erase', T, eraseRequest('gus'));
    const receipt = async () => (await stack.call('getErasureReceipt', T, { erasureId })).receipt!;
    await waitUntil(async () => (await receipt()).status === E.ERASURE_STATUS_FAILED, 'the FAILED answer recorded');
    expect((await receipt()).confirmations[1]).toMatchObject({ service: 'archive', status: E.ERASURE_STATUS_FAILED, detail: 'archive store unreachable' });

    // Not yet due: the round is younger than the retry interval.
    await new Promise((r) => setTimeout(r, 350));
    expect(await stack.privacy.sweepErasures()).toBe(1);
    await waitUntil(async () => (await receipt()).status === E.ERASURE_STATUS_COMPLETED, 'the receipt complete');
    const done = await receipt();
    expect(asked).toEqual([erasureRequestedEventId(erasureId, 0), erasureRequestedEventId(erasureId, 1)]);
    expect(done.confirmations.map((c) => [c.service, c.status, c.itemsDeleted])).toEqual([
      ['privacy', E.ERASURE_STATUS_COMPLETED, 0],
      ['archive', E.ERASURE_STATUS_COMPLETED, 5],
    ]);
    expect(done.completedAt).toEqual(done.confirmations[1]!.confirmedAt);
    expect(done.userPseudonym).toBe(gus);

    // Complete: never asked again.
    await new Promise((r) => setTimeout(r, 350));
    expect(await stack.privacy.sweepErasures()).toBe(0);
    expect(stack.sql<{ data: string }>('SELECT data FROM doc_erasure_open WHERE id = ?', `${T}:${gus}`)[0]!.data).toContain('"open":false');
  });
});
