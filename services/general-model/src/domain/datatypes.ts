/**
 * Open Inference Protocol tensor datatypes and how they map to onnxruntime tensor types and to the
 * typed `contents` fields of InferTensorContents.
 */
export type OipDatatype =
  | 'BOOL'
  | 'UINT8'
  | 'UINT16'
  | 'UINT32'
  | 'UINT64'
  | 'INT8'
  | 'INT16'
  | 'INT32'
  | 'INT64'
  | 'FP16'
  | 'FP32'
  | 'FP64';

/** onnxruntime-node tensor type names for the datatypes above. */
export type OrtType =
  | 'bool'
  | 'uint8'
  | 'uint16'
  | 'uint32'
  | 'uint64'
  | 'int8'
  | 'int16'
  | 'int32'
  | 'int64'
  | 'float16'
  | 'float32'
  | 'float64';

/** Typed-contents field names (ts-proto's camelCase of InferTensorContents). */
export type ContentsField =
  | 'boolContents'
  | 'intContents'
  | 'int64Contents'
  | 'uintContents'
  | 'uint64Contents'
  | 'fp32Contents'
  | 'fp64Contents';

interface DatatypeInfo {
  ort: OrtType;
  bytes: number;
  /** Undefined for FP16, which has no typed field and must travel as raw bytes. */
  field: ContentsField | undefined;
  /** Protobuf field name, for error messages a KServe/Triton user recognises. */
  protoField: string | undefined;
}

export const DATATYPES: Readonly<Record<OipDatatype, DatatypeInfo>> = {
  BOOL: { ort: 'bool', bytes: 1, field: 'boolContents', protoField: 'bool_contents' },
  UINT8: { ort: 'uint8', bytes: 1, field: 'uintContents', protoField: 'uint_contents' },
  UINT16: { ort: 'uint16', bytes: 2, field: 'uintContents', protoField: 'uint_contents' },
  UINT32: { ort: 'uint32', bytes: 4, field: 'uintContents', protoField: 'uint_contents' },
  UINT64: { ort: 'uint64', bytes: 8, field: 'uint64Contents', protoField: 'uint64_contents' },
  INT8: { ort: 'int8', bytes: 1, field: 'intContents', protoField: 'int_contents' },
  INT16: { ort: 'int16', bytes: 2, field: 'intContents', protoField: 'int_contents' },
  INT32: { ort: 'int32', bytes: 4, field: 'intContents', protoField: 'int_contents' },
  INT64: { ort: 'int64', bytes: 8, field: 'int64Contents', protoField: 'int64_contents' },
  FP16: { ort: 'float16', bytes: 2, field: undefined, protoField: undefined },
  FP32: { ort: 'float32', bytes: 4, field: 'fp32Contents', protoField: 'fp32_contents' },
  FP64: { ort: 'float64', bytes: 8, field: 'fp64Contents', protoField: 'fp64_contents' },
};

const BY_ORT = new Map<string, OipDatatype>(Object.entries(DATATYPES).map(([dt, info]) => [info.ort, dt as OipDatatype]));

export function isOipDatatype(value: string): value is OipDatatype {
  return Object.hasOwn(DATATYPES, value);
}

/** The OIP datatype of an onnxruntime tensor type, or undefined when this server cannot carry it (string, int4...). */
export function datatypeOfOrt(ortType: string): OipDatatype | undefined {
  return BY_ORT.get(ortType);
}

export function bytesPerElement(datatype: OipDatatype): number {
  return DATATYPES[datatype].bytes;
}

/** A typed array over `bytes` (which must be aligned for the element size) for the datatype. */
export function typedView(datatype: OipDatatype, buffer: ArrayBufferLike, byteOffset: number, length: number): TypedArray {
  switch (datatype) {
    case 'BOOL':
    case 'UINT8':
      return new Uint8Array(buffer, byteOffset, length);
    case 'INT8':
      return new Int8Array(buffer, byteOffset, length);
    case 'UINT16':
    case 'FP16':
      return new Uint16Array(buffer, byteOffset, length);
    case 'INT16':
      return new Int16Array(buffer, byteOffset, length);
    case 'UINT32':
      return new Uint32Array(buffer, byteOffset, length);
    case 'INT32':
      return new Int32Array(buffer, byteOffset, length);
    case 'UINT64':
      return new BigUint64Array(buffer, byteOffset, length);
    case 'INT64':
      return new BigInt64Array(buffer, byteOffset, length);
    case 'FP32':
      return new Float32Array(buffer, byteOffset, length);
    case 'FP64':
      return new Float64Array(buffer, byteOffset, length);
  }
}

export type TypedArray =
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | BigUint64Array
  | BigInt64Array
  | Float32Array
  | Float64Array;
