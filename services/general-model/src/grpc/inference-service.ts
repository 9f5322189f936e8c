import { basename } from 'node:path';
import { Metadata, type handleUnaryCall } from '@grpc/grpc-js';
import { InvalidArgumentError, NotFoundError, UnimplementedError, unary } from '@aimass/platform';
import type { inference } from '@aimass/proto';
import { toResponseOutputs } from '../domain/batch-tensors.js';
import { ModelConfigError, parseModelConfigJson, type ModelConfig } from '../domain/model-config.js';
import type { DurationStat } from '../domain/statistics.js';
import { validateInferRequest } from '../domain/tensor.js';
import type { LoadedVersion, ModelManager } from '../runtime/model-manager.js';
import { batchTenantOf } from './tenant.js';

/** Reported by ModelMetadata as `platform`, as Triton does for ONNX models. */
export const PLATFORM = 'onnxruntime_onnx';
/** Response header of ModelMetadata naming the execution provider the version's sessions use. */
export const EXECUTION_PROVIDER_HEADER = 'aimass-execution-provider';

export interface InferenceServiceOptions {
  manager: ModelManager;
  serverName: string;
  serverVersion: string;
  /** Triton's repository name: this server has one, named after its directory. */
  repositoryName?: string | undefined;
}

/** Sends response headers computed from the request before the handler runs. */
function withHeaders<Req, Res>(headers: (request: Req) => Metadata | undefined, handler: handleUnaryCall<Req, Res>): handleUnaryCall<Req, Res> {
  return (call, callback) => {
    let md: Metadata | undefined;
    try {
      md = headers(call.request);
    } catch {
      md = undefined; // the handler reports the error (unknown model...)
    }
    if (md) call.sendMetadata(md);
    handler(call, callback);
  };
}

function requireModelName(name: string, field: string): void {
  if (name === '') throw new InvalidArgumentError(`${field} is required`, { field });
}

function tensorMetadata(spec: { name: string; datatype: string; dims: number[] }): inference.ModelMetadataResponse_TensorMetadata {
  return { name: spec.name, datatype: spec.datatype, shape: [...spec.dims] };
}

function loadOverride(parameters: inference.RepositoryModelLoadRequest['parameters']): ModelConfig | undefined {
  let override: ModelConfig | undefined;
  for (const [key, value] of Object.entries(parameters)) {
    const choice = value.parameterChoice;
    if (key === 'config') {
      if (choice?.$case !== 'stringParam') throw new InvalidArgumentError('parameter "config" must be a string (JSON model configuration)', { field: 'parameters.config' });
      try {
        override = parseModelConfigJson(choice.value, 'parameter "config"');
      } catch (err) {
        if (err instanceof ModelConfigError) throw new InvalidArgumentError(err.message, { field: 'parameters.config' });
        throw err;
      }
    } else if (key.startsWith('file:')) {
      throw new UnimplementedError('loading model files sent in the request ("file:" parameters) is not supported: put them in the repository');
    } else {
      throw new InvalidArgumentError(`unknown load parameter "${key}" (supported: config)`, { field: `parameters.${key}` });
    }
  }
  return override;
}

const duration = (d: DurationStat): inference.StatisticDuration => ({ count: d.count, ns: Math.min(d.ns, Number.MAX_SAFE_INTEGER) });

/** A version's statistics as Triton reports them; the response cache counters stay zero (there is none). */
function statisticsOf(v: LoadedVersion): inference.ModelStatistics {
  const s = v.statistics.snapshot();
  return {
    name: v.model,
    version: String(v.version),
    lastInference: s.lastInferenceMs,
    inferenceCount: s.inferenceCount,
    executionCount: s.executionCount,
    inferenceStats: {
      success: duration(s.success),
      fail: duration(s.fail),
      queue: duration(s.queue),
      computeInput: duration(s.computeInput),
      computeInfer: duration(s.computeInfer),
      computeOutput: duration(s.computeOutput),
      cacheHit: { count: 0, ns: 0 },
      cacheMiss: { count: 0, ns: 0 },
    },
    batchStats: s.batches.map((b) => ({ batchSize: b.batchSize, computeInput: duration(b.computeInput), computeInfer: duration(b.computeInfer), computeOutput: duration(b.computeOutput) })),
  };
}

/**
 * The Open Inference Protocol (KServe v2) gRPC API with Triton's repository extension.
 * Responses to ModelInfer mirror the request: raw_output_contents for a request that used
 * raw_input_contents (what Triton clients send), typed contents otherwise.
 */
export function createInferenceService(options: InferenceServiceOptions): inference.GRPCInferenceServiceServer {
  const { manager } = options;
  const repositoryName = options.repositoryName ?? basename(manager.repository.root);

  const checkKnown = async (name: string) => {
    if (manager.modelState(name) === undefined && !(await manager.repository.exists(name))) {
      throw new NotFoundError(`model '${name}' is not in the repository`);
    }
  };

  const metadataOf = (version: LoadedVersion, versions: string[]): inference.ModelMetadataResponse => ({
    name: version.model,
    versions,
    platform: PLATFORM,
    inputs: version.signature.inputs.map(tensorMetadata),
    outputs: version.signature.outputs.map(tensorMetadata),
  });

  return {
    serverLive: unary<inference.ServerLiveRequest, inference.ServerLiveResponse>(() => ({ live: true })),

    serverReady: unary<inference.ServerReadyRequest, inference.ServerReadyResponse>(() => ({ ready: manager.isServerReady() })),

    serverMetadata: unary<inference.ServerMetadataRequest, inference.ServerMetadataResponse>(() => ({
      name: options.serverName,
      version: options.serverVersion,
      extensions: ['model_repository', 'statistics'],
    })),

    modelReady: unary<inference.ModelReadyRequest, inference.ModelReadyResponse>(async (req) => {
      requireModelName(req.name, 'name');
      await checkKnown(req.name);
      return { ready: manager.isModelReady(req.name, req.version) };
    }),

    modelMetadata: withHeaders(
      (req: inference.ModelMetadataRequest) => {
        const v = manager.resolve(req.name, req.version);
        const md = new Metadata();
        md.set(EXECUTION_PROVIDER_HEADER, v.executionProvider);
        return md;
      },
      unary<inference.ModelMetadataRequest, inference.ModelMetadataResponse>((req) => {
        requireModelName(req.name, 'name');
        const version = manager.resolve(req.name, req.version);
        return metadataOf(
          version,
          manager.loadedVersions(req.name).map((v) => String(v.version)),
        );
      }),
    ),

    modelInfer: unary<inference.ModelInferRequest, inference.ModelInferResponse>(async (req, ctx) => {
      requireModelName(req.modelName, 'model_name');
      const version = manager.resolve(req.modelName, req.modelVersion);
      const validated = validateInferRequest(req, version.signature, version.limits);
      const outputs = await manager.infer(version, validated, { deadline: ctx.deadline, signal: ctx.signal, tenant: batchTenantOf(ctx) });
      const encoded = toResponseOutputs(outputs, validated.raw);
      return {
        modelName: version.model,
        modelVersion: String(version.version),
        id: req.id,
        parameters: {},
        outputs: encoded.outputs,
        rawOutputContents: encoded.rawOutputContents,
      };
    }),

    modelStatistics: unary<inference.ModelStatisticsRequest, inference.ModelStatisticsResponse>(async (req) => {
      let versions: LoadedVersion[];
      if (req.name === '') {
        if (req.version !== '') throw new InvalidArgumentError('a version needs the model name: name is empty (for every model) but version is set', { field: 'version' });
        versions = manager.modelNames().flatMap((name) => manager.loadedVersions(name));
      } else {
        requireModelName(req.name, 'name');
        await checkKnown(req.name);
        versions = req.version === '' ? manager.loadedVersions(req.name) : [manager.resolve(req.name, req.version)];
      }
      return { modelStats: versions.map(statisticsOf) };
    }),

    repositoryIndex: unary<inference.RepositoryIndexRequest, inference.RepositoryIndexResponse>(async (req) => {
      if (req.repositoryName !== '' && req.repositoryName !== repositoryName) {
        throw new NotFoundError(`unknown repository '${req.repositoryName}' (this server has '${repositoryName}')`);
      }
      return { models: await manager.index(req.ready) };
    }),

    repositoryModelLoad: unary<inference.RepositoryModelLoadRequest, inference.RepositoryModelLoadResponse>(async (req) => {
      requireModelName(req.modelName, 'model_name');
      if (req.repositoryName !== '' && req.repositoryName !== repositoryName) {
        throw new NotFoundError(`unknown repository '${req.repositoryName}' (this server has '${repositoryName}')`);
      }
      await manager.load(req.modelName, loadOverride(req.parameters));
      return {};
    }),

    repositoryModelUnload: unary<inference.RepositoryModelUnloadRequest, inference.RepositoryModelUnloadResponse>(async (req) => {
      requireModelName(req.modelName, 'model_name');
      if (req.repositoryName !== '' && req.repositoryName !== repositoryName) {
        throw new NotFoundError(`unknown repository '${req.repositoryName}' (this server has '${repositoryName}')`);
      }
      await manager.unload(req.modelName);
      return {};
    }),
  };
}
