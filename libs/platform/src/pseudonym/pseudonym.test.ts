import { createHmac } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { base32Lower } from './base32.js';
import { PSEUDONYM_LENGTH, PSEUDONYM_PATTERN, pseudonymize } from './pseudonymize.js';
import { Pseudonymizer } from './pseudonymizer.js';

const ROOT = 'r'.repeat(16) + 'o'.repeat(16) + 'ot-secret';
const NATS_TOKEN = /^[^.*>\s]+$/;

describe('base32Lower', () => {
  it('matches the RFC 4648 test vectors (lowercase, unpadded)', () => {
    const vectors: Array<[string, string]> = [
      ['', ''],
      ['f', 'my'],
      ['fo', 'mzxq'],
      ['foo', 'mzxw6'],
      ['foob', 'mzxw6yq'],
      ['fooba', 'mzxw6ytb'],
      ['foobar', 'mzxw6ytboi'],
    ];
    for (const [input, expected] of vectors) expect(base32Lower(Buffer.from(input))).toBe(expected);
  });
});

describe('pseudonymize', () => {
  it('is deterministic for the same secret, tenant and user', () => {
    expect(pseudonymize('s3cret', 'acme', 'alice')).toBe(pseudonymize('s3cret', 'acme', 'alice'));
  });

  it('differs across users, tenants and secrets', () => {
    const base = pseudonymize('s3cret', 'acme', 'alice');
    expect(pseudonymize('s3cret', 'acme', 'bob')).not.toBe(base);
    expect(pseudonymize('s3cret', 'globex', 'alice')).not.toBe(base);
    expect(pseudonymize('other-secret', 'acme', 'alice')).not.toBe(base);
  });

  it('keeps the tenant/user boundary (no ambiguity from concatenation)', () => {
    expect(pseudonymize('k', 'ab', 'c')).not.toBe(pseudonymize('k', 'a', 'bc'));
  });

  it('is a 32-character lowercase base32 string that is a valid NATS subject token', () => {
    for (const user of ['alice', 'bob.smith@example.com', 'a b*c>d', 'ユーザー', 'x'.repeat(1000)]) {
      const p = pseudonymize('s3cret', 'acme', user);
      expect(p).toHaveLength(PSEUDONYM_LENGTH);
      expect(p).toMatch(PSEUDONYM_PATTERN);
      expect(p).toMatch(NATS_TOKEN);
    }
  });

  it('does not contain the user id, and is the truncated HMAC (not a reversible encoding)', () => {
    const user = 'alice';
    const p = pseudonymize('s3cret', 'acme', user);
    expect(p).not.toContain(user);
    expect(p).not.toContain(base32Lower(Buffer.from(user)));
    // Independent recomputation of the documented construction.
    const prefix = (s: string) => {
      const b = Buffer.from(s);
      const l = Buffer.alloc(4);
      l.writeUInt32BE(b.length);
      return Buffer.concat([l, b]);
    };
    const mac = createHmac('sha256', 's3cret')
      .update('aimass/pseudonym/v1')
      .update(prefix('acme'))
      .update(prefix(user))
      .digest();
    expect(p).toBe(base32Lower(mac.subarray(0, 20)));
  });

  it('refuses empty inputs', () => {
    expect(() => pseudonymize('s', '', 'u')).toThrow(/tenant/);
    expect(() => pseudonymize('s', 't', '')).toThrow(/userId/);
    expect(() => pseudonymize('', 't', 'u')).toThrow(/secret/);
  });
});

describe('Pseudonymizer', () => {
  it('derives a distinct, stable key per tenant from one root secret', () => {
    const a = new Pseudonymizer({ rootSecret: ROOT });
    const b = new Pseudonymizer({ rootSecret: ROOT });
    expect(a.secretFor('acme').equals(b.secretFor('acme'))).toBe(true);
    expect(a.secretFor('acme').equals(a.secretFor('globex'))).toBe(false);
    expect(a.secretFor('acme').length).toBe(32);
    expect(a.pseudonymize('acme', 'alice')).toBe(b.pseudonymize('acme', 'alice'));
    expect(a.pseudonymize('acme', 'alice')).not.toBe(a.pseudonymize('globex', 'alice'));
  });

  it('gives different pseudonyms for a different root secret', () => {
    const a = new Pseudonymizer({ rootSecret: ROOT });
    const b = new Pseudonymizer({ rootSecret: ROOT + '2' });
    expect(a.pseudonymize('acme', 'alice')).not.toBe(b.pseudonymize('acme', 'alice'));
  });

  it('uses a per-tenant override instead of the derived key', () => {
    const override = 'o'.repeat(40);
    const p = new Pseudonymizer({ rootSecret: ROOT, tenantSecrets: { acme: override } });
    expect(p.pseudonymize('acme', 'alice')).toBe(pseudonymize(override, 'acme', 'alice'));
    expect(p.pseudonymize('globex', 'alice')).toBe(
      pseudonymize(new Pseudonymizer({ rootSecret: ROOT }).secretFor('globex'), 'globex', 'alice'),
    );
  });

  it('refuses a short root secret', () => {
    expect(() => new Pseudonymizer({ rootSecret: 'short' })).toThrow(/too short/);
  });

  it('reads the secret from a file, without its trailing newline', () => {
    const dir = mkdtempSync(join(tmpdir(), 'aimass-psn-'));
    const file = join(dir, 'secret');
    writeFileSync(file, ROOT + '\n');
    const fromFile = Pseudonymizer.fromConfig({ secretFile: file });
    expect(fromFile.pseudonymize('acme', 'alice')).toBe(new Pseudonymizer({ rootSecret: ROOT }).pseudonymize('acme', 'alice'));
  });
});
