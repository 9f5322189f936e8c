import { OnnxGraphBuilder } from '../onnx/builder.js';
import { activation, checkPositiveInts, dense, DEFAULT_LABELS, type Activation, type BuiltModel } from './layers.js';
import { seededRandom } from './random.js';

export interface MlpOptions {
  seed: number;
  /** Layer widths from input to classes; default [768, 3072, 768, 2]. */
  dims?: number[];
  /** Hidden activation; default 'relu'. */
  activation?: Activation;
  /** Class names; default ['negative', 'positive'] (length must equal the last width). */
  labels?: string[];
  /** Graph name; default 'mlp'. */
  name?: string;
}

/**
 * A random-weight MLP: `input` float32 [batch, dims[0]] → dense + activation per hidden layer →
 * dense → Softmax → `probs` float32 [batch, dims.at(-1)]. Its cost per row is a few matrix-vector
 * products, so running rows one at a time wastes most of the CPU: the model where batching pays.
 */
export interface MlpSpec {
  kind: 'mlp';
  seed: number;
  dims: number[];
  activation: Activation;
  labels: string[];
  name: string;
}

/** The options with defaults filled in and checked: what a built model records as its spec. */
export function resolveMlpSpec(options: MlpOptions): MlpSpec {
  const dims = options.dims ?? [768, 3072, 768, 2];
  const labels = options.labels ?? [...DEFAULT_LABELS];
  if (dims.length < 2) throw new RangeError('buildMlp: dims needs at least an input and an output width');
  checkPositiveInts('buildMlp', Object.fromEntries(dims.map((d, i) => [`dims[${i}]`, d])));
  const classes = dims[dims.length - 1] ?? 0;
  if (labels.length !== classes) throw new RangeError(`buildMlp: ${labels.length} labels for ${classes} classes`);
  return { kind: 'mlp', seed: options.seed, dims: [...dims], activation: options.activation ?? 'relu', labels: [...labels], name: options.name ?? 'mlp' };
}

/**
 * A random-weight MLP: `input` float32 [batch, dims[0]] → dense + activation per hidden layer →
 * dense → Softmax → `probs` float32 [batch, dims.at(-1)]. Its cost per row is a few matrix-vector
 * products, so running rows one at a time wastes most of the CPU: the model where batching pays.
 * FLOPs per row = Σ 2 · dims[i] · dims[i+1] (about 9.4 M with the defaults).
 */
export function buildMlp(options: MlpOptions): BuiltModel {
  const spec = resolveMlpSpec(options);
  const { dims, labels, name, seed } = spec;
  const act = spec.activation;
  const classes = dims[dims.length - 1] ?? 0;

  const random = seededRandom(seed);
  const g = new OnnxGraphBuilder(name, { docString: `random-weight MLP ${dims.join('→')} (${act}), seed ${seed}` });
  g.input('input', 'float32', ['batch', dims[0] ?? 0]);
  let x = 'input';
  let parameters = 0;
  let flopsPerRow = 0;
  for (let i = 0; i + 1 < dims.length; i++) {
    const fanIn = dims[i] ?? 0;
    const fanOut = dims[i + 1] ?? 0;
    const last = i + 2 === dims.length;
    const z = last ? 'logits' : `layer${i}.out`;
    parameters += dense(g, random, `layer${i}`, x, z, fanIn, fanOut);
    flopsPerRow += 2 * fanIn * fanOut;
    if (last) break;
    activation(g, act, `layer${i}`, z, `layer${i}.act`);
    x = `layer${i}.act`;
  }
  g.node('Softmax', ['logits'], ['probs'], { axis: -1 }, 'Softmax');
  g.output('probs', 'float32', ['batch', classes]);
  g.metadata({ labels: JSON.stringify(labels), flops_per_row: String(flopsPerRow), spec: JSON.stringify(spec) });
  return {
    bytes: g.toBytes(),
    input: { name: 'input', type: 'float32', dims: ['batch', dims[0] ?? 0] },
    output: { name: 'probs', type: 'float32', dims: ['batch', classes] },
    labels,
    flopsPerRow,
    parameters,
    spec: { ...spec },
  };
}
