// The fusion service process. Wiring only: configuration, logger, telemetry, the store, the
// service (clients of general-model and personal-model, gRPC server), graceful drain on SIGTERM/SIGINT.
import { configOrExit, createLogger, failFast, installSignalHandlers, startServiceTelemetry } from '@aimass/platform';
import { openConfiguredStore } from '@aimass/storage';
import { serviceConfigSchema } from './config.js';
import { startFusion } from './service.js';

const config = configOrExit(serviceConfigSchema);
const telemetry = startServiceTelemetry(config);
const logger = createLogger({ service: config.serviceName, level: config.log.level });

const store = await openConfiguredStore(config.store).catch((err: unknown) => failFast(err));
const service = await startFusion(config, logger, { store }).catch((err: unknown) => failFast(err));
installSignalHandlers(service.server, { logger, onShutdown: [() => service.close(), () => store.close(), () => telemetry.shutdown()] });
