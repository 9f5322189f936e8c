import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';

const require = createRequire(import.meta.url);
const loaderOptions = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };

type Ctor = new (address: string, credentials: grpc.ChannelCredentials) => grpc.Client;

function clientConstructor(protoPath: string, path: string[]): Ctor {
  const loaded = grpc.loadPackageDefinition(loadSync(protoPath, loaderOptions)) as Record<string, unknown>;
  let node: unknown = loaded;
  for (const part of path) node = (node as Record<string, unknown>)[part];
  return node as Ctor;
}

const healthProto = require.resolve('grpc-health-check/proto/health/v1/health.proto');
const reflectionProto = join(dirname(require.resolve('@grpc/reflection/package.json')), 'build/proto/grpc/reflection/v1/reflection.proto');

/** grpc.health.v1.Health/Check as a probe or grpc_health_probe would call it. */
export async function healthStatus(address: string, service = ''): Promise<string> {
  const Health = clientConstructor(healthProto, ['grpc', 'health', 'v1', 'Health']);
  const client = new Health(address, grpc.credentials.createInsecure()) as grpc.Client & {
    Check(req: object, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: { status: string }) => void): void;
  };
  try {
    return await new Promise((resolve, reject) =>
      client.Check({ service }, { deadline: Date.now() + 5_000 }, (err, res) => (err ? reject(err) : resolve(res?.status ?? ''))),
    );
  } finally {
    client.close();
  }
}

/** The services a reflection client (grpcurl list) sees. */
export async function reflectedServices(address: string): Promise<string[]> {
  const Reflection = clientConstructor(reflectionProto, ['grpc', 'reflection', 'v1', 'ServerReflection']);
  const client = new Reflection(address, grpc.credentials.createInsecure()) as grpc.Client & {
    ServerReflectionInfo(opts: grpc.CallOptions): grpc.ClientDuplexStream<object, { list_services_response?: { service: { name: string }[] } }>;
  };
  try {
    return await new Promise((resolve, reject) => {
      const call = client.ServerReflectionInfo({ deadline: Date.now() + 5_000 });
      call.on('data', (res) => {
        resolve((res.list_services_response?.service ?? []).map((s: { name: string }) => s.name));
        call.end();
      });
      call.on('error', reject);
      call.write({ list_services: '*' });
    });
  } finally {
    client.close();
  }
}
