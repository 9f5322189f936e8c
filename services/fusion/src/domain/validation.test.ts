import { InvalidArgumentError } from '@aimass/platform';
import type { v1 } from '@aimass/proto';
import { describe, expect, it } from 'vitest';
import { inputBytes, isSupportedRawType, validateInput, validateKey, validateLabel, validateUserId } from './validation.js';

const limits = { maxInputBytes: 64, maxUserIdBytes: 16, maxKeyBytes: 8 };

function rejection(fn: () => unknown): InvalidArgumentError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidArgumentError);
    return err as InvalidArgumentError;
  }
  throw new Error('expected a rejection');
}

const text = (value: string): v1.InputPayload => ({ kind: { $case: 'text', value } });
const mail = (subject: string, body: string, headers: Record<string, string> = {}): v1.InputPayload => ({ kind: { $case: 'mail', value: { subject, body, headers } } });
const raw = (data: string, contentType: string): v1.InputPayload => ({ kind: { $case: 'raw', value: { data: Buffer.from(data), contentType } } });

describe('input validation', () => {
  it('accepts text, mail and raw mail or text within the limit', () => {
    for (const input of [text('hello'), mail('hi', ''), mail('', 'body'), raw('Subject: x\n\nbody', 'message/rfc822'), raw('plain', 'text/plain; charset=utf-8'), raw('plain', '')]) {
      expect(validateInput(input, '', limits)).toBe(input);
    }
  });

  it('rejects an empty input, naming the field and what to send', () => {
    expect(rejection(() => validateInput(undefined, '', limits))).toMatchObject({ field: 'input', message: 'input is empty: set text, mail or raw' });
    expect(rejection(() => validateInput({ kind: undefined }, 'items[2]', limits))).toMatchObject({ field: 'items[2].input' });
    expect(rejection(() => validateInput(text('  \n'), '', limits))).toMatchObject({ field: 'input.text', message: expect.stringMatching(/is empty/) });
    expect(rejection(() => validateInput(mail(' ', ''), '', limits)).message).toMatch(/neither subject nor body/);
    expect(rejection(() => validateInput(raw('', 'message/rfc822'), '', limits)).field).toBe('input.raw.data');
  });

  it('rejects kinds the general model cannot read', () => {
    expect(rejection(() => validateInput({ kind: { $case: 'features', value: { values: {} } } }, '', limits)).message).toMatch(/typed features are not supported.*send text, mail or raw/);
    const png = rejection(() => validateInput(raw('x', 'image/png'), '', limits));
    expect(png).toMatchObject({ field: 'input.raw.content_type', message: expect.stringMatching(/'image\/png' is not supported: use message\/rfc822 or text\/\*/) });
    expect(isSupportedRawType('Message/RFC822')).toBe(true);
    expect(isSupportedRawType('application/json')).toBe(false);
  });

  it('rejects an oversized input with its size and the limit', () => {
    const err = rejection(() => validateInput(text('x'.repeat(65)), 'items[0]', limits));
    expect(err.field).toBe('items[0].input.text');
    expect(err.message).toMatch(/is 65 bytes, more than the limit of 64/);
    // Multi-byte characters count in bytes, mail counts subject, body and headers.
    expect(inputBytes(text('é'))).toBe(2);
    expect(inputBytes(mail('ab', 'cd', { from: 'x' }))).toBe(9);
    expect(() => validateInput(mail('s', 'b', { 'list-id': 'y'.repeat(60) }), '', limits)).toThrow(/more than the limit/);
  });

  it('checks user ids and keys', () => {
    expect(validateUserId('alice', '', limits)).toBe('alice');
    expect(rejection(() => validateUserId('', 'items[1]', limits))).toMatchObject({ field: 'items[1].user_id', message: expect.stringMatching(/is required/) });
    expect(rejection(() => validateUserId('u'.repeat(17), '', limits)).message).toMatch(/17 bytes, more than the limit of 16/);
    // The id itself is never echoed back: it may identify a person.
    expect(rejection(() => validateUserId('secret-person-id', '', { ...limits, maxUserIdBytes: 4 })).message).not.toMatch(/secret/);
    expect(validateKey('', 'idempotency_key', limits)).toBe('');
    expect(rejection(() => validateKey('123456789', 'idempotency_key', limits)).field).toBe('idempotency_key');
  });

  it("accepts only the general model's labels and lists them otherwise", () => {
    expect(validateLabel('spam', ['ham', 'spam'])).toBe(1);
    expect(rejection(() => validateLabel('junk', ['ham', 'spam']))).toMatchObject({
      field: 'label',
      message: "label 'junk' is not one of the general model's labels: ham, spam",
    });
    expect(rejection(() => validateLabel('', ['ham', 'spam'])).message).toMatch(/required: one of ham, spam/);
  });
});
