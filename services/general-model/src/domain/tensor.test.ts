import { InvalidArgumentError } from '@aimass/platform';
import type { inference } from '@aimass/proto';
import { describe, expect, it } from 'vitest';
import { concatInputs, splitOutputs, toResponseOutputs } from './batch-tensors.js';
import { alignedView, firstNonFinite, validateInferRequest, type InputLimits, type ModelSignature } from './tensor.js';

const signature: ModelSignature = {
  inputs: [
    { name: 'x', datatype: 'FP32', dims: [-1, 3] },
    { name: 'ids', datatype: 'INT64', dims: [-1, 2] },
  ],
  outputs: [
    { name: 'y', datatype: 'FP32', dims: [-1, 2] },
    { name: 'h', datatype: 'FP16', dims: [-1, 1] },
  ],
};
const limits: InputLimits = { maxBatchSize: 4, allowNonFinite: false, maxInputElements: 1000 };

function contents(partial: Partial<inference.InferTensorContents>): inference.InferTensorContents {
  return { boolContents: [], intContents: [], int64Contents: [], uintContents: [], uint64Contents: [], fp32Contents: [], fp64Contents: [], bytesContents: [], ...partial };
}

type Input = inference.ModelInferRequest_InferInputTensor;
const input = (name: string, datatype: string, shape: number[], c?: Partial<inference.InferTensorContents>): Input => ({
  name,
  datatype,
  shape,
  parameters: {},
  contents: c ? contents(c) : undefined,
});

function request(inputs: Input[], raw: Buffer[] = [], outputs: string[] = []) {
  return { inputs, rawInputContents: raw, outputs: outputs.map((name) => ({ name, parameters: {} })) };
}

const good = () =>
  request([input('ids', 'INT64', [2, 2], { int64Contents: [1, 2, 3, 4] }), input('x', 'FP32', [2, 3], { fp32Contents: [1, 2, 3, 4, 5, 6] })]);

function invalidOf(fn: () => unknown): InvalidArgumentError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidArgumentError);
    return err as InvalidArgumentError;
  }
  throw new Error('expected an InvalidArgumentError');
}

describe('validateInferRequest', () => {
  it('turns typed contents into host tensors in the model input order', () => {
    const v = validateInferRequest(good(), signature, limits);
    expect(v.inputs.map((t) => t.name)).toEqual(['x', 'ids']);
    expect(v.rows).toBe(2);
    expect(Array.from(alignedView(v.inputs[0]!) as Float32Array)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(Array.from(alignedView(v.inputs[1]!) as BigInt64Array)).toEqual([1n, 2n, 3n, 4n]);
    expect(v.raw).toBe(true); // FP16 output 'h' has no typed field
    expect(v.outputs).toEqual(['y', 'h']);
  });

  it('finds NaN and infinities at any byte offset, as an aligned typed view does', () => {
    const cases = [
      { datatype: 'FP32', size: 4, set: (d: DataView, o: number, v: number) => d.setFloat32(o, v, true) },
      { datatype: 'FP64', size: 8, set: (d: DataView, o: number, v: number) => d.setFloat64(o, v, true) },
      // FP16 bit patterns: 1.0 is 0x3c00, +Inf 0x7c00, NaN 0x7e00, max finite 65504 is 0x7bff.
      { datatype: 'FP16', size: 2, set: (d: DataView, o: number, v: number) => d.setUint16(o, v, true) },
    ] as const;
    for (const c of cases) {
      const finite = c.datatype === 'FP16' ? [0x3c00, 0x7bff, 0xfbff] : [1.5, -3.4e38, Number.MAX_VALUE > 3.4e38 && c.size === 8 ? Number.MAX_VALUE : 3.4e38];
      const bad = c.datatype === 'FP16' ? [0x7c00, 0xfc00, 0x7e00] : [Infinity, -Infinity, NaN];
      for (const offset of [0, 1, c.size - 1]) {
        for (const [k, b] of bad.entries()) {
          const buf = Buffer.alloc(offset + c.size * 4);
          const view = new DataView(buf.buffer, buf.byteOffset);
          for (let i = 0; i < 4; i++) c.set(view, offset + i * c.size, i === k + 1 ? b : finite[i % finite.length]!);
          expect(firstNonFinite({ datatype: c.datatype, bytes: buf.subarray(offset) }), `${c.datatype} +${offset} ${b}`).toBe(k + 1);
        }
        const clean = Buffer.alloc(offset + c.size * 3);
        const view = new DataView(clean.buffer, clean.byteOffset);
        for (let i = 0; i < 3; i++) c.set(view, offset + i * c.size, finite[i]!);
        expect(firstNonFinite({ datatype: c.datatype, bytes: clean.subarray(offset) }), `${c.datatype} +${offset} finite`).toBe(-1);
      }
    }
    // Past the first 64 KiB chunk of a misaligned input.
    const big = Buffer.alloc(1 + 4 * 40_000);
    new DataView(big.buffer, big.byteOffset).setFloat32(1 + 4 * 30_000, NaN, true);
    expect(firstNonFinite({ datatype: 'FP32', bytes: big.subarray(1) })).toBe(30_000);
  });

  it('reads raw_input_contents even at an odd byte offset', () => {
    const x = Buffer.alloc(1 + 12);
    new DataView(x.buffer, x.byteOffset).setFloat32(1, 7.5, true);
    const ids = Buffer.alloc(16);
    ids.writeBigInt64LE(9n, 8);
    const v = validateInferRequest(
      request([input('x', 'FP32', [1, 3]), input('ids', 'INT64', [1, 2])], [x.subarray(1), ids], ['y']),
      signature,
      limits,
    );
    expect((alignedView(v.inputs[0]!) as Float32Array)[0]).toBe(7.5);
    expect((alignedView(v.inputs[1]!) as BigInt64Array)[1]).toBe(9n);
    expect(v.raw).toBe(true);
    expect(v.outputs).toEqual(['y']);
  });

  it('answers in typed contents when the request used them and every output has a typed field', () => {
    const v = validateInferRequest({ ...good(), outputs: [{ name: 'y', parameters: {} }] }, signature, limits);
    expect(v.raw).toBe(false);
  });

  it('rejects each kind of bad input with INVALID_ARGUMENT naming the input', () => {
    const cases: [ReturnType<typeof request>, RegExp, string][] = [
      [request([...good().inputs, input('z', 'FP32', [1], { fp32Contents: [1] })]), /unknown input 'z'/, 'inputs[2].name'],
      [request([good().inputs[1]!]), /missing input 'ids'/, 'inputs'],
      [request([good().inputs[0]!, good().inputs[0]!]), /input 'ids' is given twice/, 'inputs[1].name'],
      [request([input('ids', 'INT32', [2, 2], { intContents: [1, 2, 3, 4] }), good().inputs[1]!]), /input 'ids': datatype 'INT32' does not match the model's INT64/, 'inputs[0].datatype'],
      [request([input('ids', 'FLOAT', [2, 2]), good().inputs[1]!]), /not a known datatype/, 'inputs[0].datatype'],
      [request([input('ids', 'INT64', [4], { int64Contents: [1, 2, 3, 4] }), good().inputs[1]!]), /input 'ids': shape \[4\] has rank 1/, 'inputs[0].shape'],
      [request([input('ids', 'INT64', [2, 3], { int64Contents: [1, 2, 3, 4, 5, 6] }), good().inputs[1]!]), /input 'ids'.*at dimension 1/, 'inputs[0].shape'],
      [request([input('ids', 'INT64', [2, -2]), good().inputs[1]!]), /input 'ids': invalid dimension -2/, 'inputs[0].shape'],
      [request([input('ids', 'INT64', [2, 2], { int64Contents: [1, 2, 3] }), good().inputs[1]!]), /input 'ids': int64_contents has 3 elements, shape needs 4/, 'inputs[0].contents'],
      [request([input('ids', 'INT64', [2, 2], { fp32Contents: [1, 2, 3, 4] }), good().inputs[1]!]), /found fp32Contents: wrong field for INT64/, 'inputs[0].contents'],
      [request([good().inputs[0]!, input('x', 'FP32', [2, 3], { fp32Contents: [1, 2, NaN, 4, 5, 6] })]), /input 'x': element 2 is NaN or infinite/, 'inputs[1].contents'],
      [request([good().inputs[0]!, input('x', 'FP32', [2, 3], { fp32Contents: [1, 2, 3, 4, Infinity, 6] })]), /input 'x': element 4/, 'inputs[1].contents'],
      [request([input('ids', 'INT64', [5, 2], { int64Contents: Array(10).fill(1) }), input('x', 'FP32', [5, 3], { fp32Contents: Array(15).fill(1) })]), /input 'ids': batch size 5 exceeds the model's max batch size 4/, 'inputs[0].shape'],
      [request([input('ids', 'INT64', [0, 2]), input('x', 'FP32', [0, 3])]), /input 'ids': batch size \(dimension 0\) must be at least 1/, 'inputs[0].shape'],
      [request([input('ids', 'INT64', [1, 2], { int64Contents: [1, 2] }), good().inputs[1]!]), /input 'ids': batch size 1 differs from input 'x' \(2\)/, 'inputs[0].shape'],
      [request(good().inputs, [Buffer.alloc(32)]), /raw_input_contents has 1 entries for 2 inputs/, 'raw_input_contents'],
      [request([input('ids', 'INT64', [2, 2]), input('x', 'FP32', [2, 3])], [Buffer.alloc(32), Buffer.alloc(23)]), /input 'x': raw_input_contents\[1\] has 23 bytes, shape \[2,3\] of FP32 needs 24/, 'raw_input_contents[1]'],
      [request([input('ids', 'INT64', [2, 2], { int64Contents: [1, 2, 3, 4] }), input('x', 'FP32', [2, 3])], [Buffer.alloc(32), Buffer.alloc(24)]), /input 'ids': contents must be empty when raw_input_contents is used/, 'inputs[0].contents'],
      [{ ...good(), outputs: [{ name: 'nope', parameters: {} }] }, /unknown output 'nope' \(the model's outputs: y, h\)/, 'outputs[0].name'],
    ];
    for (const [req, message, field] of cases) {
      const err = invalidOf(() => validateInferRequest(req, signature, limits));
      expect(err.message).toMatch(message);
      expect(err.field).toBe(field);
    }
  });

  it('rejects NaN in raw FP32 bytes, unless the model allows non-finite values', () => {
    const x = Buffer.alloc(12);
    x.writeFloatLE(Number.NaN, 4);
    const req = request([input('x', 'FP32', [1, 3]), input('ids', 'INT64', [1, 2])], [x, Buffer.alloc(16)]);
    expect(invalidOf(() => validateInferRequest(req, signature, limits)).field).toBe('raw_input_contents[0]');
    expect(validateInferRequest(req, signature, { ...limits, allowNonFinite: true }).rows).toBe(1);
  });

  it('checks integer ranges of narrow types and the element limit', () => {
    const sig: ModelSignature = { inputs: [{ name: 'b', datatype: 'UINT8', dims: [-1, -1] }], outputs: [{ name: 'y', datatype: 'FP32', dims: [-1] }] };
    expect(invalidOf(() => validateInferRequest(request([input('b', 'UINT8', [1, 2], { uintContents: [1, 256] })]), sig, limits)).message).toMatch(
      /input 'b': element 1 \(256\) is out of range for UINT8/,
    );
    expect(invalidOf(() => validateInferRequest(request([input('b', 'UINT8', [1, 2000])], [Buffer.alloc(2000)]), sig, limits)).message).toMatch(
      /input 'b': 2000 elements exceed the limit of 1000/,
    );
  });

  it('checks the full shape of a model that does not batch, and batches nothing', () => {
    const sig: ModelSignature = { inputs: [{ name: 'img', datatype: 'FP32', dims: [3, 2] }], outputs: [{ name: 'y', datatype: 'FP32', dims: [1] }] };
    const noBatch = { ...limits, maxBatchSize: 0 };
    const v = validateInferRequest(request([input('img', 'FP32', [3, 2], { fp32Contents: [1, 2, 3, 4, 5, 6] })]), sig, noBatch);
    expect(v.rows).toBe(1);
    expect(invalidOf(() => validateInferRequest(request([input('img', 'FP32', [6, 2], { fp32Contents: Array(12).fill(0) })]), sig, noBatch)).message).toMatch(
      /at dimension 0/,
    );
  });
});

describe('batch tensors', () => {
  const host = (rows: number, start: number) => {
    const data = Float32Array.from({ length: rows * 2 }, (_, i) => start + i);
    return { name: 'x', datatype: 'FP32' as const, dims: [rows, 2], bytes: new Uint8Array(data.buffer) };
  };

  it('concatenates inputs along dimension 0 and splits outputs back by rows', () => {
    const [batch] = concatInputs([[host(1, 0)], [host(2, 10)]]);
    expect(batch!.dims).toEqual([3, 2]);
    expect(Array.from(alignedView(batch!) as Float32Array)).toEqual([0, 1, 10, 11, 12, 13]);
    const parts = splitOutputs([batch!], [1, 2]);
    expect(parts.map((p) => p[0]!.dims)).toEqual([[1, 2], [2, 2]]);
    expect(Array.from(alignedView(parts[1]![0]!) as Float32Array)).toEqual([10, 11, 12, 13]);
  });

  it('copies even a single request into its own buffer (it is transferred to a worker)', () => {
    const pooled = Buffer.from(new Float32Array([1, 2]).buffer);
    const [t] = concatInputs([[{ name: 'x', datatype: 'FP32', dims: [1, 2], bytes: pooled }]]);
    expect(t!.bytes.buffer).not.toBe(pooled.buffer);
    expect(t!.bytes.byteOffset).toBe(0);
  });

  it('refuses to split an output that is not batched', () => {
    expect(() => splitOutputs([{ name: 'y', datatype: 'FP32', dims: [1], bytes: new Uint8Array(4) }], [1, 1])).toThrow(/not the batch size 2/);
  });

  it('encodes outputs raw or as typed contents', () => {
    const out = host(1, 5);
    const raw = toResponseOutputs([out], true);
    expect(raw.rawOutputContents[0]!.readFloatLE(4)).toBe(6);
    expect(raw.outputs[0]).toMatchObject({ name: 'x', datatype: 'FP32', shape: [1, 2] });
    expect(raw.outputs[0]!.contents).toBeUndefined();
    const typed = toResponseOutputs([out, { name: 'i', datatype: 'INT64', dims: [1], bytes: new Uint8Array(new BigInt64Array([42n]).buffer) }], false);
    expect(typed.rawOutputContents).toEqual([]);
    expect(typed.outputs[0]!.contents!.fp32Contents).toEqual([5, 6]);
    expect(typed.outputs[1]!.contents!.int64Contents).toEqual([42]);
  });
});
