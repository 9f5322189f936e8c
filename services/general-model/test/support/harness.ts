import { Metadata, credentials, type Client, type ServiceError } from '@grpc/grpc-js';
import { captureLogs as capture, type CapturedLogs } from '@aimass/testing';
import { inference, v1 } from '@aimass/proto';
import type { GeneralModelConfigInput } from '../../src/config.js';
import { startGeneralModel, type RunningGeneralModel } from '../../src/service.js';

export type LogSink = CapturedLogs;

export function captureLogs(): LogSink {
  return capture('general-model-test', 'info');
}

export async function startService(
  repository: string,
  generalModel: Omit<GeneralModelConfigInput, 'repository'> = {},
  logs: LogSink = captureLogs(),
): Promise<RunningGeneralModel & { logs: LogSink }> {
  const running = await startGeneralModel(
    {
      grpc: { host: '127.0.0.1', port: 0, drainTimeoutMs: 2_000 },
      generalModel: { poolSize: 1, executionProviders: ['cpu'], ...generalModel, repository },
    },
    logs.logger,
  );
  return Object.assign(running, { logs });
}

export function inferenceClient(address: string): inference.GRPCInferenceServiceClient {
  return new inference.GRPCInferenceServiceClient(address, credentials.createInsecure());
}

export function taskClient(address: string): v1.GeneralModelServiceClient {
  return new v1.GeneralModelServiceClient(address, credentials.createInsecure());
}

type Unary<Req, Res> = (
  request: Req,
  metadata: Metadata,
  options: { deadline: Date },
  callback: (err: ServiceError | null, res: Res) => void,
) => unknown;

/** Calls a unary method with a deadline; rejects with the grpc-js ServiceError. */
export function call<Req, Res>(
  client: Client,
  method: Unary<Req, Res>,
  request: Req,
  options: { deadlineMs?: number; onMetadata?: (md: Metadata) => void } = {},
): Promise<Res> {
  return new Promise((resolve, reject) => {
    const c = method.call(client, request, new Metadata(), { deadline: new Date(Date.now() + (options.deadlineMs ?? 10_000)) }, (err, res) =>
      err ? reject(err) : resolve(res),
    ) as { on?: (event: string, fn: (md: Metadata) => void) => void };
    if (options.onMetadata) c.on?.('metadata', options.onMetadata);
  });
}

/** Awaits a rejected call and returns its ServiceError. */
export async function callError(promise: Promise<unknown>): Promise<ServiceError> {
  try {
    await promise;
  } catch (err) {
    return err as ServiceError;
  }
  throw new Error('expected the call to fail');
}

export function fp32Request(model: string, x: number[], rows: number, extra: Partial<inference.ModelInferRequest> = {}): inference.ModelInferRequest {
  return {
    modelName: model,
    modelVersion: '',
    id: '',
    parameters: {},
    inputs: [{ name: 'x', datatype: 'FP32', shape: [rows, x.length / rows], parameters: {}, contents: contents({ fp32Contents: x }) }],
    outputs: [],
    rawInputContents: [],
    ...extra,
  };
}

export function rawFp32Request(model: string, x: number[], rows: number, extra: Partial<inference.ModelInferRequest> = {}): inference.ModelInferRequest {
  return {
    ...fp32Request(model, x, rows, extra),
    inputs: [{ name: 'x', datatype: 'FP32', shape: [rows, x.length / rows], parameters: {} }],
    rawInputContents: [Buffer.from(new Float32Array(x).buffer)],
  };
}

export function contents(partial: Partial<inference.InferTensorContents>): inference.InferTensorContents {
  return { boolContents: [], intContents: [], int64Contents: [], uintContents: [], uint64Contents: [], fp32Contents: [], fp64Contents: [], bytesContents: [], ...partial };
}

export function rawFloats(buf: Buffer | undefined): number[] {
  if (!buf) return [];
  const copy = Buffer.from(buf);
  return Array.from(new Float32Array(copy.buffer, copy.byteOffset, copy.byteLength / 4));
}

/**
 * grpc.health.v1.Health/Check for one service, encoded by hand (request: field 1 string; response:
 * field 1 enum) so the test needs no health client package. 1 = SERVING, 2 = NOT_SERVING.
 */
export function healthStatus(client: Client, service: string): Promise<number> {
  const name = Buffer.from(service);
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      '/grpc.health.v1.Health/Check',
      () => Buffer.concat([Buffer.from([0x0a, name.length]), name]),
      (buf: Buffer) => (buf.length >= 2 && buf[0] === 0x08 ? buf[1]! : 0),
      {},
      new Metadata(),
      { deadline: new Date(Date.now() + 5_000) },
      (err, status) => (err ? reject(err) : resolve(status!)),
    );
  });
}
