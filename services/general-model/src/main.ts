// The general-model service process. Wiring only: configuration, logger, telemetry, the service
// (worker pool, repository, gRPC server), graceful drain on SIGTERM/SIGINT.
import { configOrExit, createLogger, failFast, installSignalHandlers, startServiceTelemetry } from '@aimass/platform';
import { serviceConfigSchema } from './config.js';
import { startGeneralModel } from './service.js';

const config = configOrExit(serviceConfigSchema);
const telemetry = startServiceTelemetry(config);
const logger = createLogger({ service: config.serviceName, level: config.log.level });

const service = await startGeneralModel(config, logger).catch((err: unknown) => failFast(err));
installSignalHandlers(service.server, { logger, onShutdown: [() => service.close(), () => telemetry.shutdown()] });
