import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { inference } from '@aimass/proto';
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
export function packageMainPath(pkg: '@aimass/general-model' | '@aimass/personal-model' | '@aimass/fusion'): string {
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
  const onData = (chunk: Buffer): void => {
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
    if (options.ready.kind === 'model') await waitForModelReady(address, options.ready.model, options.startTimeoutMs, exited);
    else await waitForServing(address, options.ready.service, options.startTimeoutMs, exited);
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
    close: async () => {
      if (exit !== undefined) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** The bench's own AIMASS_* settings must not leak into the service it configures. */
function withoutAimassEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(env)) if (!k.startsWith('AIMASS_') && k !== 'NODE_OPTIONS') out[k] = v;
  return out;
}

async function waitForModelReady(address: string, model: string, timeoutMs: number, exited: () => string | undefined): Promise<void> {
  const client = new inference.GRPCInferenceServiceClient(address, grpc.credentials.createInsecure());
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  try {
    for (;;) {
      const why = exited();
      if (why !== undefined) throw new Error(`the service ${why}`);
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms (${last})`);
      const ready = await new Promise<boolean>((resolve) =>
        client.modelReady({ name: model, version: '' }, new grpc.Metadata(), { deadline: Date.now() + 2000 }, (error, response) => {
          if (error) last = `${grpc.status[error.code]}: ${error.details}`;
          resolve(!error && response.ready);
        }),
      );
      if (ready) return;
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    client.close();
  }
}

// grpc.health.v1.Health/Check by hand (HealthCheckRequest{service = 1}, HealthCheckResponse{status = 1},
// SERVING = 1): two one-field messages do not warrant loading the health proto.
const HEALTH_CHECK_METHOD = '/grpc.health.v1.Health/Check';
const SERVING = 1;

function encodeHealthRequest(service: string): Buffer {
  const name = Buffer.from(service, 'utf8');
  if (name.length > 127) throw new Error(`service name too long for the health probe: ${service}`);
  return Buffer.concat([Buffer.from([0x0a, name.length]), name]);
}

function decodeHealthStatus(bytes: Buffer): number {
  // Field 1, varint: tag 0x08; an absent field is the default, UNKNOWN (0).
  for (let i = 0; i + 1 < bytes.length; i++) if (bytes[i] === 0x08) return bytes[i + 1] as number;
  return 0;
}

async function waitForServing(address: string, service: string, timeoutMs: number, exited: () => string | undefined): Promise<void> {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  try {
    for (;;) {
      const why = exited();
      if (why !== undefined) throw new Error(`the service ${why}`);
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms (${last})`);
      const serving = await new Promise<boolean>((resolve) =>
        client.makeUnaryRequest(
          HEALTH_CHECK_METHOD,
          (b: Buffer) => b,
          (b: Buffer) => b,
          encodeHealthRequest(service),
          new grpc.Metadata(),
          { deadline: Date.now() + 2000 },
          (error, response) => {
            if (error) last = `${grpc.status[error.code]}: ${error.details}`;
            else last = `health status ${decodeHealthStatus(response as Buffer)}`;
            resolve(!error && decodeHealthStatus(response as Buffer) === SERVING);
          },
        ),
      );
      if (serving) return;
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    client.close();
  }
}
