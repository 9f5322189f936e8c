import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFusion, type RunningFusion } from '@aimass/fusion';
import { createLogger } from '@aimass/platform';
import { openSqliteStore, type DocumentStore } from '@aimass/storage';
import { freePort } from '@aimass/testing';
import {
  AiMassError,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
  TenantAdminClient,
  UnauthenticatedError,
} from '../src/index.js';

// The real fusion service (its TenantAdminService) with authentication on, in front of no model
// services: tenant administration needs none.
const OPERATOR = 'amo_sdk-admin-test-operator-token-0123456789';

let store: DocumentStore;
let fusion: RunningFusion;
const clients: TenantAdminClient[] = [];

function client(apiKey: string): TenantAdminClient {
  const c = new TenantAdminClient({ address: fusion.address, apiKey, retry: { initialBackoffMs: 5, maxBackoffMs: 20 } });
  clients.push(c);
  return c;
}

beforeAll(async () => {
  store = await openSqliteStore({ path: ':memory:' });
  const unused = `127.0.0.1:${await freePort()}`;
  fusion = await startFusion(
    {
      grpc: { host: '127.0.0.1', port: 0, drainTimeoutMs: 1_000 },
      pseudonym: { secret: 'sdk-admin-test-secret-sdk-admin-test-secret' },
      fusion: { generalModel: { address: unused }, personalModel: { address: unused } },
      auth: {
        mode: 'api-keys',
        internalTokenSecret: 'sdk-admin-test-internal-secret-0123456789abcdef',
        operatorTokenSha256: createHash('sha256').update(OPERATOR).digest('hex'),
      },
    },
    createLogger({ service: 'fusion', level: 'silent' }),
    { store },
  );
});

afterAll(async () => {
  for (const c of clients) c.close();
  await fusion?.stop();
  await store?.close();
});

describe('TenantAdminClient', () => {
  it('creates, reads, lists and updates tenants as the operator', async () => {
    const operator = client(OPERATOR);
    const created = await operator.createTenant('sdk-one', { displayName: 'SDK One', settings: { defaultStrategy: 'interpolate', quota: { ratePerSecond: 10, burst: 20, maxConcurrency: 4 } } });
    expect(created).toMatchObject({ tenantId: 'sdk-one', displayName: 'SDK One', state: 'active', revision: 1 });
    expect(created.settings).toMatchObject({ defaultStrategy: 'interpolate', quota: { ratePerSecond: 10, burst: 20, maxConcurrency: 4 } });
    expect((await operator.listTenants()).items.map((t) => t.tenantId)).toContain('sdk-one');
    const updated = await operator.updateTenant('sdk-one', { displayName: 'SDK 1', expectedRevision: 1 });
    expect(updated).toMatchObject({ displayName: 'SDK 1', revision: 2 });
    const stale = await operator.updateTenant('sdk-one', { displayName: 'late', expectedRevision: 1 }).catch((e: unknown) => e);
    expect(stale).toBeInstanceOf(AiMassError);
    expect((stale as AiMassError).code).toBe('ABORTED');
    await expect(operator.createTenant('Bad Id')).rejects.toBeInstanceOf(InvalidArgumentError);
    expect((await operator.suspendTenant('sdk-one', 'test')).state).toBe('suspended');
    expect((await operator.resumeTenant('sdk-one')).state).toBe('active');
  });

  it('creates, lists, rotates and revokes keys; an admin key sees only its own tenant', async () => {
    const operator = client(OPERATOR);
    await operator.createTenant('sdk-two');
    await operator.createTenant('sdk-three');
    const created = await operator.createApiKey('sdk-two', { name: 'ops', scopes: ['admin', 'predict'] });
    expect(created.secret.startsWith(`amk_${created.key.keyId}_`)).toBe(true);
    expect(created.key.scopes).toEqual(['admin', 'predict']);

    const own = client(created.secret);
    expect((await own.getTenant()).tenantId).toBe('sdk-two');
    await expect(own.getTenant('sdk-three')).rejects.toBeInstanceOf(NotFoundError);
    await expect(own.listTenants()).rejects.toBeInstanceOf(PermissionDeniedError);
    const listed = await own.listApiKeys('sdk-two');
    expect(listed.items.map((k) => k.keyId)).toEqual([created.key.keyId]);

    const rotated = await own.rotateApiKey('sdk-two', created.key.keyId);
    expect(rotated.oldKey.keyId).toBe(created.key.keyId);
    const fresh = client(rotated.secret);
    expect((await fresh.getTenant()).tenantId).toBe('sdk-two');
    expect((await own.getTenant()).tenantId).toBe('sdk-two');
    await fresh.revokeApiKey('sdk-two', created.key.keyId);
    await expect(own.getTenant()).rejects.toBeInstanceOf(UnauthenticatedError);
    expect((await fresh.listApiKeys('sdk-two', { includeRevoked: true })).items).toHaveLength(2);

    expect((await operator.deleteTenant('sdk-two', 'sdk-two')).state).toBe('deleting');
    await expect(fresh.getTenant()).rejects.toBeInstanceOf(UnauthenticatedError);
  });

  it('requires credentials', () => {
    expect(() => new TenantAdminClient({ address: fusion.address, apiKey: '' })).toThrow(/apiKey is required/);
  });
});
