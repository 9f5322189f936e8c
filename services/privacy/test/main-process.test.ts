import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Metadata, credentials, type ServiceError } from '@grpc/grpc-js';
import { EX_CONFIG, TENANT_METADATA_KEY } from '@aimass/platform';
import { v1 } from '@aimass/proto';
import { NatsServer, TestProcess, tempDir, type TempDir } from '@aimass/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KEK, SECRET, pseudonymizer } from './support/stack.js';

const PACKAGE_ROOT = fileURLToPath(new URL('..', import.meta.url));
const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));

/** The service process (dist/main.js): configuration as an operator gives it, through variables. */
describe('the privacy process (dist/main.js)', () => {
  let dir: TempDir;
  let nats: NatsServer;
  let proc: TestProcess | undefined;

  beforeAll(async () => {
    execFileSync('npx', ['tsc', '-b', 'tsconfig.lib.json'], { cwd: PACKAGE_ROOT, stdio: 'pipe' });
    dir = await tempDir('privacy-main-');
    nats = await NatsServer.start();
  }, 240_000);
  afterAll(async () => {
    await proc?.dispose();
    await nats?.dispose();
    await dir?.remove();
  });

  const baseEnv = () => ({
    AIMASS_CONFIG: undefined,
    AIMASS_GRPC__HOST: '127.0.0.1',
    AIMASS_GRPC__PORT: '0',
    AIMASS_PSEUDONYM__SECRET: SECRET,
    AIMASS_EVENTS__KIND: 'nats',
    AIMASS_EVENTS__SERVERS: nats.url,
    AIMASS_STORE__KIND: 'sqlite',
    AIMASS_STORE__PATH: join(dir.path, 'privacy.sqlite'),
    AIMASS_DATA_KEYS__KEK_SOURCE: undefined,
    AIMASS_DATA_KEYS__KEK_SECRET__DEFAULT: undefined,
    AIMASS_DATA_KEYS__KEK_DIRECTORY: undefined,
  });

  it('exits 78 without tenant key-encryption keys, naming the variables to set', () => {
    const env: Record<string, string | undefined> = { ...process.env, ...baseEnv() };
    for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
    const run = spawnSync(process.execPath, [MAIN], { env: env as NodeJS.ProcessEnv, encoding: 'utf8', timeout: 30_000 });
    expect(run.status).toBe(EX_CONFIG);
    expect(run.stderr).toMatch(/dataKeys\.kekSource/);
    for (const variable of ['AIMASS_DATA_KEYS__KEK_SOURCE', 'AIMASS_DATA_KEYS__KEK_SECRET__DEFAULT', 'AIMASS_DATA_KEYS__KEK_DIRECTORY']) expect(run.stderr).toContain(variable);
  });

  it('serves users’ data keys with a configured KEK, never printing it', async () => {
    const started = await TestProcess.start(process.execPath, {
      args: [MAIN],
      env: { ...baseEnv(), AIMASS_DATA_KEYS__KEK_SOURCE: 'config', AIMASS_DATA_KEYS__KEK_SECRET__DEFAULT: KEK, AIMASS_PRIVACY__KEY_CACHE_SECONDS: '30' },
      ready: /"address":"([^"]+)".*"msg":"privacy serving"/,
    });
    proc = started.process;
    expect(proc.output).toMatch(/"kekSource":"config"/);
    const client = new v1.DataKeyServiceClient(started.match[1]!, credentials.createInsecure());
    const md = new Metadata();
    md.set(TENANT_METADATA_KEY, 'acme');
    const res = await new Promise<v1.GetDataKeyResponse>((resolve, reject) =>
      client.getDataKey({ userPseudonym: pseudonymizer.pseudonymize('acme', 'proc-user'), keyId: '' }, md, { deadline: Date.now() + 5_000 }, (err: ServiceError | null, r?: v1.GetDataKeyResponse) =>
        err ? reject(err) : resolve(r!),
      ),
    );
    client.close();
    expect(res.key).toHaveLength(32);
    expect(res.maxCacheSeconds).toBe(30);
    proc.signal('SIGTERM');
    expect((await proc.waitForExit()).code).toBe(0);
    expect(proc.output).not.toContain(KEK);
    expect(proc.output).not.toContain(res.key.toString('base64'));
  });
});
