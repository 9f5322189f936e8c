// The privacy service process. Wiring only: configuration, logger, telemetry, the store (SQLite
// file or MongoDB), the event bus (NATS JetStream), the service, graceful drain on SIGTERM/SIGINT.
import { openConfiguredBus } from '@aimass/events';
import { clientSecurityFromConfig, configOrExit, createLogger, failFast, installSignalHandlers, setDefaultClientSecurity, startServiceTelemetry } from '@aimass/platform';
import { openConfiguredStore } from '@aimass/storage';
import { serviceConfigSchema } from './config.js';
import { startPrivacy } from './service.js';

const config = configOrExit(serviceConfigSchema);
// One identity per process towards the other services: every internal client (createClient)
// uses grpc.clientTls unless its call site says otherwise. Set before any client exists.
try {
  setDefaultClientSecurity(clientSecurityFromConfig(config.grpc));
} catch (err) {
  failFast(err);
}
const telemetry = startServiceTelemetry(config);
const logger = createLogger({ service: config.serviceName, level: config.log.level });

const store = await openConfiguredStore(config.store).catch((err: unknown) => failFast(err));
// The events schema refuses kind none, so a bus is always opened here.
const bus = (await openConfiguredBus(config.events, { name: config.serviceName }).catch((err: unknown) => failFast(err)))!;
const service = await startPrivacy(config, logger, { store, bus }).catch((err: unknown) => failFast(err));
installSignalHandlers(service.server, { logger, onShutdown: [() => service.close(), () => bus.close(), () => store.close(), () => telemetry.shutdown()] });
