import { spawn, type ChildProcess } from 'node:child_process';

export interface StartProcessOptions {
  args?: string[];
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Resolve once combined stdout+stderr matches this; its groups are returned. */
  ready: RegExp;
  timeoutMs?: number;
}

/**
 * A child process that the test owns: started, awaited until it prints a ready line, and
 * stopped with a signal of the test's choice. Output is kept for assertions and failure messages.
 */
export class TestProcess {
  private out = '';
  private readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  private constructor(private readonly child: ChildProcess) {
    const append = (chunk: Buffer) => {
      this.out += chunk.toString();
    };
    child.stdout?.on('data', append);
    child.stderr?.on('data', append);
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  static async start(command: string, options: StartProcessOptions): Promise<{ process: TestProcess; match: RegExpMatchArray }> {
    const child = spawn(command, options.args ?? [], {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const proc = new TestProcess(child);
    const timeoutMs = options.timeoutMs ?? 30_000;
    const match = await new Promise<RegExpMatchArray>((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        child.kill('SIGKILL');
        reject(new Error(`${command} did not print ${options.ready} within ${timeoutMs} ms; output:\n${proc.out}`));
      }, timeoutMs);
      const onData = () => {
        const m = proc.out.match(options.ready);
        if (m) {
          cleanup();
          resolve(m);
        }
      };
      const onExit = (code: number | null) => {
        cleanup();
        reject(new Error(`${command} exited (${code}) before it was ready; output:\n${proc.out}`));
      };
      const cleanup = () => {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        child.stderr?.off('data', onData);
        child.off('exit', onExit);
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', onData);
      child.once('exit', onExit);
      onData();
    });
    return { process: proc, match };
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get output(): string {
    return this.out;
  }

  /** False once the process has exited (by itself or by a signal). */
  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  signal(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  /** Waits for exit; rejects if it takes longer than `timeoutMs`. */
  async waitForExit(timeoutMs = 15_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`process did not exit within ${timeoutMs} ms; output:\n${this.out}`)), timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** SIGKILL unless already gone; for afterAll. */
  async dispose(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGKILL');
      await this.exited;
    }
  }
}
