import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

/** Element types a tensor in a built graph may have (names follow onnxruntime-node's tensor types). */
export type OnnxElemType = 'float32' | 'int64' | 'int32' | 'bool' | 'float16' | 'string' | 'uint8' | 'int8' | 'float64';

/** A dimension: a fixed size, or a name for a size chosen at run time (`'batch'`). */
export type OnnxDim = number | string;

/** Typed arrays an initializer or a tensor attribute may hold. */
export type OnnxTensorData = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array | Int8Array;

const DATA_TYPE: Record<OnnxElemType, number> = {
  float32: onnx.TensorProto.DataType.FLOAT,
  int64: onnx.TensorProto.DataType.INT64,
  int32: onnx.TensorProto.DataType.INT32,
  bool: onnx.TensorProto.DataType.BOOL,
  float16: onnx.TensorProto.DataType.FLOAT16,
  string: onnx.TensorProto.DataType.STRING,
  uint8: onnx.TensorProto.DataType.UINT8,
  int8: onnx.TensorProto.DataType.INT8,
  float64: onnx.TensorProto.DataType.DOUBLE,
};

const ELEM_TYPE_BY_CODE = new Map<number, OnnxElemType>(
  Object.entries(DATA_TYPE).map(([name, code]) => [code, name as OnnxElemType]),
);

/** The ONNX data type code of an element type (TensorProto.DataType). */
export function onnxDataType(type: OnnxElemType): number {
  return DATA_TYPE[type];
}

/** The element type of an ONNX data type code, or undefined for types this module does not name. */
export function onnxElemTypeOf(code: number): OnnxElemType | undefined {
  return ELEM_TYPE_BY_CODE.get(code);
}

/**
 * A typed attribute value. ONNX distinguishes INT from FLOAT attributes and an operator rejects the
 * wrong one (`epsilon` must be FLOAT even when it is 1), so JavaScript's single number type is not
 * enough: build values with {@link int}, {@link float}, {@link ints}, {@link floats}, {@link str},
 * {@link strs} and {@link tensorAttr}.
 */
export type OnnxAttr =
  | { readonly kind: 'int'; readonly value: number }
  | { readonly kind: 'float'; readonly value: number }
  | { readonly kind: 'ints'; readonly value: readonly number[] }
  | { readonly kind: 'floats'; readonly value: readonly number[] }
  | { readonly kind: 'string'; readonly value: string }
  | { readonly kind: 'strings'; readonly value: readonly string[] }
  | { readonly kind: 'tensor'; readonly data: OnnxTensorData; readonly dims: readonly number[]; readonly type: OnnxElemType };

/**
 * What `node()` accepts per attribute. Shorthands, each with one meaning: a plain `number` is an INT
 * (a non-integer throws: use `float()`), `number[]` is INTS, a `string` is STRING and a
 * `Float32Array` is FLOATS.
 */
export type OnnxAttrValue = OnnxAttr | number | readonly number[] | string | Float32Array;

export const int = (value: number): OnnxAttr => ({ kind: 'int', value: checkedInt(value, 'int()') });
export const float = (value: number): OnnxAttr => ({ kind: 'float', value });
export const ints = (value: readonly number[]): OnnxAttr => ({ kind: 'ints', value: value.map((v) => checkedInt(v, 'ints()')) });
export const floats = (value: readonly number[] | Float32Array): OnnxAttr => ({ kind: 'floats', value: Array.from(value) });
export const str = (value: string): OnnxAttr => ({ kind: 'string', value });
export const strs = (value: readonly string[]): OnnxAttr => ({ kind: 'strings', value: [...value] });
/** A tensor-valued attribute, e.g. the `value` of a Constant node. The element type defaults from the array. */
export const tensorAttr = (data: OnnxTensorData, dims: readonly number[], type?: OnnxElemType): OnnxAttr => ({
  kind: 'tensor',
  data,
  dims: [...dims],
  type: type ?? defaultElemType(data),
});

export interface OnnxGraphBuilderOptions {
  /** Default-domain opset; 17 is the first with LayerNormalization and what onnxruntime 1.x runs everywhere. */
  opset?: number;
  /** IR version; by default the lowest one the opset requires. */
  irVersion?: number;
  producer?: string;
  producerVersion?: string;
  docString?: string;
  /** Further operator sets, e.g. `{ 'com.microsoft': 1 }` for onnxruntime's contrib ops. */
  extraOpsets?: Record<string, number>;
}

interface ValueDecl {
  name: string;
  type: OnnxElemType;
  dims: OnnxDim[];
}

interface InitializerDecl {
  name: string;
  type: OnnxElemType;
  dims: number[];
  data: OnnxTensorData;
}

interface NodeDecl {
  opType: string;
  inputs: string[];
  outputs: string[];
  attrs: [string, OnnxAttr][];
  name: string;
  domain: string;
}

/**
 * Writes an ONNX model (ModelProto bytes) from declarations: graph inputs and outputs with possibly
 * symbolic dimensions, initializers stored as little-endian raw_data, nodes in topological order and
 * metadata_props. `toBytes()` checks the graph's wiring first, so a typo in a tensor name fails
 * here with the node's name instead of as an opaque onnxruntime load error.
 *
 * Initializer arrays are referenced, not copied (a heavy model holds tens of MB of weights): do not
 * modify one before `toBytes()`.
 */
export class OnnxGraphBuilder {
  private readonly inputs: ValueDecl[] = [];
  private readonly outputs: ValueDecl[] = [];
  private readonly initializers: InitializerDecl[] = [];
  private readonly nodes: NodeDecl[] = [];
  private readonly metadataProps = new Map<string, string>();
  private readonly opset: number;

  constructor(
    private readonly name: string,
    private readonly opts: OnnxGraphBuilderOptions = {},
  ) {
    this.opset = opts.opset ?? 17;
    if (!Number.isInteger(this.opset) || this.opset < 1) throw new RangeError(`invalid opset ${String(opts.opset)}`);
  }

  input(name: string, type: OnnxElemType, dims: OnnxDim[]): this {
    this.inputs.push({ name, type, dims: checkedDims(dims, name) });
    return this;
  }

  output(name: string, type: OnnxElemType, dims: OnnxDim[]): this {
    this.outputs.push({ name, type, dims: checkedDims(dims, name) });
    return this;
  }

  /** A constant tensor (weights). The element type defaults from the array: Float32Array is float32, Uint8Array uint8 (pass 'bool' for masks). */
  initializer(name: string, data: OnnxTensorData, dims: number[], type?: OnnxElemType): this {
    const elemType = type ?? defaultElemType(data);
    checkTensor(name, data, dims, elemType);
    this.initializers.push({ name, type: elemType, dims: [...dims], data });
    return this;
  }

  /**
   * One operator. Inputs may be graph inputs, initializers or earlier nodes' outputs; `''` marks an
   * omitted optional input. Node names default to `<opType>_<index>`.
   */
  node(
    opType: string,
    inputs: string[],
    outputs: string[],
    attrs: Record<string, OnnxAttrValue> = {},
    name?: string,
    domain = '',
  ): this {
    const attrList = Object.entries(attrs).map(([k, v]): [string, OnnxAttr] => [k, normalizeAttr(k, v)]);
    this.nodes.push({
      opType,
      inputs: [...inputs],
      outputs: [...outputs],
      attrs: attrList,
      name: name ?? `${opType}_${this.nodes.length}`,
      domain,
    });
    return this;
  }

  /** Adds model metadata_props (labels, tokenizer settings...); later calls override earlier keys. */
  metadata(props: Record<string, string>): this {
    for (const [k, v] of Object.entries(props)) this.metadataProps.set(k, v);
    return this;
  }

  toBytes(): Uint8Array {
    this.validate();
    const model = onnx.ModelProto.create({
      irVersion: this.opts.irVersion ?? irVersionFor(this.opset),
      opsetImport: [
        { domain: '', version: this.opset },
        ...Object.entries(this.opts.extraOpsets ?? {}).map(([domain, version]) => ({ domain, version })),
      ],
      producerName: this.opts.producer ?? '@aimass/ml',
      producerVersion: this.opts.producerVersion ?? '',
      docString: this.opts.docString ?? '',
      graph: {
        name: this.name,
        input: this.inputs.map(valueInfo),
        output: this.outputs.map(valueInfo),
        initializer: this.initializers.map((t) => tensorProto(t.name, t.data, t.dims, t.type)),
        node: this.nodes.map((n) => ({
          opType: n.opType,
          input: n.inputs,
          output: n.outputs,
          name: n.name,
          domain: n.domain,
          attribute: n.attrs.map(([k, a]) => attributeProto(k, a)),
        })),
      },
      metadataProps: [...this.metadataProps].map(([key, value]) => ({ key, value })),
    });
    return onnx.ModelProto.encode(model).finish();
  }

  private validate(): void {
    const defined = new Set<string>();
    const define = (name: string, what: string): void => {
      if (name === '') throw new Error(`${what}: empty tensor name`);
      if (defined.has(name)) throw new Error(`${what}: tensor '${name}' is defined twice`);
      defined.add(name);
    };
    for (const i of this.inputs) define(i.name, 'graph input');
    for (const t of this.initializers) define(t.name, 'initializer');
    for (const n of this.nodes) {
      for (const i of n.inputs) {
        if (i !== '' && !defined.has(i)) {
          throw new Error(`node '${n.name}' (${n.opType}): input '${i}' is not a graph input, initializer or earlier node output`);
        }
      }
      for (const o of n.outputs) define(o, `node '${n.name}' (${n.opType})`);
    }
    if (this.outputs.length === 0) throw new Error(`graph '${this.name}' has no outputs`);
    for (const o of this.outputs) {
      if (!defined.has(o.name)) throw new Error(`graph output '${o.name}' is produced by no node`);
    }
  }
}

/** The lowest IR version that carries the opset (onnx/docs/Versioning.md). */
function irVersionFor(opset: number): number {
  if (opset <= 8) return 3;
  if (opset <= 9) return 4;
  if (opset <= 10) return 5;
  if (opset <= 11) return 6;
  if (opset <= 14) return 7;
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  return 10;
}

function checkedInt(v: number, where: string): number {
  if (!Number.isSafeInteger(v)) throw new TypeError(`${where} needs a safe integer, got ${v}`);
  return v;
}

function checkedDims(dims: OnnxDim[], name: string): OnnxDim[] {
  for (const d of dims) {
    if (typeof d === 'number' ? !Number.isSafeInteger(d) || d < 0 : d === '') {
      throw new RangeError(`'${name}': invalid dimension ${JSON.stringify(d)}`);
    }
  }
  return [...dims];
}

function normalizeAttr(name: string, v: OnnxAttrValue): OnnxAttr {
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) {
      throw new TypeError(`attribute '${name}': a plain number is an INT attribute; use float(${v}) for a FLOAT`);
    }
    return { kind: 'int', value: v };
  }
  if (typeof v === 'string') return { kind: 'string', value: v };
  if (v instanceof Float32Array) return { kind: 'floats', value: Array.from(v) };
  if (Array.isArray(v)) return ints(v as readonly number[]);
  return v as OnnxAttr;
}

function defaultElemType(data: OnnxTensorData): OnnxElemType {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Float64Array) return 'float64';
  if (data instanceof BigInt64Array) return 'int64';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof Int8Array) return 'int8';
  return 'uint8';
}

const ARRAY_TYPES: Record<OnnxElemType, readonly string[]> = {
  float32: ['Float32Array'],
  float64: ['Float64Array'],
  int64: ['BigInt64Array'],
  int32: ['Int32Array'],
  int8: ['Int8Array'],
  uint8: ['Uint8Array'],
  bool: ['Uint8Array'],
  // No typed array in OnnxTensorData holds these, so they can be graph inputs/outputs but not constants.
  float16: [],
  string: [],
};

function checkTensor(name: string, data: OnnxTensorData, dims: readonly number[], type: OnnxElemType): void {
  const allowed = ARRAY_TYPES[type];
  if (!allowed.includes(data.constructor.name)) {
    throw new TypeError(`tensor '${name}': ${data.constructor.name} cannot hold ${type} (expected ${allowed.join(' or ') || 'no typed array'})`);
  }
  for (const d of dims) {
    if (!Number.isSafeInteger(d) || d < 0) throw new RangeError(`tensor '${name}': invalid dimension ${d}`);
  }
  const count = dims.reduce((a, b) => a * b, 1);
  if (count !== data.length) {
    throw new RangeError(`tensor '${name}': dims [${dims.join(', ')}] hold ${count} elements, data has ${data.length}`);
  }
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** raw_data is little-endian by the ONNX spec; on a little-endian host the array's bytes are it already. */
function rawData(data: OnnxTensorData): Uint8Array {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (LITTLE_ENDIAN || data.BYTES_PER_ELEMENT === 1) return bytes;
  const out = new Uint8Array(bytes.length);
  const n = data.BYTES_PER_ELEMENT;
  for (let i = 0; i < bytes.length; i += n) {
    for (let j = 0; j < n; j++) out[i + j] = bytes[i + n - 1 - j] ?? 0;
  }
  return out;
}

function tensorProto(name: string, data: OnnxTensorData, dims: readonly number[], type: OnnxElemType): onnxProto.onnx.ITensorProto {
  return { name, dims: [...dims], dataType: DATA_TYPE[type], rawData: rawData(data) };
}

function valueInfo(v: ValueDecl): onnxProto.onnx.IValueInfoProto {
  return {
    name: v.name,
    type: {
      tensorType: {
        elemType: DATA_TYPE[v.type],
        shape: { dim: v.dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function attributeProto(name: string, a: OnnxAttr): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  switch (a.kind) {
    case 'int':
      return { name, type: T.INT, i: a.value };
    case 'float':
      return { name, type: T.FLOAT, f: a.value };
    case 'ints':
      return { name, type: T.INTS, ints: [...a.value] };
    case 'floats':
      return { name, type: T.FLOATS, floats: [...a.value] };
    case 'string':
      return { name, type: T.STRING, s: new TextEncoder().encode(a.value) };
    case 'strings':
      return { name, type: T.STRINGS, strings: a.value.map((s) => new TextEncoder().encode(s)) };
    case 'tensor':
      checkTensor(name, a.data, a.dims, a.type);
      return { name, type: T.TENSOR, t: tensorProto('', a.data, a.dims, a.type) };
  }
}
