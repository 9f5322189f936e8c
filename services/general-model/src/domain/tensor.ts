import { InvalidArgumentError } from '@aimass/platform';
import type { inference } from '@aimass/proto';
import { DATATYPES, bytesPerElement, isOipDatatype, typedView, type OipDatatype, type TypedArray } from './datatypes.js';

/** One input or output of a model: `dims` has -1 where the size is chosen at run time. */
export interface TensorSpec {
  name: string;
  datatype: OipDatatype;
  dims: number[];
}

export interface ModelSignature {
  inputs: TensorSpec[];
  outputs: TensorSpec[];
}

/**
 * Tensor data in the main thread: little-endian element bytes (the OIP raw layout). `bytes` may be
 * a view into a request buffer at any offset, so typed access goes through `alignedView`.
 */
export interface HostTensor {
  name: string;
  datatype: OipDatatype;
  dims: number[];
  bytes: Uint8Array;
}

/** What a model version allows, for validation. */
export interface InputLimits {
  /** 0: the model does not batch, inputs carry the model's full shape and dim 0 is not a batch. */
  maxBatchSize: number;
  /** Accept NaN and ±Inf in floating-point inputs. */
  allowNonFinite: boolean;
  /** Upper bound on the elements of one input of one request. */
  maxInputElements: number;
}

export interface ValidatedRequest {
  /** In the model's input order. */
  inputs: HostTensor[];
  /** Batch rows (1 for a model that does not batch). */
  rows: number;
  /** Requests with the same key have equal non-batch dims, so they can be concatenated. */
  shapeKey: string;
  /** Output names to return, in the model's order. */
  outputs: string[];
  /** Answer in raw_output_contents (the request used raw_input_contents, or an output has no typed field). */
  raw: boolean;
}

/** Elements of a shape, or NaN if any dim is invalid. */
export function elementCount(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

const invalid = (message: string, field: string) => new InvalidArgumentError(message, { field });

function checkShape(
  spec: TensorSpec,
  shape: readonly number[],
  limits: InputLimits,
  field: string,
): void {
  const what = `input '${spec.name}'`;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw invalid(`${what}: invalid dimension ${d} in shape [${shape.join(',')}]`, field);
  }
  if (shape.length !== spec.dims.length) {
    throw invalid(
      `${what}: shape [${shape.join(',')}] has rank ${shape.length}, the model expects rank ${spec.dims.length} ([${spec.dims.join(',')}])`,
      field,
    );
  }
  for (let i = 0; i < shape.length; i++) {
    const want = spec.dims[i]!;
    if (want >= 0 && shape[i] !== want && !(i === 0 && limits.maxBatchSize > 0)) {
      throw invalid(`${what}: shape [${shape.join(',')}] does not match the model's [${spec.dims.join(',')}] at dimension ${i}`, field);
    }
  }
  if (limits.maxBatchSize > 0) {
    const batch = shape[0]!;
    if (batch < 1) throw invalid(`${what}: batch size (dimension 0) must be at least 1`, field);
    if (batch > limits.maxBatchSize) {
      throw invalid(`${what}: batch size ${batch} exceeds the model's max batch size ${limits.maxBatchSize}`, field);
    }
  }
  const count = elementCount(shape);
  if (count > limits.maxInputElements) {
    throw invalid(`${what}: ${count} elements exceed the limit of ${limits.maxInputElements} per input`, field);
  }
}

function rangeOf(datatype: OipDatatype): [number, number] | undefined {
  switch (datatype) {
    case 'INT8':
      return [-128, 127];
    case 'INT16':
      return [-32768, 32767];
    case 'INT32':
      return [-2147483648, 2147483647];
    case 'UINT8':
      return [0, 255];
    case 'UINT16':
      return [0, 65535];
    case 'UINT32':
      return [0, 4294967295];
    default:
      return undefined;
  }
}

/** Typed `contents` to little-endian bytes, checking the count and integer ranges. */
function contentsToBytes(
  spec: TensorSpec,
  contents: inference.InferTensorContents | undefined,
  count: number,
  field: string,
): Uint8Array {
  const info = DATATYPES[spec.datatype];
  const what = `input '${spec.name}'`;
  if (info.field === undefined) {
    throw invalid(`${what}: ${spec.datatype} has no typed contents field; send it in raw_input_contents`, field);
  }
  const values = (contents?.[info.field] ?? []) as readonly (number | boolean)[];
  if (values.length !== count) {
    const others = contents
      ? (Object.entries(contents) as [string, unknown[]][]).filter(([k, v]) => k !== info.field && v.length > 0).map(([k]) => k)
      : [];
    const hint = values.length === 0 && others.length > 0 ? ` (found ${others.join(', ')}: wrong field for ${spec.datatype})` : '';
    throw invalid(`${what}: ${info.protoField} has ${values.length} elements, shape needs ${count}${hint}`, field);
  }
  const out = new Uint8Array(count * info.bytes);
  const view = typedView(spec.datatype, out.buffer, 0, count);
  if (spec.datatype === 'BOOL') {
    for (let i = 0; i < count; i++) view[i] = values[i] ? 1 : 0;
  } else if (spec.datatype === 'INT64' || spec.datatype === 'UINT64') {
    const big = view as BigInt64Array | BigUint64Array;
    for (let i = 0; i < count; i++) {
      const v = values[i] as number;
      if (!Number.isSafeInteger(v) || (spec.datatype === 'UINT64' && v < 0)) {
        throw invalid(`${what}: element ${i} (${v}) is not a valid ${spec.datatype}`, field);
      }
      big[i] = BigInt(v);
    }
  } else {
    const range = rangeOf(spec.datatype);
    const num = view as Exclude<TypedArray, BigInt64Array | BigUint64Array>;
    for (let i = 0; i < count; i++) {
      const v = values[i] as number;
      if (range && (!Number.isInteger(v) || v < range[0] || v > range[1])) {
        throw invalid(`${what}: element ${i} (${v}) is out of range for ${spec.datatype}`, field);
      }
      num[i] = v;
    }
  }
  return out;
}

/** A typed view of a host tensor, copying only when its bytes are misaligned for the element size. */
export function alignedView(tensor: Pick<HostTensor, 'datatype' | 'bytes'>): TypedArray {
  const size = bytesPerElement(tensor.datatype);
  let bytes = tensor.bytes;
  if (bytes.byteOffset % size !== 0) {
    // Buffer#slice does not copy, so copy by hand.
    const copy = new Uint8Array(bytes.byteLength);
    copy.set(bytes);
    bytes = copy;
  }
  return typedView(tensor.datatype, bytes.buffer, bytes.byteOffset, bytes.byteLength / size);
}

/** Reused for inputs at a misaligned offset, so the check allocates nothing per request. */
const SCRATCH_BYTES = 64 * 1024;
const scratch = new ArrayBuffer(SCRATCH_BYTES);
const scratchBytes = new Uint8Array(scratch);

/**
 * Index of the first NaN or ±Inf element of a floating-point tensor, or -1. Tests the exponent
 * bits (all ones exactly for NaN and ±Inf) through integer views: FP32 one 32-bit word, FP64 its
 * high word, FP16 its 16 bits. Request bytes usually sit at an odd offset inside the received
 * message, so they are checked a chunk at a time through an aligned scratch copy.
 */
export function firstNonFinite(tensor: Pick<HostTensor, 'datatype' | 'bytes'>): number {
  const { datatype, bytes } = tensor;
  const size = datatype === 'FP32' ? 4 : datatype === 'FP64' ? 8 : datatype === 'FP16' ? 2 : 0;
  if (size === 0) return -1;
  const aligned = bytes.byteOffset % size === 0;
  for (let start = 0; start < bytes.byteLength; start += SCRATCH_BYTES) {
    const length = Math.min(SCRATCH_BYTES, bytes.byteLength - start);
    let buffer: ArrayBufferLike = bytes.buffer;
    let offset = bytes.byteOffset + start;
    if (!aligned) {
      scratchBytes.set(bytes.subarray(start, start + length));
      buffer = scratch;
      offset = 0;
    }
    const at = firstNonFiniteAligned(buffer, offset, length, size);
    if (at >= 0) return start / size + at;
  }
  return -1;
}

function firstNonFiniteAligned(buffer: ArrayBufferLike, byteOffset: number, byteLength: number, size: number): number {
  if (size === 2) {
    const halves = new Uint16Array(buffer, byteOffset, byteLength / 2);
    for (let i = 0; i < halves.length; i++) if ((halves[i]! & 0x7c00) === 0x7c00) return i;
    return -1;
  }
  const words = new Uint32Array(buffer, byteOffset, byteLength / 4);
  if (size === 4) {
    for (let i = 0; i < words.length; i++) if ((words[i]! & 0x7f800000) === 0x7f800000) return i;
  } else {
    // Little-endian: the high word (sign, exponent) of element i is word 2i + 1.
    for (let i = 1; i < words.length; i += 2) if ((words[i]! & 0x7ff00000) === 0x7ff00000) return i >> 1;
  }
  return -1;
}

/** What validation derives from a signature alone, computed once per loaded version, not per request. */
interface SignatureIndex {
  specs: Map<string, TensorSpec>;
  inputNames: string;
  outputNames: string[];
  /** Every output has a typed contents field. */
  allTyped: boolean;
}

const indexes = new WeakMap<ModelSignature, SignatureIndex>();

function indexOf(signature: ModelSignature): SignatureIndex {
  let index = indexes.get(signature);
  if (!index) {
    index = {
      specs: new Map(signature.inputs.map((s) => [s.name, s])),
      inputNames: signature.inputs.map((s) => s.name).join(', '),
      outputNames: signature.outputs.map((o) => o.name),
      allTyped: signature.outputs.every((o) => DATATYPES[o.datatype].field !== undefined),
    };
    indexes.set(signature, index);
  }
  return index;
}

function hasTypedContents(contents: inference.InferTensorContents | undefined): boolean {
  if (!contents) return false;
  for (const key in contents) {
    const v = (contents as unknown as Record<string, unknown[] | undefined>)[key];
    if (v !== undefined && v.length > 0) return true;
  }
  return false;
}

/**
 * Checks an OIP inference request against the model and turns it into host tensors. Every failure
 * is an INVALID_ARGUMENT naming the input or output at fault.
 */
export function validateInferRequest(
  request: Pick<inference.ModelInferRequest, 'inputs' | 'outputs' | 'rawInputContents'>,
  signature: ModelSignature,
  limits: InputLimits,
): ValidatedRequest {
  const raw = request.rawInputContents.length > 0;
  if (raw && request.rawInputContents.length !== request.inputs.length) {
    throw invalid(
      `raw_input_contents has ${request.rawInputContents.length} entries for ${request.inputs.length} inputs (one per input, in order)`,
      'raw_input_contents',
    );
  }
  const index = indexOf(signature);
  const specs = index.specs;
  const byName = new Map<string, HostTensor>();
  for (const [i, input] of request.inputs.entries()) {
    const spec = specs.get(input.name);
    if (!spec) {
      throw invalid(
        `unknown input '${input.name}' (the model's inputs: ${index.inputNames})`,
        `inputs[${i}].name`,
      );
    }
    if (byName.has(input.name)) throw invalid(`input '${input.name}' is given twice`, `inputs[${i}].name`);
    if (input.datatype !== spec.datatype) {
      const known = isOipDatatype(input.datatype) ? '' : ' (not a known datatype)';
      throw invalid(
        `input '${input.name}': datatype '${input.datatype}'${known} does not match the model's ${spec.datatype}`,
        `inputs[${i}].datatype`,
      );
    }
    checkShape(spec, input.shape, limits, `inputs[${i}].shape`);
    const count = elementCount(input.shape);
    let bytes: Uint8Array;
    if (raw) {
      if (hasTypedContents(input.contents)) {
        throw invalid(`input '${input.name}': contents must be empty when raw_input_contents is used`, `inputs[${i}].contents`);
      }
      bytes = request.rawInputContents[i]!;
      const expected = count * bytesPerElement(spec.datatype);
      if (bytes.byteLength !== expected) {
        throw invalid(
          `input '${input.name}': raw_input_contents[${i}] has ${bytes.byteLength} bytes, shape [${input.shape.join(',')}] of ${spec.datatype} needs ${expected}`,
          `raw_input_contents[${i}]`,
        );
      }
    } else {
      bytes = contentsToBytes(spec, input.contents, count, `inputs[${i}].contents`);
    }
    const tensor: HostTensor = { name: spec.name, datatype: spec.datatype, dims: [...input.shape], bytes };
    if (!limits.allowNonFinite) {
      const at = firstNonFinite(tensor);
      if (at >= 0) {
        throw invalid(
          `input '${input.name}': element ${at} is NaN or infinite, which this model does not accept`,
          raw ? `raw_input_contents[${i}]` : `inputs[${i}].contents`,
        );
      }
    }
    byName.set(input.name, tensor);
  }
  const inputs: HostTensor[] = [];
  for (const spec of signature.inputs) {
    const tensor = byName.get(spec.name);
    if (!tensor) throw invalid(`missing input '${spec.name}'`, 'inputs');
    inputs.push(tensor);
  }
  let rows = 1;
  if (limits.maxBatchSize > 0) {
    rows = inputs[0]?.dims[0] ?? 1;
    for (const t of inputs) {
      if (t.dims[0] !== rows) {
        throw invalid(
          `input '${t.name}': batch size ${t.dims[0]} differs from input '${inputs[0]!.name}' (${rows})`,
          `inputs[${request.inputs.findIndex((x) => x.name === t.name)}].shape`,
        );
      }
    }
  }
  const outputNames = index.outputNames;
  let outputs = outputNames;
  if (request.outputs.length > 0) {
    const wanted = new Set<string>();
    for (const [i, o] of request.outputs.entries()) {
      if (!outputNames.includes(o.name)) {
        throw invalid(`unknown output '${o.name}' (the model's outputs: ${outputNames.join(', ')})`, `outputs[${i}].name`);
      }
      wanted.add(o.name);
    }
    outputs = outputNames.filter((n) => wanted.has(n));
  }
  const shapeKey = limits.maxBatchSize > 0 ? batchShapeKey(inputs) : `single:${inputs.map((t) => t.dims.join('x')).join('|')}`;
  const needsRaw = !raw && !index.allTyped && signature.outputs.some((o) => outputs.includes(o.name) && DATATYPES[o.datatype].field === undefined);
  return { inputs, rows, shapeKey, outputs, raw: raw || needsRaw };
}

/** The non-batch dims of every input: requests with equal keys can be concatenated along dim 0. */
function batchShapeKey(inputs: readonly HostTensor[]): string {
  let key = '';
  for (let k = 0; k < inputs.length; k++) {
    const dims = inputs[k]!.dims;
    if (k > 0) key += '|';
    for (let i = 1; i < dims.length; i++) key += i > 1 ? `x${dims[i]}` : String(dims[i]);
  }
  return key;
}
