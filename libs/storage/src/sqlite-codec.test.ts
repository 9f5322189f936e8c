import { describe, expect, it } from 'vitest';
import { decodeBody, encodeBody, sqliteEncoders } from './sqlite-codec.js';
import { normalizeData } from './values.js';

describe('SQLite body codec', () => {
  it('puts binaries raw, back to back, in one blob and references them from the JSON', () => {
    const a = new Uint8Array([1, 2, 3]);
    const b = new Uint8Array([9]);
    const body = normalizeData({ a, list: [b, new Date(Date.UTC(2020, 0, 1))], s: 'x' }, sqliteEncoders);
    const enc = encodeBody(body);
    expect(JSON.parse(enc.json)).toEqual({ a: { $bin: [0, 3] }, list: [{ $bin: [3, 1] }, { $date: '2020-01-01T00:00:00.000Z' }], s: 'x' });
    expect([...(enc.bins ?? [])]).toEqual([1, 2, 3, 9]);
    expect(enc.bytes).toBe(Buffer.byteLength(enc.json) + 4);
  });

  it('round-trips, returning plain Uint8Array copies', () => {
    const a = new Uint8Array([1, 2, 3]);
    const enc = encodeBody(normalizeData({ a, d: new Date(7), n: null, e: new Uint8Array(0) }, sqliteEncoders));
    const out = decodeBody(enc.json, enc.bins) as { a: Uint8Array; d: Date; n: null; e: Uint8Array };
    expect(out.a.constructor).toBe(Uint8Array);
    expect([...out.a]).toEqual([1, 2, 3]);
    expect(out.d).toEqual(new Date(7));
    expect(out.n).toBeNull();
    expect(out.e.byteLength).toBe(0);
    out.a[0] = 42;
    expect(enc.bins?.[0]).toBe(1);
  });

  it('has no blob when there are no binaries', () => {
    expect(encodeBody(normalizeData({ a: 1 }, sqliteEncoders)).bins).toBeNull();
  });

  it('refuses a reference outside the blob instead of returning wrong bytes', () => {
    expect(() => decodeBody('{"a":{"$bin":[2,5]}}', Buffer.from([1, 2, 3]))).toThrow(/corrupt/);
    expect(() => decodeBody('{"a":{"$bin":[0,1]}}', null)).toThrow(/corrupt/);
  });
});
