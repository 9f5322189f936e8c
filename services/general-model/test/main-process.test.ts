import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { tempDir, TestProcess, type TempDir } from '@aimass/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addModel, linearExpected, linearModel } from './support/models.js';
import { call, fp32Request, inferenceClient } from './support/harness.js';

const PACKAGE_ROOT = fileURLToPath(new URL('..', import.meta.url));
const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));

describe('the service process (dist/main.js)', () => {
  let dir: TempDir;
  let proc: TestProcess | undefined;

  beforeAll(async () => {
    // The process runs the built package, whose worker is the compiled dist/adapters/onnx-worker.js.
    execFileSync('npx', ['tsc', '-b', 'tsconfig.lib.json'], { cwd: PACKAGE_ROOT, stdio: 'pipe' });
    dir = await tempDir('gm-main');
    await addModel(dir.path, 'linear', 1, linearModel(), { config: 'max_batch_size: 8\ndynamic_batching { max_queue_delay_microseconds: 500 }' });
  }, 120_000);
  afterAll(async () => {
    await proc?.dispose();
    await dir?.remove();
  });

  it('serves from env configuration, logs the execution provider, and drains on SIGTERM with exit 0', async () => {
    const started = await TestProcess.start(process.execPath, {
      args: [MAIN],
      env: {
        AIMASS_GRPC__HOST: '127.0.0.1',
        AIMASS_GRPC__PORT: '0',
        AIMASS_GENERAL_MODEL__REPOSITORY: dir.path,
        AIMASS_GENERAL_MODEL__POOL_SIZE: '1',
        AIMASS_GENERAL_MODEL__EXECUTION_PROVIDERS: 'cuda,cpu',
        AIMASS_CONFIG: undefined,
      },
      ready: /"address":"([^"]+)","ready":true/,
    });
    proc = started.process;
    const client = inferenceClient(started.match[1]!);
    const res = await call(client, client.modelInfer, fp32Request('linear', [1, 2, 3, 4], 1));
    expect(res.outputs[0]!.contents!.fp32Contents).toEqual(linearExpected([1, 2, 3, 4]));
    client.close();
    expect(proc.output).toMatch(/"executionProvider":"cpu"/);
    expect(proc.output).toMatch(/"msg":"execution provider skipped"/);
    expect(proc.output).toMatch(/"maxBatchSize":8,"maxQueueDelayMs":0.5/);
    proc.signal('SIGTERM');
    expect((await proc.waitForExit()).code).toBe(0);
  });

  it('exits 78 naming the key of an invalid configuration', () => {
    const out = spawnSync(process.execPath, [MAIN], {
      env: { ...process.env, AIMASS_CONFIG: '', AIMASS_GENERAL_MODEL__VERSION_POLICY: 'newest', AIMASS_GENERAL_MODEL__POOL_SIZE: '0' },
      encoding: 'utf8',
    });
    expect(out.status).toBe(78);
    expect(out.stderr).toMatch(/generalModel.versionPolicy/);
    expect(out.stderr).toMatch(/generalModel.poolSize/);
  });
});
