import { FASTTEXT_ONNX, createFeaturizer, parseTokenizerConfig, type Featurizer } from '@aimass/ml';
import { FailedPreconditionError } from '@aimass/platform';
import type { LoadedVersion } from './model-manager.js';

/** What the task API needs to know about a text model version, derived once per loaded version. */
export interface TaskModel {
  labels: string[];
  featurizer: Featurizer;
  inputName: string;
  probsName: string;
  embeddingName: string;
  /** Width of the ids input (the tokenizer's maxFeatures). */
  width: number;
  embeddingDim: number;
}

const cache = new WeakMap<LoadedVersion, TaskModel>();

function parseJson(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}

/** Labels from metadata.json or the ONNX metadata_props (`labels`, a JSON array), if any. */
export function labelsOf(version: Pick<LoadedVersion, 'metadata' | 'onnxMetadata'>): string[] | undefined {
  const raw = parseJson(version.metadata['labels'] ?? version.onnxMetadata[FASTTEXT_ONNX.metadata.labels]);
  return Array.isArray(raw) && raw.every((l) => typeof l === 'string') ? (raw as string[]) : undefined;
}

/**
 * The text model contract of the trained general model (libs/ml FASTTEXT_ONNX): input `ids` int64
 * [batch, maxFeatures], outputs `probs` and `embedding`, and the tokenizer configuration and labels
 * in the metadata. A model without them can still be served over ModelInfer, not over the task API.
 */
export function taskModelOf(version: LoadedVersion): TaskModel {
  const hit = cache.get(version);
  if (hit) return hit;
  const names = FASTTEXT_ONNX;
  const what = `model '${version.model}' version ${version.version}`;
  const tokenizerRaw = version.metadata['tokenizer'] ?? version.onnxMetadata[names.metadata.tokenizer];
  if (tokenizerRaw === undefined) {
    throw new FailedPreconditionError(`${what} has no tokenizer configuration in its metadata: the task API serves text models (use ModelInfer for others)`);
  }
  let featurizer: Featurizer;
  try {
    featurizer = createFeaturizer(parseTokenizerConfig(parseJson(tokenizerRaw)));
  } catch (err) {
    throw new FailedPreconditionError(`${what}: invalid tokenizer configuration (${(err as Error).message})`);
  }
  const input = version.signature.inputs.find((t) => t.name === names.input);
  const probs = version.signature.outputs.find((t) => t.name === names.probs);
  const embedding = version.signature.outputs.find((t) => t.name === names.embedding);
  const width = featurizer.config.maxFeatures;
  if (!input || input.datatype !== 'INT64' || input.dims.length !== 2 || (input.dims[1] !== -1 && input.dims[1] !== width)) {
    throw new FailedPreconditionError(`${what} needs an INT64 input '${names.input}' of shape [batch, ${width}]`);
  }
  if (!probs || probs.datatype !== 'FP32' || !embedding || embedding.datatype !== 'FP32') {
    throw new FailedPreconditionError(`${what} needs FP32 outputs '${names.probs}' and '${names.embedding}'`);
  }
  const classes = probs.dims[1] ?? -1;
  const labels = labelsOf(version) ?? Array.from({ length: Math.max(classes, 0) }, (_, i) => `class_${i}`);
  if (classes >= 0 && labels.length !== classes) throw new FailedPreconditionError(`${what} has ${labels.length} labels for ${classes} classes`);
  const dimMeta = Number(version.onnxMetadata[names.metadata.embeddingDim]);
  const model: TaskModel = {
    labels,
    featurizer,
    inputName: input.name,
    probsName: probs.name,
    embeddingName: embedding.name,
    width,
    embeddingDim: (embedding.dims[1] ?? -1) >= 0 ? embedding.dims[1]! : Number.isInteger(dimMeta) ? dimMeta : 0,
  };
  cache.set(version, model);
  return model;
}
