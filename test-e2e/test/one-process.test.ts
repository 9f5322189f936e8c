import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePort, healthStatus, reflectedServices, tempDir, TestProcess, type TempDir } from '@aimass/testing';
import { repositoryRoot } from '../src/index.js';

// The built runner, as `npm start` runs it; nx builds it before this target (test:e2e dependsOn ^build).
const runnerMain = join(repositoryRoot, 'tools/runner/dist/main.js');

describe('one-process mode (npm start) as a separate process', () => {
  let dir: TempDir;
  let proc: TestProcess | undefined;

  beforeAll(() => {
    expect(existsSync(runnerMain), `${runnerMain} is missing: build first (npx nx run-many -t build)`).toBe(true);
  });
  afterEach(async () => {
    await proc?.dispose();
    proc = undefined;
    await dir?.remove();
  });

  it('prints where it listens, answers health and reflection, and drains on SIGTERM', async () => {
    dir = await tempDir('aimass-e2e-');
    const port = await freePort();
    const started = await TestProcess.start(process.execPath, {
      args: [runnerMain],
      env: { AIMASS_GRPC__PORT: String(port), AIMASS_RUNNER__DATA_DIR: dir.path, AIMASS_RUNNER__SERVICE_PORT_BASE: '0' },
      ready: /runner\s+(\S+:\d+)/,
    });
    proc = started.process;
    const address = started.match[1] ?? '';
    expect(address).toBe(`127.0.0.1:${port}`);
    expect(proc.output).toContain(`data in ${dir.path}`);

    expect(await healthStatus(address)).toBe('SERVING');
    const services = await reflectedServices(address);
    expect(services).toContain('grpc.health.v1.Health');
    expect(services).toContain('inference.GRPCInferenceService');
    expect(services).toContain('aimass.v1.InferenceService');

    proc.signal('SIGTERM');
    const exit = await proc.waitForExit(15_000);
    expect(exit.code).toBe(0);
    expect(proc.output).toMatch(/"msg":"drained"/);
    // The event journal lives in the data directory, so acknowledged events outlive the process.
    expect(existsSync(join(dir.path, 'events.journal'))).toBe(true);
  });

  it('stops at start with exit code 78 and names the key of a bad configuration value', async () => {
    dir = await tempDir('aimass-e2e-');
    const result = spawnSync(process.execPath, [runnerMain], {
      env: { ...process.env, AIMASS_GRPC__PORT: 'not-a-port', AIMASS_RUNNER__DATA_DIR: dir.path },
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(result.status).toBe(78);
    expect(result.stderr).toMatch(/grpc\.port/);
    expect(result.stderr).toMatch(/AIMASS_GRPC__PORT="not-a-port"/);
    expect(result.stderr).toMatch(/expected a port number/);
  });
});
