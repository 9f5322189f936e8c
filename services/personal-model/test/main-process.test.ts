import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { credentials, Metadata } from '@grpc/grpc-js';
import { TENANT_METADATA_KEY } from '@aimass/platform';
import { v1 } from '@aimass/proto';
import { ALL_MODEL_UPDATED, connectNatsBus, decodeEvent } from '@aimass/events';
import { NatsServer, tempDir, TestProcess, waitUntil, type TempDir } from '@aimass/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pseudonymOf } from './support/harness.js';
import { example, mailWorld } from './support/world.js';

const PACKAGE_ROOT = fileURLToPath(new URL('..', import.meta.url));
const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));

describe('the service process (dist/main.js)', () => {
  let dir: TempDir;
  let proc: TestProcess | undefined;

  beforeAll(async () => {
    execFileSync('npx', ['tsc', '-b', 'tsconfig.lib.json'], { cwd: PACKAGE_ROOT, stdio: 'pipe' });
    dir = await tempDir('pm-main');
  }, 180_000);
  afterAll(async () => {
    await proc?.dispose();
    await dir?.remove();
  });

  it('serves on the configured SQLite file and drains on SIGTERM with exit 0', async () => {
    const path = join(dir.path, 'models', 'personal.sqlite');
    const started = await TestProcess.start(process.execPath, {
      args: [MAIN],
      env: {
        AIMASS_GRPC__HOST: '127.0.0.1',
        AIMASS_GRPC__PORT: '0',
        AIMASS_STORE__KIND: 'sqlite',
        AIMASS_STORE__PATH: path,
        AIMASS_PERSONAL_MODEL__VERSIONS_KEPT: '4',
        AIMASS_CONFIG: undefined,
      },
      ready: /"address":"([^"]+)".*"msg":"personal-model serving"/,
    });
    proc = started.process;
    expect(proc.output).toMatch(/"versionsKept":4/);
    const client = new v1.PersonalModelServiceClient(started.match[1]!, credentials.createInsecure());
    const metadata = new Metadata();
    metadata.set(TENANT_METADATA_KEY, 'acme');
    const res = await new Promise<v1.TrainResponse>((resolve, reject) =>
      client.train(
        { userPseudonym: pseudonymOf('proc'), examples: [example(mailWorld(1).mail(), 'spam')], idempotencyKey: 'k', expectedVersion: 0 },
        metadata,
        { deadline: Date.now() + 5000 },
        (err, r) => (err ? reject(err) : resolve(r!)),
      ),
    );
    expect(res.model!.version).toBe(1);
    client.close();
    expect(existsSync(path)).toBe(true);
    proc.signal('SIGTERM');
    expect((await proc.waitForExit()).code).toBe(0);
  });

  it('with AIMASS_EVENTS__KIND=nats announces its writes on NATS', async () => {
    const nats = await NatsServer.start();
    const observer = await connectNatsBus({ servers: nats.url, name: 'observer' });
    let events: TestProcess | undefined;
    try {
      const versions: number[] = [];
      await observer.subscribe(ALL_MODEL_UPDATED, (e) => void versions.push(decodeEvent('aimass.v1.PersonalModelUpdated', e.data).version));
      const started = await TestProcess.start(process.execPath, {
        args: [MAIN],
        env: {
          AIMASS_GRPC__HOST: '127.0.0.1',
          AIMASS_GRPC__PORT: '0',
          AIMASS_STORE__PATH: join(dir.path, 'events', 'personal.sqlite'),
          AIMASS_EVENTS__KIND: 'nats',
          AIMASS_EVENTS__SERVERS: nats.url,
          AIMASS_CONFIG: undefined,
        },
        ready: /"address":"([^"]+)".*"msg":"personal-model serving"/,
      });
      events = started.process;
      expect(events.output).toMatch(/"events":true/);
      const client = new v1.PersonalModelServiceClient(started.match[1]!, credentials.createInsecure());
      const metadata = new Metadata();
      metadata.set(TENANT_METADATA_KEY, 'acme');
      await new Promise<v1.TrainResponse>((resolve, reject) =>
        client.train(
          { userPseudonym: pseudonymOf('proc-events'), examples: [example(mailWorld(2).mail(), 'spam')], idempotencyKey: 'k', expectedVersion: 0 },
          metadata,
          { deadline: Date.now() + 5000 },
          (err, r) => (err ? reject(err) : resolve(r!)),
        ),
      );
      await waitUntil(() => versions.length === 1, 'the PersonalModelUpdated event');
      expect(versions).toEqual([1]);
      client.close();
      events.signal('SIGTERM');
      expect((await events.waitForExit()).code).toBe(0);
    } finally {
      await events?.dispose();
      await observer.close();
      await nats.dispose();
    }
  });
});
