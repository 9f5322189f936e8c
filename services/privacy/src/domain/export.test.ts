import { InvalidArgumentError } from '@aimass/platform';
import { v1 } from '@aimass/proto';
import { describe, expect, it } from 'vitest';
import type { ConsentRecord } from './chain.js';
import { newTombstone, withConfirmation, withKeyDestroyed } from './erasure.js';
import { erasedExportDocument, exportContent, exportDocument, exportedFeedback, exportedModelVersion, peerDeadline, validateExport } from './export.js';

const at = (s: number) => new Date(Date.UTC(2026, 0, 2, 3, 4, s));
const limits = { maxUserIdBytes: 8, maxPolicyVersionBytes: 8, maxSourceBytes: 8, maxKeyBytes: 8, maxClockSkewMs: 0 };

const record: ConsentRecord = {
  sequence: 1,
  purpose: 'training',
  state: 'granted',
  previousState: 'none',
  policyVersion: 'v3',
  source: 'web-settings',
  decidedAt: at(1),
  recordedAt: at(2),
  prevHash: '',
  hash: 'ab'.repeat(32),
};

const version = (n: number, more: Partial<v1.PersonalModelInfo> = {}): v1.PersonalModelInfo => ({
  userPseudonym: 'p',
  model: { name: 'personal-logreg', version: String(n) },
  version: n,
  generalModel: { name: 'mail-intent', version: '1' },
  exampleCount: n * 2,
  kind: v1.UpdateKind.UPDATE_KIND_TRAIN,
  restoredFromVersion: 0,
  createdAt: at(10 + n),
  current: false,
  lastAppliedSequence: 40 + n,
  ...more,
});

const feedback = (more: Partial<v1.ExportedFeedback> = {}): v1.ExportedFeedback => ({
  eventId: 'e1',
  streamSequence: 7,
  occurredAt: at(5),
  label: 'spam',
  predictionId: 'pr-1',
  input: { kind: { $case: 'mail', value: { subject: 'Offer', body: 'Buy now', headers: { from: 'shop@example.com' } } } },
  generalModel: { name: 'mail-intent', version: '1' },
  applied: true,
  rejected: '',
  ...more,
});

describe('the Export document', () => {
  it('holds consent (decisions and the verified history), every model version and the feedback, in plain JSON', () => {
    const doc = exportDocument('p', at(30), {
      decisions: [
        { purpose: 'personalization', state: 'denied', isDefault: true },
        { purpose: 'training', state: 'granted', isDefault: false, sequence: 1 },
      ],
      history: [record],
      models: [version(2, { current: true }), version(1)],
      feedback: [feedback()],
      feedbackOmitted: 0,
    });
    expect(doc).toEqual({
      user: { pseudonym: 'p' },
      generatedAt: '2026-01-02T03:04:30.000Z',
      consent: {
        decisions: [
          { purpose: 'personalization', state: 'denied', isDefault: true },
          { purpose: 'training', state: 'granted', isDefault: false, recordSequence: 1 },
        ],
        history: {
          verified: true,
          records: [
            {
              sequence: 1,
              purpose: 'training',
              state: 'granted',
              previousState: 'none',
              policyVersion: 'v3',
              source: 'web-settings',
              decidedAt: '2026-01-02T03:04:01.000Z',
              recordedAt: '2026-01-02T03:04:02.000Z',
              prevHash: '',
              hash: 'ab'.repeat(32),
            },
          ],
        },
      },
      models: [
        {
          version: 2,
          current: true,
          model: { name: 'personal-logreg', version: '2' },
          generalModel: { name: 'mail-intent', version: '1' },
          exampleCount: 4,
          kind: 'train',
          createdAt: '2026-01-02T03:04:12.000Z',
          lastAppliedSequence: 42,
        },
        {
          version: 1,
          current: false,
          model: { name: 'personal-logreg', version: '1' },
          generalModel: { name: 'mail-intent', version: '1' },
          exampleCount: 2,
          kind: 'train',
          createdAt: '2026-01-02T03:04:11.000Z',
          lastAppliedSequence: 41,
        },
      ],
      feedback: [
        {
          eventId: 'e1',
          streamSequence: 7,
          occurredAt: '2026-01-02T03:04:05.000Z',
          label: 'spam',
          predictionId: 'pr-1',
          input: { mail: { subject: 'Offer', body: 'Buy now', headers: { from: 'shop@example.com' } } },
          generalModel: { name: 'mail-intent', version: '1' },
          applied: true,
          rejected: '',
        },
      ],
      feedbackOmitted: 0,
    });
    expect(doc.erasure).toBeUndefined();
  });

  it('names rollbacks with the version they restored, and unreadable feedback input as null', () => {
    expect(exportedModelVersion(version(3, { kind: v1.UpdateKind.UPDATE_KIND_ROLLBACK, restoredFromVersion: 1 }))).toMatchObject({ kind: 'rollback', restoredFromVersion: 1 });
    expect(exportedModelVersion(version(4, { kind: v1.UpdateKind.UPDATE_KIND_REFIT }))).not.toHaveProperty('restoredFromVersion');
    expect(exportedModelVersion(version(4, { kind: v1.UpdateKind.UPDATE_KIND_REFIT })).kind).toBe('refit');
    expect(exportedModelVersion(version(5, { createdAt: undefined, generalModel: undefined }))).toMatchObject({ createdAt: null, generalModel: null });
    expect(exportedFeedback(feedback({ input: undefined }))).toMatchObject({ input: null });
    expect(exportedFeedback(feedback({ input: { kind: { $case: 'raw', value: { data: Buffer.from([1, 2, 3]), contentType: 'application/octet-stream' } } } })).input).toEqual({
      raw: { data: 'AQID', contentType: 'application/octet-stream' },
    });
  });

  it('holds only the erasure record for an erased user', () => {
    let t = newTombstone({ tenant: 't1', pseudonym: 'p', erasureId: 'e-1', reason: 'gdpr-art17', services: ['updater'], now: at(0) });
    t = withKeyDestroyed(t, at(1))!;
    t = withConfirmation(t, { service: 'privacy', status: 'completed', confirmedAt: at(2), itemsDeleted: 4, detail: '' })!;
    t = withConfirmation(t, { service: 'updater', status: 'failed', confirmedAt: at(3), itemsDeleted: 0, detail: 'store down' })!;
    expect(erasedExportDocument('p', at(9), t)).toEqual({
      user: { pseudonym: 'p' },
      generatedAt: '2026-01-02T03:04:09.000Z',
      erasure: {
        erasureId: 'e-1',
        status: 'failed',
        reason: 'gdpr-art17',
        requestedAt: '2026-01-02T03:04:00.000Z',
        keyDestroyedAt: '2026-01-02T03:04:01.000Z',
        completedAt: null,
        services: [
          { service: 'privacy', status: 'completed', confirmedAt: '2026-01-02T03:04:02.000Z', itemsDeleted: 4, detail: '' },
          { service: 'updater', status: 'failed', confirmedAt: '2026-01-02T03:04:03.000Z', itemsDeleted: 0, detail: 'store down' },
        ],
      },
    });
  });

  it('answers the same document as UTF-8 JSON or as a Struct', () => {
    const doc = exportDocument('p', at(30), { decisions: [], history: [record], models: [version(1)], feedback: [feedback({ label: 'späm ✓' })], feedbackOmitted: 2 });
    const json = exportContent(doc, 'json');
    const structured = exportContent(doc, 'structured');
    if (json.$case !== 'json' || structured.$case !== 'document') throw new Error('wrong content case');
    expect(json.value.toString('utf8')).toContain('späm ✓');
    expect(JSON.parse(json.value.toString('utf8'))).toEqual(structured.value);
    expect(structured.value).toEqual(JSON.parse(JSON.stringify(doc)));
    // The Struct survives the wire.
    const wire = v1.ExportResponse.decode(v1.ExportResponse.encode({ content: structured, generatedAt: at(30) }).finish());
    expect(wire.content).toEqual(structured);
  });

  it('takes user_id and the format, JSON when unspecified, naming the field otherwise', () => {
    expect(validateExport({ userId: 'alice', format: v1.ExportFormat.EXPORT_FORMAT_UNSPECIFIED }, limits)).toEqual({ userId: 'alice', format: 'json' });
    expect(validateExport({ userId: 'alice', format: v1.ExportFormat.EXPORT_FORMAT_STRUCTURED }, limits)).toEqual({ userId: 'alice', format: 'structured' });
    for (const [req, field] of [
      [{ userId: '', format: v1.ExportFormat.EXPORT_FORMAT_JSON }, 'user_id'],
      [{ userId: 'x'.repeat(9), format: v1.ExportFormat.EXPORT_FORMAT_JSON }, 'user_id'],
      [{ userId: 'alice', format: 5 as v1.ExportFormat }, 'format'],
    ] as const) {
      let err: unknown;
      try {
        validateExport(req, limits);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(InvalidArgumentError);
      expect((err as InvalidArgumentError).field).toBe(field);
    }
  });

  it('asks the other services until the caller’s deadline less a reserve for the answer', () => {
    expect(peerDeadline(10_000, 0)).toBe(9_750);
    expect(peerDeadline(1_000, 0)).toBe(800);
    expect(peerDeadline(100, 100)).toBe(100);
    expect(peerDeadline(50, 100)).toBe(50);
    expect(peerDeadline(undefined, 0)).toBe(9_750);
  });
});
