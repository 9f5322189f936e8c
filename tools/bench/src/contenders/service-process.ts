import { fork, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { inference } from '@aimass/proto';
import { healthStatus } from '@aimass/testing';
import type { RunningServer } from './grpc-host.js';

/**
 * When a started service counts as ready: a model of general-model answers ModelReady, or a
 * gRPC service reports SERVING on the standard health check (grpc.health.v1).
 */
export type Readiness = { readonly kind: 'model'; readonly model: string } | { readonly kind: 'health'; readonly service: string };

export interface ServiceProcessOptions {
  /** The service's built entry (e.g. services/general-model/dist/main.js). */
  readonly mainPath: string;
  readonly port: number;
  /** Configuration, as AIMASS_* environment variables. */
  readonly env: Readonly<Record<string, string>>;
  /** What must answer before the service counts as started. */
  readonly ready: Readiness;
  readonly startTimeoutMs: number;
  /** Arguments of the entry script. */
  readonly args?: readonly string[] | undefined;
  /** Receives the service's log lines (stdout and stderr). */
  readonly onLog?: (line: string) => void;
}

export interface ServiceProcess extends RunningServer {
  readonly pid: number | undefined;
  /** The process (its IPC channel, for entries that offer one). */
  readonly child: ChildProcess;
  /** The last log lines, for error messages. */
  logTail(): string;
}

/** A service package's built process entry (`<package>/dist/main.js`), found from the package itself. */
export function packageMainPath(pkg: '@aimass/general-model' | '@aimass/personal-model' | '@aimass/fusion' | '@aimass/updater' | '@aimass/privacy'): string {
  // The package exports only its entry: walk up from it to the package root.
  let dir = dirname(fileURLToPath(import.meta.resolve(pkg)));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`cannot find the ${pkg} package root`);
    dir = up;
  }
  const main = join(dir, 'dist', 'main.js');
  if (!existsSync(main)) throw new Error(`${main} is missing: build the workspace first (npm run build)`);
  return main;
}

/** services/general-model/dist/main.js. */
export function serviceMainPath(): string {
  return packageMainPath('@aimass/general-model');
}

/**
 * The service as users run it: its own process, configured through the environment, called
 * over gRPC. Started when the model is ready (ModelReady), so loading and warm-up are not
 * measured.
 */
export async function startServiceProcess(options: ServiceProcessOptions): Promise<ServiceProcess> {
  const tail: string[] = [];
  const child: ChildProcess = fork(options.mainPath, [...(options.args ?? [])], {
    env: { ...withoutAimassEnv(process.env), ...options.env },
    // e.g. AIMASS_BENCH_SERVICE_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" to profile the
    // service under the benchmark's load (NODE_OPTIONS refuses --cpu-prof).
    execArgv: (process.env['AIMASS_BENCH_SERVICE_NODE_ARGS'] ?? '').split(' ').filter((a) => a !== ''),
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  // e.g. AIMASS_BENCH_SERVICE_LOG_DIR=/tmp/bench-logs keeps every service's whole log
  // (`<service>-<pid>.log`), for errors the benchmark only counts.
  const logDir = process.env['AIMASS_BENCH_SERVICE_LOG_DIR'];
  if (logDir) mkdirSync(logDir, { recursive: true });
  const logFile = logDir ? createWriteStream(join(logDir, `${basename(dirname(dirname(options.mainPath)))}-${child.pid ?? 'unknown'}.log`), { flags: 'a' }) : undefined;
  child.once('exit', () => logFile?.end());
  const onData = (chunk: Buffer): void => {
    logFile?.write(chunk);
    for (const line of chunk.toString('utf8').split('\n')) {
      if (line.trim() === '') continue;
      tail.push(line);
      if (tail.length > 40) tail.shift();
      options.onLog?.(line);
    }
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  let exit: string | undefined;
  const exited = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      exit = `exited with code ${code}, signal ${signal}`;
      resolve();
    }),
  );
  const address = `127.0.0.1:${options.port}`;
  const logTail = (): string => tail.join('\n');
  try {
    const exited = (): string | undefined => exit;
    if (options.ready.kind === 'model') {
      const client = new inference.GRPCInferenceServiceClient(address, grpc.credentials.createInsecure());
      try {
        await waitUntilReady(modelReadyProbe(client, options.ready.model), options.startTimeoutMs, exited);
      } finally {
        client.close();
      }
    } else {
      await waitUntilReady(servingProbe(address, options.ready.service), options.startTimeoutMs, exited);
    }
  } catch (error) {
    child.kill('SIGKILL');
    await exited;
    throw new Error(`the service did not become ready: ${(error as Error).message}\n--- service log ---\n${logTail()}`, { cause: error });
  }
  return {
    address,
    pid: child.pid,
    child,
    logTail,
    cpuSeconds: () => processCpuSeconds(child.pid),
    close: async () => {
      if (exit !== undefined) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Linux's USER_HZ: /proc/<pid>/stat counts CPU time in these ticks. */
const CLOCK_TICKS_PER_S = 100;

/** CPU seconds (user + system, every thread) of another process, from /proc; NaN off Linux or once it is gone. */
export function processCpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_S;
  } catch {
    return Number.NaN;
  }
}

/** The bench's own AIMASS_* settings must not leak into the service it configures. */
function withoutAimassEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(env)) if (!k.startsWith('AIMASS_') && k !== 'NODE_OPTIONS') out[k] = v;
  return out;
}

/** One readiness probe: ready or not, and what it saw (for the timeout message). */
type Probe = () => Promise<{ ready: boolean; saw: string }>;

/** Polls `probe` every 200 ms until it says ready, the process exits or `timeoutMs` passes. */
async function waitUntilReady(probe: Probe, timeoutMs: number, exited: () => string | undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  for (;;) {
    const why = exited();
    if (why !== undefined) throw new Error(`the service ${why}`);
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms (${last})`);
    const { ready, saw } = await probe();
    if (ready) return;
    last = saw;
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The general model's ModelReady for `model` (loading and warm-up done). */
function modelReadyProbe(client: inference.GRPCInferenceServiceClient, model: string): Probe {
  return () =>
    new Promise((resolve) =>
      client.modelReady({ name: model, version: '' }, new grpc.Metadata(), { deadline: Date.now() + 2000 }, (error, response) =>
        resolve(error ? { ready: false, saw: `${grpc.status[error.code]}: ${error.details}` } : { ready: response.ready, saw: `ready=${response.ready}` }),
      ),
    );
}

/** grpc.health.v1 Check of `service`, as a Kubernetes probe asks it. */
function servingProbe(address: string, service: string): Probe {
  return () =>
    healthStatus(address, service).then(
      (status) => ({ ready: status === 'SERVING', saw: `health status ${status}` }),
      (error: unknown) => ({ ready: false, saw: (error as Error).message }),
    );
}
