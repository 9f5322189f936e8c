import { UnauthenticatedError } from '@aimass/platform';
import { describe, expect, it } from 'vitest';
import { ServiceTokenIssuer, issueServiceToken, verifyServiceToken } from './service-token.js';

const secret = Buffer.from('an internal secret of at least thirty-two bytes');
const other = Buffer.from('another internal secret, also 32 bytes or more');
const MAX_AGE = 300_000;

describe('service tokens', () => {
  it('issues ams_<service>.<iat>.<mac> tokens that verify with the same secret', () => {
    const now = 1_700_000_000_000;
    const token = issueServiceToken(secret, 'fusion', now);
    expect(token).toMatch(/^ams_fusion\.1700000000\.[A-Za-z0-9_-]{43}$/);
    expect(verifyServiceToken(secret, token, MAX_AGE, now + 1_000)).toEqual({ service: 'fusion', issuedAtMs: 1_700_000_000_000 });
  });

  it('refuses a token of another secret, a forged service name, an old token and one from the future', () => {
    const now = 1_700_000_000_000;
    const token = issueServiceToken(secret, 'fusion', now);
    expect(() => verifyServiceToken(other, token, MAX_AGE, now)).toThrow(/not signed with this platform's internal secret/);
    expect(() => verifyServiceToken(secret, token.replace('ams_fusion', 'ams_privacy'), MAX_AGE, now)).toThrow(UnauthenticatedError);
    expect(() => verifyServiceToken(secret, token, MAX_AGE, now + MAX_AGE + 1_000)).toThrow(/expired/);
    expect(() => verifyServiceToken(secret, issueServiceToken(secret, 'fusion', now + 120_000), MAX_AGE, now)).toThrow(/future/);
    expect(() => verifyServiceToken(secret, 'ams_fusion.12.abc', MAX_AGE, now)).toThrow(/malformed service token/);
  });

  it('refuses secrets shorter than 32 bytes', () => {
    expect(() => issueServiceToken(Buffer.from('short'), 'fusion')).toThrow(RangeError);
    expect(() => new ServiceTokenIssuer(Buffer.from('short'), 'fusion')).toThrow(RangeError);
  });

  it('reuses a token briefly, then issues a fresh one', () => {
    const issuer = new ServiceTokenIssuer(secret, 'updater', { reuseMs: 10_000 });
    const t0 = issuer.token(1_700_000_000_000);
    expect(issuer.token(1_700_000_005_000)).toBe(t0);
    const t1 = issuer.token(1_700_000_011_000);
    expect(t1).not.toBe(t0);
    expect(verifyServiceToken(secret, t1, MAX_AGE, 1_700_000_011_000).service).toBe('updater');
  });
});
