// The fusion service process. Wiring only: configuration, logger, telemetry, the store, the event
// bus, the service (clients of general-model and personal-model, gRPC server), graceful drain on
// SIGTERM/SIGINT.
import { openConfiguredBus } from '@aimass/events';
import { configOrExit, createLogger, failFast, installSignalHandlers, startServiceTelemetry } from '@aimass/platform';
import { openConfiguredStore } from '@aimass/storage';
import { serviceConfigSchema } from './config.js';
import { startFusion } from './service.js';

const config = configOrExit(serviceConfigSchema);
const telemetry = startServiceTelemetry(config);
const logger = createLogger({ service: config.serviceName, level: config.log.level });

const store = await openConfiguredStore(config.store).catch((err: unknown) => failFast(err));
const bus = await openConfiguredBus(config.events, { name: config.serviceName }).catch((err: unknown) => failFast(err));
const service = await startFusion(config, logger, { store, bus }).catch((err: unknown) => failFast(err));
// The bus closes after the drain, so Feedback calls in flight still get their acknowledgements.
installSignalHandlers(service.server, {
  logger,
  onShutdown: [() => service.close(), () => bus?.close(), () => store.close(), () => telemetry.shutdown()],
});
