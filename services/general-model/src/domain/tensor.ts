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

/** Index of the first NaN or ±Inf element of a floating-point tensor, or -1. */
export function firstNonFinite(tensor: Pick<HostTensor, 'datatype' | 'bytes'>): number {
  if (tensor.datatype === 'FP32' || tensor.datatype === 'FP64') {
    const values = alignedView(tensor) as Float32Array | Float64Array;
    for (let i = 0; i < values.length; i++) {
      // x - x is NaN exactly for NaN and ±Inf, and cheaper than Number.isFinite in a hot loop.
      const v = values[i]!;
      if (v - v !== 0) return i;
    }
  } else if (tensor.datatype === 'FP16') {
    const halves = alignedView(tensor) as Uint16Array;
    for (let i = 0; i < halves.length; i++) if ((halves[i]! & 0x7c00) === 0x7c00) return i;
  }
  return -1;
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
  const byName = new Map<string, HostTensor>();
  const specs = new Map(signature.inputs.map((s) => [s.name, s]));
  for (const [i, input] of request.inputs.entries()) {
    const spec = specs.get(input.name);
    if (!spec) {
      throw invalid(
        `unknown input '${input.name}' (the model's inputs: ${signature.inputs.map((s) => s.name).join(', ')})`,
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
      const hasContents = input.contents && Object.values(input.contents).some((v: unknown[]) => v.length > 0);
      if (hasContents) {
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
  const outputNames = signature.outputs.map((o) => o.name);
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
  const shapeKey =
    limits.maxBatchSize > 0 ? inputs.map((t) => t.dims.slice(1).join('x')).join('|') : `single:${inputs.map((t) => t.dims.join('x')).join('|')}`;
  const needsRaw = signature.outputs.some((o) => outputs.includes(o.name) && DATATYPES[o.datatype].field === undefined);
  return { inputs, rows, shapeKey, outputs, raw: raw || needsRaw };
}
