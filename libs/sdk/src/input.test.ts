import { describe, expect, it } from 'vitest';
import { toInputPayload } from './input.js';

describe('toInputPayload', () => {
  it('turns a string into text', () => {
    expect(toInputPayload('hello')).toEqual({ kind: { $case: 'text', value: 'hello' } });
  });

  it('turns a mail into subject, body and lower-cased headers, joining two spellings of one name', () => {
    expect(toInputPayload({ subject: 's', body: 'b', headers: { From: 'a@x.org', 'X-Tag': 'one', 'x-tag': 'two' } })).toEqual({
      kind: { $case: 'mail', value: { subject: 's', body: 'b', headers: { from: 'a@x.org', 'x-tag': 'one two' } } },
    });
    expect(toInputPayload({ subject: '', body: 'only body' })).toEqual({ kind: { $case: 'mail', value: { subject: '', body: 'only body', headers: {} } } });
  });

  it('passes a protocol InputPayload through unchanged', () => {
    const raw = { kind: { $case: 'raw' as const, value: { data: Buffer.from('Subject: x\n\nbody'), contentType: 'message/rfc822' } } };
    expect(toInputPayload(raw)).toBe(raw);
  });

  it('rejects shapes that are none of these with a TypeError naming what is expected', () => {
    expect(() => toInputPayload(42 as unknown as string)).toThrow(/must be a string, a \{ subject, body, headers \} mail or an InputPayload, got number/);
    expect(() => toInputPayload({ subject: 'x' } as unknown as { subject: string; body: string })).toThrow(/string `subject` and `body`/);
    expect(() => toInputPayload({ subject: 'x', body: 'y', headers: { from: 3 as unknown as string } })).toThrow(/header "from" must be a string/);
  });
});
