// How a service's main.ts puts the platform together: configuration (fail fast on mistakes),
// logger, telemetry, pseudonyms, gRPC server with health/reflection/deadlines, graceful drain.
//
// Run against the built package with any TypeScript runner, e.g.
//   AIMASS_SERVICE_NAME=hello AIMASS_GRPC__PORT=50051 AIMASS_PSEUDONYM__SECRET=$(openssl rand -base64 48) <runner> examples/hello-server.ts
// then: grpcurl -plaintext -max-time 5 -d '{"text":"hi"}' localhost:50051 aimass.platformtest.v1.EchoService/Get
import { fileURLToPath } from 'node:url';
import { loadPackageDefinition, type GrpcObject, type ServiceClientConstructor } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { z } from 'zod';
import {
  InvalidArgumentError,
  Pseudonymizer,
  baseConfigShape,
  configOrExit,
  createGrpcServer,
  createLogger,
  installSignalHandlers,
  pseudonymConfigSchema,
  startTelemetry,
  unary,
} from '../src/index.js';

// 1. Configuration: the shared keys plus this service's own section. Any mistake stops the
//    process with exit code 78 and a list naming each key, where it came from and what is expected.
const schema = z.strictObject({
  ...baseConfigShape,
  pseudonym: pseudonymConfigSchema,
  hello: z.strictObject({ greeting: z.string().min(1).default('hello') }).prefault({}),
});
const config = configOrExit(schema);

// 2. Telemetry first, so spans and trace ids exist for everything after it.
const telemetry = startTelemetry({
  serviceName: config.telemetry.serviceName ?? config.serviceName,
  enabled: config.telemetry.enabled,
  exporter: config.telemetry.exporter,
  otlpEndpoint: config.telemetry.otlpEndpoint,
});

// 3. Pseudonyms and logger: the logger turns any userId it is given into a pseudonym.
const pseudonymizer = Pseudonymizer.fromConfig(config.pseudonym);
const logger = createLogger({ service: config.serviceName, level: config.log.level, pseudonymizer });

// 4. Service definition (generated code or proto-loader) and handlers as plain async functions.
interface EchoRequest {
  text: string;
}
interface EchoResponse {
  text: string;
}
const protoFile = fileURLToPath(new URL('../test/fixtures/echo.proto', import.meta.url));
const pkg = loadPackageDefinition(loadSync(protoFile, { keepCase: true, defaults: true }));
const v1 = ((pkg['aimass'] as GrpcObject)['platformtest'] as GrpcObject)['v1'] as GrpcObject;
const { service: definition } = v1['EchoService'] as ServiceClientConstructor;

const server = createGrpcServer({
  config: config.grpc,
  logger,
  services: [
    {
      definition,
      implementation: {
        Get: unary<EchoRequest, EchoResponse>(async (request, ctx) => {
          if (request.text.length === 0) throw new InvalidArgumentError('text must not be empty', { field: 'text' });
          ctx.logger.debug({ remainingMs: ctx.remainingMs() }, 'greeting');
          return { text: `${config.hello.greeting}, ${request.text}` };
        }),
      },
    },
  ],
});

// 5. SIGTERM/SIGINT: drain (health NOT_SERVING, refuse new calls, finish in-flight ones), then
//    close what else the service holds, then exit.
installSignalHandlers(server, { logger, onShutdown: [() => telemetry.shutdown()] });

const { address } = await server.start();
logger.info({ address }, 'hello server ready');
