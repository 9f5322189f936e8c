import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import type { AuthConfigInput } from '@aimass/auth';
import { ConfigError, createLogger } from '@aimass/platform';
import { tempDir, type TempDir } from '@aimass/testing';
import { EMBEDDED_INTERNAL_SECRET_FILE } from '../src/auth.js';
import { runnerConfigSchema } from '../src/config.js';
import type { EmbeddedService } from '../src/embedded.js';
import { startPlatform, type RunningPlatform } from '../src/runner.js';
import { OPERATOR_SHA256, captureLogs } from './support.js';

const silent = createLogger({ service: 'runner-test', level: 'silent' });
const config = (dataDir: string, servicePortBase = 0) => runnerConfigSchema.parse({ grpc: { port: 0 }, runner: { dataDir, servicePortBase, trainDefaultModel: false } });

/** A service that records the auth section the runner hands it and listens on the port it was given. */
function probe(name: string, seen: Map<string, AuthConfigInput | undefined>): EmbeddedService {
  return {
    name,
    async start(env) {
      seen.set(name, env.auth);
      const server = new grpc.Server();
      const port = await new Promise<number>((resolve, reject) =>
        server.bindAsync(`${env.host}:${env.port}`, grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
      );
      return { name, address: `${env.host}:${port}`, grpcServices: [], stop: async () => void server.forceShutdown() };
    },
  };
}

async function shutdown(platform: RunningPlatform) {
  await platform.server.drain();
  await platform.stop();
}

const API_KEYS = { AIMASS_AUTH__MODE: 'api-keys', AIMASS_AUTH__OPERATOR_TOKEN_SHA256: OPERATOR_SHA256 };

describe('the auth section of the one-process mode', () => {
  let dir: TempDir;
  afterEach(() => dir?.remove());

  it('api-keys: generates the internal secret once (0600), reuses it after a restart, and points every service at fusion', async () => {
    dir = await tempDir('aimass-runner-auth-');
    const secretFile = join(dir.path, EMBEDDED_INTERNAL_SECRET_FILE);
    const seen = new Map<string, AuthConfigInput | undefined>();
    // privacy starts before fusion (as in the registry), so it must be told fusion's address before fusion listens.
    const services = () => [probe('privacy', seen), probe('fusion', seen), probe('updater', seen)];

    const first = await startPlatform(config(dir.path), silent, services(), { env: API_KEYS });
    const fusionAddress = first.services.find((s) => s.name === 'fusion')!.address;
    await shutdown(first);
    const secret = await readFile(secretFile, 'utf8');
    expect(secret.trim().length).toBeGreaterThanOrEqual(32);
    expect((await stat(secretFile)).mode & 0o777).toBe(0o600);
    for (const name of ['privacy', 'fusion', 'updater']) {
      expect(seen.get(name), name).toMatchObject({
        mode: 'api-keys',
        internalTokenSecretFile: secretFile,
        operatorTokenSha256: OPERATOR_SHA256,
        credentialService: { address: fusionAddress },
      });
    }

    seen.clear();
    const second = await startPlatform(config(dir.path), silent, services(), { env: API_KEYS });
    await shutdown(second);
    expect(await readFile(secretFile, 'utf8')).toBe(secret);
    expect(seen.get('privacy')).toMatchObject({ internalTokenSecretFile: secretFile });
  });

  it('api-keys with fixed ports: the credential service is fusion at servicePortBase + its offset', async () => {
    dir = await tempDir('aimass-runner-auth-');
    const seen = new Map<string, AuthConfigInput | undefined>();
    // A base far from the ephemeral range, where the fixed ports are most likely free.
    const base = 20_000 + Math.floor(Math.random() * 10_000);
    const platform = await startPlatform(config(dir.path, base), silent, [probe('privacy', seen), { ...probe('fusion', seen), portOffset: 2 }], { env: API_KEYS });
    try {
      expect(platform.services.find((s) => s.name === 'fusion')?.address).toBe(`127.0.0.1:${base + 2}`);
      expect(seen.get('privacy')).toMatchObject({ credentialService: { address: `127.0.0.1:${base + 2}` } });
    } finally {
      await shutdown(platform);
    }
  });

  it('keeps a configured internal secret and credential service address, and generates nothing', async () => {
    dir = await tempDir('aimass-runner-auth-');
    const own = join(dir.path, 'own.secret');
    await writeFile(own, 'a-configured-internal-secret-0123456789abcdef');
    const seen = new Map<string, AuthConfigInput | undefined>();
    const env = { ...API_KEYS, AIMASS_AUTH__INTERNAL_TOKEN_SECRET_FILE: own, AIMASS_AUTH__CREDENTIAL_SERVICE__ADDRESS: 'fusion.example:50053' };
    await shutdown(await startPlatform(config(dir.path), silent, [probe('privacy', seen), probe('fusion', seen)], { env }));
    expect(seen.get('privacy')).toMatchObject({ internalTokenSecretFile: own, credentialService: { address: 'fusion.example:50053' } });
    await expect(stat(join(dir.path, EMBEDDED_INTERNAL_SECRET_FILE))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('mode none (the default): services get mode none and no secret is generated', async () => {
    dir = await tempDir('aimass-runner-auth-');
    const seen = new Map<string, AuthConfigInput | undefined>();
    const logs = captureLogs();
    await shutdown(await startPlatform(config(dir.path), logs.logger, [probe('privacy', seen), probe('fusion', seen)], { env: {} }));
    expect(seen.get('privacy')).toMatchObject({ mode: 'none', credentialService: {} });
    expect(seen.get('privacy')).not.toHaveProperty('internalTokenSecretFile');
    expect(seen.get('privacy')).not.toHaveProperty('credentialService.address');
    await expect(stat(join(dir.path, EMBEDDED_INTERNAL_SECRET_FILE))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(logs.lines().some((l) => String(l.msg).includes('aimass tenants create'))).toBe(false);
  });

  it('api-keys without an operator: starts, and logs how to create the first tenant and key', async () => {
    dir = await tempDir('aimass-runner-auth-');
    const logs = captureLogs();
    await shutdown(await startPlatform(config(dir.path), logs.logger, [], { env: { AIMASS_AUTH__MODE: 'api-keys' } }));
    const hint = logs.lines().find((l) => l.level === 'warn' && String(l.msg).includes('no operator is configured'));
    expect(hint, JSON.stringify(logs.lines())).toBeDefined();
    const msg = String(hint!.msg);
    expect(msg).toContain('AIMASS_AUTH__OPERATOR_TOKEN_SHA256=');
    expect(msg).toContain('AIMASS_OPERATOR_TOKEN=$TOKEN npx aimass tenants create acme');
    expect(msg).toContain('npx aimass keys create acme --name backend --scope predict,feedback,consent');
  });

  it('refuses a bad auth value before starting anything, naming the key and the variable', async () => {
    dir = await tempDir('aimass-runner-auth-');
    const started: string[] = [];
    const never: EmbeddedService = { name: 'never', start: async () => (started.push('never'), { name: 'never', address: 'n/a', grpcServices: [], stop: async () => undefined }) };
    const bad = startPlatform(config(dir.path), silent, [never], { env: { ...API_KEYS, AIMASS_AUTH__OPERATOR_TOKEN_SHA256: 'not-a-hash' } });
    await expect(bad).rejects.toBeInstanceOf(ConfigError);
    await expect(bad).rejects.toThrow(/auth\.operatorTokenSha256 \(from AIMASS_AUTH__OPERATOR_TOKEN_SHA256=.*\): expected 64 lower-case hex/);
    const both = startPlatform(config(dir.path), silent, [never], { env: { ...API_KEYS, AIMASS_AUTH__INTERNAL_TOKEN_SECRET: 'x'.repeat(40), AIMASS_AUTH__INTERNAL_TOKEN_SECRET_FILE: '/nope' } });
    await expect(both).rejects.toThrow(/auth\.internalTokenSecret: set at most one/);
    const unreadable = startPlatform(config(dir.path), silent, [never], { env: { ...API_KEYS, AIMASS_AUTH__INTERNAL_TOKEN_SECRET_FILE: join(dir.path, 'missing.secret') } });
    await expect(unreadable).rejects.toThrow(/auth\.internalTokenSecretFile: cannot read .*missing\.secret: ENOENT/);
    expect(started).toEqual([]);
  });
});
