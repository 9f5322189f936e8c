import { OnnxGraphBuilder } from '../onnx/builder.js';
import { activation, checkPositiveInts, dense, DEFAULT_LABELS, layerNorm, type Activation, type BuiltModel } from './layers.js';
import { normalArray, seededRandom } from './random.js';

export interface EncoderOptions {
  seed: number;
  /** Number of feed-forward blocks; default 4. */
  blocks?: number;
  /** Model width; default 768. */
  hidden?: number;
  /** Feed-forward width; default 3072. */
  ffn?: number;
  /** Token positions per row; default 128. */
  positions?: number;
  /** Class count; default 2. */
  classes?: number;
  /** Feed-forward activation; default 'gelu' (the Erf form onnxruntime fuses). */
  activation?: Activation;
  labels?: string[];
  /** Graph name; default 'encoder'. */
  name?: string;
  /**
   * What a row is: 'embeddings' (default), float32 [batch, positions, hidden] that the caller has
   * embedded already; or 'token_ids', int64 `input_ids` [batch, positions] that the model embeds
   * itself (a `vocab` × hidden table plus a position table), as the BERT-style exports users bring do.
   */
  input?: EncoderInput;
  /** Rows of the token table with `input: 'token_ids'`; default 30522 (BERT-base's vocabulary). */
  vocab?: number;
}

export type EncoderInput = 'embeddings' | 'token_ids';

export interface EncoderSpec {
  kind: 'encoder';
  seed: number;
  blocks: number;
  hidden: number;
  ffn: number;
  positions: number;
  classes: number;
  activation: Activation;
  labels: string[];
  name: string;
  input: EncoderInput;
  /** Token table rows; 0 with `input: 'embeddings'`. */
  vocab: number;
}

/** The options with defaults filled in and checked: what a built model records as its spec. */
export function resolveEncoderSpec(options: EncoderOptions): EncoderSpec {
  const blocks = options.blocks ?? 4;
  const hidden = options.hidden ?? 768;
  const ffn = options.ffn ?? 3072;
  const positions = options.positions ?? 128;
  const classes = options.classes ?? 2;
  const input = options.input ?? 'embeddings';
  if (input !== 'embeddings' && input !== 'token_ids') throw new RangeError(`buildEncoder: input must be 'embeddings' or 'token_ids', got ${String(input)}`);
  const vocab = input === 'token_ids' ? (options.vocab ?? 30522) : 0;
  checkPositiveInts('buildEncoder', { blocks, hidden, ffn, positions, classes, ...(input === 'token_ids' ? { vocab } : {}) });
  const labels = options.labels ?? (classes === 2 ? [...DEFAULT_LABELS] : Array.from({ length: classes }, (_, i) => `class${i}`));
  if (labels.length !== classes) throw new RangeError(`buildEncoder: ${labels.length} labels for ${classes} classes`);
  return {
    kind: 'encoder',
    seed: options.seed,
    blocks,
    hidden,
    ffn,
    positions,
    classes,
    activation: options.activation ?? 'gelu',
    labels: [...labels],
    name: options.name ?? 'encoder',
    input,
    vocab,
  };
}

/**
 * A random-weight, encoder-shaped model: `input` float32 [batch, positions, hidden] (or `input_ids`
 * int64 [batch, positions] → token table Gather + position table) → `blocks` ×
 * (LayerNorm → dense hidden→ffn → activation → dense ffn→hidden → residual Add) → LayerNorm → mean
 * over positions → dense hidden→classes → Softmax → `probs` float32 [batch, classes].
 *
 * It stands for the transformer models users bring (the feed-forward half of each layer, which is
 * about two thirds of a BERT layer's FLOPs; attention is left out to keep the graph plain ONNX):
 * every row is already `positions` rows of large matrix products, so compute dominates and batching
 * can at best keep the cores busy. FLOPs per row = blocks · positions · 4 · hidden · ffn
 * + 2 · hidden · classes; about 4.8 GFLOP with the defaults. Weights: 2 · blocks · hidden · ffn
 * float32 (75 MB at the defaults), plus (vocab + positions) · hidden with token ids (94 MB more
 * for BERT's 30522 tokens; the Gather that reads it costs next to nothing).
 */
export function buildEncoder(options: EncoderOptions): BuiltModel {
  const spec = resolveEncoderSpec(options);
  const { blocks, hidden, ffn, positions, classes, labels, name } = spec;
  const act = spec.activation;

  const random = seededRandom(spec.seed);
  const g = new OnnxGraphBuilder(name, {
    docString: `random-weight encoder: ${blocks} blocks ${hidden}→${ffn}→${hidden} (${act}) over ${positions} positions, seed ${spec.seed}`,
  });
  let parameters = 0;
  let x: string;
  let input: BuiltModel['input'];
  if (spec.input === 'token_ids') {
    input = { name: 'input_ids', type: 'int64', dims: ['batch', positions] };
    g.input(input.name, 'int64', ['batch', positions]);
    // N(0, 1) rows, as LayerNorm leaves a trained embedding's output; the position table adds the
    // same [positions, hidden] to every row (broadcast over the batch).
    g.initializer('embed.tokens', normalArray(random, spec.vocab * hidden, 1), [spec.vocab, hidden]);
    g.initializer('embed.positions', normalArray(random, positions * hidden, 0.1), [positions, hidden]);
    g.node('Gather', ['embed.tokens', input.name], ['embed.gathered'], { axis: 0 }, 'embed.Gather');
    g.node('Add', ['embed.gathered', 'embed.positions'], ['embed.out'], {}, 'embed.Positions');
    parameters += (spec.vocab + positions) * hidden;
    x = 'embed.out';
  } else {
    input = { name: 'input', type: 'float32', dims: ['batch', positions, hidden] };
    g.input(input.name, 'float32', ['batch', positions, hidden]);
    x = input.name;
  }
  for (let b = 0; b < blocks; b++) {
    const p = `block${b}`;
    parameters += layerNorm(g, `${p}.ln`, x, `${p}.ln.out`, hidden);
    parameters += dense(g, random, `${p}.up`, `${p}.ln.out`, `${p}.up.out`, hidden, ffn);
    activation(g, act, `${p}.up`, `${p}.up.out`, `${p}.act`);
    parameters += dense(g, random, `${p}.down`, `${p}.act`, `${p}.down.out`, ffn, hidden);
    g.node('Add', [x, `${p}.down.out`], [`${p}.out`], {}, `${p}.Residual`);
    x = `${p}.out`;
  }
  parameters += layerNorm(g, 'final.ln', x, 'final.ln.out', hidden);
  // axes is an attribute up to opset 17 (an input from 18 on).
  g.node('ReduceMean', ['final.ln.out'], ['pooled'], { axes: [1], keepdims: 0 }, 'Pool');
  parameters += dense(g, random, 'head', 'pooled', 'logits', hidden, classes);
  g.node('Softmax', ['logits'], ['probs'], { axis: -1 }, 'Softmax');
  g.output('probs', 'float32', ['batch', classes]);
  const flopsPerRow = blocks * positions * 4 * hidden * ffn + 2 * hidden * classes;
  g.metadata({ labels: JSON.stringify(labels), flops_per_row: String(flopsPerRow), spec: JSON.stringify(spec) });
  return {
    bytes: g.toBytes(),
    input,
    output: { name: 'probs', type: 'float32', dims: ['batch', classes] },
    labels,
    flopsPerRow,
    parameters,
    spec: { ...spec },
  };
}
