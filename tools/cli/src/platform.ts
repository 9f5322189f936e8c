import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { PlatformUnavailableError } from './format.js';

/**
 * The one-process runner's entry script (`npm start` runs it). @aimass/runner exports no module
 * API (no `exports`, no index), so the CLI runs its built entry: in this process for `aimass dev`,
 * as a child process for `aimass eval` (see PlatformLauncher below).
 */
export function runnerMainPath(): string {
  const require = createRequire(import.meta.url);
  let packageJson: string;
  try {
    packageJson = require.resolve('@aimass/runner/package.json');
  } catch {
    throw new PlatformUnavailableError('the one-process runner (@aimass/runner) is not installed next to the CLI');
  }
  const main = join(dirname(packageJson), 'dist', 'main.js');
  if (!existsSync(main)) throw new PlatformUnavailableError(`the one-process runner is not built (${main} is missing): run \`npm run build\` first`);
  return main;
}

/**
 * `aimass dev`: runs the runner's entry in this process, exactly what `npm start` runs after its
 * build. The runner reads its AIMASS_* configuration, installs its own signal handlers (drain on
 * SIGINT/SIGTERM) and keeps the process alive while it serves.
 */
export async function runDev(options: { dataDir: string | undefined; env: NodeJS.ProcessEnv }): Promise<void> {
  const main = runnerMainPath();
  if (options.dataDir !== undefined) options.env.AIMASS_RUNNER__DATA_DIR = options.dataDir;
  await import(pathToFileURL(main).href);
}

export interface StartedPlatform {
  /** The runner's own endpoint (health for every service). */
  readonly runnerAddress: string;
  /** Embedded services by name, with their addresses. */
  readonly services: ReadonlyMap<string, string>;
  stop(): Promise<void>;
}

export interface LaunchOptions {
  dataDir: string;
  env: Readonly<Record<string, string | undefined>>;
  /** Where the runner's stderr (first-start training progress, errors) is shown. */
  stderr: { write(text: string): unknown };
  /** How long the first start may take (it trains the general model). Default 15 min. */
  startTimeoutMs?: number | undefined;
}

// The banner the runner prints once every service listens (tools/runner/src/main.ts): a title
// line, then one line per endpoint, `  <name padded> <host:port>`.
const BANNER_START = /^AI Mass is running/;
const BANNER_LINE = /^ {2}(\S+)\s+(\S+:\d+)\b/;
const BANNER_END = /^Ctrl-C/;

/** Reads the runner's banner from its stdout lines; undefined until it is complete. */
export function parseRunnerBanner(lines: readonly string[]): { runnerAddress: string; services: Map<string, string> } | undefined {
  const start = lines.findIndex((l) => BANNER_START.test(l));
  if (start < 0) return undefined;
  const services = new Map<string, string>();
  for (const line of lines.slice(start + 1)) {
    if (BANNER_END.test(line)) {
      const runnerAddress = services.get('runner');
      if (runnerAddress === undefined) return undefined;
      services.delete('runner');
      return { runnerAddress, services };
    }
    const m = BANNER_LINE.exec(line);
    if (m) services.set(m[1]!, m[2]!);
  }
  return undefined;
}

/**
 * Starts the one-process platform as a child process on OS-chosen loopback ports in `dataDir`,
 * and resolves once its banner says every service listens. A separate process keeps the
 * platform's CPU work apart from the caller's on a small machine, and its stop is a plain SIGTERM
 * drain. If @aimass/runner grows a module API (startPlatform + its registry), an in-process
 * launcher can replace this without changing callers.
 */
export async function startOneProcessPlatform(options: LaunchOptions): Promise<StartedPlatform> {
  const main = runnerMainPath();
  const child = spawn(process.execPath, [main], {
    env: {
      ...options.env,
      AIMASS_CONFIG: '',
      AIMASS_RUNNER__DATA_DIR: options.dataDir,
      AIMASS_GRPC__PORT: '0',
      AIMASS_RUNNER__SERVICE_PORT_BASE: '0',
      AIMASS_LOG__LEVEL: options.env.AIMASS_LOG__LEVEL || 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stderrTail: string[] = [];
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    options.stderr.write(chunk);
    stderrTail.push(chunk);
    if (stderrTail.length > 20) stderrTail.shift();
  });
  const lines: string[] = [];
  const reader = createInterface({ input: child.stdout! });
  const stop = () => stopChild(child);

  try {
    const banner = await new Promise<NonNullable<ReturnType<typeof parseRunnerBanner>>>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new PlatformUnavailableError(`the one-process platform did not start within ${Math.round((options.startTimeoutMs ?? 900_000) / 1000)} s`)),
        options.startTimeoutMs ?? 900_000,
      );
      reader.on('line', (line) => {
        // Log lines (JSON) come on stdout too: warnings and errors are shown, the rest dropped.
        if (line.startsWith('{')) {
          if (/"level":"(warn|error|fatal)"/.test(line)) options.stderr.write(`platform: ${line}\n`);
          return;
        }
        lines.push(line);
        const parsed = parseRunnerBanner(lines);
        if (parsed) {
          clearTimeout(timer);
          resolve(parsed);
        }
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        const tail = stderrTail.join('').trim().split('\n').slice(-3).join(' | ');
        reject(new PlatformUnavailableError(`the one-process platform exited before it was ready (${signal ?? `exit code ${code}`})${tail ? `: ${tail}` : ''}`));
      });
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(new PlatformUnavailableError(`cannot start the one-process platform: ${err.message}`));
      });
    });
    return { runnerAddress: banner.runnerAddress, services: banner.services, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  await exited;
  clearTimeout(timer);
}
