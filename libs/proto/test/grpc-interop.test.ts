// Wire compatibility: servers built on the generated ts-proto definitions talk to "foreign"
// clients that only know the .proto (loaded by @grpc/proto-loader from the descriptor set, as
// a Triton/KServe client or grpcurl would), and the other way round.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { fromBinary } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema } from '@bufbuild/protobuf/wkt';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_LOADER_OPTIONS, inference, packageDefinition, SERVICE_NAMES, v1 } from '@aimass/proto';

const PROTO_DIR = fileURLToPath(new URL('../../../proto', import.meta.url));

type UnaryMethod = (request: unknown, callback: (error: grpc.ServiceError | null, response: unknown) => void) => void;

function fp32Bytes(values: number[]): Buffer {
  return Buffer.from(new Float32Array(values).buffer);
}

function fp32Values(bytes: Uint8Array): number[] {
  return [...new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength))];
}

function unimplemented(_call: unknown, callback: grpc.sendUnaryData<never>): void {
  callback({ code: grpc.status.UNIMPLEMENTED, details: 'not part of this test' });
}

/** A constructor for a service, from a proto-loader package definition (the foreign view). */
function foreignService(definition: grpc.GrpcObject, fullName: string): grpc.ServiceClientConstructor {
  let node: unknown = definition;
  for (const part of fullName.split('.')) node = (node as grpc.GrpcObject)[part];
  return node as grpc.ServiceClientConstructor;
}

function callUnary<T>(client: grpc.Client, method: string, request: unknown): Promise<T> {
  const fn = (client as unknown as Record<string, UnaryMethod>)[method];
  if (!fn) throw new Error(`no method ${method}`);
  return new Promise((resolve, reject) => {
    fn.call(client, request, (error, response) => (error ? reject(error) : resolve(response as T)));
  });
}

async function listen(server: grpc.Server): Promise<string> {
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
  );
  return `127.0.0.1:${port}`;
}

interface ForeignParameter {
  uint64_param?: string | number;
  parameter_choice?: string;
}

interface ForeignInferResponse<P> {
  model_name: string;
  id: string;
  outputs: { name: string; datatype: string; shape: string[] }[];
  raw_output_contents: Buffer[];
  parameters: P;
}

const FOREIGN_INFER_REQUEST = {
  model_name: 'adder',
  id: 'req-7',
  inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3] }],
  raw_input_contents: [fp32Bytes([1, -2.5, 3])],
};

const ECHOED = { parameter_choice: 'uint64_param', uint64_param: '5' };

function expectDoubled(response: ForeignInferResponse<unknown>): void {
  expect(response.model_name).toBe('adder');
  expect(response.id).toBe('req-7');
  expect(response.outputs.map((o) => [o.name, o.datatype, o.shape])).toEqual([['x_doubled', 'FP32', ['1', '3']]]);
  expect(fp32Values(response.raw_output_contents[0]!)).toEqual([2, -5, 6]);
}

// Doubles every FP32 element of every raw input: enough to see the data crossed both ways intact.
const kserveServer: inference.GRPCInferenceServiceServer = {
  serverLive: (_call, callback) => callback(null, { live: true }),
  serverReady: unimplemented,
  modelReady: unimplemented,
  serverMetadata: unimplemented,
  modelMetadata: unimplemented,
  modelInfer: (call, callback) => {
    const request = call.request;
    callback(
      null,
      inference.ModelInferResponse.fromPartial({
        modelName: request.modelName,
        modelVersion: '1',
        id: request.id,
        parameters: { echoed: request.parameters['priority'] ?? {} },
        outputs: request.inputs.map((input) => ({ name: `${input.name}_doubled`, datatype: input.datatype, shape: input.shape })),
        rawOutputContents: request.rawInputContents.map((raw) => fp32Bytes(fp32Values(raw).map((x) => x * 2))),
      }),
    );
  },
  repositoryIndex: unimplemented,
  repositoryModelLoad: unimplemented,
  repositoryModelUnload: unimplemented,
  modelStatistics: unimplemented,
};

const predictServer: v1.InferenceServiceServer = {
  predict: unimplemented,
  predictBatch: unimplemented,
  feedback: unimplemented,
  predictStream: (call) => {
    call.on('data', (request: v1.PredictStreamRequest) => {
      const kind = request.input?.kind;
      const result: v1.PredictItemResult =
        kind?.$case === 'text'
          ? {
              itemId: request.itemId,
              outcome: {
                $case: 'prediction',
                value: v1.Prediction.fromPartial({
                  predictionId: `p-${request.itemId}`,
                  label: kind.value.length > 3 ? 'long' : 'short',
                  probabilities: [{ label: 'long', index: 0, probability: 0.75 }],
                  provenance: {
                    appliedStrategy: v1.FusionStrategy.FUSION_STRATEGY_GENERAL_ONLY,
                    fallbacks: [{ reason: v1.FallbackReason.FALLBACK_REASON_NO_PERSONAL_MODEL, role: v1.ModelRole.MODEL_ROLE_PERSONAL }],
                  },
                }),
              },
            }
          : { itemId: request.itemId, outcome: { $case: 'error', value: { code: grpc.status.INVALID_ARGUMENT, message: 'text only' } } };
      call.write({ result });
    });
    call.on('end', () => call.end());
  },
};

describe('gRPC wire compatibility', () => {
  const server = new grpc.Server();
  const foreign = grpc.loadPackageDefinition(packageDefinition());
  let address = '';

  beforeAll(async () => {
    server.addService(inference.GRPCInferenceServiceService, kserveServer);
    server.addService(v1.InferenceServiceService, predictServer);
    new ReflectionService(packageDefinition()).addToServer(server);
    address = await listen(server);
  });

  afterAll(() => {
    server.forceShutdown();
  });

  it('a foreign KServe client calls ServerLive and ModelInfer with raw tensors', async () => {
    const Client = foreignService(foreign, SERVICE_NAMES.inference);
    const client = new Client(address, grpc.credentials.createInsecure());
    try {
      const live = await callUnary<{ live: boolean }>(client, 'ServerLive', {});
      expect(live).toEqual({ live: true });

      // Maps travel as entry lists for descriptor-built clients (see packageDefinition()).
      const response = await callUnary<ForeignInferResponse<{ key: string; value: ForeignParameter }[]>>(client, 'ModelInfer', {
        ...FOREIGN_INFER_REQUEST,
        parameters: [{ key: 'priority', value: { uint64_param: 5 } }],
      });

      expectDoubled(response);
      expect(response.parameters).toEqual([{ key: 'echoed', value: expect.objectContaining(ECHOED) }]);
    } finally {
      client.close();
    }
  });

  it('a client built from the .proto text (as Triton/KServe clients are) calls ModelInfer', async () => {
    const definition = loadSync('inference/grpc_service.proto', { ...DEFAULT_LOADER_OPTIONS, includeDirs: [PROTO_DIR] });
    const Client = foreignService(grpc.loadPackageDefinition(definition), SERVICE_NAMES.inference);
    const client = new Client(address, grpc.credentials.createInsecure());
    try {
      const response = await callUnary<ForeignInferResponse<Record<string, ForeignParameter>>>(client, 'ModelInfer', {
        ...FOREIGN_INFER_REQUEST,
        parameters: { priority: { uint64_param: 5 } },
      });

      expectDoubled(response);
      expect(response.parameters['echoed']).toMatchObject(ECHOED);
    } finally {
      client.close();
    }
  });

  it('the generated client calls a foreign KServe server', async () => {
    const Foreign = foreignService(foreign, SERVICE_NAMES.inference);
    const foreignServer = new grpc.Server();
    foreignServer.addService(Foreign.service, {
      ModelMetadata: (call: grpc.ServerUnaryCall<{ name: string }, unknown>, callback: grpc.sendUnaryData<unknown>) =>
        callback(null, {
          name: call.request.name,
          versions: ['1', '2'],
          platform: 'onnxruntime_onnx',
          inputs: [{ name: 'input_ids', datatype: 'INT64', shape: [-1, 128] }],
          outputs: [{ name: 'probs', datatype: 'FP32', shape: [-1, 4] }],
        }),
    });
    const foreignAddress = await listen(foreignServer);
    const client = new inference.GRPCInferenceServiceClient(foreignAddress, grpc.credentials.createInsecure());
    try {
      const metadata = await new Promise<inference.ModelMetadataResponse>((resolve, reject) =>
        client.modelMetadata({ name: 'mail-intent', version: '' }, (error, response) => (error ? reject(error) : resolve(response))),
      );
      expect(metadata).toEqual({
        name: 'mail-intent',
        versions: ['1', '2'],
        platform: 'onnxruntime_onnx',
        inputs: [{ name: 'input_ids', datatype: 'INT64', shape: [-1, 128] }],
        outputs: [{ name: 'probs', datatype: 'FP32', shape: [-1, 4] }],
      });
    } finally {
      client.close();
      foreignServer.forceShutdown();
    }
  });

  it('a foreign client streams PredictStream with oneofs both ways', async () => {
    const Client = foreignService(foreign, SERVICE_NAMES.predict);
    const client = new Client(address, grpc.credentials.createInsecure());
    try {
      const stream = (client as unknown as Record<string, () => grpc.ClientDuplexStream<unknown, unknown>>)['PredictStream']!.call(client);
      const received: unknown[] = [];
      const done = new Promise<void>((resolve, reject) => {
        stream.on('data', (message) => received.push(message));
        stream.on('error', reject);
        stream.on('end', resolve);
      });
      stream.write({ item_id: 'a', user_id: 'u', input: { text: 'hello' } });
      stream.write({ item_id: 'b', user_id: 'u', input: { mail: { subject: 's', body: 'b' } } });
      stream.end();
      await done;

      expect(received).toHaveLength(2);
      expect(received[0]).toMatchObject({
        result: {
          item_id: 'a',
          outcome: 'prediction',
          prediction: {
            prediction_id: 'p-a',
            label: 'long',
            probabilities: [{ label: 'long', index: 0, probability: 0.75 }],
            provenance: {
              applied_strategy: 'FUSION_STRATEGY_GENERAL_ONLY',
              fallbacks: [{ reason: 'FALLBACK_REASON_NO_PERSONAL_MODEL', role: 'MODEL_ROLE_PERSONAL' }],
            },
          },
        },
      });
      expect(received[1]).toMatchObject({
        result: { item_id: 'b', outcome: 'error', error: { code: grpc.status.INVALID_ARGUMENT, message: 'text only' } },
      });
    } finally {
      client.close();
    }
  });

  it('server reflection built from packageDefinition() lists every service and serves their files', async () => {
    const reflectionProto = createRequire(import.meta.url).resolve('@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto');
    const reflection = grpc.loadPackageDefinition(loadSync(reflectionProto, DEFAULT_LOADER_OPTIONS));
    const Client = foreignService(reflection, 'grpc.reflection.v1.ServerReflection');
    const client = new Client(address, grpc.credentials.createInsecure());
    try {
      const stream = (client as unknown as Record<string, () => grpc.ClientDuplexStream<unknown, unknown>>)['ServerReflectionInfo']!.call(client);
      const responses: {
        list_services_response?: { service: { name: string }[] };
        file_descriptor_response?: { file_descriptor_proto: Buffer[] };
      }[] = [];
      const done = new Promise<void>((resolve, reject) => {
        stream.on('data', (message) => responses.push(message as (typeof responses)[number]));
        stream.on('error', reject);
        stream.on('end', resolve);
      });
      stream.write({ list_services: '' });
      stream.write({ file_containing_symbol: 'aimass.v1.PredictRequest' });
      stream.end();
      await done;

      const services = responses[0]?.list_services_response?.service.map((s) => s.name) ?? [];
      expect(services).toEqual(expect.arrayContaining(Object.values(SERVICE_NAMES)));

      const fileNames = (responses[1]?.file_descriptor_response?.file_descriptor_proto ?? []).map(
        (bytes) => fromBinary(FileDescriptorProtoSchema, bytes).name,
      );
      // The original files with their imports, not protobufjs' per-package merge.
      expect(fileNames.sort()).toEqual(['aimass/v1/common.proto', 'aimass/v1/inference.proto', 'google/protobuf/duration.proto', 'google/protobuf/timestamp.proto']);
    } finally {
      client.close();
    }
  });
});
