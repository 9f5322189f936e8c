import { status } from '@grpc/grpc-js';
import { tempDir, type TempDir } from '@aimass/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXECUTION_PROVIDER_HEADER } from '../src/grpc/inference-service.js';
import { addModel, counterModel, fixedModel, linearExpected, linearModel } from './support/models.js';
import {
  call,
  callError,
  contents,
  fp32Request,
  inferenceClient,
  rawFloats,
  rawFp32Request,
  startService,
} from './support/harness.js';

describe('Open Inference Protocol', () => {
  let dir: TempDir;
  let service: Awaited<ReturnType<typeof startService>>;
  let client: ReturnType<typeof inferenceClient>;

  beforeAll(async () => {
    dir = await tempDir('gm-oip');
    await addModel(dir.path, 'linear', 1, linearModel());
    await addModel(dir.path, 'counter', 1, counterModel());
    await addModel(dir.path, 'fixed', 1, fixedModel());
    service = await startService(dir.path);
    client = inferenceClient(service.address);
  });
  afterAll(async () => {
    client?.close();
    await service?.stop();
    await dir?.remove();
  });

  it('is live and ready once every startup model is loaded, and says what it is', async () => {
    expect(await call(client, client.serverLive, {})).toEqual({ live: true });
    expect(await call(client, client.serverReady, {})).toEqual({ ready: true });
    const meta = await call(client, client.serverMetadata, {});
    expect(meta.name).toBe('aimass-general-model');
    expect(meta.extensions).toContain('model_repository');
    expect(await call(client, client.modelReady, { name: 'linear', version: '' })).toEqual({ ready: true });
    expect(await call(client, client.modelReady, { name: 'linear', version: '1' })).toEqual({ ready: true });
    expect(await call(client, client.modelReady, { name: 'linear', version: '2' })).toEqual({ ready: false });
  });

  it('describes a model with OIP datatypes, -1 for dynamic dims, its platform and execution provider', async () => {
    let provider: unknown;
    const meta = await call(client, client.modelMetadata, { name: 'linear', version: '' }, { onMetadata: (md) => (provider = md.get(EXECUTION_PROVIDER_HEADER)[0]) });
    expect(meta).toEqual({
      name: 'linear',
      versions: ['1'],
      platform: 'onnxruntime_onnx',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 4] }],
      outputs: [
        { name: 'y', datatype: 'FP32', shape: [-1, 2] },
        { name: 'doubled', datatype: 'FP32', shape: [-1, 4] },
      ],
    });
    expect(provider).toBe('cpu');
    const counter = await call(client, client.modelMetadata, { name: 'counter', version: '1' });
    expect(counter.inputs).toEqual([{ name: 'ids', datatype: 'INT64', shape: [-1, 3] }]);
    const loadLine = service.logs.lines().find((l) => l['msg'] === 'model version loaded' && l['model'] === 'linear');
    expect(loadLine?.['executionProvider']).toBe('cpu');
  });

  it('infers with typed contents, answers with typed contents, and echoes the request id', async () => {
    const x = [1, 2, 3, 4, -1, 0.5, 2, 8];
    const res = await call(client, client.modelInfer, fp32Request('linear', x, 2, { id: 'req-7' }));
    expect(res.id).toBe('req-7');
    expect(res.modelName).toBe('linear');
    expect(res.modelVersion).toBe('1');
    expect(res.rawOutputContents).toEqual([]);
    expect(res.outputs.map((o) => [o.name, o.datatype, o.shape])).toEqual([
      ['y', 'FP32', [2, 2]],
      ['doubled', 'FP32', [2, 4]],
    ]);
    expect(res.outputs[0]!.contents!.fp32Contents).toEqual(linearExpected(x));
    expect(res.outputs[1]!.contents!.fp32Contents).toEqual(x.map((v) => v * 2));
  });

  it('infers with raw_input_contents and answers in raw_output_contents, only the requested outputs', async () => {
    const x = [0.25, 1, 1, 1];
    const res = await call(client, client.modelInfer, rawFp32Request('linear', x, 1, { outputs: [{ name: 'y', parameters: {} }] }));
    expect(res.outputs.map((o) => o.name)).toEqual(['y']);
    expect(res.outputs[0]!.contents).toBeUndefined();
    expect(rawFloats(res.rawOutputContents[0])).toEqual(linearExpected(x));
  });

  it('serves INT64 inputs and a model without a batch dimension', async () => {
    const counted = await call(client, client.modelInfer, {
      ...fp32Request('counter', [], 1),
      inputs: [{ name: 'ids', datatype: 'INT64', shape: [2, 3], parameters: {}, contents: contents({ int64Contents: [1, 2, 3, 10, 20, 30] }) }],
    });
    expect(counted.outputs[0]!.contents!.fp32Contents).toEqual([6, 60]);
    const fixed = await call(client, client.modelInfer, fp32Request('fixed', [1, 2, 3, 4], 2));
    expect(fixed.outputs[0]!.shape).toEqual([2, 2]);
    expect(fixed.outputs[0]!.contents!.fp32Contents).toEqual([2, 3, 4, 5]);
  });

  it('answers NOT_FOUND for an unknown model or version, and keeps serving', async () => {
    const unknown = await callError(call(client, client.modelInfer, fp32Request('nope', [1, 2, 3, 4], 1)));
    expect(unknown.code).toBe(status.NOT_FOUND);
    expect(unknown.details).toMatch(/model 'nope'/);
    const version = await callError(call(client, client.modelInfer, fp32Request('linear', [1, 2, 3, 4], 1, { modelVersion: '9' })));
    expect(version.code).toBe(status.NOT_FOUND);
    expect(version.details).toMatch(/no loaded version '9' \(loaded: 1\)/);
    expect((await callError(call(client, client.modelMetadata, { name: 'nope', version: '' }))).code).toBe(status.NOT_FOUND);
    expect((await callError(call(client, client.modelReady, { name: 'nope', version: '' }))).code).toBe(status.NOT_FOUND);
    const ok = await call(client, client.modelInfer, fp32Request('linear', [1, 1, 1, 1], 1));
    expect(ok.outputs[0]!.contents!.fp32Contents).toEqual(linearExpected([1, 1, 1, 1]));
  });
});
