// The general-model service process. Wiring only: configuration, logger, telemetry, the service
// (worker pool, repository, gRPC server), graceful drain on SIGTERM/SIGINT.
import { clientSecurityFromConfig, configOrExit, createLogger, failFast, installSignalHandlers, setDefaultClientSecurity, startServiceTelemetry } from '@aimass/platform';
import { serviceConfigSchema } from './config.js';
import { startGeneralModel } from './service.js';

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

const service = await startGeneralModel(config, logger).catch((err: unknown) => failFast(err));
installSignalHandlers(service.server, { logger, onShutdown: [() => service.close(), () => telemetry.shutdown()] });
