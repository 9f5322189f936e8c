import * as ort from 'onnxruntime-node';
import { oipType, ortType } from './tensors.js';

/**
 * An onnxruntime tensor over raw little-endian bytes. The bytes are copied: protobuf hands out
 * views at arbitrary offsets, and typed arrays need aligned ones.
 */
export function tensorFromRaw(datatype: string, shape: readonly number[], raw: Uint8Array): ort.Tensor {
  const type = ortType(datatype);
  const copy = new Uint8Array(raw.byteLength);
  copy.set(raw);
  const buffer = copy.buffer;
  switch (type) {
    case 'float32': return new ort.Tensor(type, new Float32Array(buffer), shape);
    case 'float64': return new ort.Tensor(type, new Float64Array(buffer), shape);
    case 'int64': return new ort.Tensor(type, new BigInt64Array(buffer), shape);
    case 'int32': return new ort.Tensor(type, new Int32Array(buffer), shape);
    case 'int8': return new ort.Tensor(type, new Int8Array(buffer), shape);
    case 'uint8': return new ort.Tensor(type, copy, shape);
    case 'bool': return new ort.Tensor(type, copy, shape);
  }
}

/** The raw bytes and OIP description of an onnxruntime output tensor. */
export function rawFromTensor(tensor: ort.Tensor): { datatype: string; shape: number[]; raw: Buffer } {
  const data = tensor.data as ArrayBufferView;
  return { datatype: oipType(tensor.type), shape: [...tensor.dims], raw: Buffer.from(data.buffer, data.byteOffset, data.byteLength) };
}
