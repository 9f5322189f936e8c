import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { OnnxGraphBuilder, float, floats, int, ints, str, tensorAttr } from './builder.js';
import { inspectOnnxModel } from './inspect.js';

async function run(bytes: Uint8Array, feeds: Record<string, ort.Tensor>): Promise<ort.InferenceSession.OnnxValueMapType> {
  const session = await ort.InferenceSession.create(bytes);
  try {
    return await session.run(feeds);
  } finally {
    await session.release();
  }
}

function f32(out: ort.InferenceSession.OnnxValueMapType, name: string): { data: Float32Array; dims: readonly number[] } {
  const t = out[name];
  if (!(t instanceof ort.Tensor)) throw new Error(`no output ${name}`);
  return { data: t.data as Float32Array, dims: t.dims };
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-5): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    expect(Math.abs((actual[i] ?? NaN) - (expected[i] ?? NaN)), `element ${i}: ${actual[i]} vs ${expected[i]}`).toBeLessThanOrEqual(tol);
  }
}

/** Deterministic non-trivial values without a PRNG. */
const seq = (n: number, scale = 0.37): Float32Array => Float32Array.from({ length: n }, (_, i) => Math.sin(i * scale + 0.1));

describe('OnnxGraphBuilder', () => {
  it('runs an Add of an input and an initializer', async () => {
    const bytes = new OnnxGraphBuilder('add')
      .input('x', 'float32', [2, 3])
      .initializer('b', Float32Array.from([1, 2, 3, 4, 5, 6]), [2, 3])
      .node('Add', ['x', 'b'], ['y'])
      .output('y', 'float32', [2, 3])
      .toBytes();
    const out = await run(bytes, { x: new ort.Tensor('float32', Float32Array.from([10, 20, 30, 40, 50, 60]), [2, 3]) });
    expect(Array.from(f32(out, 'y').data)).toEqual([11, 22, 33, 44, 55, 66]);
  });

  it('runs MatMul + Add + Relu with a symbolic batch of 1 and 7', async () => {
    const inDim = 5;
    const outDim = 4;
    const w = seq(inDim * outDim);
    const b = seq(outDim, 1.3);
    const bytes = new OnnxGraphBuilder('dense')
      .input('x', 'float32', ['batch', inDim])
      .initializer('w', w, [inDim, outDim])
      .initializer('b', b, [outDim])
      .node('MatMul', ['x', 'w'], ['xw'])
      .node('Add', ['xw', 'b'], ['z'])
      .node('Relu', ['z'], ['y'])
      .output('y', 'float32', ['batch', outDim])
      .toBytes();
    const session = await ort.InferenceSession.create(bytes);
    try {
      for (const batch of [1, 7]) {
        const x = seq(batch * inDim, 0.71);
        const out = await session.run({ x: new ort.Tensor('float32', x, [batch, inDim]) });
        const y = f32(out, 'y');
        expect(y.dims).toEqual([batch, outDim]);
        const expected = new Float32Array(batch * outDim);
        for (let r = 0; r < batch; r++) {
          for (let c = 0; c < outDim; c++) {
            let s = b[c] ?? 0;
            for (let k = 0; k < inDim; k++) s += (x[r * inDim + k] ?? 0) * (w[k * outDim + c] ?? 0);
            expected[r * outDim + c] = Math.max(0, s);
          }
        }
        expect(expected.some((v) => v === 0) && expected.some((v) => v > 0)).toBe(true);
        expectClose(y.data, expected);
      }
    } finally {
      await session.release();
    }
  });

  it('runs Gather + ReduceSum over int64 ids (embedding bag)', async () => {
    const vocab = 6;
    const dim = 3;
    const table = seq(vocab * dim);
    const bytes = new OnnxGraphBuilder('bag', { opset: 17 })
      .input('ids', 'int64', ['batch', 'tokens'])
      .initializer('table', table, [vocab, dim])
      .initializer('axes', BigInt64Array.from([1n]), [1])
      .node('Gather', ['table', 'ids'], ['emb'], { axis: 0 })
      .node('ReduceSum', ['emb', 'axes'], ['sum'], { keepdims: int(0) })
      .output('sum', 'float32', ['batch', dim])
      .toBytes();
    const ids = [
      [0, 5, 5, 2],
      [1, 1, 3, 4],
    ];
    const out = await run(bytes, { ids: new ort.Tensor('int64', BigInt64Array.from(ids.flat().map(BigInt)), [2, 4]) });
    const expected = ids.flatMap((row) =>
      Array.from({ length: dim }, (_, d) => row.reduce((s, id) => s + (table[id * dim + d] ?? 0), 0)),
    );
    expect(f32(out, 'sum').dims).toEqual([2, dim]);
    expectClose(f32(out, 'sum').data, expected);
  });

  it('runs Softmax and keeps INT and FLOAT attributes apart (LayerNormalization epsilon, Constant tensor)', async () => {
    const bytes = new OnnxGraphBuilder('attrs')
      .input('x', 'float32', ['batch', 4])
      .node('Constant', [], ['scale'], { value: tensorAttr(Float32Array.from([1, 1, 1, 1]), [4]) })
      .node('LayerNormalization', ['x', 'scale'], ['ln'], { axis: -1, epsilon: float(1) })
      .node('Softmax', ['ln'], ['p'], { axis: int(-1) })
      .output('p', 'float32', ['batch', 4])
      .toBytes();
    const x = [1, 2, 3, 10, -1, 0, 0.5, 4];
    const out = await run(bytes, { x: new ort.Tensor('float32', Float32Array.from(x), [2, 4]) });
    const expected: number[] = [];
    for (let r = 0; r < 2; r++) {
      const row = x.slice(r * 4, r * 4 + 4);
      const mean = row.reduce((a, b) => a + b, 0) / 4;
      const variance = row.reduce((a, b) => a + (b - mean) ** 2, 0) / 4;
      // epsilon 1 (a FLOAT attribute) visibly changes the normalization, so an INT mix-up would show.
      const ln = row.map((v) => (v - mean) / Math.sqrt(variance + 1));
      const m = Math.max(...ln);
      const e = ln.map((v) => Math.exp(v - m));
      const z = e.reduce((a, b) => a + b, 0);
      expected.push(...e.map((v) => v / z));
    }
    expectClose(f32(out, 'p').data, expected);
  });

  it('stores metadata_props, symbolic dims and opset, readable back', () => {
    const bytes = new OnnxGraphBuilder('meta', { opset: 17, producer: 'test', docString: 'doc' })
      .input('x', 'float32', ['batch', 2])
      .node('Identity', ['x'], ['y'])
      .output('y', 'float32', ['batch', 2])
      .metadata({ labels: JSON.stringify(['ham', 'spam']), tokenizer: 'v1' })
      .metadata({ tokenizer: 'v2' })
      .toBytes();
    const info = inspectOnnxModel(bytes);
    expect(info.metadata).toEqual({ labels: '["ham","spam"]', tokenizer: 'v2' });
    expect(info.inputs).toEqual([{ name: 'x', type: 'float32', dims: ['batch', 2] }]);
    expect(info.outputs).toEqual([{ name: 'y', type: 'float32', dims: ['batch', 2] }]);
    expect(info.opsets).toEqual({ '': 17 });
    expect(info.irVersion).toBe(8);
    expect(info.producer).toBe('test');
    expect(info.graphName).toBe('meta');
  });

  it('encodes every attribute kind with its ONNX type', () => {
    const bytes = new OnnxGraphBuilder('kinds')
      .input('x', 'float32', [1])
      .node('Identity', ['x'], ['y'], { a: 3, b: [1, 2], c: 's', d: Float32Array.from([0.5]), e: float(2), f: ints([-1]), g: floats([1.5]), h: str('t') })
      .output('y', 'float32', [1])
      .toBytes();
    expect(bytes.length).toBeGreaterThan(0);
    expect(() => new OnnxGraphBuilder('bad').node('Identity', ['x'], ['y'], { alpha: 0.5 })).toThrow(/float\(0.5\)/);
  });

  it('rejects a miswired graph with the node name', () => {
    const b = new OnnxGraphBuilder('wiring').input('x', 'float32', [1]).node('Relu', ['nope'], ['y'], {}, 'relu1').output('y', 'float32', [1]);
    expect(() => b.toBytes()).toThrow(/relu1.*'nope'/);
    const dup = new OnnxGraphBuilder('dup').input('x', 'float32', [1]).node('Relu', ['x'], ['x']).output('x', 'float32', [1]);
    expect(() => dup.toBytes()).toThrow(/defined twice/);
    const noOut = new OnnxGraphBuilder('o').input('x', 'float32', [1]).output('z', 'float32', [1]);
    expect(() => noOut.toBytes()).toThrow(/'z' is produced by no node/);
    expect(() => new OnnxGraphBuilder('s').initializer('w', new Float32Array(5), [2, 3])).toThrow(/6 elements, data has 5/);
    expect(() => new OnnxGraphBuilder('t').initializer('w', new Float32Array(2), [2], 'int64')).toThrow(/cannot hold int64/);
  });
});
