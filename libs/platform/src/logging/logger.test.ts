import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { Pseudonymizer } from '../pseudonym/pseudonymizer.js';
import { createLogger } from './logger.js';
import { isSensitiveKey, redactSensitive } from './redact.js';

const RAW_ID = 'alice-7f3c@example.com';
const pseudonymizer = new Pseudonymizer({ rootSecret: 'x'.repeat(48) });

function capture() {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  return {
    destination,
    raw: () => chunks.join(''),
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter((l) => l.length > 0)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

describe('createLogger', () => {
  it('writes JSON lines with service, level label and ISO time', () => {
    const out = capture();
    createLogger({ service: 'fusion', destination: out.destination }).info({ rpc: 'Predict' }, 'served');
    const [line] = out.lines();
    expect(line).toMatchObject({ service: 'fusion', level: 'info', rpc: 'Predict', msg: 'served' });
    expect(String(line!['time'])).toMatch(/^\d{4}-\d\d-\d\dT/);
  });

  it('never writes a raw user id, wherever it is in the logged object', () => {
    const out = capture();
    const logger = createLogger({ service: 'fusion', level: 'trace', destination: out.destination });
    logger.info({ userId: RAW_ID }, 'top level');
    logger.info({ request: { user_id: RAW_ID, nested: [{ user: RAW_ID }, { deeper: { email: RAW_ID } }] } }, 'nested');
    logger.warn({ event: { payload: { text: `hello from ${RAW_ID}` }, input: RAW_ID } }, 'content');
    logger.debug({ headers: { authorization: `Bearer ${RAW_ID}`, 'x-api-key': RAW_ID } }, 'secrets');
    const err = Object.assign(new Error('lookup failed'), { userId: RAW_ID, details: { email: RAW_ID } });
    logger.error({ err }, 'error with fields');
    logger.error(err);
    logger.child({ userId: RAW_ID, scope: { email: RAW_ID } }).info('child bindings');
    logger.child({ a: 1 }).child({ b: { user: RAW_ID } }).info({ c: { userId: RAW_ID } }, 'grandchild');
    expect(out.lines()).toHaveLength(8);
    expect(out.raw()).not.toContain(RAW_ID);
    expect(out.raw()).not.toContain('alice');
    expect(out.lines()[0]).toMatchObject({ userId: '[redacted]' });
    expect(out.lines()[5]).toMatchObject({ err: { message: 'lookup failed', userId: '[redacted]' } });
  });

  it('logs a pseudonym for identifiers when it has a pseudonymizer and knows the tenant', () => {
    const out = capture();
    const logger = createLogger({ service: 'updater', destination: out.destination, pseudonymizer });
    const expected = `psn:${pseudonymizer.pseudonymize('acme', RAW_ID)}`;
    logger.info({ tenant: 'acme', userId: RAW_ID }, 'same object');
    logger.child({ tenant: 'acme' }).info({ deep: { user_id: RAW_ID } }, 'tenant from bindings');
    logger.child({ tenant: 'acme' }).child({ userId: RAW_ID }).info('tenant from parent bindings');
    logger.info({ batch: [{ tenant: 'acme', userId: RAW_ID }] }, 'tenant in an array element');
    logger.info({ userId: RAW_ID }, 'no tenant known');
    const lines = out.lines();
    expect(out.raw()).not.toContain(RAW_ID);
    expect(lines[0]!['userId']).toBe(expected);
    expect((lines[1]!['deep'] as Record<string, unknown>)['user_id']).toBe(expected);
    expect(lines[2]!['userId']).toBe(expected);
    expect((lines[3]!['batch'] as Array<Record<string, unknown>>)[0]!['userId']).toBe(expected);
    expect(lines[4]!['userId']).toBe('[redacted]');
  });

  it('keeps content and secrets redacted even with a pseudonymizer', () => {
    const out = capture();
    const logger = createLogger({ service: 's', destination: out.destination, pseudonymizer });
    logger.info({ tenant: 'acme', text: 'my words', tenantSecret: 'abc' }, 'x');
    expect(out.lines()[0]).toMatchObject({ text: '[redacted]', tenantSecret: '[redacted]' });
  });

  it('respects the level', () => {
    const out = capture();
    const logger = createLogger({ service: 's', level: 'warn', destination: out.destination });
    logger.info('hidden');
    logger.warn('shown');
    expect(out.lines().map((l) => l['msg'])).toEqual(['shown']);
  });
});

describe('redactSensitive', () => {
  it('handles cycles, buffers and leaves plain fields alone', () => {
    const a: Record<string, unknown> = { name: 'model-a', version: 3 };
    a['self'] = a;
    const out = redactSensitive({ a, bytes: Buffer.from('secret bytes'), list: [a, a] }) as Record<string, unknown>;
    expect(out['bytes']).toBe('[12 bytes]');
    expect((out['a'] as Record<string, unknown>)['self']).toBe('[circular]');
    expect((out['a'] as Record<string, unknown>)['version']).toBe(3);
    expect((out['list'] as unknown[])[1]).toMatchObject({ name: 'model-a' });
  });

  it('matches keys case- and separator-insensitively, and secret suffixes', () => {
    const out = redactSensitive({ USER_ID: 'u', 'user-id': 'u', refreshToken: 't', maxTokens: 5, tokenizer: 'bpe' });
    expect(out).toEqual({ USER_ID: '[redacted]', 'user-id': '[redacted]', refreshToken: '[redacted]', maxTokens: 5, tokenizer: 'bpe' });
  });

  it('treats a map of secrets as secret (tenantSecrets), not every plural (maxTokens)', () => {
    expect(redactSensitive({ tenantSecrets: { acme: 'k' }, adminPasswords: ['p'], maxTokens: 5 })).toEqual({ tenantSecrets: '[redacted]', adminPasswords: '[redacted]', maxTokens: 5 });
    expect(isSensitiveKey('tenantSecrets')).toBe(true);
    expect(isSensitiveKey('maxTokens')).toBe(false);
  });
});
