import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { freePort } from './ports.js';
import { tempDir, type TempDir } from './tmp.js';

const CANDIDATES = ['/usr/sbin/nats-server', '/usr/bin/nats-server', '/usr/local/bin/nats-server'];

export function natsServerBinary(): string {
  const fromEnv = process.env['AIMASS_NATS_SERVER_BIN'];
  if (fromEnv) return fromEnv;
  const found = CANDIDATES.find((p) => existsSync(p));
  if (!found) {
    throw new Error(
      'nats-server not found: install it (Debian: apt-get install nats-server) or set AIMASS_NATS_SERVER_BIN',
    );
  }
  return found;
}

export interface NatsServerOptions {
  /** JetStream store directory; a fresh temporary one when omitted. */
  storeDir?: string;
  port?: number;
  /** Extra command-line arguments, e.g. ['--tls', ...]. */
  args?: string[];
}

/**
 * A real nats-server with JetStream on its own port and store directory. It can be killed
 * (SIGKILL, like a crash) and started again on the same port and store, which is what the
 * durability tests need.
 */
export class NatsServer {
  private child: ChildProcess | undefined;
  private ownDir: TempDir | undefined;
  private log = '';

  private constructor(
    readonly port: number,
    readonly storeDir: string,
    private readonly extraArgs: string[],
  ) {}

  static async start(options: NatsServerOptions = {}): Promise<NatsServer> {
    let ownDir: TempDir | undefined;
    let storeDir = options.storeDir;
    if (!storeDir) {
      ownDir = await tempDir('aimass-nats-');
      storeDir = ownDir.path;
    }
    const server = new NatsServer(options.port ?? (await freePort()), storeDir, options.args ?? []);
    server.ownDir = ownDir;
    await server.launch();
    return server;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Output of the server so far, for assertion messages. */
  get output(): string {
    return this.log;
  }

  private async launch(): Promise<void> {
    const args = ['-a', '127.0.0.1', '-p', String(this.port), '-js', '-sd', this.storeDir, ...this.extraArgs];
    const child = spawn(natsServerBinary(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    const append = (chunk: Buffer) => {
      this.log = (this.log + chunk.toString()).slice(-20_000);
    };
    child.stdout?.on('data', append);
    child.stderr?.on('data', append);
    await waitForPort(this.port, 10_000, () => {
      if (child.exitCode !== null) throw new Error(`nats-server exited with ${child.exitCode}: ${this.log}`);
    });
    // The port opens before JetStream has recovered its store; the server logs this line once ready.
    await waitFor(() => this.log.includes('Server is ready'), 10_000, 'nats-server to report ready');
  }

  /** SIGKILL: no graceful shutdown, as in a crash. */
  async kill(): Promise<void> {
    await this.stopWith('SIGKILL');
  }

  /** SIGTERM and wait for exit. */
  async stop(): Promise<void> {
    await this.stopWith('SIGTERM');
  }

  private async stopWith(signal: NodeJS.Signals): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    await exited;
  }

  /** Start again on the same port and store directory. */
  async restart(): Promise<void> {
    if (this.running) throw new Error('nats-server is still running; stop or kill it first');
    this.log = '';
    await this.launch();
  }

  /** Stop the server and remove the store directory if the harness created it. */
  async dispose(): Promise<void> {
    await this.stop();
    await this.ownDir?.remove();
  }
}

async function waitFor(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function waitForPort(port: number, timeoutMs: number, onRetry: () => void): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    onRetry();
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`nats-server did not open port ${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
