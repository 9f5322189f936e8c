import * as grpc from '@grpc/grpc-js';
import { DEFAULT_FLOW_CONTROL_WINDOWS } from '@aimass/platform';
import { inference } from '@aimass/proto';
import { bindServer, newServer, type RunningServer } from './grpc-host.js';
import { rowBytes, type TensorSpec } from './tensors.js';

export interface EchoServerOptions {
  /** The outputs the real model returns; the echo answers with zeros of the same shape. */
  readonly outputs: readonly TensorSpec[];
  readonly port?: number;
}

/**
 * The transport limit: a plain grpc-js server that decodes each ModelInfer request and answers
 * with outputs of the shape the real model would return, without running anything. Nothing a
 * server does on this path can be faster, so the service is measured against it. It gets the
 * platform's HTTP/2 windows, as the service does, so the limit has the same transport.
 */
export async function startEchoServer(options: EchoServerOptions): Promise<RunningServer> {
  const zeroes = new Map<number, Buffer[]>();
  const outputsFor = (batch: number): Buffer[] => {
    let buffers = zeroes.get(batch);
    if (buffers === undefined) {
      buffers = options.outputs.map((o) => Buffer.alloc(rowBytes(o) * batch));
      zeroes.set(batch, buffers);
    }
    return buffers;
  };
  const server = newServer();
  const modelInfer: grpc.handleUnaryCall<inference.ModelInferRequest, inference.ModelInferResponse> = (call, callback) => {
    const request = call.request;
    const first = request.inputs[0];
    if (first === undefined || first.shape.length === 0) {
      callback({ code: grpc.status.INVALID_ARGUMENT, details: 'request has no batched input' });
      return;
    }
    const batch = first.shape[0] as number;
    callback(null, {
      modelName: request.modelName,
      modelVersion: request.modelVersion || '1',
      id: request.id,
      parameters: {},
      outputs: options.outputs.map((o) => ({ name: o.name, datatype: o.datatype, shape: [batch, ...o.rowShape], parameters: {} })),
      rawOutputContents: outputsFor(batch),
    });
  };
  server.addService(inference.GRPCInferenceServiceService, { modelInfer } as unknown as grpc.UntypedServiceImplementation);
  return bindServer(server, options.port, DEFAULT_FLOW_CONTROL_WINDOWS);
}
