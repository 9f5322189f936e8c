import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
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
  /** Serve TLS only (e.g. the files of `makeTestPki`). */
  tls?: NatsServerTls;
}

export interface NatsServerTls {
  certFile: string;
  keyFile: string;
  /** CA that client certificates must chain to; required with `verify`. */
  caFile?: string;
  /** Require a client certificate signed by `caFile` (mTLS). Default true when `caFile` is set. */
  verify?: boolean;
}

/** A nats-server config file's `tls` block (the command line cannot express every option). */
function tlsBlock(tls: NatsServerTls): string {
  const verify = tls.verify ?? tls.caFile !== undefined;
  if (verify && tls.caFile === undefined) throw new Error('NatsServer: tls.verify needs tls.caFile');
  const lines = [
    `  cert_file: ${JSON.stringify(tls.certFile)}`,
    `  key_file: ${JSON.stringify(tls.keyFile)}`,
    ...(tls.caFile !== undefined ? [`  ca_file: ${JSON.stringify(tls.caFile)}`] : []),
    `  verify: ${verify}`,
    '  timeout: 2',
  ];
  return `tls {\n${lines.join('\n')}\n}\n`;
}

/**
 * A real nats-server with JetStream on its own port and store directory. It can be killed
 * (SIGKILL, like a crash) and started again on the same port and store, which is what the
 * durability tests need.
 */
export class NatsServer {
  private child: ChildProcess | undefined;
  private ownDir: TempDir | undefined;
  private configDir: TempDir | undefined;
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
    const args = [...(options.args ?? [])];
    let configDir: TempDir | undefined;
    if (options.tls) {
      configDir = await tempDir('aimass-nats-conf-');
      const file = join(configDir.path, 'nats-server.conf');
      await writeFile(file, tlsBlock(options.tls));
      args.unshift('-c', file);
    }
    const server = new NatsServer(options.port ?? (await freePort()), storeDir, args);
    server.ownDir = ownDir;
    server.configDir = configDir;
    try {
      await server.launch();
    } catch (err) {
      await configDir?.remove();
      await ownDir?.remove();
      throw err;
    }
    return server;
  }

  /** The same with `tls`: nats.js starts TLS because the server requires it, not from the scheme. */
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
    await this.configDir?.remove();
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
