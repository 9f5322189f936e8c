import { OnnxGraphBuilder } from '../onnx/builder.js';
import type { TokenizerConfig } from '../text/featurizer.js';
import type { FastTextModel } from './fasttext.js';

/** Names of the exported graph's tensors and metadata keys: the contract with serving. */
export const FASTTEXT_ONNX = Object.freeze({
  /**
   * Changes whenever the exported graph does (same weights, different nodes), so caches of
   * exported models (the bench's) know to export again. 2: the bag summed by MatMul.
   */
  graphRevision: 2,
  input: 'ids',
  probs: 'probs',
  embedding: 'embedding',
  metadata: Object.freeze({
    labels: 'labels',
    tokenizer: 'tokenizer',
    modelName: 'model_name',
    modelVersion: 'model_version',
    dataHash: 'data_hash',
    embeddingDim: 'embedding_dim',
    combiner: 'combiner',
    architecture: 'architecture',
    graphRevision: 'graph_revision',
  }),
});

export interface FastTextOnnxOptions {
  tokenizer: TokenizerConfig;
  modelName?: string;
  modelVersion?: string | number;
  dataHash?: string;
  /** Further metadata_props, e.g. seed or metrics. */
  metadata?: Record<string, string>;
}

/**
 * The model as ONNX (opset 17). Input `ids` int64 [batch, maxFeatures], 0 = padding. The bag is
 * combined in the graph: Gather(E, ids) summed over the sequence (masked, as a MatMul) and divided by max(count, 1)
 * (mean) or its square root (sqrtn), count being the number of ids in [1, buckets) of the row,
 * which gives `embedding` float32 [batch, dim]; MatMul W + b and
 * Softmax give `probs` float32 [batch, classes]. The tokenizer configuration and labels travel in
 * metadata_props, so the file alone is enough to serve it.
 */
export function exportFastTextOnnx(model: FastTextModel, options: FastTextOnnxOptions): Uint8Array {
  const { tokenizer } = options;
  if (2 ** tokenizer.bucketBits !== model.buckets) {
    throw new RangeError(`tokenizer has ${2 ** tokenizer.bucketBits} buckets, the model ${model.buckets}`);
  }
  const names = FASTTEXT_ONNX;
  const width = tokenizer.maxFeatures;
  const b = new OnnxGraphBuilder(options.modelName ?? 'fasttext', { opset: 17, docString: 'fastText-style embedding bag + linear classifier' })
    .input(names.input, 'int64', ['batch', width])
    .output(names.probs, 'float32', ['batch', model.classes])
    .output(names.embedding, 'float32', ['batch', model.dim])
    .initializer('E', model.embeddings, [model.buckets, model.dim])
    .initializer('W', model.weights, [model.dim, model.classes])
    .initializer('b', model.bias, [model.classes])
    .initializer('zero_id', new BigInt64Array([0n]), [])
    .initializer('bucket_count', new BigInt64Array([BigInt(model.buckets)]), [])
    .initializer('one', new Float32Array([1]), [])
    .initializer('seq_axis', new BigInt64Array([1n]), [1])
    // Any int64 is accepted: ids outside [1, buckets) count as padding instead of failing the run,
    // since one bad row would otherwise fail every request batched with it.
    .node('Greater', [names.input, 'zero_id'], ['above_zero'])
    .node('Less', [names.input, 'bucket_count'], ['below_buckets'])
    .node('And', ['above_zero', 'below_buckets'], ['is_id'])
    .node('Where', ['is_id', names.input, 'zero_id'], ['safe_ids'])
    .node('Gather', ['E', 'safe_ids'], ['rows'], { axis: 0 })
    .node('Cast', ['is_id'], ['mask'], { to: 1 /* FLOAT */ })
    .node('ReduceSum', ['mask', 'seq_axis'], ['count'], { keepdims: 1 })
    // The bag's sum as mask [batch, 1, L] × rows [batch, L, dim] (a batched GEMV) rather than
    // ReduceSum over L: the graph is memory-bound, and onnxruntime's ReduceSum over the middle
    // axis of [1, L, dim] took 2.8 times as long per row as at batch 2 (180 against 65 µs for
    // batch 1 on the 2,048-wide default model), which is most of what a lone request costs. The
    // mask also keeps the sum right if row 0 of E were not zero.
    .node('Unsqueeze', ['mask', 'seq_axis'], ['mask_row'])
    .node('MatMul', ['mask_row', 'rows'], ['summed_row'])
    .node('Squeeze', ['summed_row', 'seq_axis'], ['summed'])
    .node('Max', ['count', 'one'], model.combiner === 'sqrtn' ? ['nonzero_count'] : ['denominator']);
  if (model.combiner === 'sqrtn') b.node('Sqrt', ['nonzero_count'], ['denominator']);
  b.node('Div', ['summed', 'denominator'], [names.embedding])
    .node('MatMul', [names.embedding, 'W'], ['projected'])
    .node('Add', ['projected', 'b'], ['logits'])
    .node('Softmax', ['logits'], [names.probs], { axis: -1 });
  const m = names.metadata;
  const props: Record<string, string> = {
    [m.labels]: JSON.stringify(model.labels),
    [m.tokenizer]: JSON.stringify(tokenizer),
    [m.embeddingDim]: String(model.dim),
    [m.combiner]: model.combiner,
    [m.architecture]: 'fasttext-embedding-bag',
    [m.graphRevision]: String(names.graphRevision),
  };
  if (options.modelName !== undefined) props[m.modelName] = options.modelName;
  if (options.modelVersion !== undefined) props[m.modelVersion] = String(options.modelVersion);
  if (options.dataHash !== undefined) props[m.dataHash] = options.dataHash;
  b.metadata({ ...options.metadata, ...props });
  return b.toBytes();
}
