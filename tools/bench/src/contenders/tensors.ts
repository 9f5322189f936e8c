/** A tensor as the Open Inference Protocol describes it, minus the batch dimension. */
export interface TensorSpec {
  readonly name: string;
  /** OIP datatype: FP32, INT64, ... */
  readonly datatype: string;
  /** Dimensions after the first (batch) one. */
  readonly rowShape: readonly number[];
}

const BYTES_PER_ELEMENT: Readonly<Record<string, number>> = {
  BOOL: 1, UINT8: 1, INT8: 1, UINT16: 2, INT16: 2, FP16: 2, UINT32: 4, INT32: 4, FP32: 4, UINT64: 8, INT64: 8, FP64: 8,
};

export function bytesPerElement(datatype: string): number {
  const size = BYTES_PER_ELEMENT[datatype];
  if (size === undefined) throw new Error(`unsupported datatype ${datatype}`);
  return size;
}

export function rowElements(spec: TensorSpec): number {
  return spec.rowShape.reduce((a, b) => a * b, 1);
}

export function rowBytes(spec: TensorSpec): number {
  return rowElements(spec) * bytesPerElement(spec.datatype);
}

/** onnxruntime's tensor type name for an OIP datatype. */
export function ortType(datatype: string): 'float32' | 'int64' | 'int32' | 'float64' | 'uint8' | 'int8' | 'bool' {
  switch (datatype) {
    case 'FP32': return 'float32';
    case 'INT64': return 'int64';
    case 'INT32': return 'int32';
    case 'FP64': return 'float64';
    case 'UINT8': return 'uint8';
    case 'INT8': return 'int8';
    case 'BOOL': return 'bool';
    default: throw new Error(`unsupported datatype ${datatype}`);
  }
}

/** OIP datatype of an onnxruntime tensor type. */
export function oipType(type: string): string {
  switch (type) {
    case 'float32': return 'FP32';
    case 'int64': return 'INT64';
    case 'int32': return 'INT32';
    case 'float64': return 'FP64';
    case 'uint8': return 'UINT8';
    case 'int8': return 'INT8';
    case 'bool': return 'BOOL';
    default: throw new Error(`unsupported tensor type ${type}`);
  }
}
