import { inference } from '@aimass/proto';

export interface RawInput {
  readonly name: string;
  readonly datatype: string;
  readonly shape: readonly number[];
  /** Row-major little-endian elements. */
  readonly raw: Uint8Array;
}

/**
 * A serialized ModelInfer request carrying its tensors in raw_input_contents, the form
 * high-throughput clients send (no per-element protobuf fields to encode or decode).
 */
export function encodeInferRequest(modelName: string, inputs: readonly RawInput[], id = ''): Uint8Array {
  return inference.ModelInferRequest.encode({
    modelName,
    modelVersion: '',
    id,
    parameters: {},
    inputs: inputs.map((i) => ({ name: i.name, datatype: i.datatype, shape: [...i.shape], parameters: {} })),
    outputs: [],
    rawInputContents: inputs.map((i) => Buffer.from(i.raw.buffer, i.raw.byteOffset, i.raw.byteLength)),
  }).finish();
}
