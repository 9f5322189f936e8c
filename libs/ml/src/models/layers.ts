import type { OnnxDim, OnnxGraphBuilder } from '../onnx/builder.js';
import { float } from '../onnx/builder.js';
import { normalArray, type SeededRandom } from './random.js';

export type Activation = 'relu' | 'gelu';

/** A model built for serving or benchmarking, with what a caller needs to feed it and to report. */
export interface BuiltModel {
  /** The ONNX ModelProto bytes. */
  bytes: Uint8Array;
  input: { name: string; type: 'float32' | 'int64'; dims: OnnxDim[] };
  output: { name: string; type: 'float32'; dims: OnnxDim[] };
  /** Class names, also stored in the model's metadata_props as `labels` (JSON array). */
  labels: string[];
  /**
   * Floating-point operations per batch row: 2 per multiply-add of every MatMul. Elementwise ops,
   * normalization and softmax are left out (well under 1% here).
   */
  flopsPerRow: number;
  /** Number of weights and biases. */
  parameters: number;
  /** The options the model was built from, defaults filled in; equal specs give byte-identical models. */
  spec: Record<string, unknown>;
}

export const DEFAULT_LABELS: readonly string[] = ['negative', 'positive'];

/**
 * `out = x · W + b`, W ~ N(0, 1/fan_in) so each output keeps about the input's scale (activations
 * stay bounded however deep the stack), b ~ N(0, 0.1²) so biases are exercised without dominating.
 * Returns the parameter count.
 */
export function dense(
  g: OnnxGraphBuilder,
  random: SeededRandom,
  prefix: string,
  x: string,
  out: string,
  fanIn: number,
  fanOut: number,
): number {
  g.initializer(`${prefix}.weight`, normalArray(random, fanIn * fanOut, 1 / Math.sqrt(fanIn)), [fanIn, fanOut]);
  g.initializer(`${prefix}.bias`, normalArray(random, fanOut, 0.1), [fanOut]);
  g.node('MatMul', [x, `${prefix}.weight`], [`${prefix}.matmul`], {}, `${prefix}.MatMul`);
  g.node('Add', [`${prefix}.matmul`, `${prefix}.bias`], [out], {}, `${prefix}.Add`);
  return fanIn * fanOut + fanOut;
}

/**
 * Relu, or exact Gelu written the way PyTorch exports it (x · 0.5 · (1 + erf(x / √2))) so that
 * onnxruntime's optimizer fuses it into one Gelu kernel, as it does for users' transformer models.
 */
export function activation(g: OnnxGraphBuilder, kind: Activation, prefix: string, x: string, out: string): void {
  if (kind === 'relu') {
    g.node('Relu', [x], [out], {}, `${prefix}.Relu`);
    return;
  }
  ensureScalar(g, 'const.sqrt2', Math.SQRT2);
  ensureScalar(g, 'const.one', 1);
  ensureScalar(g, 'const.half', 0.5);
  g.node('Div', [x, 'const.sqrt2'], [`${prefix}.gelu.div`], {}, `${prefix}.Gelu.Div`);
  g.node('Erf', [`${prefix}.gelu.div`], [`${prefix}.gelu.erf`], {}, `${prefix}.Gelu.Erf`);
  g.node('Add', [`${prefix}.gelu.erf`, 'const.one'], [`${prefix}.gelu.add`], {}, `${prefix}.Gelu.Add`);
  g.node('Mul', [x, `${prefix}.gelu.add`], [`${prefix}.gelu.mul`], {}, `${prefix}.Gelu.Mul`);
  g.node('Mul', [`${prefix}.gelu.mul`, 'const.half'], [out], {}, `${prefix}.Gelu.Half`);
}

const scalars = new WeakMap<OnnxGraphBuilder, Set<string>>();

function ensureScalar(g: OnnxGraphBuilder, name: string, value: number): void {
  let names = scalars.get(g);
  if (!names) scalars.set(g, (names = new Set()));
  if (names.has(name)) return;
  names.add(name);
  g.initializer(name, Float32Array.from([value]), []);
}

/** LayerNormalization over the last axis with unit scale and zero shift (the usual initialization). */
export function layerNorm(g: OnnxGraphBuilder, prefix: string, x: string, out: string, width: number): number {
  g.initializer(`${prefix}.scale`, new Float32Array(width).fill(1), [width]);
  g.initializer(`${prefix}.shift`, new Float32Array(width), [width]);
  g.node('LayerNormalization', [x, `${prefix}.scale`, `${prefix}.shift`], [out], { axis: -1, epsilon: float(1e-5) }, `${prefix}.LayerNorm`);
  return 2 * width;
}

export function checkPositiveInts(what: string, values: Record<string, number>): void {
  for (const [k, v] of Object.entries(values)) {
    if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`${what}: ${k} must be a positive integer, got ${v}`);
  }
}
