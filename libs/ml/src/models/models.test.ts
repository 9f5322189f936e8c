import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import { inspectOnnxModel } from '../onnx/inspect.js';
import { buildEncoder, resolveEncoderSpec } from './encoder.js';
import { buildMlp } from './mlp.js';
import { normalArray, seededRandom } from './random.js';

/** The model's float32 initializers by name, read back from raw_data. */
function weights(bytes: Uint8Array): Map<string, Float32Array> {
  const model = onnxProto.onnx.ModelProto.decode(bytes);
  const out = new Map<string, Float32Array>();
  for (const t of model.graph?.initializer ?? []) {
    const raw = t.rawData ?? new Uint8Array(0);
    // protobufjs hands out Buffers that may view a shared pool: copy to an aligned, exact buffer.
    out.set(t.name ?? '', new Float32Array(new Uint8Array(raw).buffer));
  }
  return out;
}

function w(map: Map<string, Float32Array>, name: string): Float32Array {
  const v = map.get(name);
  if (!v) throw new Error(`no initializer ${name}`);
  return v;
}

// Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7), enough against float32 results.
function erf(x: number): number {
  const s = Math.sign(x);
  const a = Math.abs(x);
  const t = 1 / (1 + 0.3275911 * a);
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-a * a);
  return s * y;
}

const act = (kind: 'relu' | 'gelu', v: number): number => (kind === 'relu' ? Math.max(0, v) : 0.5 * v * (1 + erf(v / Math.SQRT2)));

/** rows × fanIn times fanIn × fanOut plus bias. */
function denseJs(x: number[], rows: number, fanIn: number, fanOut: number, wt: Float32Array, b: Float32Array): number[] {
  const out = new Array<number>(rows * fanOut).fill(0);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < fanOut; c++) {
      let s = b[c] ?? 0;
      for (let k = 0; k < fanIn; k++) s += (x[r * fanIn + k] ?? 0) * (wt[k * fanOut + c] ?? 0);
      out[r * fanOut + c] = s;
    }
  }
  return out;
}

function softmaxRows(x: number[], rows: number, width: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < rows; r++) {
    const row = x.slice(r * width, r * width + width);
    const m = Math.max(...row);
    const e = row.map((v) => Math.exp(v - m));
    const z = e.reduce((a, b) => a + b, 0);
    out.push(...e.map((v) => v / z));
  }
  return out;
}

function layerNormRows(x: number[], rows: number, width: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < rows; r++) {
    const row = x.slice(r * width, r * width + width);
    const mean = row.reduce((a, b) => a + b, 0) / width;
    const variance = row.reduce((a, b) => a + (b - mean) ** 2, 0) / width;
    out.push(...row.map((v) => (v - mean) / Math.sqrt(variance + 1e-5)));
  }
  return out;
}

async function runOnce(bytes: Uint8Array, input: Float32Array | BigInt64Array, dims: number[], name = 'input'): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(bytes);
  try {
    const tensor = input instanceof BigInt64Array ? new ort.Tensor('int64', input, dims) : new ort.Tensor('float32', input, dims);
    const out = await session.run({ [name]: tensor });
    const probs = out['probs'];
    if (!probs) throw new Error('no probs');
    expect(probs.dims).toEqual([dims[0], probs.dims[1]]);
    return probs.data as Float32Array;
  } finally {
    await session.release();
  }
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number): void {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs((actual[i] ?? NaN) - (expected[i] ?? NaN)));
  expect(worst).toBeLessThanOrEqual(tol);
}

describe('seededRandom', () => {
  it('repeats its sequence for a seed and draws N(0, 1)', () => {
    const a = normalArray(seededRandom(42), 20_000, 1);
    const b = normalArray(seededRandom(42), 20_000, 1);
    const c = normalArray(seededRandom(43), 20_000, 1);
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
    expect(Buffer.from(a.buffer).equals(Buffer.from(c.buffer))).toBe(false);
    const mean = a.reduce((s, v) => s + v, 0) / a.length;
    const variance = a.reduce((s, v) => s + (v - mean) ** 2, 0) / a.length;
    expect(Math.abs(mean)).toBeLessThan(0.03);
    expect(Math.abs(variance - 1)).toBeLessThan(0.05);
    expect(() => seededRandom(1.5)).toThrow(/integer/);
  });
});

describe('buildMlp', () => {
  for (const kind of ['relu', 'gelu'] as const) {
    it(`matches a plain-JS forward pass (${kind}) for batch 1 and 7`, async () => {
      const dims = [8, 16, 12, 3];
      const model = buildMlp({ seed: 7, dims, activation: kind, labels: ['a', 'b', 'c'] });
      const ws = weights(model.bytes);
      for (const batch of [1, 7]) {
        const input = normalArray(seededRandom(100 + batch), batch * 8, 1);
        let x = Array.from(input);
        for (let i = 0; i + 1 < dims.length; i++) {
          x = denseJs(x, batch, dims[i] ?? 0, dims[i + 1] ?? 0, w(ws, `layer${i}.weight`), w(ws, `layer${i}.bias`));
          if (i + 2 < dims.length) x = x.map((v) => act(kind, v));
        }
        const expected = softmaxRows(x, batch, 3);
        const probs = await runOnce(model.bytes, input, [batch, 8]);
        expectClose(probs, expected, 1e-5);
        // A random model that always answered the same would hide wiring mistakes.
        expect(new Set(Array.from(probs).map((v) => v.toFixed(4))).size).toBeGreaterThanOrEqual(Math.min(probs.length, 6));
      }
    });
  }

  it('is byte-identical for a seed, records its signature, labels and FLOPs', () => {
    const a = buildMlp({ seed: 3, dims: [6, 10, 2] });
    const b = buildMlp({ seed: 3, dims: [6, 10, 2] });
    const c = buildMlp({ seed: 4, dims: [6, 10, 2] });
    expect(Buffer.from(a.bytes).equals(Buffer.from(b.bytes))).toBe(true);
    expect(Buffer.from(a.bytes).equals(Buffer.from(c.bytes))).toBe(false);
    expect(a.flopsPerRow).toBe(2 * (6 * 10 + 10 * 2));
    expect(a.parameters).toBe(6 * 10 + 10 + 10 * 2 + 2);
    const info = inspectOnnxModel(a.bytes);
    expect(info.inputs).toEqual([{ name: 'input', type: 'float32', dims: ['batch', 6] }]);
    expect(info.outputs).toEqual([{ name: 'probs', type: 'float32', dims: ['batch', 2] }]);
    expect(JSON.parse(info.metadata['labels'] ?? '')).toEqual(['negative', 'positive']);
    expect(info.metadata['flops_per_row']).toBe(String(a.flopsPerRow));
    expect(() => buildMlp({ seed: 1, dims: [4, 3], labels: ['x'] })).toThrow(/1 labels for 3 classes/);
  });

  it('defaults to the benchmark shape 768→3072→768→2', () => {
    const model = buildMlp({ seed: 1 });
    expect(model.input.dims).toEqual(['batch', 768]);
    expect(model.output.dims).toEqual(['batch', 2]);
    expect(model.flopsPerRow).toBe(2 * (768 * 3072 + 3072 * 768 + 768 * 2));
    expect(model.bytes.length).toBeGreaterThan(4 * (768 * 3072 * 2));
  });
});

describe('buildEncoder', () => {
  /** The encoder in plain JS, from rows already embedded: [batch · positions · hidden] → probs. */
  function encoderJs(ws: Map<string, Float32Array>, cfg: { blocks: number; hidden: number; ffn: number; positions: number }, input: readonly number[], batch: number): number[] {
    const { hidden, ffn, positions } = cfg;
    const rows = batch * positions;
    let x = Array.from(input);
    for (let b = 0; b < cfg.blocks; b++) {
      const ln = layerNormRows(x, rows, hidden);
      const up = denseJs(ln, rows, hidden, ffn, w(ws, `block${b}.up.weight`), w(ws, `block${b}.up.bias`)).map((v) => act('gelu', v));
      const down = denseJs(up, rows, ffn, hidden, w(ws, `block${b}.down.weight`), w(ws, `block${b}.down.bias`));
      x = x.map((v, i) => v + (down[i] ?? 0));
    }
    const ln = layerNormRows(x, rows, hidden);
    const pooled: number[] = [];
    for (let r = 0; r < batch; r++) {
      for (let h = 0; h < hidden; h++) {
        let s = 0;
        for (let p = 0; p < positions; p++) s += ln[(r * positions + p) * hidden + h] ?? 0;
        pooled.push(s / positions);
      }
    }
    return softmaxRows(denseJs(pooled, batch, hidden, 2, w(ws, 'head.weight'), w(ws, 'head.bias')), batch, 2);
  }

  it('matches a plain-JS forward pass for batch 1 and 3', async () => {
    const cfg = { blocks: 2, hidden: 16, ffn: 32, positions: 4 };
    const model = buildEncoder({ seed: 11, ...cfg });
    const ws = weights(model.bytes);
    const { hidden, positions } = cfg;
    for (const batch of [1, 3]) {
      const input = normalArray(seededRandom(200 + batch), batch * positions * hidden, 1);
      const expected = encoderJs(ws, cfg, Array.from(input), batch);
      const probs = await runOnce(model.bytes, input, [batch, positions, hidden]);
      expectClose(probs, expected, 1e-4);
      expect(probs.every((v) => v > 0 && v < 1)).toBe(true);
    }
    expect(model.flopsPerRow).toBe(2 * 4 * 4 * 16 * 32 + 2 * 16 * 2);
    expect(model.input).toEqual({ name: 'input', type: 'float32', dims: ['batch', 4, 16] });
  });

  it('with token ids, embeds each id from its table and adds the position row, then runs the same blocks', async () => {
    const cfg = { blocks: 2, hidden: 16, ffn: 32, positions: 4 };
    const vocab = 50;
    const model = buildEncoder({ seed: 11, ...cfg, input: 'token_ids', vocab });
    expect(model.input).toEqual({ name: 'input_ids', type: 'int64', dims: ['batch', 4] });
    expect(model.spec).toMatchObject({ input: 'token_ids', vocab });
    expect(model.parameters).toBe(buildEncoder({ seed: 11, ...cfg }).parameters + (vocab + cfg.positions) * cfg.hidden);
    const ws = weights(model.bytes);
    const tokens = w(ws, 'embed.tokens');
    const positionRows = w(ws, 'embed.positions');
    const batch = 3;
    // The first and last rows of the table are used, and one id twice in a row.
    const ids = [0, 49, 7, 7, 12, 3, 49, 0, 25, 25, 1, 2];
    const embedded: number[] = [];
    for (const [i, id] of ids.entries()) {
      const p = i % cfg.positions;
      for (let h = 0; h < cfg.hidden; h++) embedded.push((tokens[id * cfg.hidden + h] ?? 0) + (positionRows[p * cfg.hidden + h] ?? 0));
    }
    const probs = await runOnce(model.bytes, BigInt64Array.from(ids, BigInt), [batch, cfg.positions], 'input_ids');
    expectClose(probs, encoderJs(ws, cfg, embedded, batch), 1e-4);
    expect(() => buildEncoder({ seed: 1, input: 'token_ids', vocab: 0 })).toThrow(/vocab must be a positive integer/);
  });

  it('resolves the default spec without building', () => {
    const spec = resolveEncoderSpec({ seed: 1 });
    expect(spec).toMatchObject({ blocks: 4, hidden: 768, ffn: 3072, positions: 128, classes: 2, activation: 'gelu', input: 'embeddings', vocab: 0 });
    expect(resolveEncoderSpec({ seed: 1, input: 'token_ids' }).vocab).toBe(30522);
    expect(() => resolveEncoderSpec({ seed: 1, blocks: 0 })).toThrow(/blocks must be a positive integer/);
  });
});
