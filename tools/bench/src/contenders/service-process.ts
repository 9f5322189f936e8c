import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { inference } from '@aimass/proto';
import type { RunningServer } from './grpc-host.js';

export interface ServiceProcessOptions {
  /** The service's built entry (services/general-model/dist/main.js). */
  readonly mainPath: string;
  readonly port: number;
  /** Configuration, as AIMASS_* environment variables. */
  readonly env: Readonly<Record<string, string>>;
  /** Model (and version) that must be ready before the service counts as started. */
  readonly model: string;
  readonly startTimeoutMs: number;
  /** Receives the service's log lines (stdout and stderr). */
  readonly onLog?: (line: string) => void;
}

export interface ServiceProcess extends RunningServer {
  readonly pid: number | undefined;
  /** The last log lines, for error messages. */
  logTail(): string;
}

/** services/general-model/dist/main.js, found from the package the bench depends on. */
export function serviceMainPath(): string {
  // The package exports only its entry: walk up from it to the package root.
  let dir = dirname(fileURLToPath(import.meta.resolve('@aimass/general-model')));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the @aimass/general-model package root');
    dir = up;
  }
  const main = join(dir, 'dist', 'main.js');
  if (!existsSync(main)) throw new Error(`${main} is missing: build the workspace first (npm run build)`);
  return main;
}

/**
 * The service as users run it: its own process, configured through the environment, called
 * over gRPC. Started when the model is ready (ModelReady), so loading and warm-up are not
 * measured.
 */
export async function startServiceProcess(options: ServiceProcessOptions): Promise<ServiceProcess> {
  const tail: string[] = [];
  const child: ChildProcess = fork(options.mainPath, [], {
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
    await waitForModelReady(address, options.model, options.startTimeoutMs, () => exit);
  } catch (error) {
    child.kill('SIGKILL');
    await exited;
    throw new Error(`the service did not become ready: ${(error as Error).message}\n--- service log ---\n${logTail()}`, { cause: error });
  }
  return {
    address,
    pid: child.pid,
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
