import { describe, expect, it } from 'vitest';
import { ErasureTimeoutError, toAiMassError, type ConsentRecord, type ErasureReceipt } from '@aimass/sdk';
import { EXIT_FAILURE, EXIT_UNAVAILABLE } from './exit-codes.js';
import { errorLine, exitCodeOf, OutputFileError } from './format.js';
import { formatConsentDecisions, formatConsentHistory, formatConsentResults, formatErasureProgress, formatEraseResult, formatReceipt, privacyJson } from './privacy-format.js';

const record = (sequence: number, more: Partial<ConsentRecord> = {}): ConsentRecord => ({
  sequence,
  purpose: 'training',
  state: 'granted',
  policyVersion: 'v2',
  source: 'web-settings',
  recordedAt: new Date(`2025-01-02T03:04:0${sequence}.000Z`),
  prevHash: sequence === 1 ? '' : `${sequence - 1}`.repeat(64),
  hash: `${sequence}`.repeat(64),
  verified: true,
  ...more,
});

describe('consent output', () => {
  it('shows what each recorded decision did', () => {
    const text = formatConsentResults([
      { record: record(3, { purpose: 'personalization' }), changed: true, duplicate: false, idempotencyKey: 'k1' },
      { record: record(4, { source: '' }), changed: false, duplicate: false, idempotencyKey: 'k2' },
      { record: record(2), changed: false, duplicate: true, idempotencyKey: 'k3' },
    ]);
    expect(text).toBe(
      [
        'purpose          state    record  policy  source        recorded                  outcome',
        'personalization  granted  3       v2      web-settings  2025-01-02T03:04:03.000Z  changed',
        'training         granted  4       v2      -             2025-01-02T03:04:04.000Z  state unchanged',
        'training         granted  2       v2      web-settings  2025-01-02T03:04:02.000Z  already recorded (same idempotency key)',
      ].join('\n'),
    );
  });

  it("shows the current decisions, the tenant's default marked", () => {
    const text = formatConsentDecisions([
      { purpose: 'personalization', state: 'withdrawn', isDefault: false, record: record(5, { purpose: 'personalization', state: 'withdrawn', source: 'support-ticket:4711' }) },
      { purpose: 'training', state: 'denied', isDefault: true, record: undefined },
    ]);
    expect(text).toBe(
      [
        'purpose          state             since                     policy  source               record',
        'personalization  withdrawn         2025-01-02T03:04:05.000Z  v2      support-ticket:4711  5',
        'training         denied (default)  -                         -       -                    -',
        '',
        "(default): never decided, the tenant's default applies",
      ].join('\n'),
    );
    expect(formatConsentDecisions([{ purpose: 'training', state: 'granted', isDefault: false, record: record(1) }])).not.toContain('default');
  });

  it('shows the history with its verification', () => {
    const text = formatConsentHistory({ records: [record(1), record(2, { state: 'withdrawn' })], chainVerified: true });
    expect(text).toBe(
      [
        'seq  purpose   state      recorded                  policy  source        hash           verified',
        '1    training  granted    2025-01-02T03:04:01.000Z  v2      web-settings  111111111111…  yes',
        '2    training  withdrawn  2025-01-02T03:04:02.000Z  v2      web-settings  222222222222…  yes',
        '',
        'chain verified: yes (2 records)',
      ].join('\n'),
    );
    expect(formatConsentHistory({ records: [record(1, { verified: false })], chainVerified: false })).toMatch(/ {2}NO\n\nchain verified: NO: do not rely on this history \(1 record\)$/);
    expect(formatConsentHistory({ records: [], chainVerified: true })).toBe('no consent recorded (chain verified: yes, empty)');
  });
});

const RECEIPT: ErasureReceipt = {
  erasureId: '0190a5b8-7a2b-7c3d-8e4f-0123456789ab',
  userPseudonym: 'PSEUDO42',
  status: 'failed',
  requestedAt: new Date('2025-01-02T00:00:00.000Z'),
  keyDestroyedAt: new Date('2025-01-02T00:00:00.005Z'),
  completedAt: undefined,
  confirmations: [
    { service: 'privacy', status: 'completed', confirmedAt: new Date('2025-01-02T00:00:00.010Z'), itemsDeleted: 4, detail: '' },
    { service: 'personal-model', status: 'completed', confirmedAt: new Date('2025-01-02T00:00:01.000Z'), itemsDeleted: 1, detail: '' },
    { service: 'updater', status: 'failed', confirmedAt: new Date('2025-01-02T00:00:02.000Z'), itemsDeleted: 0, detail: 'store unreachable' },
    { service: 'fusion', status: 'pending', confirmedAt: undefined, itemsDeleted: 0, detail: '' },
  ],
};

describe('erasure output', () => {
  it('prints the erasure id and how to follow it', () => {
    const id = RECEIPT.erasureId;
    expect(formatEraseResult({ erasureId: id, status: 'pending', duplicate: false, idempotencyKey: 'k' })).toBe(`erasure     ${id}\nstatus      pending\nfollow      aimass receipt ${id}`);
    expect(formatEraseResult({ erasureId: id, status: 'completed', duplicate: true, idempotencyKey: 'k' })).toContain('status      completed (the user already had this erasure)');
  });

  it('prints a receipt with one line per service', () => {
    expect(formatReceipt(RECEIPT)).toBe(
      [
        'erasure     0190a5b8-7a2b-7c3d-8e4f-0123456789ab',
        'user        pseudonym PSEUDO42',
        'status      failed: waiting for updater, fusion',
        'requested   2025-01-02T00:00:00.000Z',
        'key         destroyed 2025-01-02T00:00:00.005Z',
        'completed   -',
        'services',
        '  privacy         completed  2025-01-02T00:00:00.010Z  4 items deleted',
        '  personal-model  completed  2025-01-02T00:00:01.000Z  1 item deleted',
        '  updater         failed     2025-01-02T00:00:02.000Z  0 items deleted  (store unreachable)',
        '  fusion          pending    -',
      ].join('\n'),
    );
    const done = formatReceipt({ ...RECEIPT, status: 'completed', keyDestroyedAt: undefined, completedAt: new Date('2025-01-02T00:00:03.000Z'), confirmations: [] });
    expect(done).toContain('status      completed\n');
    expect(done).toContain('key         not destroyed\n');
    expect(done).toContain('completed   2025-01-02T00:00:03.000Z\nservices    none');
  });

  it('prints a progress line and JSON with ISO times', () => {
    expect(formatErasureProgress(RECEIPT)).toBe('erasure 0190a5b8-7a2b-7c3d-8e4f-0123456789ab failed: privacy completed · personal-model completed · updater failed · fusion pending');
    const json = JSON.parse(privacyJson(RECEIPT)) as { requestedAt: string; confirmations: { confirmedAt?: string }[] };
    expect(json.requestedAt).toBe('2025-01-02T00:00:00.000Z');
    expect(json.confirmations[3]!.confirmedAt).toBeUndefined();
  });

  it('exits 1 when a wait times out, naming what is pending; 69 with a hint when privacy cannot be reached', () => {
    const timeout = new ErasureTimeoutError(RECEIPT, 2_000);
    expect(exitCodeOf(timeout)).toBe(EXIT_FAILURE);
    expect(errorLine('erase', timeout, '127.0.0.1:50055', 'privacy')).toMatch(
      /^aimass erase: DEADLINE_EXCEEDED: erasure 0190a5b8-7a2b-7c3d-8e4f-0123456789ab is not complete after 2\.0 s, waiting for updater \(failed: store unreachable\), fusion \(pending\); /,
    );
    const down = toAiMassError({ code: 14, details: 'No connection established' });
    expect(exitCodeOf(down)).toBe(EXIT_UNAVAILABLE);
    expect(errorLine('consent show', down, '127.0.0.1:50055', 'privacy')).toBe(
      'aimass consent show: UNAVAILABLE: No connection established — is the privacy service running at 127.0.0.1:50055? In the one-process mode `aimass dev` starts it; else pass --address or set AIMASS_PRIVACY_ADDRESS',
    );
    const other = toAiMassError({ code: 12, details: 'unknown service aimass.v1.PrivacyService' });
    expect(exitCodeOf(other)).toBe(EXIT_UNAVAILABLE);
    expect(errorLine('export', other, 'h:1', 'privacy')).toContain('— h:1 does not serve this call of the privacy API (aimass.v1.PrivacyService)');
    const file = new OutputFileError('cannot write the export to /nope/u.json: ENOENT');
    expect(exitCodeOf(file)).toBe(EXIT_FAILURE);
    expect(errorLine('export', file)).toBe('aimass export: cannot write the export to /nope/u.json: ENOENT');
  });
});
