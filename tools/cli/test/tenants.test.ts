import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFusion, type RunningFusion } from '@aimass/fusion';
import { createLogger } from '@aimass/platform';
import { openSqliteStore, type DocumentStore } from '@aimass/storage';
import { freePort } from '@aimass/testing';
import { run } from '../src/cli.js';
import type { CliIo } from '../src/io.js';

// `aimass tenants` and `aimass keys` against the real fusion service (its TenantAdminService) with
// authentication on; no model service is needed for tenant administration.
const OPERATOR = 'amo_cli-tenants-test-operator-token-0123456789';

let store: DocumentStore;
let fusion: RunningFusion;

interface Result {
  code: number;
  out: string;
  err: string;
}

async function aimass(env: Record<string, string>, ...argv: string[]): Promise<Result> {
  let out = '';
  let err = '';
  const io: CliIo = {
    stdout: { write: (t: string) => (out += t) },
    stderr: { write: (t: string) => (err += t) },
    env: { AIMASS_ADDRESS: fusion.address, ...env },
    cwd: process.cwd(),
    readStdin: async () => '',
  };
  const code = await run(argv, io);
  return { code, out, err };
}
const asOperator = (...argv: string[]) => aimass({ AIMASS_OPERATOR_TOKEN: OPERATOR }, ...argv);

beforeAll(async () => {
  store = await openSqliteStore({ path: ':memory:' });
  const unused = `127.0.0.1:${await freePort()}`;
  fusion = await startFusion(
    {
      grpc: { host: '127.0.0.1', port: 0, drainTimeoutMs: 1_000 },
      pseudonym: { secret: 'cli-tenants-test-secret-cli-tenants-test-secret' },
      fusion: { generalModel: { address: unused }, personalModel: { address: unused } },
      auth: {
        mode: 'api-keys',
        internalTokenSecret: 'cli-tenants-test-internal-secret-0123456789abcdef',
        operatorTokenSha256: createHash('sha256').update(OPERATOR).digest('hex'),
      },
    },
    createLogger({ service: 'fusion', level: 'silent' }),
    { store },
  );
});

afterAll(async () => {
  await fusion?.stop();
  await store?.close();
});

describe('aimass tenants and keys', () => {
  it('creates, shows, lists, updates, suspends, resumes and deletes a tenant', async () => {
    const created = await asOperator('tenants', 'create', 'cli-one', '--name', 'CLI One', '--strategy', 'interpolate', '--rate', '20', '--burst', '40');
    expect(created).toMatchObject({ code: 0, err: '' });
    expect(created.out).toMatch(/^tenant cli-one \(CLI One\): active, revision 1\n {2}strategy interpolate, quota 20\/s burst 40/);
    expect(JSON.parse((await asOperator('tenants', 'show', 'cli-one', '--json')).out)).toMatchObject({ tenantId: 'cli-one', revision: 1 });
    expect((await asOperator('tenants', 'list')).out).toContain('cli-one  active  CLI One');

    const updated = await asOperator('tenants', 'update', 'cli-one', '--name', 'CLI 1', '--concurrency', '8', '--revision', '1', '--json');
    expect(updated.code).toBe(0);
    expect(JSON.parse(updated.out)).toMatchObject({ displayName: 'CLI 1', revision: 2, settings: { quota: { ratePerSecond: 20, burst: 40, maxConcurrency: 8 } } });
    const stale = await asOperator('tenants', 'update', 'cli-one', '--name', 'late', '--revision', '1');
    expect(stale.code).toBe(1);
    expect(stale.err).toMatch(/^aimass tenants update: ABORTED: tenant cli-one is at revision 2/);

    expect((await asOperator('tenants', 'suspend', 'cli-one', '--reason', 'test')).out).toContain(': suspended,');
    expect((await asOperator('tenants', 'resume', 'cli-one')).out).toContain(': active,');
    const refused = await asOperator('tenants', 'delete', 'cli-one');
    expect(refused.code).toBe(2);
    expect(refused.err).toContain('--confirm cli-one is required');
    expect((await asOperator('tenants', 'delete', 'cli-one', '--confirm', 'cli-one')).out).toContain(': deleting,');
  });

  it('creates keys (secret once, on stdout), lists them without secrets, rotates and revokes them', async () => {
    await asOperator('tenants', 'create', 'cli-two');
    const created = await asOperator('keys', 'create', 'cli-two', '--name', 'backend', '--scope', 'predict,admin', '--expires-in', '30d', '--json');
    expect(created.code).toBe(0);
    expect(created.err).toContain('shown only now');
    const { key, secret } = JSON.parse(created.out) as { key: { keyId: string; scopes: string[] }; secret: string };
    expect(secret.startsWith(`amk_${key.keyId}_`)).toBe(true);
    expect(key.scopes).toEqual(['predict', 'admin']);

    const listed = await asOperator('keys', 'list', 'cli-two');
    expect(listed.out).toContain(`${key.keyId}  backend  [predict, admin]`);
    expect(listed.out).toContain('never used');
    expect(listed.out).not.toContain(secret.slice(22));

    // The tenant's own admin key: its tenant, not the others, and not the operator's commands.
    const own = (...argv: string[]) => aimass({ AIMASS_API_KEY: secret }, ...argv);
    expect((await own('tenants', 'show')).out).toMatch(/^tenant cli-two/);
    const other = await own('tenants', 'show', 'cli-one');
    expect(other.code).toBe(1);
    expect(other.err).toMatch(/NOT_FOUND/);
    const list = await own('tenants', 'list');
    expect(list.code).toBe(1);
    expect(list.err).toMatch(/PERMISSION_DENIED: ListTenants is for platform operators/);
    // Its uses above, once reported.
    await fusion.auth.authenticator!.reportUses();
    expect((await asOperator('keys', 'list', 'cli-two')).out).toMatch(new RegExp(`${key.keyId} .*, last used \\d{4}-`));

    const rotated = await own('keys', 'rotate', 'cli-two', key.keyId, '--json');
    const fresh = JSON.parse(rotated.out) as { key: { keyId: string }; secret: string; oldKey: { keyId: string } };
    expect(fresh.oldKey.keyId).toBe(key.keyId);
    expect((await aimass({ AIMASS_API_KEY: fresh.secret }, 'keys', 'revoke', 'cli-two', key.keyId)).out).toContain('revoked');
    const revoked = await own('tenants', 'show');
    expect(revoked.code).toBe(1);
    expect(revoked.err).toMatch(/UNAUTHENTICATED: API key .* was revoked/);
    expect((await asOperator('keys', 'list', 'cli-two', '--all')).out.trim().split('\n')).toHaveLength(2);
  });

  it('reports usage errors with exit code 2 and prints help', async () => {
    const help = await asOperator('keys', '--help');
    expect(help.code).toBe(0);
    expect(help.out).toMatch(/^Usage: aimass keys <create\|list\|revoke\|rotate>/);
    expect((await asOperator('tenants', 'create', '--help')).out).toMatch(/^Usage: aimass tenants/);
    for (const argv of [
      ['tenants'],
      ['tenants', 'explode'],
      ['tenants', 'create', 'Bad_Id'],
      ['tenants', 'update', 'x'],
      ['keys', 'create', 'cli-two', '--name', 'n', '--scope', 'write'],
      ['keys', 'create', 'cli-two', '--scope', 'predict'],
      ['keys', 'rotate', 'cli-two'],
      ['keys', 'list', 'cli-two', '--strategy', 'general'],
      ['keys', 'rotate', 'cli-two', 'abc', '--revoke-old-after', 'soon'],
    ]) {
      const r = await asOperator(...argv);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.err, argv.join(' ')).toMatch(/^aimass (tenants|keys): .*\(see `aimass (tenants|keys) --help`\)\n$/);
    }
    const anonymous = await aimass({}, 'tenants', 'list');
    expect(anonymous.code).toBe(2);
    expect(anonymous.err).toContain('credentials are required');
  });
});
