import { InvalidArgumentError } from '@aimass/platform';
import { v1 } from '@aimass/proto';
import { describe, expect, it } from 'vitest';
import { ExportCollector, checkExportPseudonym, exportedFeedback, exportedSize, type ExportableEntry } from './export.js';

const psn = 'abcdefghijklmnopqrstuvwxyz234567';
const sealed = { keyId: 'k', algorithm: 'AES-256-GCM', nonce: new Uint8Array(12), ciphertext: new Uint8Array(20) };

function entry(sequence: number, overrides: Partial<ExportableEntry> = {}): ExportableEntry {
  return {
    tenant: 't',
    pseudonym: psn,
    eventId: `e-${sequence}`,
    sequence,
    label: 'spam',
    occurredAt: new Date(1_700_000_000_000 + sequence),
    predictionId: `p-${sequence}`,
    generalModel: { name: 'general', version: '1' },
    input: sealed,
    generalOutput: undefined,
    sparseFeatures: undefined,
    applied: true,
    rejected: undefined,
    ...overrides,
  };
}

const text = (value: string): v1.InputPayload => ({ kind: { $case: 'text', value } });

describe('ExportFeedback', () => {
  it('takes a pseudonym, refusing empty, oversized and malformed ones with the field named', () => {
    expect(checkExportPseudonym(psn)).toBe(psn);
    for (const [value, message] of [
      ['', /user_pseudonym is required/],
      ['a'.repeat(100_000), /100000 characters long; a pseudonym has 32/],
      ['alice@example.com', /not a pseudonym/],
      [psn.toUpperCase(), /not a pseudonym/],
    ] as const) {
      const err = (() => {
        try {
          checkExportPseudonym(value);
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(err).toBeInstanceOf(InvalidArgumentError);
      expect((err as InvalidArgumentError).message).toMatch(message);
      // The value itself is not echoed back (it may be a user id sent by mistake).
      if (value.length > 0) expect((err as InvalidArgumentError).message).not.toContain(value);
    }
  });

  it('exports an entry with what the updater knows of it; an unreadable input is absent', () => {
    expect(exportedFeedback(entry(7, { applied: false, rejected: 'label unknown' }), text('hello'))).toEqual({
      eventId: 'e-7',
      streamSequence: 7,
      occurredAt: new Date(1_700_000_000_007),
      label: 'spam',
      predictionId: 'p-7',
      input: text('hello'),
      generalModel: { name: 'general', version: '1' },
      applied: false,
      rejected: 'label unknown',
    });
    const shredded = exportedFeedback(entry(8, { generalModel: undefined }), undefined);
    expect(shredded).toMatchObject({ input: undefined, generalModel: undefined, rejected: '', applied: true });
  });

  it('answers a prefix of the history within the byte budget, counting the rest as omitted', () => {
    const items = [1, 2, 3, 4].map((i) => exportedFeedback(entry(i), text(i === 3 ? 'x'.repeat(1000) : 'short')));
    const budget = exportedSize(items[0]!) + exportedSize(items[1]!) + 10;
    const collector = new ExportCollector(budget);
    expect(items.map((i) => collector.add(i))).toEqual([true, true, false, false]);
    expect(collector.full).toBe(true);
    const response = collector.response(10);
    expect(response.feedback.map((f) => f.streamSequence)).toEqual([1, 2]);
    expect(response.omitted).toBe(8);
    // The encoded answer stays within the budget.
    expect(v1.ExportFeedbackResponse.encode(response).finish().byteLength).toBeLessThanOrEqual(budget);
  });
});
