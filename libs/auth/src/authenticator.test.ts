import { createHash } from 'node:crypto';
import { PermissionDeniedError, UnauthenticatedError } from '@aimass/platform';
import { describe, expect, it } from 'vitest';
import { generateApiKey } from './api-key.js';
import { Authenticator, type CredentialSource, type KeyUse, type StoredCredential } from './authenticator.js';
import { accessFor } from './scopes.js';
import { issueServiceToken } from './service-token.js';

const secret = Buffer.from('an internal secret of at least thirty-two bytes');

/** A map of credentials standing in for the key store, counting lookups. */
class MapSource implements CredentialSource {
  readonly byId = new Map<string, StoredCredential>();
  lookups = 0;
  readonly reports: KeyUse[][] = [];
  failReports = 0;
  async lookup(keyId: string) {
    this.lookups++;
    return this.byId.get(keyId);
  }
  async recordUse(uses: readonly KeyUse[]) {
    if (this.failReports > 0) {
      this.failReports--;
      throw new Error('store down');
    }
    this.reports.push([...uses]);
  }
}

function setup(options: { ttlMs?: number; maxEntries?: number; useReportIntervalMs?: number; onUseReportError?: (err: unknown) => void } = {}) {
  let now = 1_700_000_000_000;
  const source = new MapSource();
  const operatorToken = 'amo_operator-token-of-enough-length-0123456789';
  const auth = new Authenticator({
    credentials: source,
    internalSecret: secret,
    operatorTokenSha256: createHash('sha256').update(operatorToken).digest(),
    cacheTtlMs: options.ttlMs ?? 5_000,
    cacheMaxEntries: options.maxEntries,
    useReportIntervalMs: options.useReportIntervalMs ?? 0,
    onUseReportError: options.onUseReportError,
    now: () => now,
  });
  const addKey = (over: Partial<StoredCredential> = {}) => {
    const k = generateApiKey();
    source.byId.set(k.keyId, {
      keyId: k.keyId,
      tenant: 'acme',
      scopes: ['predict'],
      secretSha256: k.secretSha256,
      expiresAt: undefined,
      revokedAt: undefined,
      tenantState: 'active',
      ...over,
    });
    return k;
  };
  return { auth, source, addKey, operatorToken, advance: (ms: number) => (now += ms), now: () => now };
}

const bearer = (token: string) => [`Bearer ${token}`];

describe('Authenticator', () => {
  it('turns a valid API key into a principal of its tenant with its scopes', async () => {
    const { auth, addKey } = setup();
    const k = addKey({ scopes: ['predict', 'feedback'] });
    await expect(auth.authenticate(bearer(k.key), 'someone-else')).resolves.toEqual({
      kind: 'api-key',
      tenant: 'acme',
      keyId: k.keyId,
      scopes: ['predict', 'feedback'],
      service: undefined,
    });
  });

  it('refuses missing, malformed, unknown and wrong-secret keys with UNAUTHENTICATED', async () => {
    const { auth, addKey } = setup();
    const k = addKey();
    await expect(auth.authenticate([])).rejects.toThrow(/credentials required/);
    await expect(auth.authenticate(['Basic abc'])).rejects.toThrow(/expected "Bearer <key>"/);
    await expect(auth.authenticate([...bearer(k.key), ...bearer(k.key)])).rejects.toThrow(/exactly one/);
    await expect(auth.authenticate(bearer('amk_short'))).rejects.toThrow(/malformed API key/);
    await expect(auth.authenticate(bearer(generateApiKey().key))).rejects.toThrow(/unknown API key/);
    const wrongSecret = `${k.key.slice(0, 21)}${generateApiKey().key.slice(21)}`;
    await expect(auth.authenticate(bearer(wrongSecret))).rejects.toThrow(/unknown API key/);
    await expect(auth.authenticate(bearer(wrongSecret))).rejects.toBeInstanceOf(UnauthenticatedError);
  });

  it('refuses revoked and expired keys (expiry exactly, even from the cache), and keys of a suspended or deleting tenant', async () => {
    const { auth, addKey, now, advance } = setup();
    const revoked = addKey({ revokedAt: new Date(now() - 1) });
    await expect(auth.authenticate(bearer(revoked.key))).rejects.toThrow(/was revoked/);
    const expiring = addKey({ expiresAt: new Date(now() + 1_000) });
    await expect(auth.authenticate(bearer(expiring.key))).resolves.toMatchObject({ tenant: 'acme' });
    advance(1_000);
    await expect(auth.authenticate(bearer(expiring.key))).rejects.toThrow(/expired at/);
    const suspended = addKey({ tenantState: 'suspended' });
    await expect(auth.authenticate(bearer(suspended.key))).rejects.toBeInstanceOf(PermissionDeniedError);
    const deleting = addKey({ tenantState: 'deleting' });
    await expect(auth.authenticate(bearer(deleting.key))).rejects.toThrow(/being deleted/);
  });

  it('sees a revocation made elsewhere within the cache TTL, and at once after invalidate', async () => {
    const { auth, source, addKey, advance, now } = setup({ ttlMs: 5_000 });
    const k = addKey();
    await auth.authenticate(bearer(k.key));
    source.byId.set(k.keyId, { ...source.byId.get(k.keyId)!, revokedAt: new Date(now()) });
    // Within the TTL the cached copy still answers (the documented bound)...
    await expect(auth.authenticate(bearer(k.key))).resolves.toBeDefined();
    advance(5_000);
    // ...and not after it.
    await expect(auth.authenticate(bearer(k.key))).rejects.toThrow(/revoked/);

    const k2 = addKey();
    await auth.authenticate(bearer(k2.key));
    source.byId.set(k2.keyId, { ...source.byId.get(k2.keyId)!, revokedAt: new Date(now()) });
    auth.invalidate(k2.keyId);
    await expect(auth.authenticate(bearer(k2.key))).rejects.toThrow(/revoked/);
  });

  it('caches lookups (bounded, least recently used dropped) and shares concurrent ones', async () => {
    const { auth, source, addKey } = setup({ maxEntries: 2 });
    const [a, b, c] = [addKey(), addKey(), addKey()];
    await Promise.all([auth.authenticate(bearer(a.key)), auth.authenticate(bearer(a.key)), auth.authenticate(bearer(a.key))]);
    expect(source.lookups).toBe(1);
    await auth.authenticate(bearer(b.key));
    await auth.authenticate(bearer(a.key)); // a is now the most recent
    await auth.authenticate(bearer(c.key)); // evicts b
    expect(auth.stats().entries).toBe(2);
    expect(source.lookups).toBe(3);
    await auth.authenticate(bearer(a.key));
    expect(source.lookups).toBe(3);
    await auth.authenticate(bearer(b.key));
    expect(source.lookups).toBe(4);
  });

  it('accepts service tokens of the platform secret, with the forwarded tenant', async () => {
    const { auth, now } = setup();
    const principal = await auth.authenticate(bearer(issueServiceToken(secret, 'fusion', now())), 'acme');
    expect(principal).toEqual({ kind: 'service', tenant: 'acme', keyId: undefined, scopes: [], service: 'fusion' });
    const forged = issueServiceToken(Buffer.from('a pod that is not ours has its own 32+ byte secret'), 'fusion', now());
    await expect(auth.authenticate(bearer(forged))).rejects.toBeInstanceOf(UnauthenticatedError);
  });

  it('recognises the operator token by its hash', async () => {
    const { auth, operatorToken } = setup();
    await expect(auth.authenticate(bearer(operatorToken))).resolves.toMatchObject({ kind: 'operator', tenant: undefined });
    await expect(auth.authenticate(bearer(`${operatorToken}x`))).rejects.toBeInstanceOf(UnauthenticatedError);
  });

  it('authorizes by the access table: scope for keys, service tokens only where open to them, operator for tenant admin', async () => {
    const { auth, addKey, now, operatorToken } = setup();
    const predictKey = await auth.authenticate(bearer(addKey({ scopes: ['predict'] }).key));
    const service = await auth.authenticate(bearer(issueServiceToken(secret, 'fusion', now())));
    const operator = await auth.authenticate(bearer(operatorToken));
    const check = (p: typeof predictKey, path: string) => () => auth.authorize(p, accessFor(path)!, path);
    expect(check(predictKey, '/aimass.v1.InferenceService/Predict')).not.toThrow();
    expect(check(predictKey, '/aimass.v1.InferenceService/Feedback')).toThrow(/lacks the "feedback" scope/);
    expect(check(predictKey, '/aimass.v1.PersonalModelService/Score')).toThrow(/internal to the platform/);
    expect(check(service, '/aimass.v1.PersonalModelService/Score')).not.toThrow();
    expect(check(service, '/aimass.v1.InferenceService/Predict')).toThrow(PermissionDeniedError);
    expect(check(operator, '/aimass.v1.TenantAdminService/CreateTenant')).not.toThrow();
    expect(check(operator, '/aimass.v1.InferenceService/Predict')).toThrow(/only administers tenants/);
  });

  it("reports keys' latest successful uses in one batch per interval, never a failed attempt's", async () => {
    const errors: unknown[] = [];
    const { auth, source, addKey, advance, now } = setup({ useReportIntervalMs: 60_000, onUseReportError: (err) => errors.push(err) });
    const a = addKey();
    const b = addKey();
    await auth.authenticate(bearer(a.key));
    advance(1_000);
    await auth.authenticate(bearer(a.key));
    const lastA = now();
    await auth.authenticate(bearer(b.key));
    // A wrong secret for b, later: not a use of b.
    advance(1_000);
    await expect(auth.authenticate(bearer(`amk_${b.keyId}_${'A'.repeat(43)}`))).rejects.toBeInstanceOf(UnauthenticatedError);
    await auth.reportUses();
    expect(source.reports).toHaveLength(1);
    expect(new Map(source.reports[0]!.map((u) => [u.keyId, u.at.getTime()]))).toEqual(
      new Map([
        [a.keyId, lastA],
        [b.keyId, lastA],
      ]),
    );
    // Nothing new: nothing reported.
    await auth.reportUses();
    expect(source.reports).toHaveLength(1);

    // A failed report keeps its uses for the next one.
    source.failReports = 1;
    await auth.authenticate(bearer(a.key));
    await auth.reportUses();
    expect(errors).toHaveLength(1);
    expect(source.reports).toHaveLength(1);
    await auth.reportUses();
    expect(source.reports.at(-1)).toEqual([{ keyId: a.keyId, at: new Date(now()) }]);

    // Closed: no more reports.
    auth.close();
    await auth.authenticate(bearer(a.key));
    await auth.reportUses();
    expect(source.reports).toHaveLength(2);
  });

  it('reports on its own timer, once per interval however busy the key', async () => {
    const { auth, source, addKey } = setup({ useReportIntervalMs: 20 });
    const k = addKey();
    for (let i = 0; i < 50; i++) await auth.authenticate(bearer(k.key));
    expect(source.reports).toHaveLength(0);
    await new Promise((r) => setTimeout(r, 60));
    expect(source.reports).toHaveLength(1);
    expect(source.reports[0]!.map((u) => u.keyId)).toEqual([k.keyId]);
    auth.close();
  });
});
