import { status } from '@grpc/grpc-js';
import { INVALID_FIELD_KEY } from '@aimass/platform';
import type { inference } from '@aimass/proto';
import { tempDir, type TempDir } from '@aimass/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addModel, linearExpected, linearModel } from './support/models.js';
import { call, callError, contents, fp32Request, inferenceClient, rawFp32Request, startService } from './support/harness.js';

describe('bad input over gRPC', () => {
  let dir: TempDir;
  let service: Awaited<ReturnType<typeof startService>>;
  let client: ReturnType<typeof inferenceClient>;

  beforeAll(async () => {
    dir = await tempDir('gm-bad');
    await addModel(dir.path, 'linear', 1, linearModel(), { config: 'max_batch_size: 4' });
    await addModel(dir.path, 'lenient', 1, linearModel(), {
      config: { parameters: { allow_non_finite: { string_value: 'true' } } },
    });
    service = await startService(dir.path, { limits: { maxInputElements: 64 } });
    client = inferenceClient(service.address);
  });
  afterAll(async () => {
    client?.close();
    await service?.stop();
    await dir?.remove();
  });

  const x4 = [1, 2, 3, 4];
  const withInput = (input: Partial<inference.ModelInferRequest_InferInputTensor>, extra: Partial<inference.ModelInferRequest> = {}) => {
    const base = fp32Request('linear', x4, 1, extra);
    return { ...base, inputs: [{ ...base.inputs[0]!, ...input }] };
  };

  const cases: [string, inference.ModelInferRequest, RegExp, string][] = [
    ['unknown input name', withInput({ name: 'z' }), /unknown input 'z' \(the model's inputs: x\)/, 'inputs[0].name'],
    ['wrong datatype', withInput({ datatype: 'FP64', contents: contents({ fp64Contents: x4 }) }), /input 'x': datatype 'FP64' does not match the model's FP32/, 'inputs[0].datatype'],
    ['wrong rank', withInput({ shape: [4] }), /input 'x': shape \[4\] has rank 1, the model expects rank 2/, 'inputs[0].shape'],
    ['wrong dimension', withInput({ shape: [2, 2] }), /input 'x': shape \[2,2\] does not match the model's \[-1,4\] at dimension 1/, 'inputs[0].shape'],
    ['contents count mismatch', withInput({ contents: contents({ fp32Contents: [1, 2, 3] }) }), /input 'x': fp32_contents has 3 elements, shape needs 4/, 'inputs[0].contents'],
    ['raw byte length mismatch', { ...rawFp32Request('linear', x4, 1), rawInputContents: [Buffer.alloc(15)] }, /input 'x': raw_input_contents\[0\] has 15 bytes, shape \[1,4\] of FP32 needs 16/, 'raw_input_contents[0]'],
    ['NaN in FP32', withInput({ contents: contents({ fp32Contents: [1, Number.NaN, 3, 4] }) }), /input 'x': element 1 is NaN or infinite/, 'inputs[0].contents'],
    ['Inf in raw FP32', rawFp32Request('linear', [1, 2, Number.POSITIVE_INFINITY, 4], 1), /input 'x': element 2 is NaN or infinite/, 'raw_input_contents[0]'],
    ['batch over max batch size', fp32Request('linear', Array(20).fill(1), 5), /input 'x': batch size 5 exceeds the model's max batch size 4/, 'inputs[0].shape'],
    ['oversized input', { ...fp32Request('lenient', Array(80).fill(1), 20) }, /input 'x': 80 elements exceed the limit of 64 per input/, 'inputs[0].shape'],
    ['missing input', { ...fp32Request('linear', x4, 1), inputs: [] }, /missing input 'x'/, 'inputs'],
    ['unknown output', fp32Request('linear', x4, 1, { outputs: [{ name: 'logits', parameters: {} }] }), /unknown output 'logits'/, 'outputs[0].name'],
    ['missing model name', fp32Request('', x4, 1), /model_name is required/, 'model_name'],
  ];

  for (const [what, request, message, field] of cases) {
    it(`answers INVALID_ARGUMENT for ${what}, naming it, and keeps serving`, async () => {
      const err = await callError(call(client, client.modelInfer, request));
      expect(err.code).toBe(status.INVALID_ARGUMENT);
      expect(err.details).toMatch(message);
      expect(err.metadata.get(INVALID_FIELD_KEY)[0]).toBe(field);
      const ok = await call(client, client.modelInfer, fp32Request('linear', x4, 1));
      expect(ok.outputs[0]!.contents!.fp32Contents).toEqual(linearExpected(x4));
    });
  }

  it('accepts NaN for a model whose config allows non-finite values', async () => {
    const res = await call(client, client.modelInfer, fp32Request('lenient', [Number.NaN, 0, 0, 0], 1, { outputs: [{ name: 'doubled', parameters: {} }] }));
    expect(Number.isNaN(res.outputs[0]!.contents!.fp32Contents[0])).toBe(true);
  });

  it('answers RESOURCE_EXHAUSTED for a message over the size limit, and keeps serving', async () => {
    const big = rawFp32Request('linear', Array(4).fill(1), 1);
    big.rawInputContents = [Buffer.alloc(5 * 1024 * 1024)];
    const err = await callError(call(client, client.modelInfer, big));
    expect(err.code).toBe(status.RESOURCE_EXHAUSTED);
    const ok = await call(client, client.modelInfer, fp32Request('linear', x4, 1));
    expect(ok.outputs).toHaveLength(2);
  });
});
