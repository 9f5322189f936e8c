import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EX_CONFIG, callUnary } from '../src/index.js';
import { FIXTURES, PACKAGE_ROOT, deadlineIn, rawClient, type EchoRequest, type EchoResponse } from './support.js';

const FIXTURE = join(FIXTURES, 'sigterm-server.mjs');

interface Child {
  proc: ChildProcess;
  lines: Array<Record<string, unknown>>;
  stderr: () => string;
  waitForLine(msg: string): Promise<Record<string, unknown>>;
  exited: Promise<number | null>;
}

function startChild(env: Record<string, string>): Child {
  const proc = spawn(process.execPath, [FIXTURE], {
    cwd: PACKAGE_ROOT,
    env: { PATH: process.env['PATH'] ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Array<Record<string, unknown>> = [];
  const waiters: Array<{ msg: string; resolve: (l: Record<string, unknown>) => void }> = [];
  let stderr = '';
  proc.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  createInterface({ input: proc.stdout! }).on('line', (text) => {
    let line: Record<string, unknown>;
    try {
      line = JSON.parse(text) as Record<string, unknown>;
    } catch {
      line = { msg: text, nonJson: true };
    }
    lines.push(line);
    for (const w of waiters.filter((w) => w.msg === line['msg'])) w.resolve(line);
  });
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  return {
    proc,
    lines,
    stderr: () => stderr,
    exited,
    waitForLine: (msg) => {
      const found = lines.find((l) => l['msg'] === msg);
      if (found) return Promise.resolve(found);
      return Promise.race([
        new Promise<Record<string, unknown>>((resolve) => waiters.push({ msg, resolve })),
        exited.then((code) => {
          throw new Error(`child exited (${code}) before logging "${msg}"; stderr: ${stderr}`);
        }),
      ]);
    },
  };
}

describe('service process lifecycle (built package, real signals)', () => {
  const children: Child[] = [];

  beforeAll(() => {
    // The fixture is plain JavaScript importing dist/, as a deployed service would.
    execFileSync('npx', ['tsc', '-b', 'tsconfig.lib.json'], { cwd: PACKAGE_ROOT, stdio: 'pipe' });
  }, 120_000);

  afterAll(() => {
    for (const c of children) if (c.proc.exitCode === null) c.proc.kill('SIGKILL');
  });

  it('on SIGTERM drains: the in-flight call completes, hooks run, the process exits 0', async () => {
    const child = startChild({ AIMASS_SERVICE_NAME: 'sigterm-test', AIMASS_GRPC__HOST: '127.0.0.1', AIMASS_GRPC__PORT: '0' });
    children.push(child);
    const listening = await child.waitForLine('gRPC server listening');
    const client = rawClient(`127.0.0.1:${listening['port'] as number}`);

    const inFlight = callUnary<EchoRequest, EchoResponse>(client['Get']!.bind(client) as never, { text: 'slow', count: 0 }, {
      deadline: deadlineIn(20_000),
    });
    await child.waitForLine('slow call started');
    child.proc.kill('SIGTERM');

    expect((await inFlight).text).toBe('done:slow');
    expect(await child.exited).toBe(0);
    const msgs = child.lines.map((l) => l['msg']);
    expect(msgs).toEqual(expect.arrayContaining(['shutting down', 'draining', 'drained', 'shutdown hook ran', 'stopped']));
    // By the lines' own timestamps: under load the pipe may deliver a line written earlier after a
    // later one (pino retries a write that hit a full pipe), so arrival order proves nothing.
    const at = (msg: string) => Date.parse(String(child.lines.find((l) => l['msg'] === msg)?.['time']));
    expect(at('drained'), JSON.stringify(msgs)).toBeLessThanOrEqual(at('shutdown hook ran'));
    expect(child.lines.find((l) => l['msg'] === 'shutting down')).toMatchObject({ signal: 'SIGTERM', service: 'sigterm-test' });
    client.close();
  });

  it('exits with 78 and a readable message when the configuration is invalid', async () => {
    const child = startChild({ AIMASS_SERVICE_NAME: 'sigterm-test', AIMASS_GRPC__PORT: 'abc' });
    children.push(child);
    expect(await child.exited).toBe(EX_CONFIG);
    expect(child.stderr()).toContain('grpc.port (from AIMASS_GRPC__PORT="abc"): expected a port number between 0 and 65535');
  });
});
