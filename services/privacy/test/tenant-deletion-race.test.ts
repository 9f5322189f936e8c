import { join } from 'node:path';
import { Metadata, credentials, status, type ServiceError } from '@grpc/grpc-js';
import {
  CONSENT_STREAM,
  ERASURE_STREAM,
  TENANT_STREAM,
  consentChangedSubject,
  erasureRequestedSubject,
  newEnvelope,
  publishEvent,
  tenantDeletedEventId,
  tenantDeletedSubject,
  type NatsEventBus,
} from '@aimass/events';
import { TENANT_METADATA_KEY, uuidv7 } from '@aimass/platform';
import { v1 } from '@aimass/proto';
import { TenantTombstones, openSqliteStore, type DocumentStore } from '@aimass/storage';
import { tempDir, waitUntil, type TempDir } from '@aimass/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COLLECTIONS, GLOBAL_TENANT } from '../src/adapters/consent-store.js';
import { ERASURE_COLLECTIONS, ErasureStore } from '../src/adapters/erasure-store.js';
import { TenantDeletedError } from '../src/adapters/tenant-guard.js';
import { newTombstone } from '../src/domain/erasure.js';
import { P, S, failure, pseudonymizer, setRequest, startStack, type Stack } from './support/stack.js';
import { PublishGate } from './support/publish-gate.js';
import { WriteGate, putsInto } from './support/write-gate.js';

const fast = { backoffMs: [50, 100], ackWaitMs: 10_000, leaseTtlMs: 2_000 };
const KEPT = 'kept';

function getKey(client: v1.DataKeyServiceClient, tenant: string, userPseudonym: string): Promise<v1.GetDataKeyResponse> {
  const md = new Metadata();
  md.set(TENANT_METADATA_KEY, tenant);
  return new Promise((resolve, reject) =>
    client.getDataKey({ userPseudonym, keyId: '' }, md, { deadline: Date.now() + 10_000 }, (err: ServiceError | null, res?: v1.GetDataKeyResponse) => (err ? reject(err) : resolve(res!))),
  );
}

/** What a client can act on in a failure: its code and message. */
const answer = (err: ServiceError) => ({ code: err.code, details: err.details });

/** How a call ended, without throwing: its error, or `'OK'`. */
const settled = (call: Promise<unknown>): Promise<ServiceError | 'OK'> => call.then(() => 'OK' as const, (err: ServiceError) => err);

/** The refusal a racing call got (the test fails when it was answered OK). */
function refusal(outcome: ServiceError | 'OK'): ServiceError {
  if (outcome === 'OK') throw new Error('the call racing the deletion was answered OK: it wrote data of a deleted tenant');
  return outcome;
}

/**
 * A call that checked the tenant tombstone just before a tenant deletion wrote it, and whose write
 * reaches the store just after the deletion's deletes ran. The gate holds the write at exactly that
 * point while the real deletion (TenantDeleted through the participant, on NATS) runs to the end.
 * Nothing of the tenant may be left afterwards, and the caller gets what a call made after the
 * deletion gets.
 */
describe('tenant deletion racing user-facing writes (integration)', () => {
  const gate = new WriteGate();
  const publishes = new PublishGate();
  let stack: Stack;
  let fusion: NatsEventBus;
  let probe: NatsEventBus;
  let keys: v1.DataKeyServiceClient;

  /** Every document of the tenant: in its own partition, and in `_global` under `<tenant>:` ids (outbox, open erasures). */
  function leftovers(tenant: string): Record<string, number> {
    const tables = stack.sql<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'doc_%'").map((t) => t.name);
    const out: Record<string, number> = {};
    for (const table of tables) {
      const [{ n }] = stack.sql<{ n: number }>(`SELECT count(*) AS n FROM "${table}" WHERE tenant = ? OR (tenant = ? AND substr(id, 1, ?) = ?)`, tenant, GLOBAL_TENANT, tenant.length + 1, `${tenant}:`) as [{ n: number }];
      if (n > 0) out[table] = n;
    }
    return out;
  }

  /**
   * The subjects of `tenant` the consent and erasure streams hold, with their message counts, as
   * the server reports them (the JetStream API's STREAM.INFO, asked over the test's own connection).
   */
  async function streamSubjects(tenant: string): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const stream of [CONSENT_STREAM.name, ERASURE_STREAM.name]) {
      const reply = await probe.connection.request(`$JS.API.STREAM.INFO.${stream}`, JSON.stringify({ subjects_filter: `aimass.${tenant}.>` }), { timeout: 5_000 });
      const info = reply.json<{ state?: { subjects?: Record<string, number> }; error?: { description: string } }>();
      if (info.error) throw new Error(`STREAM.INFO ${stream}: ${info.error.description}`);
      Object.assign(out, info.state?.subjects ?? {});
    }
    return out;
  }

  /** Fusion's TenantDeleted for the tenant; resolves once privacy has deleted and confirmed. */
  async function deleteTenant(tenant: string): Promise<void> {
    const before = stack.privacy.tenantDeletion.stats().completed;
    await publishEvent(fusion, tenantDeletedSubject(tenant), 'aimass.v1.TenantDeleted', {
      envelope: newEnvelope({ type: 'aimass.v1.TenantDeleted', tenant, producer: 'fusion', eventId: tenantDeletedEventId(tenant, 0) }),
      reason: 'test',
    });
    await waitUntil(() => stack.privacy.tenantDeletion.stats().completed > before, `privacy deleted tenant ${tenant}`, 15_000);
  }

  beforeAll(async () => {
    stack = await startStack({ erasure: { sweepIntervalMs: 0, graceMs: 0 }, tenantDeletion: fast }, { wrapStore: gate.wrap, wrapBus: publishes.wrap });
    fusion = await stack.newBus('fusion');
    probe = await stack.newBus('probe');
    await fusion.ensureStream(TENANT_STREAM);
    keys = new v1.DataKeyServiceClient(stack.privacy.address, credentials.createInsecure());
    // Another tenant's data, which no deletion below may touch.
    await stack.call('setConsent', KEPT, setRequest('alice', P.PURPOSE_TRAINING, S.CONSENT_STATE_GRANTED));
    await stack.call('erase', KEPT, { userId: 'bob', reason: 'gdpr-art17', idempotencyKey: '' });
  }, 30_000);
  afterAll(async () => {
    keys?.close();
    await stack?.stop();
  });

  it('SetConsent whose new record is written after the deletion: refused, nothing of the tenant left', async () => {
    const T = 'race-append';
    await stack.call('setConsent', T, setRequest('bob', P.PURPOSE_TRAINING, S.CONSENT_STATE_GRANTED));
    const kept = leftovers(KEPT);

    const held = gate.hold(putsInto(COLLECTIONS.records, T));
    const racing = settled(stack.call('setConsent', T, setRequest('alice', P.PURPOSE_TRAINING, S.CONSENT_STATE_GRANTED)));
    await held.reached;
    await deleteTenant(T);
    held.release();

    const outcome = await racing;
    // The rows first: what a race would leave behind is the point of the test.
    expect(leftovers(T)).toEqual({});
    const refused = refusal(outcome);
    const after = await failure(stack.call('setConsent', T, setRequest('alice', P.PURPOSE_TRAINING, S.CONSENT_STATE_GRANTED)));
    expect(refused.code).toBe(status.FAILED_PRECONDITION);
    expect(refused.details).toMatch(/^the tenant was deleted/);
    expect(answer(refused)).toEqual(answer(after));
    expect(leftovers(T)).toEqual({});
    expect(leftovers(KEPT)).toEqual(kept);
  });

  it('SetConsent that only claims its idempotency key after the deletion: refused, no key left', async () => {
    const T = 'race-claim';
    await stack.call('setConsent', T, setRequest('alice', P.PURPOSE_TRAINING, S.CONSENT_STATE_GRANTED));

    // The same decision again appends nothing: only the key is written.
    const held = gate.hold(putsInto(COLLECTIONS.keys, T));
    const racing = settled(stack.call('setConsent', T, setRequest('alice', P.PURPOSE_TRAINING, S.CONSENT_STATE_GRANTED, { idempotencyKey: 'same-again' })));
    await held.reached;
    await deleteTenant(T);
    held.release();

    const outcome = await racing;
    // The rows first: what a race would leave behind is the point of the test.
    expect(leftovers(T)).toEqual({});
    const refused = refusal(outcome);
    const after = await failure(stack.call('setConsent', T, setRequest('alice', P.PURPOSE_TRAINING, S.CONSENT_STATE_GRANTED, { idempotencyKey: 'same-again' })));
    expect(refused.code).toBe(status.FAILED_PRECONDITION);
    expect(refused.details).toMatch(/^the tenant was deleted/);
    expect(answer(refused)).toEqual(answer(after));
    expect(leftovers(T)).toEqual({});
  });

  it('Erase whose tombstone is written after the deletion: refused, no tombstone or open entry left', async () => {
    const T = 'race-erase';
    await stack.call('setConsent', T, setRequest('carol', P.PURPOSE_TRAINING, S.CONSENT_STATE_GRANTED));
    const kept = leftovers(KEPT);

    const held = gate.hold(putsInto(ERASURE_COLLECTIONS.tombstones, T));
    const racing = settled(stack.call('erase', T, { userId: 'carol', reason: 'gdpr-art17', idempotencyKey: '' }));
    await held.reached;
    await deleteTenant(T);
    held.release();

    const outcome = await racing;
    // The rows first: what a race would leave behind is the point of the test.
    expect(leftovers(T)).toEqual({});
    const refused = refusal(outcome);
    const after = await failure(stack.call('erase', T, { userId: 'carol', reason: 'gdpr-art17', idempotencyKey: '' }));
    expect(refused.code).toBe(status.FAILED_PRECONDITION);
    expect(refused.details).toMatch(/tenant was deleted/);
    expect(answer(refused)).toEqual(answer(after));
    expect(leftovers(T)).toEqual({});
    expect(leftovers(KEPT)).toEqual(kept);
  });

  /**
   * A call that committed before the tenant tombstone (the deletion deletes what it wrote) but
   * whose event reaches the stream only after the deletion purged the tenant's subjects: the gate
   * holds the publish at exactly that point while the deletion runs to the end.
   */
  it('SetConsent whose ConsentChanged is stored after the deletion purged the streams: the event is gone too', async () => {
    const T = 'late-consent';
    await stack.call('setConsent', T, setRequest('bob', P.PURPOSE_TRAINING, S.CONSENT_STATE_GRANTED));
    const keptEvents = await streamSubjects(KEPT);
    expect(Object.keys(await streamSubjects(T))).toHaveLength(1);

    const held = publishes.hold((subject) => subject === consentChangedSubject(T, pseudonymizer.pseudonymize(T, 'alice')));
    const racing = settled(stack.call('setConsent', T, setRequest('alice', P.PURPOSE_TRAINING, S.CONSENT_STATE_GRANTED)));
    await held.reached;
    await deleteTenant(T);
    // The deletion found bob's event and not alice's, which is not stored yet.
    expect(await streamSubjects(T)).toEqual({});
    expect(leftovers(T)).toEqual({});
    held.release();

    // Recorded before the deletion (which deleted it with the tenant): the call answers as one
    // that completed just before the deletion would.
    expect(await racing).toBe('OK');
    expect(await streamSubjects(T)).toEqual({});
    expect(leftovers(T)).toEqual({});
    expect(await streamSubjects(KEPT)).toEqual(keptEvents);
  });

  it('Erase whose ErasureRequested is stored after the deletion purged the streams: the event is gone too', async () => {
    const T = 'late-erase';
    await stack.call('setConsent', T, setRequest('carol', P.PURPOSE_TRAINING, S.CONSENT_STATE_GRANTED));
    const keptEvents = await streamSubjects(KEPT);

    const held = publishes.hold((subject) => subject === erasureRequestedSubject(T, pseudonymizer.pseudonymize(T, 'carol')));
    const racing = settled(stack.call('erase', T, { userId: 'carol', reason: 'gdpr-art17', idempotencyKey: '' }));
    await held.reached;
    await deleteTenant(T);
    expect(await streamSubjects(T)).toEqual({});
    expect(leftovers(T)).toEqual({});
    held.release();

    expect(await racing).toBe('OK');
    expect(await streamSubjects(T)).toEqual({});
    expect(leftovers(T)).toEqual({});
    expect(await streamSubjects(KEPT)).toEqual(keptEvents);
  });

  it('a ConsentChanged its caller stopped waiting for, stored after the deletion: the event is gone too', async () => {
    const T = 'late-abandoned';
    const subject = consentChangedSubject(T, pseudonymizer.pseudonymize(T, 'dora'));
    const held = publishes.hold((s) => s === subject);
    const racing = settled(stack.call('setConsent', T, setRequest('dora', P.PURPOSE_TRAINING, S.CONSENT_STATE_GRANTED), { deadlineMs: 1_000 }));
    await held.reached;
    // The call gives up on the bus at its deadline; its publish is still on its way.
    expect([status.UNAVAILABLE, status.DEADLINE_EXCEEDED]).toContain(refusal(await racing).code);
    await deleteTenant(T);
    expect(await streamSubjects(T)).toEqual({});
    const seenBefore = stack.seen.length;
    held.release();

    // Stored now (a live subscriber sees it), then taken back.
    await waitUntil(() => stack.seen.slice(seenBefore).some((e) => e.subject === subject), 'the late ConsentChanged published');
    await waitUntil(async () => Object.keys(await streamSubjects(T)).length === 0, 'no event of the deleted tenant left in the streams', 5_000);
  });

  it("the outbox sweep's ConsentChanged stored after the deletion purged the streams: the event is gone too", async () => {
    const T = 'late-sweep';
    const subject = consentChangedSubject(T, pseudonymizer.pseudonymize(T, 'erik'));
    // A SetConsent whose publish failed: its change is recorded, the outbox entry left pending and
    // nothing stored (a stored copy would make the sweep's publish a duplicate the stream drops).
    publishes.fail((s) => s === subject);
    expect(refusal(await settled(stack.call('setConsent', T, setRequest('erik', P.PURPOSE_TRAINING, S.CONSENT_STATE_GRANTED)))).code).toBe(status.UNAVAILABLE);
    expect(await streamSubjects(T)).toEqual({});

    const held = publishes.hold((s) => s === subject);
    const sweeping = stack.privacy.sweep({ graceMs: 0 });
    await held.reached;
    await deleteTenant(T);
    expect(await streamSubjects(T)).toEqual({});
    held.release();

    expect(await sweeping).toBeGreaterThanOrEqual(1);
    expect(await streamSubjects(T)).toEqual({});
    expect(leftovers(T)).toEqual({});
  });

  it('GetDataKey whose new key is stored after the deletion: refused, no key left', async () => {
    const T = 'race-data-key';
    const dave = pseudonymizer.pseudonymize(T, 'dave');
    await getKey(keys, T, pseudonymizer.pseudonymize(T, 'erin'));

    const held = gate.hold(putsInto('data_keys', T));
    const racing = settled(getKey(keys, T, dave));
    await held.reached;
    await deleteTenant(T);
    held.release();

    const outcome = await racing;
    // The rows first: what a race would leave behind is the point of the test.
    expect(leftovers(T)).toEqual({});
    const refused = refusal(outcome);
    const after = await failure(getKey(keys, T, dave));
    expect(refused.code).toBe(status.FAILED_PRECONDITION);
    expect(answer(refused)).toEqual(answer(after));
    expect(leftovers(T)).toEqual({});
  });
});

/**
 * The erasure records' later writes (a confirmation or a sweep step) of a tenant being deleted,
 * on the store alone: none of them may bring back what the deletion removed.
 */
describe('ErasureStore writes of a deleted tenant (integration)', () => {
  const T = 'going';
  let dir: TempDir;
  let store: DocumentStore;
  let erasure: ErasureStore;
  let tenants: TenantTombstones;
  const tombstone = (pseudonym: string) => newTombstone({ tenant: T, pseudonym, erasureId: uuidv7(), reason: '', services: ['personal-model'], now: new Date() });

  beforeAll(async () => {
    dir = await tempDir('privacy-erasure-tenant-');
    store = await openSqliteStore({ path: join(dir.path, 'privacy.sqlite') });
    erasure = await ErasureStore.open(store);
    tenants = await TenantTombstones.open(store);
  });
  afterAll(async () => {
    await store?.close();
    await dir?.remove();
  });

  it('refuses to create or replace a tombstone once the tenant tombstone is written (the deletion has not reached the erasure records yet)', async () => {
    const p1 = tombstone('p1');
    expect(await erasure.create(p1)).toBe(true);
    await tenants.write(T, 'test');

    // A confirmation completing the erasure would also re-create the open entry the deletion removes first.
    await expect(erasure.replace({ ...p1, completedAt: new Date() }, 1, true)).rejects.toBeInstanceOf(TenantDeletedError);
    expect((await erasure.get(T, 'p1'))?.version).toBe(1);
    await expect(erasure.create(tombstone('p2'))).rejects.toBeInstanceOf(TenantDeletedError);
    expect(await erasure.get(T, 'p2')).toBeUndefined();
  });

  it('re-creates no open entry when a sweep that listed it before the deletion closes it after', async () => {
    await erasure.deleteTenant(T);
    await erasure.close(T, 'p1');
    const open = await store.collection({ name: ERASURE_COLLECTIONS.open });
    expect(await open.get(GLOBAL_TENANT, `${T}:p1`)).toBeUndefined();
    expect(await erasure.get(T, 'p1')).toBeUndefined();
  });
});
