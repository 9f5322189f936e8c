import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { TestProcess, waitUntil } from '@aimass/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectExactlyOnce, waitForExamples } from './support/checks.js';
import { SECRET, pseudonymizer, startStack, type Stack } from './support/stack.js';

const PACKAGE_ROOT = fileURLToPath(new URL('..', import.meta.url));
const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const READY = /"address":"([^"]+)".*"msg":"updater serving"/;

/**
 * The updater as its own process (dist/main.js), killed with SIGKILL in the middle of a stream of
 * feedback and started again on the same SQLite file: every acknowledged event is applied exactly
 * once in effect.
 */
describe('updater process killed mid-stream', () => {
  let stack: Stack;
  const procs: TestProcess[] = [];

  beforeAll(async () => {
    execFileSync('npx', ['tsc', '-b', 'tsconfig.lib.json'], { cwd: PACKAGE_ROOT, stdio: 'pipe' });
    stack = await startStack();
  }, 180_000);
  afterAll(async () => {
    for (const p of procs) await p.dispose();
    await stack?.stop();
  });

  const start = async () => {
    const { process } = await TestProcess.start(globalThis.process.execPath, {
      args: [MAIN],
      env: {
        AIMASS_CONFIG: undefined,
        AIMASS_GRPC__HOST: '127.0.0.1',
        AIMASS_GRPC__PORT: '0',
        AIMASS_LOG__LEVEL: 'info',
        AIMASS_PSEUDONYM__SECRET: SECRET,
        AIMASS_STORE__KIND: 'sqlite',
        AIMASS_STORE__PATH: join(stack.dir.path, 'crash', 'updater.sqlite'),
        AIMASS_EVENTS__KIND: 'nats',
        AIMASS_EVENTS__SERVERS: stack.nats.url,
        AIMASS_EVENTS__PULL_EXPIRES_MS: '1000',
        AIMASS_EVENTS__RECONNECT_TIME_WAIT_MS: '100',
        AIMASS_UPDATER__PERSONAL_MODEL__ADDRESS: stack.personal.address,
        AIMASS_UPDATER__GENERAL_MODEL__ADDRESS: stack.general.address,
        AIMASS_UPDATER__APPLY__BATCH_WINDOW_MS: '5',
        AIMASS_UPDATER__APPLY__RETRY_INITIAL_MS: '50',
        AIMASS_UPDATER__CONSUMER__LEASE_TTL_MS: '2000',
        AIMASS_UPDATER__CONSUMER__ACK_WAIT_MS: '2000',
        AIMASS_UPDATER__CONSUMER__BACKOFF_MS: '[50]',
        AIMASS_UPDATER__SWEEP__GRACE_MS: '0',
        AIMASS_UPDATER__WATCH__INTERVAL_MS: '0',
      },
      ready: READY,
      timeoutMs: 20_000,
    });
    procs.push(process);
    return process;
  };

  it('applies every acknowledged event exactly once after a SIGKILL and a restart', async () => {
    const tenant = 'crash';
    const users = ['kay', 'kim', 'kit', 'kai', 'kes'];
    const sent = new Map(users.map((u) => [u, 0]));
    const applied = async () => {
      let n = 0;
      for (const u of users) n += (await stack.model(tenant, pseudonymizer.pseudonymize(tenant, u)))?.exampleCount ?? 0;
      return n;
    };

    const first = await start();
    let publishing = true;
    let published = 0;
    // A steady stream of feedback, acknowledged one by one, across the kill and the restart.
    const stream = (async () => {
      for (let i = 0; publishing; i++) {
        const user = users[i % users.length]!;
        await stack.feedback({ tenant, user, text: i });
        sent.set(user, sent.get(user)! + 1);
        published++;
        await new Promise((r) => setTimeout(r, 4));
      }
    })();

    await waitUntil(async () => (await applied()) >= 40, 'the first process to apply some feedback', 15_000, 10);
    first.signal('SIGKILL');
    const exit = await first.waitForExit();
    expect(exit.signal).toBe('SIGKILL');
    const atKill = await applied();
    expect(atKill).toBeLessThan(published);

    await new Promise((r) => setTimeout(r, 300));
    const second = await start();
    await waitUntil(() => published >= 200, 'more feedback after the restart', 20_000);
    publishing = false;
    await stream;

    for (const user of users) {
      const pseudonym = pseudonymizer.pseudonymize(tenant, user);
      await waitForExamples(stack, tenant, pseudonym, sent.get(user)!, 20_000);
      expectExactlyOnce(await stack.versions(tenant, pseudonym), sent.get(user)!);
    }
    expect(await applied()).toBe(published);
    expect(second.output).not.toMatch(/"level":"(error|fatal)"/);
    second.signal('SIGTERM');
    expect((await second.waitForExit()).code).toBe(0);
  });
});
