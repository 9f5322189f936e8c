import { status } from '@grpc/grpc-js';
import { inference, v1 } from '@aimass/proto';
import {
  RawGrpcClient,
  deadlineIn,
  hostileArray,
  hostileFloat32,
  hostileInt32,
  hostileNumber,
  hostileString,
  hostileUint32,
  tempDir,
  type TempDir,
} from '@aimass/testing';
import { hostileRpcSuite } from '@aimass/testing/vitest';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, contents, fp32Request, inferenceClient, startService, taskClient } from './support/harness.js';
import { addModel, linearExpected, linearModel, trainToyTextModel } from './support/models.js';

/**
 * Property-based hostile input (issue 7) for both APIs of the service: the task API
 * (aimass.v1.GeneralModelService) and the Open Inference Protocol (inference.GRPCInferenceService).
 */
const NUM_RUNS = 100;
const MALFORMED_RUNS = 50;
const T = v1.GeneralModelServiceService;
const O = inference.GRPCInferenceServiceService;
const MAX_INPUT_ELEMENTS = 4096;

const mostly = <T>(valid: T, hostile: fc.Arbitrary<T>) => fc.oneof({ weight: 3, arbitrary: fc.constant(valid) }, { weight: 1, arbitrary: hostile });

/** Any InputPayload: texts up to 1 M characters, mails with hostile headers, raw bytes of any type, typed features, nothing. */
export function hostileInput(): fc.Arbitrary<v1.InputPayload> {
  const str = hostileString({ longLengths: [257, 8_000, 70_000] });
  const small = hostileString({ longLengths: [300] });
  const feature: fc.Arbitrary<v1.FeatureValue> = fc.oneof(
    hostileNumber().map((value) => ({ kind: { $case: 'number' as const, value } })),
    small.map((value) => ({ kind: { $case: 'category' as const, value } })),
    fc.array(hostileFloat32(), { maxLength: 4 }).map((values) => ({ kind: { $case: 'vector' as const, value: { values } } })),
    fc.record({ dimension: hostileUint32(), indices: fc.array(hostileUint32(), { maxLength: 4 }), values: fc.array(hostileFloat32(), { maxLength: 4 }) }).map((value) => ({ kind: { $case: 'sparse' as const, value } })),
  );
  return fc.oneof(
    { weight: 3, arbitrary: str.map((value) => ({ kind: { $case: 'text' as const, value } })) },
    {
      weight: 2,
      arbitrary: fc
        .record({ subject: small, body: str, headers: fc.dictionary(small, small, { maxKeys: 4 }) })
        .map((value) => ({ kind: { $case: 'mail' as const, value } })),
    },
    {
      weight: 2,
      arbitrary: fc
        .record({
          data: fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.constant(new Uint8Array([0xff, 0xfe, 0xc0, 0x80, 0xed, 0xa0, 0x80]))).map((b) => Buffer.from(b)),
          contentType: fc.oneof(fc.constantFrom('', 'text/plain', 'message/rfc822', 'text/html; charset=latin1', 'application/pdf', 'image/png'), small),
        })
        .map((value) => ({ kind: { $case: 'raw' as const, value } })),
    },
    { weight: 1, arbitrary: fc.dictionary(small, feature, { maxKeys: 3 }).map((values) => ({ kind: { $case: 'features' as const, value: { values } } })) },
    { weight: 1, arbitrary: fc.constant({ kind: undefined }) },
  );
}

describe('general-model under hostile input (fast-check, real gRPC and onnxruntime)', () => {
  let dir: TempDir;
  let service: Awaited<ReturnType<typeof startService>>;
  let task: ReturnType<typeof taskClient>;
  let oip: ReturnType<typeof inferenceClient>;
  let raw: RawGrpcClient;

  beforeAll(async () => {
    dir = await tempDir('gm-hostile');
    const toy = await trainToyTextModel();
    await addModel(dir.path, 'general', 1, toy.bytes, { metadata: { labels: ['ham', 'spam'] } });
    await addModel(dir.path, 'linear', 1, linearModel(), { config: 'max_batch_size: 8' });
    // Load and unload act on this one, so they cannot take away what the known-good calls use.
    await addModel(dir.path, 'spare', 1, linearModel());
    service = await startService(dir.path, { batching: { maxBatchSize: 8 }, limits: { maxInputElements: MAX_INPUT_ELEMENTS } });
    task = taskClient(service.address);
    oip = inferenceClient(service.address);
    raw = new RawGrpcClient(service.address);
  });
  afterAll(async () => {
    raw?.close();
    task?.close();
    oip?.close();
    await service?.stop();
    await dir?.remove();
  });

  const knownGood = async () => {
    const res = await call(task, task.classify, { model: undefined, inputs: [{ kind: { $case: 'text', value: 'win free money now' } }], includeEmbedding: false, includeLogits: false });
    expect(['ham', 'spam']).toContain(res.results[0]!.label);
    const x = [1, 2, 3, 4];
    const inferred = await call(oip, oip.modelInfer, fp32Request('linear', x, 1));
    expect(inferred.outputs[0]!.contents!.fp32Contents).toEqual(linearExpected(x));
  };

  const modelRef = fc.option(fc.record({ name: mostly('general', hostileString()), version: mostly('', fc.oneof(fc.constantFrom('1', '2', '0', '-1', '01', '1e3', '9007199254740993'), hostileString())) }), {
    nil: undefined,
  });
  const inputs = hostileArray(hostileInput(), { maxLength: 4, hugeCounts: [1025, 3000], filler: { kind: { $case: 'text', value: 'hi' } } });
  const name = (valid: string) => mostly(valid, fc.oneof(hostileString(), fc.constantFrom('../general', 'general/1', '.', '..', 'GENERAL', 'linear ', 'nope')));
  const version = mostly('', fc.oneof(fc.constantFrom('1', '0', '-1', '99', '1.0', '9007199254740993'), hostileString()));
  const int64 = fc.oneof(fc.constantFrom(-1, 0, 1, 4, 2 ** 31, 2 ** 32, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER), fc.integer({ min: -3, max: 10 }));
  const param: fc.Arbitrary<inference.InferParameter> = fc.oneof(
    fc.boolean().map((value) => ({ parameterChoice: { $case: 'boolParam' as const, value } })),
    int64.map((value) => ({ parameterChoice: { $case: 'int64Param' as const, value } })),
    hostileString().map((value) => ({ parameterChoice: { $case: 'stringParam' as const, value } })),
    hostileNumber().map((value) => ({ parameterChoice: { $case: 'doubleParam' as const, value } })),
    fc.constant({ parameterChoice: undefined }),
  );
  const params = fc.dictionary(fc.oneof(fc.constantFrom('priority', 'timeout', 'binary_data', 'sequence_id'), hostileString()), param, { maxKeys: 2 });
  const tensorContents: fc.Arbitrary<inference.InferTensorContents | undefined> = fc.option(
    fc.record({
      boolContents: fc.array(fc.boolean(), { maxLength: 4 }),
      intContents: fc.array(hostileInt32(), { maxLength: 4 }),
      int64Contents: fc.array(int64, { maxLength: 4 }),
      uintContents: fc.array(hostileUint32(), { maxLength: 4 }),
      uint64Contents: fc.array(fc.nat(), { maxLength: 4 }),
      fp32Contents: mostly([1, 2, 3, 4], hostileArray(hostileFloat32(), { maxLength: 8, hugeCounts: [MAX_INPUT_ELEMENTS + 4], filler: 1 })),
      fp64Contents: fc.array(hostileNumber(), { maxLength: 4 }),
      bytesContents: fc.array(fc.uint8Array({ maxLength: 8 }).map((b) => Buffer.from(b)), { maxLength: 2 }),
    }),
    { nil: undefined, freq: 6 },
  );
  const inferInput: fc.Arbitrary<inference.ModelInferRequest_InferInputTensor> = fc.record({
    name: mostly('x', hostileString()),
    datatype: mostly('FP32', fc.oneof(fc.constantFrom('FP64', 'INT64', 'BYTES', 'BOOL', 'FP16', 'BF16', 'UINT8', 'fp32', ''), hostileString())),
    shape: mostly([1, 4], hostileArray(int64, { maxLength: 5, hugeCounts: [64, 10_000], filler: 1 })),
    parameters: params,
    contents: tensorContents,
  });
  const rawContents = fc.oneof(
    { weight: 3, arbitrary: fc.constant([]) },
    { weight: 1, arbitrary: fc.array(fc.oneof(fc.uint8Array({ maxLength: 32 }), fc.constant(new Uint8Array(16)), fc.constant(new Uint8Array(48 * 1024))).map((b) => Buffer.from(b)), { maxLength: 2 }) },
  );
  const loadParams = fc.dictionary(
    fc.oneof(fc.constant('config'), hostileString()),
    fc.oneof(
      fc
        .oneof(
          fc.constantFrom('{}', '{"max_batch_size": -1}', '{"max_batch_size": 1e308}', '{"input": 5}', '[]', 'null', '{"parameters": {"allow_non_finite": {"string_value": 7}}}', '{"version_policy": {"specific": {"versions": [-1]}}}', '{'),
          fc.json(),
          hostileString(),
        )
        .map((value) => ({ parameterChoice: { $case: 'stringParam' as const, value } })),
      fc.boolean().map((value) => ({ parameterChoice: { $case: 'boolParam' as const, value } })),
      fc.uint8Array({ maxLength: 16 }).map((b) => ({ parameterChoice: { $case: 'bytesParam' as const, value: Buffer.from(b) } })),
    ),
    { maxKeys: 2 },
  );
  const repositoryName = mostly('', hostileString());

  const rpcs: { name: string; def: { path: string; requestSerialize: (r: never) => Buffer }; valid: unknown; request: fc.Arbitrary<unknown> }[] = [
    { name: 'Classify', def: T.classify, valid: { model: undefined, inputs: [{ kind: { $case: 'text', value: 'hello' } }], includeEmbedding: true, includeLogits: true }, request: fc.record({ model: modelRef, inputs, includeEmbedding: fc.boolean(), includeLogits: fc.boolean() }) },
    { name: 'Embed', def: T.embed, valid: { model: undefined, inputs: [{ kind: { $case: 'text', value: 'hello' } }] }, request: fc.record({ model: modelRef, inputs }) },
    { name: 'ListModels', def: T.listModels, valid: { page: undefined }, request: fc.record({ page: fc.option(fc.record({ pageSize: hostileUint32(), pageToken: mostly('', fc.oneof(fc.constantFrom('1', '-1', '99999999999999999999', '1e3', '0x10'), hostileString())) }), { nil: undefined }) }) },
    { name: 'ServerLive', def: O.serverLive, valid: {}, request: fc.constant({}) },
    { name: 'ServerReady', def: O.serverReady, valid: {}, request: fc.constant({}) },
    { name: 'ServerMetadata', def: O.serverMetadata, valid: {}, request: fc.constant({}) },
    { name: 'ModelReady', def: O.modelReady, valid: { name: 'linear', version: '' }, request: fc.record({ name: name('linear'), version }) },
    { name: 'ModelMetadata', def: O.modelMetadata, valid: { name: 'linear', version: '' }, request: fc.record({ name: name('linear'), version }) },
    {
      name: 'ModelInfer',
      def: O.modelInfer,
      valid: fp32Request('linear', [1, 2, 3, 4], 1),
      request: fc.record({
        modelName: name('linear'),
        modelVersion: version,
        id: hostileString(),
        parameters: params,
        inputs: mostly([fp32Request('linear', [1, 2, 3, 4], 1).inputs[0]!], hostileArray(inferInput, { maxLength: 3, hugeCounts: [500], filler: { name: 'x', datatype: 'FP32', shape: [1, 4], parameters: {}, contents: contents({ fp32Contents: [1, 2, 3, 4] }) } })),
        outputs: fc.array(fc.record({ name: fc.oneof(fc.constantFrom('y', 'doubled', 'nope'), hostileString()), parameters: params }), { maxLength: 3 }),
        rawInputContents: rawContents,
      }),
    },
    { name: 'ModelStatistics', def: O.modelStatistics, valid: { name: 'linear', version: '' }, request: fc.record({ name: fc.oneof(fc.constant(''), name('linear')), version }) },
    { name: 'RepositoryIndex', def: O.repositoryIndex, valid: { repositoryName: '', ready: false }, request: fc.record({ repositoryName, ready: fc.boolean() }) },
    { name: 'RepositoryModelLoad', def: O.repositoryModelLoad, valid: { repositoryName: '', modelName: 'spare', parameters: {} }, request: fc.record({ repositoryName, modelName: name('spare'), parameters: loadParams }) },
    { name: 'RepositoryModelUnload', def: O.repositoryModelUnload, valid: { repositoryName: '', modelName: 'spare', parameters: {} }, request: fc.record({ repositoryName, modelName: name('spare'), parameters: loadParams }) },
  ];

  hostileRpcSuite({ service: 'general-model', rpcs, client: () => raw, knownGood, tenant: 'acme', oversizedTenants: [], numRuns: NUM_RUNS, malformedRuns: MALFORMED_RUNS });

  it('a status quoting a huge or ill-formed input is sent bounded and well-formed: the connection survives it', async () => {
    // Regressions found by the properties above: a 64 KiB+ grpc-message killed the caller's whole
    // HTTP/2 connection (GOAWAY COMPRESSION_ERROR), and a lone surrogate made grpc-js throw an
    // unhandled URIError on the server; a non-ASCII field path made the metadata refuse it.
    const path = O.repositoryModelLoad.path;
    const load = (modelName: string, key?: string) =>
      raw.unary(path, O.repositoryModelLoad.requestSerialize({ repositoryName: '', modelName, parameters: key === undefined ? {} : { [key]: { parameterChoice: { $case: 'boolParam', value: true } } } }), {
        deadline: deadlineIn(5_000),
      });
    const huge = await load('é'.repeat(70_000));
    expect(huge.code).toBe(status.NOT_FOUND);
    expect(huge.details.length).toBeLessThan(2_100);
    expect(huge.details).toMatch(/more characters cut\)$/);
    const lone = await load('spare', 'x\ud800é ');
    expect(lone).toMatchObject({ code: status.INVALID_ARGUMENT, details: expect.stringContaining('unknown load parameter "x\ufffdé "') });
    await knownGood();
  });

  it('the content-level checks are reached: Classify refuses an empty input list and typed features, naming the field', async () => {
    const refused = await raw.unary(T.classify.path, T.classify.requestSerialize({ model: undefined, inputs: [], includeEmbedding: false, includeLogits: false }), { deadline: deadlineIn(5_000) });
    expect(refused).toMatchObject({ code: status.INVALID_ARGUMENT, details: expect.stringMatching(/inputs must not be empty/) });
    const features = await raw.unary(
      T.classify.path,
      T.classify.requestSerialize({ model: undefined, inputs: [{ kind: { $case: 'features', value: { values: {} } } }], includeEmbedding: false, includeLogits: false }),
      { deadline: deadlineIn(5_000) },
    );
    expect(features).toMatchObject({ code: status.INVALID_ARGUMENT, details: expect.stringMatching(/inputs\[0\]: typed features are not supported/) });
  });
});
