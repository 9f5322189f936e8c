import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { v1 } from '@aimass/proto';
import { AiMassClient, PrivacyClient, TrainingAdminClient } from '@aimass/sdk';
import { freePort, healthStatus, reflectedServices, tempDir, TestProcess, waitUntil, type TempDir } from '@aimass/testing';
import { repositoryRoot } from '../src/index.js';

// The built runner, as `npm start` runs it; nx builds it before this target (test:e2e dependsOn ^build).
const runnerMain = join(repositoryRoot, 'tools/runner/dist/main.js');

const SPAM = `From: "Prize Desk" <winner@lucky-prizes.biz>
To: you@example.com
Subject: YOU HAVE WON $1,000,000 - CLAIM NOW
Content-Type: text/html

<html><body><p>Congratulations! You have been selected to receive a CASH PRIZE. Click here to claim your
free money now! Limited time offer, act now, 100% guaranteed, no credit check. Remove me from this list.</p></body></html>
`;

const HAM = `From: Alice <alice@lists.example.org>
To: dev-team@lists.example.org
Subject: Re: build failure on the release branch
List-Id: <dev-team.lists.example.org>

I think the failure comes from the new test harness; the fixture directory is not created before the
suite runs. Could you try the patch I attached to the bug report and tell me if the build passes?
`;

function classify(address: string, texts: string[]): Promise<v1.ClassifyResponse> {
  const client = new v1.GeneralModelServiceClient(address, grpc.credentials.createInsecure());
  return new Promise<v1.ClassifyResponse>((resolve, reject) =>
    client.classify(
      { inputs: texts.map((value) => ({ kind: { $case: 'text' as const, value } })), includeEmbedding: true, includeLogits: false },
      new grpc.Metadata(),
      { deadline: Date.now() + 10_000 },
      (err, res) => (err ? reject(err) : resolve(res)),
    ),
  ).finally(() => client.close());
}

async function startRunner(dataDir: string, port: number, env: Record<string, string> = {}) {
  const started = await TestProcess.start(process.execPath, {
    args: [runnerMain],
    env: { AIMASS_GRPC__PORT: String(port), AIMASS_RUNNER__DATA_DIR: dataDir, AIMASS_RUNNER__SERVICE_PORT_BASE: '0', ...env },
    ready: /runner\s+(\S+:\d+)[\s\S]*general-model\s+(\S+:\d+)/,
    // The first start trains the default model: about half a minute on two idle cores.
    timeoutMs: 240_000,
  });
  const addressOf = (name: string) => started.process.output.match(new RegExp(`\\n\\s+${name}\\s+(\\S+:\\d+)`))?.[1] ?? '';
  return { proc: started.process, runner: started.match[1] ?? '', generalModel: started.match[2] ?? '', addressOf };
}

/** The user's personal model as personal-model holds it (example count), or undefined without one. */
async function exampleCount(address: string, pseudonym: string): Promise<number | undefined> {
  const client = new v1.PersonalModelServiceClient(address, grpc.credentials.createInsecure());
  const md = new grpc.Metadata();
  md.set('x-aimass-tenant', 'default');
  try {
    const res = await new Promise<v1.GetModelResponse>((resolve, reject) =>
      client.getModel({ userPseudonym: pseudonym, version: 0, includeParameters: false }, md, { deadline: Date.now() + 10_000 }, (err, r) => (err ? reject(err) : resolve(r))),
    );
    return Number(res.model?.exampleCount ?? 0);
  } catch (err) {
    if ((err as grpc.ServiceError).code === grpc.status.NOT_FOUND) return undefined;
    throw err;
  } finally {
    client.close();
  }
}

describe('one-process mode (npm start) as a separate process', () => {
  let dir: TempDir;
  const procs: TestProcess[] = [];

  beforeAll(async () => {
    expect(existsSync(runnerMain), `${runnerMain} is missing: build first (npx nx run-many -t build)`).toBe(true);
    dir = await tempDir('aimass-e2e-');
  });
  afterAll(async () => {
    for (const p of procs) await p.dispose();
    await dir?.remove();
  });

  it('trains the default model on first start, serves it, answers health and reflection, and drains on SIGTERM', { timeout: 300_000 }, async () => {
    const port = await freePort();
    const { proc, runner, generalModel } = await startRunner(dir.path, port);
    procs.push(proc);
    expect(runner).toBe(`127.0.0.1:${port}`);
    expect(proc.output).toContain(`data in ${dir.path}`);
    expect(proc.output).toMatch(/featurized \d+ mails/);
    expect(existsSync(join(dir.path, 'models/general/1/model.onnx'))).toBe(true);

    expect(await healthStatus(runner)).toBe('SERVING');
    expect(await healthStatus(runner, 'inference.GRPCInferenceService')).toBe('SERVING');
    const services = await reflectedServices(runner);
    expect(services).toEqual(
      expect.arrayContaining(['grpc.health.v1.Health', 'inference.GRPCInferenceService', 'aimass.v1.InferenceService', 'aimass.v1.PrivacyService', 'aimass.v1.DataKeyService']),
    );

    const res = await classify(generalModel, [SPAM, HAM]);
    expect(res.labels).toEqual(['ham', 'spam']);
    expect(res.results.map((r) => r.label)).toEqual(['spam', 'ham']);
    expect(res.results[0]?.embedding.length).toBeGreaterThanOrEqual(64);

    proc.signal('SIGTERM');
    const exit = await proc.waitForExit(30_000);
    expect(exit.code).toBe(0);
    expect(proc.output).toMatch(/"msg":"drained"/);
    // The event journal lives in the data directory, so acknowledged events outlive the process.
    expect(existsSync(join(dir.path, 'events.journal'))).toBe(true);
  });

  it('starts again on the same data directory without training', { timeout: 120_000 }, async () => {
    const { proc, generalModel } = await startRunner(dir.path, await freePort());
    procs.push(proc);
    expect(proc.output).not.toMatch(/featurized \d+ mails/);
    const res = await classify(generalModel, [SPAM]);
    expect(res.results[0]?.label).toBe('spam');
    proc.signal('SIGTERM');
    expect((await proc.waitForExit(30_000)).code).toBe(0);
  });

  it('keeps acknowledged feedback across a SIGKILL: the updater applies all of it after the restart', { timeout: 180_000 }, async () => {
    // A batching window (its maximum, 10 s) far longer than the steps below: the updater files the events but applies none of them before the kill.
    const first = await startRunner(dir.path, await freePort(), { AIMASS_UPDATER__APPLY__BATCH_WINDOW_MS: '10000', AIMASS_UPDATER__SWEEP__INTERVAL_MS: '600000' });
    procs.push(first.proc);
    const fusion = first.addressOf('fusion');
    const client = new AiMassClient({ address: fusion, tenant: 'default', defaultDeadlineMs: 10_000 });
    const before = new TrainingAdminClient({ address: first.addressOf('updater'), tenant: 'default', defaultDeadlineMs: 10_000 });
    const consent = new PrivacyClient({ address: first.addressOf('privacy'), tenant: 'default', defaultDeadlineMs: 10_000 });
    const ids: string[] = [];
    try {
      // The one-process mode enforces consent like a deployment: frank opts in first.
      await consent.grant('frank', ['personalization', 'training'], { policyVersion: 'v1', source: 'e2e' });
      const p = await client.predict('frank', SPAM);
      for (let i = 0; i < 5; i++) ids.push((await client.feedback({ userId: 'frank', predictionId: p.predictionId, label: 'ham', idempotencyKey: `frank-${i}` })).eventId);
      await waitUntil(async () => (await before.trainingState('frank')).user?.pendingEvents === 5, 'the updater to file the 5 events', 10_000, 50);
      expect((await before.trainingState('frank')).user?.currentVersion).toBe(0);
    } finally {
      client.close();
      before.close();
      consent.close();
    }
    // No drain, no chance to apply what is still in flight: the journal is all that remains.
    first.proc.signal('SIGKILL');
    await first.proc.waitForExit(10_000);

    const second = await startRunner(dir.path, await freePort());
    procs.push(second.proc);
    const training = new TrainingAdminClient({ address: second.addressOf('updater'), tenant: 'default', defaultDeadlineMs: 10_000 });
    try {
      let pseudonym = '';
      await waitUntil(
        async () => {
          const state = await training.trainingState('frank');
          pseudonym = state.user?.userPseudonym ?? '';
          return state.pendingEvents === 0 && state.user !== undefined && state.user.pendingEvents === 0 && state.user.currentVersion > 0;
        },
        "frank's feedback to be applied after the restart",
        30_000,
        100,
      );
      expect(new Set(ids).size).toBe(5);
      expect(await exampleCount(second.addressOf('personal-model'), pseudonym)).toBe(5);
    } finally {
      training.close();
    }
    second.proc.signal('SIGTERM');
    expect((await second.proc.waitForExit(30_000)).code).toBe(0);
  });

  it('stops at start with exit code 78 and names the key of a bad configuration value', async () => {
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
