import { describe, expect, it } from 'vitest';
import { v1 } from '@aimass/proto';
import { AiMassError, CancelledError, DeadlineExceededError, NotFoundError } from './errors.js';
import {
  CONSENT_PURPOSES,
  CONSENT_STATES,
  ErasureTimeoutError,
  consentStateCode,
  consentStateName,
  erasureStatusName,
  pendingServices,
  pollErasureReceipt,
  purposeCode,
  purposeName,
  toConsentDecision,
  toErasureReceipt,
  toExportResult,
  toSetConsentResult,
  type ErasureReceipt,
} from './privacy.js';

const P = v1.Purpose;
const S = v1.ConsentState;
const E = v1.ErasureStatus;

const record = (more: Partial<v1.ConsentRecord> = {}): v1.ConsentRecord => ({
  sequence: 2,
  purpose: P.PURPOSE_TRAINING,
  state: S.CONSENT_STATE_WITHDRAWN,
  policyVersion: 'v2',
  source: 'web-settings',
  recordedAt: new Date('2025-01-02T03:04:05.000Z'),
  prevHash: 'a'.repeat(64),
  hash: 'b'.repeat(64),
  verified: true,
  ...more,
});

describe('purposes and states', () => {
  it('maps every name to its code and back', () => {
    for (const p of CONSENT_PURPOSES) expect(purposeName(purposeCode(p))).toBe(p);
    for (const s of CONSENT_STATES) expect(consentStateName(consentStateCode(s))).toBe(s);
    expect(purposeCode('personalization')).toBe(P.PURPOSE_PERSONALIZATION);
    expect(consentStateCode('withdrawn')).toBe(S.CONSENT_STATE_WITHDRAWN);
  });

  it('refuses a name it does not know instead of sending UNSPECIFIED', () => {
    expect(() => purposeCode('marketing' as never)).toThrow(new TypeError('unknown consent purpose "marketing" (known: personalization, training)'));
    expect(() => purposeCode('toString' as never)).toThrow(TypeError);
    expect(() => consentStateCode('revoked' as never)).toThrow(new TypeError('unknown consent state "revoked" (known: granted, denied, withdrawn)'));
  });

  it('reads codes it does not know (a newer server) as unspecified', () => {
    expect(purposeName(P.PURPOSE_UNSPECIFIED)).toBe('unspecified');
    expect(purposeName(42 as v1.Purpose)).toBe('unspecified');
    expect(consentStateName(S.CONSENT_STATE_UNSPECIFIED)).toBe('unspecified');
    expect(erasureStatusName(E.ERASURE_STATUS_FAILED)).toBe('failed');
    expect(erasureStatusName(9 as v1.ErasureStatus)).toBe('unspecified');
  });
});

describe('consent results', () => {
  it('turns a record and a decision into plain objects', () => {
    expect(toConsentDecision({ purpose: P.PURPOSE_TRAINING, state: S.CONSENT_STATE_WITHDRAWN, isDefault: false, record: record() })).toEqual({
      purpose: 'training',
      state: 'withdrawn',
      isDefault: false,
      record: {
        sequence: 2,
        purpose: 'training',
        state: 'withdrawn',
        policyVersion: 'v2',
        source: 'web-settings',
        recordedAt: new Date('2025-01-02T03:04:05.000Z'),
        prevHash: 'a'.repeat(64),
        hash: 'b'.repeat(64),
        verified: true,
      },
    });
    expect(toConsentDecision({ purpose: P.PURPOSE_PERSONALIZATION, state: S.CONSENT_STATE_DENIED, isDefault: true, record: undefined })).toEqual({
      purpose: 'personalization',
      state: 'denied',
      isDefault: true,
      record: undefined,
    });
  });

  it('returns the idempotency key with a SetConsent answer, and refuses one without a record', () => {
    expect(toSetConsentResult({ record: record(), changed: true, duplicate: false }, 'k-1')).toMatchObject({ changed: true, duplicate: false, idempotencyKey: 'k-1', record: { sequence: 2 } });
    const err = (() => {
      try {
        toSetConsentResult({ record: undefined, changed: false, duplicate: false }, 'k');
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(AiMassError);
    expect(err).toMatchObject({ code: 'INTERNAL', details: 'the server answered SetConsent without a record' });
  });
});

const receiptProto = (status: v1.ErasureStatus, confirmations: Partial<v1.ErasureConfirmation>[]): v1.ErasureReceipt => ({
  erasureId: 'e-1',
  userPseudonym: 'PSEUDO',
  status,
  requestedAt: new Date('2025-01-02T00:00:00.000Z'),
  keyDestroyedAt: new Date('2025-01-02T00:00:00.010Z'),
  completedAt: undefined,
  confirmations: confirmations.map((c) => ({ service: 's', status: E.ERASURE_STATUS_PENDING, confirmedAt: undefined, itemsDeleted: 0, detail: '', ...c })),
});

describe('erasure receipts', () => {
  it('keeps every confirmation and lists the services not completed', () => {
    const receipt = toErasureReceipt(
      receiptProto(E.ERASURE_STATUS_FAILED, [
        { service: 'privacy', status: E.ERASURE_STATUS_COMPLETED, confirmedAt: new Date('2025-01-02T00:00:01.000Z'), itemsDeleted: 4 },
        { service: 'personal-model', status: E.ERASURE_STATUS_PENDING },
        { service: 'updater', status: E.ERASURE_STATUS_FAILED, detail: 'store unreachable' },
      ]),
    );
    expect(receipt).toMatchObject({ erasureId: 'e-1', userPseudonym: 'PSEUDO', status: 'failed', keyDestroyedAt: new Date('2025-01-02T00:00:00.010Z'), completedAt: undefined });
    expect(receipt.confirmations).toEqual([
      { service: 'privacy', status: 'completed', confirmedAt: new Date('2025-01-02T00:00:01.000Z'), itemsDeleted: 4, detail: '' },
      { service: 'personal-model', status: 'pending', confirmedAt: undefined, itemsDeleted: 0, detail: '' },
      { service: 'updater', status: 'failed', confirmedAt: undefined, itemsDeleted: 0, detail: 'store unreachable' },
    ]);
    expect(pendingServices(receipt)).toEqual(['personal-model', 'updater']);
  });

  it('refuses an answer without a receipt', () => {
    expect(() => toErasureReceipt(undefined)).toThrow('the server answered GetErasureReceipt without a receipt');
  });
});

describe('export', () => {
  it('parses the JSON form and takes the structured form as it is', () => {
    const doc = { user: { pseudonym: 'P' }, consents: [{ purpose: 'training', state: 'granted' }] };
    const at = new Date('2025-01-02T00:00:00.000Z');
    expect(toExportResult({ content: { $case: 'json', value: Buffer.from(JSON.stringify(doc)) }, generatedAt: at })).toEqual({ document: doc, generatedAt: at });
    expect(toExportResult({ content: { $case: 'document', value: doc }, generatedAt: undefined })).toEqual({ document: doc, generatedAt: undefined });
  });

  it.each([
    [{ content: { $case: 'json' as const, value: Buffer.from('{"a":') } }, /^the server answered Export with JSON that does not parse: /],
    [{ content: { $case: 'json' as const, value: Buffer.from('[1,2]') } }, /^the server answered Export with a document that is not a JSON object$/],
    [{ content: undefined }, /^the server answered Export without a document$/],
  ])('refuses a malformed answer (%#) as INTERNAL', (response, message) => {
    let err: unknown;
    try {
      toExportResult({ generatedAt: undefined, ...response });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AiMassError);
    expect((err as AiMassError).code).toBe('INTERNAL');
    expect((err as AiMassError).details).toMatch(message);
  });
});

const receipt = (status: ErasureReceipt['status'], pending: string[] = []): ErasureReceipt => ({
  erasureId: 'e-1',
  userPseudonym: 'P',
  status,
  requestedAt: undefined,
  keyDestroyedAt: undefined,
  completedAt: undefined,
  confirmations: [
    { service: 'privacy', status: 'completed', confirmedAt: new Date(0), itemsDeleted: 1, detail: '' },
    ...pending.map((service) => ({ service, status: service === 'updater' ? ('failed' as const) : ('pending' as const), confirmedAt: undefined, itemsDeleted: 0, detail: service === 'updater' ? 'disk full' : '' })),
  ],
});

/** A receipt source scripted read by read (the last one repeats). */
function reads(...answers: (ErasureReceipt | Error)[]) {
  const deadlines: number[] = [];
  let n = 0;
  return {
    deadlines,
    get count() {
      return n;
    },
    read: async (call: { deadline: number }) => {
      deadlines.push(call.deadline - Date.now());
      const answer = answers[Math.min(n++, answers.length - 1)]!;
      if (answer instanceof Error) throw answer;
      return answer;
    },
  };
}

describe('pollErasureReceipt', () => {
  it('reads until the receipt is completed, telling each change once', async () => {
    const r = reads(receipt('pending', ['fusion', 'updater']), receipt('pending', ['fusion', 'updater']), receipt('pending', ['fusion']), receipt('completed'));
    const seen: string[][] = [];
    const done = await pollErasureReceipt(r.read, { timeoutMs: 5_000, pollMs: 1, callDeadlineMs: 2_000, onProgress: (x) => seen.push(pendingServices(x)) });
    expect(done.status).toBe('completed');
    expect(r.count).toBe(4);
    expect(seen).toEqual([['fusion', 'updater'], ['fusion'], []]);
    // Each read gets the client's call deadline while the wait has longer to go.
    for (const d of r.deadlines) expect(d).toBeGreaterThan(1_500);
  });

  it('gives up after the timeout with a DeadlineExceededError naming the services still pending', async () => {
    const r = reads(receipt('failed', ['fusion', 'updater']));
    const started = Date.now();
    const err = await pollErasureReceipt(r.read, { timeoutMs: 60, pollMs: 20, callDeadlineMs: 5_000 }).catch((e: unknown) => e);
    expect(Date.now() - started).toBeGreaterThanOrEqual(60);
    expect(err).toBeInstanceOf(ErasureTimeoutError);
    expect(err).toBeInstanceOf(DeadlineExceededError);
    const timeout = err as ErasureTimeoutError;
    expect(timeout.code).toBe('DEADLINE_EXCEEDED');
    expect(timeout.pendingServices).toEqual(['fusion', 'updater']);
    expect(timeout.erasureId).toBe('e-1');
    expect(timeout.receipt.status).toBe('failed');
    expect(timeout.message).toMatch(/^DEADLINE_EXCEEDED: erasure e-1 is not complete after 0\.\d s, waiting for fusion \(pending\), updater \(failed: disk full\); /);
    // The reads near the end still get a second, so a last look can see a completion.
    expect(r.count).toBeGreaterThanOrEqual(3);
    expect(Math.min(...r.deadlines)).toBeGreaterThan(900);
  });

  it('sees a completion in the last read', async () => {
    const r = reads(receipt('pending', ['fusion']), receipt('completed'));
    await expect(pollErasureReceipt(r.read, { timeoutMs: 10, pollMs: 50, callDeadlineMs: 5_000 })).resolves.toMatchObject({ status: 'completed' });
  });

  it('throws a failed read as it is, and a read that ran into the end of the wait as the timeout', async () => {
    const notFound = new NotFoundError('NOT_FOUND: no erasure e-1', { grpcCode: 5, details: 'no erasure e-1' });
    await expect(pollErasureReceipt(reads(notFound).read, { timeoutMs: 1_000, pollMs: 1, callDeadlineMs: 100 })).rejects.toBe(notFound);

    const late = new DeadlineExceededError('DEADLINE_EXCEEDED: deadline', { grpcCode: 4, details: 'deadline' });
    const slow = reads(receipt('pending', ['fusion']), late);
    const err = await pollErasureReceipt(async (call) => {
      if (slow.count > 0) await new Promise((resolve) => setTimeout(resolve, 40));
      return slow.read(call);
    }, { timeoutMs: 20, pollMs: 1, callDeadlineMs: 100 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ErasureTimeoutError);
    expect((err as ErasureTimeoutError).pendingServices).toEqual(['fusion']);
  });

  it('stops waiting when aborted', async () => {
    const controller = new AbortController();
    const r = reads(receipt('pending', ['fusion']));
    setTimeout(() => controller.abort(), 30);
    const err = await pollErasureReceipt(r.read, { timeoutMs: 10_000, pollMs: 1_000, callDeadlineMs: 100, signal: controller.signal }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CancelledError);
    expect(r.count).toBe(1);
  });
});
