import { describe, expect, it } from 'vitest';
import { RecordBodyError, decodeRecordBody, encodeRecordBody, recordAssociatedData, type RecordBody } from './record-body.js';

const body: RecordBody = {
  input: { kind: { $case: 'mail', value: { subject: 'Grüße', body: 'the body', headers: { from: 'a@b.example' } } } },
  logits: [0, -1.2345678901234567],
  probabilities: [0.9, 0.1],
  embedding: [0.5, -0.25, 1.5],
  sparse: { dimension: 1 << 20, indices: [3, 70_000], values: [0.5, 0.25] },
  label: 'ham',
};

describe('the sealed body of a prediction record', () => {
  it('round-trips, doubles exactly, the embedding as float32', () => {
    expect(decodeRecordBody(encodeRecordBody(body))).toEqual(body);
    const rounded = decodeRecordBody(encodeRecordBody({ ...body, embedding: [0.1] }));
    expect(rounded.embedding).toEqual([Math.fround(0.1)]);
  });

  it('tells an absent feature vector from an empty one', () => {
    const { sparse: _, ...without } = body;
    expect(decodeRecordBody(encodeRecordBody(without)).sparse).toBeUndefined();
    const empty = { ...body, sparse: { dimension: 0, indices: [], values: [] } };
    expect(decodeRecordBody(encodeRecordBody(empty)).sparse).toEqual({ dimension: 0, indices: [], values: [] });
  });

  it('holds the input bytes only inside it (what sealing hides)', () => {
    const bytes = Buffer.from(encodeRecordBody({ ...body, input: { kind: { $case: 'text', value: 'MARKER-42' } } }));
    expect(bytes.includes('MARKER-42')).toBe(true);
  });

  it('refuses what it did not write', () => {
    const good = encodeRecordBody(body);
    const cases: [string, Uint8Array, RegExp][] = [
      ['empty', new Uint8Array(0), /0 bytes/],
      ['another format', Uint8Array.from([2, ...good.subarray(1)]), /format 2, this version reads 1/],
      ['unknown flags', Uint8Array.from([1, 4, ...good.subarray(2)]), /unknown flags 4/],
      ['truncated', good.subarray(0, good.byteLength - 1), /runs past the end|truncated/],
      ['trailing bytes', Uint8Array.from([...good, 0]), /1 bytes after the last section/],
    ];
    for (const [what, bytes, message] of cases) {
      expect(() => decodeRecordBody(bytes), what).toThrow(RecordBodyError);
      expect(() => decodeRecordBody(bytes), what).toThrow(message);
    }
  });

  it('binds to the record id, in a namespace of its own', () => {
    expect(recordAssociatedData('0190-abc')).toBe('aimass/fusion/prediction/v1:0190-abc');
    expect(recordAssociatedData('a')).not.toBe(recordAssociatedData('b'));
  });
});
