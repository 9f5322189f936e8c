import type { inference } from '@aimass/proto';
import { DATATYPES } from './datatypes.js';
import { alignedView, type HostTensor } from './tensor.js';

/**
 * Concatenates the requests' inputs along dimension 0 into fresh buffers: one tensor per model
 * input. Fresh, because request bytes may share an ArrayBuffer with unrelated data (Node's Buffer
 * pool) and the batch buffers are transferred to a worker thread.
 */
export function concatInputs(requests: readonly (readonly HostTensor[])[]): HostTensor[] {
  const first = requests[0];
  if (!first) throw new RangeError('concatInputs: no requests');
  return first.map((proto, k) => {
    let total = 0;
    let rows = 0;
    for (const inputs of requests) {
      const t = inputs[k]!;
      total += t.bytes.byteLength;
      rows += t.dims[0] ?? 1;
    }
    // Not zero-filled: every byte is written below. allocUnsafeSlow, unlike allocUnsafe, never
    // hands out a slice of Node's shared pool, so the buffer is the tensor's own and can be
    // transferred.
    const bytes = new Uint8Array(Buffer.allocUnsafeSlow(total).buffer, 0, total);
    let offset = 0;
    for (const inputs of requests) {
      const t = inputs[k]!;
      bytes.set(t.bytes, offset);
      offset += t.bytes.byteLength;
    }
    const dims = requests.length === 1 ? [...proto.dims] : [rows, ...proto.dims.slice(1)];
    return { name: proto.name, datatype: proto.datatype, dims, bytes };
  });
}

/**
 * Splits batch outputs back into one set per request, by the rows each request contributed. Views,
 * not copies. An output whose dimension 0 is not the batch (a model that returns one value for the
 * whole batch) cannot be attributed to a request and is an error unless the batch has one request.
 */
export function splitOutputs(outputs: readonly HostTensor[], rows: readonly number[]): HostTensor[][] {
  if (rows.length === 1) return [outputs.map((o) => ({ ...o }))];
  const total = rows.reduce((a, b) => a + b, 0);
  const perRequest: HostTensor[][] = rows.map(() => []);
  for (const out of outputs) {
    if (out.dims[0] !== total) {
      throw new Error(`output '${out.name}' has dimension 0 of ${String(out.dims[0])}, not the batch size ${total}`);
    }
    const rowBytes = total === 0 ? 0 : out.bytes.byteLength / total;
    let row = 0;
    for (const [i, n] of rows.entries()) {
      perRequest[i]!.push({
        name: out.name,
        datatype: out.datatype,
        dims: [n, ...out.dims.slice(1)],
        bytes: out.bytes.subarray(row * rowBytes, (row + n) * rowBytes),
      });
      row += n;
    }
  }
  return perRequest;
}

type OutputTensor = inference.ModelInferResponse_InferOutputTensor;

function emptyContents(): inference.InferTensorContents {
  return {
    boolContents: [],
    intContents: [],
    int64Contents: [],
    uintContents: [],
    uint64Contents: [],
    fp32Contents: [],
    fp64Contents: [],
    bytesContents: [],
  };
}

/**
 * Output tensors as OIP response fields: raw little-endian bytes in `raw_output_contents` (what
 * Triton always returns), or typed `contents` when the caller sent typed contents.
 */
export function toResponseOutputs(
  tensors: readonly HostTensor[],
  raw: boolean,
): { outputs: OutputTensor[]; rawOutputContents: Buffer[] } {
  const outputs: OutputTensor[] = [];
  const rawOutputContents: Buffer[] = [];
  for (const t of tensors) {
    const out: OutputTensor = { name: t.name, datatype: t.datatype, shape: [...t.dims], parameters: {} };
    if (raw) {
      rawOutputContents.push(Buffer.from(t.bytes.buffer, t.bytes.byteOffset, t.bytes.byteLength));
    } else {
      const field = DATATYPES[t.datatype].field;
      if (field === undefined) throw new Error(`output '${t.name}' (${t.datatype}) can only be sent raw`);
      const contents = emptyContents();
      const view = alignedView(t);
      if (t.datatype === 'BOOL') contents.boolContents = Array.from(view as Uint8Array, (v) => v !== 0);
      else if (t.datatype === 'INT64' || t.datatype === 'UINT64') {
        contents[field] = Array.from(view as BigInt64Array, (v) => Number(v)) as never;
      } else contents[field] = Array.from(view as Float32Array) as never;
      out.contents = contents;
    }
    outputs.push(out);
  }
  return { outputs, rawOutputContents };
}

