import * as grpc from '@grpc/grpc-js';
import * as ort from 'onnxruntime-node';
import { inference } from '@aimass/proto';
import { bindServer, newServer, type RunningServer } from './grpc-host.js';
import { rawFromTensor, tensorFromRaw } from './ort-tensors.js';

export interface NaiveServerOptions {
  readonly modelPath: string;
  readonly port?: number;
  /** Left at onnxruntime's defaults unless given: the naive user does not tune. */
  readonly sessionOptions?: ort.InferenceSession.SessionOptions;
}

/**
 * What a user would write instead of the service: a plain grpc-js server on the main thread
 * with one onnxruntime session, one session.run per request, no batching.
 */
export async function startNaiveServer(options: NaiveServerOptions): Promise<RunningServer> {
  const session = await ort.InferenceSession.create(options.modelPath, options.sessionOptions ?? {});
  const server = newServer();
  const modelInfer: grpc.handleUnaryCall<inference.ModelInferRequest, inference.ModelInferResponse> = (call, callback) => {
    const request = call.request;
    const feeds: Record<string, ort.Tensor> = {};
    request.inputs.forEach((input, i) => {
      feeds[input.name] = tensorFromRaw(input.datatype, input.shape, request.rawInputContents[i] ?? new Uint8Array());
    });
    session
      .run(feeds)
      .then((results) => {
        const outputs = session.outputNames.map((name) => ({ name, ...rawFromTensor(results[name] as ort.Tensor) }));
        callback(null, {
          modelName: request.modelName,
          modelVersion: request.modelVersion || '1',
          id: request.id,
          parameters: {},
          outputs: outputs.map((o) => ({ name: o.name, datatype: o.datatype, shape: o.shape, parameters: {} })),
          rawOutputContents: outputs.map((o) => o.raw),
        });
      })
      .catch((error: unknown) => callback({ code: grpc.status.INVALID_ARGUMENT, details: error instanceof Error ? error.message : String(error) }));
  };
  server.addService(inference.GRPCInferenceServiceService, { modelInfer } as unknown as grpc.UntypedServiceImplementation);
  const running = await bindServer(server, options.port);
  return {
    address: running.address,
    cpuSeconds: running.cpuSeconds,
    close: async () => {
      await running.close();
      await session.release();
    },
  };
}
