// The one-process mode: `npm start`. Wiring only; see runner.ts.
import { configOrExit, createLogger, installSignalHandlers } from '@aimass/platform';
import { runnerConfigSchema } from './config.js';
import { embeddedServices } from './registry.js';
import { startPlatform } from './runner.js';

const config = configOrExit(runnerConfigSchema);
const logger = createLogger({ service: config.serviceName, level: config.log.level });

const platform = await startPlatform(config, logger, embeddedServices(config));
installSignalHandlers(platform.server, { logger, onShutdown: [() => platform.stop()] });

const lines = [
  `AI Mass is running in one process (data in ${platform.dataDir})`,
  `  runner         ${platform.address}  (grpc.health.v1 for every service, server reflection)`,
  ...platform.services.map((s) => `  ${s.name.padEnd(14)} ${s.address}`),
];
lines.push('Ctrl-C (SIGINT) or SIGTERM drains and stops.');
process.stdout.write(`${lines.join('\n')}\n`);
