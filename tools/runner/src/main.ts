// The one-process mode: `npm start`. Wiring only; see runner.ts.
import { configOrExit, createLogger, failFast, installSignalHandlers } from '@aimass/platform';
import { runnerConfigSchema } from './config.js';
import { embeddedServices } from './registry.js';
import { startPlatform } from './runner.js';

const config = configOrExit(runnerConfigSchema);
const logger = createLogger({ service: config.serviceName, level: config.log.level });

// A ConfigError found while starting (the auth section, a service's own section) exits 78 like one found above.
const platform = await startPlatform(config, logger, embeddedServices(config)).catch((err: unknown) => failFast(err));
installSignalHandlers(platform.server, { logger, onShutdown: [() => platform.stop()] });

const lines = [
  `AI Mass is running in one process (data in ${platform.dataDir})`,
  `  runner         ${platform.address}  (grpc.health.v1 for every service, server reflection)`,
  ...platform.services.map((s) => `  ${s.name.padEnd(14)} ${s.address}`),
];
lines.push('Ctrl-C (SIGINT) or SIGTERM drains and stops.');
process.stdout.write(`${lines.join('\n')}\n`);
