import type { Logger } from 'pino';
import type { GrpcServer } from './server.js';

export interface InstallSignalHandlersOptions {
  logger: Logger;
  /** Default SIGTERM (Kubernetes) and SIGINT (Ctrl-C). */
  signals?: readonly NodeJS.Signals[] | undefined;
  /** Run in order after the server has drained: close connections, flush telemetry, … */
  onShutdown?: ReadonlyArray<() => Promise<void> | void> | undefined;
  /** How to end the process; `process.exit` by default. */
  exit?: ((code: number) => void) | undefined;
}

export interface SignalHandlers {
  /** Settles once shutdown has finished (just before `exit` is called), with the exit code. */
  readonly stopped: Promise<number>;
  uninstall(): void;
}

/**
 * On the first signal: drain the server, run the shutdown hooks, exit 0 (1 if a hook failed).
 * A second signal while draining cuts everything off and exits 1 at once.
 */
export function installSignalHandlers(
  server: Pick<GrpcServer, 'drain' | 'forceShutdown'>,
  options: InstallSignalHandlersOptions,
): SignalHandlers {
  const { logger } = options;
  const signals = options.signals ?? ['SIGTERM', 'SIGINT'];
  const exit = options.exit ?? ((code: number) => process.exit(code));
  let resolveStopped!: (code: number) => void;
  const stopped = new Promise<number>((r) => (resolveStopped = r));
  let shuttingDown = false;

  const finish = (code: number) => {
    resolveStopped(code);
    exit(code);
  };

  const onSignal = (signal: NodeJS.Signals) => {
    if (shuttingDown) {
      logger.warn({ signal }, 'second signal: stopping now');
      server.forceShutdown();
      finish(1);
      return;
    }
    shuttingDown = true;
    logger.info({ signal }, 'shutting down');
    void (async () => {
      let code = 0;
      try {
        await server.drain();
      } catch (err) {
        logger.error({ err }, 'drain failed');
        code = 1;
      }
      for (const hook of options.onShutdown ?? []) {
        try {
          await hook();
        } catch (err) {
          logger.error({ err }, 'shutdown hook failed');
          code = 1;
        }
      }
      logger.info({ code }, 'stopped');
      finish(code);
    })();
  };

  for (const s of signals) process.on(s, onSignal);
  return {
    stopped,
    uninstall: () => {
      for (const s of signals) process.removeListener(s, onSignal);
    },
  };
}
