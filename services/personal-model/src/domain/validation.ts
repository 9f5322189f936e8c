/**
 * Request checks shared by the RPCs. Each failure is an InvalidArgumentError naming the proto
 * field (`items[2].general.embedding`), the limit and what to send instead, so a caller can fix
 * the request without reading this code.
 */
import type { PersonalModelInput } from '@aimass/ml';
import { InvalidArgumentError, PSEUDONYM_PATTERN } from '@aimass/platform';
import type { GeneralModelRef } from './versions.js';

/** The proto shapes read here (structural, so the domain does not depend on generated code). */
export interface GeneralOutputLike {
  model?: { name: string; version: string } | undefined;
  logits: number[];
  embedding: number[];
}
export interface SparseVectorLike {
  dimension: number;
  indices: number[];
  values: number[];
}

/** What a model's inputs must look like. */
export interface InputShape {
  labels: readonly string[];
  embeddingDim: number;
  sparseDimension: number;
}

export function checkPseudonym(value: string, field = 'user_pseudonym'): string {
  if (!value) throw new InvalidArgumentError(`${field} is required: the user's pseudonym (32 characters a-z, 2-7, from the Pseudonymizer)`, { field });
  if (!PSEUDONYM_PATTERN.test(value)) {
    throw new InvalidArgumentError(`${field} is not a pseudonym: expected 32 characters a-z, 2-7 (send the Pseudonymizer's output, never a user id)`, { field });
  }
  return value;
}

export function checkFinite(values: readonly number[], field: string): void {
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) throw new InvalidArgumentError(`${field}[${i}] is ${String(values[i])}: only finite numbers are accepted`, { field });
  }
}

export function checkGeneralRef(ref: { name: string; version: string } | undefined, field: string): GeneralModelRef {
  if (!ref || !ref.version) {
    throw new InvalidArgumentError(`${field} is required: the general model (name and version) that produced the output, as Classify returned it`, { field });
  }
  return { name: ref.name, version: ref.version };
}

/** A general output's own checks (presence, finite values); its lengths are checked against a model by `modelInput`. */
export function checkGeneralOutput(general: GeneralOutputLike | undefined, field: string): GeneralOutputLike & { model: GeneralModelRef } {
  if (!general) throw new InvalidArgumentError(`${field} is required: the general model's output (model, logits, embedding)`, { field });
  const model = checkGeneralRef(general.model, `${field}.model`);
  if (general.logits.length === 0) throw new InvalidArgumentError(`${field}.logits is empty: send the general model's logits (Classify with include_logits)`, { field: `${field}.logits` });
  checkFinite(general.logits, `${field}.logits`);
  checkFinite(general.embedding, `${field}.embedding`);
  return { ...general, model };
}

export function checkSparse(sparse: SparseVectorLike | undefined, field: string, maxEntries: number): SparseVectorLike | undefined {
  if (!sparse) return undefined;
  const { dimension, indices, values } = sparse;
  if (indices.length !== values.length) {
    throw new InvalidArgumentError(`${field}: ${indices.length} indices but ${values.length} values (they are parallel)`, { field });
  }
  if (indices.length === 0) return dimension > 0 ? sparse : undefined;
  if (dimension <= 0) throw new InvalidArgumentError(`${field}.dimension is required with non-empty indices`, { field: `${field}.dimension` });
  if (indices.length > maxEntries) {
    throw new InvalidArgumentError(`${field} has ${indices.length} entries, more than the limit of ${maxEntries}`, { field: `${field}.indices` });
  }
  let previous = -1;
  for (let i = 0; i < indices.length; i++) {
    const index = indices[i]!;
    if (index <= previous) throw new InvalidArgumentError(`${field}.indices must be strictly increasing (entry ${i}: ${index} after ${previous})`, { field: `${field}.indices` });
    if (index >= dimension) throw new InvalidArgumentError(`${field}.indices[${i}] = ${index} is outside the dimension ${dimension}`, { field: `${field}.indices` });
    previous = index;
  }
  checkFinite(values, `${field}.values`);
  for (let i = 0; i < values.length; i++) {
    if (Math.abs(values[i]!) > MAX_SPARSE_VALUE) {
      throw new InvalidArgumentError(`${field}.values[${i}] = ${values[i]} is outside [-${MAX_SPARSE_VALUE}, ${MAX_SPARSE_VALUE}]: feature values are weights near 1 (libs/ml's featurizer makes them at most 1)`, { field: `${field}.values` });
    }
  }
  return sparse;
}

/**
 * The largest magnitude of a sparse feature value. The learner's squared-gradient accumulators are
 * float32: a value near float32's maximum overflows them into Infinity and the model into NaN.
 */
export const MAX_SPARSE_VALUE = 10_000;

/** The learner's input for one general output and sparse vector, checked against the model's shape. */
export function modelInput(general: GeneralOutputLike, sparse: SparseVectorLike | undefined, shape: InputShape, field: string, sparseField: string): PersonalModelInput {
  if (general.logits.length !== shape.labels.length) {
    throw new InvalidArgumentError(
      `${field}.logits has ${general.logits.length} values but the model has ${shape.labels.length} labels (${shape.labels.join(', ')}), in the general model's order`,
      { field: `${field}.logits` },
    );
  }
  if (general.embedding.length !== shape.embeddingDim) {
    throw new InvalidArgumentError(
      `${field}.embedding has ${general.embedding.length} values but the model was trained on embeddings of ${shape.embeddingDim} (Classify with include_embedding)`,
      { field: `${field}.embedding` },
    );
  }
  const hasSparse = sparse !== undefined && sparse.indices.length > 0;
  if (hasSparse && sparse.dimension !== shape.sparseDimension) {
    throw new InvalidArgumentError(`${sparseField}.dimension is ${sparse.dimension} but the model's sparse features have dimension ${shape.sparseDimension} (use createPersonalFeaturizer's default)`, {
      field: `${sparseField}.dimension`,
    });
  }
  return { generalLogits: general.logits, embedding: general.embedding, ...(hasSparse ? { sparse } : {}) };
}

export function checkLabel(label: string, labels: readonly string[], field: string): number {
  const index = labels.indexOf(label);
  if (index < 0) {
    throw new InvalidArgumentError(
      label ? `${field} '${label.slice(0, 100)}' is not one of the model's labels (${labels.join(', ')})` : `${field} is required: one of ${labels.join(', ')}`,
      { field },
    );
  }
  return index;
}

/**
 * The largest weight an example may carry. One example counting as a thousand is already more
 * than any taste needs; far larger ones (up to float32's 3.4e38) overflow the learner's
 * accumulators into Infinity and NaN, a model no later example could repair.
 */
export const MAX_EXAMPLE_WEIGHT = 1000;

/** 0 means 1 (proto default); otherwise a finite number > 0, at most MAX_EXAMPLE_WEIGHT. */
export function checkWeight(weight: number, field: string): number {
  if (weight === 0) return 1;
  if (!Number.isFinite(weight) || weight < 0 || weight > MAX_EXAMPLE_WEIGHT) {
    throw new InvalidArgumentError(`${field} must be a finite number in [0, ${MAX_EXAMPLE_WEIGHT}] (0 means 1), got ${weight}`, { field });
  }
  return weight;
}

export function checkIdempotencyKey(key: string, field: string, maxLength: number): string | undefined {
  if (key === '') return undefined;
  if (key.length > maxLength) throw new InvalidArgumentError(`${field} is ${key.length} characters, more than the limit of ${maxLength}`, { field });
  // Printable ASCII without spaces: keys become part of store ids.
  if (!/^[\x21-\x7e]+$/.test(key)) throw new InvalidArgumentError(`${field} must be printable ASCII without spaces (e.g. a UUID)`, { field });
  return key;
}

export function checkCount(length: number, field: string, max: number, what: string): void {
  if (length === 0) throw new InvalidArgumentError(`${field} is empty: send at least one ${what}`, { field });
  if (length > max) throw new InvalidArgumentError(`${field} has ${length} ${what}s, more than the limit of ${max} per request: split it`, { field });
}
