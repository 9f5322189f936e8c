import { fork, type ChildProcess } from 'node:child_process';
import { builtEntry } from '../built-entry.js';
import type { ChildMessage, LoadResult, LoadSpec, ParentMessage, WindowPhase } from './protocol.js';

interface Waiter {
  resolve: (r: LoadResult) => void;
  reject: (e: Error) => void;
  onWindow?: ((phase: WindowPhase) => void) | undefined;
}

/**
 * The parent's handle on the load process. One process serves every measurement of a run, so
 * its start-up is paid once; measurements run one at a time.
 */
export class LoadGenerator {
  private nextId = 1;
  private readonly pending = new Map<number, Waiter>();
  private exited: Error | undefined;

  private constructor(private readonly child: ChildProcess) {
    child.on('message', (message: ChildMessage) => {
      if (message.type === 'ready') return;
      const waiter = this.pending.get(message.id);
      if (waiter === undefined) return;
      if (message.type === 'window') {
        waiter.onWindow?.(message.phase);
        return;
      }
      this.pending.delete(message.id);
      if (message.type === 'result') waiter.resolve(message.result);
      else waiter.reject(new Error(`load process: ${message.message}`));
    });
    child.on('exit', (code, signal) => {
      this.exited = new Error(`load process exited (code ${code}, signal ${signal})`);
      for (const waiter of this.pending.values()) waiter.reject(this.exited);
      this.pending.clear();
    });
  }

  static async start(): Promise<LoadGenerator> {
    // 'advanced' serialization carries the request payloads as binary, not as JSON arrays.
    const child = fork(builtEntry('load/load-process.js'), [], {
      serialization: 'advanced',
      // A test runner's flags (e.g. the @aimass/source export condition) would point the
      // child at TypeScript sources it cannot load; it runs plain built JS.
      execArgv: [],
      env: childEnv(),
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    await new Promise<void>((resolve, reject) => {
      const onMessage = (message: ChildMessage): void => {
        if (message.type === 'ready') {
          child.off('exit', onExit);
          resolve();
        }
      };
      const onExit = (code: number | null): void => reject(new Error(`load process exited during start-up (code ${code})`));
      child.once('message', onMessage);
      child.once('exit', onExit);
    });
    return new LoadGenerator(child);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /**
   * Runs one measurement. `onWindow` is told when the measured window starts and ends (as the
   * load process sees it, one IPC hop later), e.g. to read a server's counters at its edges.
   */
  run(spec: LoadSpec, onWindow?: (phase: WindowPhase) => void): Promise<LoadResult> {
    if (this.exited) return Promise.reject(this.exited);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onWindow });
      const message: ParentMessage = { type: 'run', id, spec };
      this.child.send(message);
    });
  }

  async close(): Promise<void> {
    if (this.exited || this.child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.disconnect();
    await exited;
  }
}

function childEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  const options = env.NODE_OPTIONS?.split(/\s+/).filter((o) => o !== '' && !o.includes('@aimass/source'));
  if (options === undefined || options.length === 0) delete env.NODE_OPTIONS;
  else env.NODE_OPTIONS = options.join(' ');
  return env;
}
