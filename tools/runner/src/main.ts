// The one-process mode: `npm start`. Wiring only; see runner.ts.
import { configOrExit, createLogger, installSignalHandlers } from '@aimass/platform';
import { runnerConfigSchema } from './config.js';
import { EMBEDDED_SERVICES } from './registry.js';
import { startPlatform } from './runner.js';

const config = configOrExit(runnerConfigSchema);
const logger = createLogger({ service: config.serviceName, level: config.log.level });

const platform = await startPlatform(config, logger, EMBEDDED_SERVICES);
installSignalHandlers(platform.server, { logger, onShutdown: [() => platform.stop()] });

const lines = [
  `AI Mass is running in one process (data in ${platform.dataDir})`,
  `  runner      ${platform.address}  (grpc.health.v1 for every service, server reflection)`,
  ...platform.services.map((s) => `  ${s.name.padEnd(11)} ${s.address}`),
];
if (platform.services.length === 0) {
  lines.push('  no services are registered yet: they arrive with general-model, personal-model, fusion, updater and privacy');
}
lines.push('Ctrl-C (SIGINT) or SIGTERM drains and stops.');
process.stdout.write(`${lines.join('\n')}\n`);
