import * as ort from 'onnxruntime-node';
import { seededRandom } from '@aimass/ml';
import { encodeInferRequest } from '../load/requests.js';
import { oipType, rowElements, type TensorSpec } from '../contenders/tensors.js';
import type { ModelName } from '../report/record.js';

/** What every contender of one model is fed: the same rows, as requests and as batches. */
export interface Workload {
  readonly model: ModelName;
  /** model.onnx, for the naive server and the in-process session. */
  readonly modelPath: string;
  /** Name the service serves the model under. */
  readonly servedName: string;
  readonly input: TensorSpec;
  /** The model's outputs (from one real run), which the echo server imitates. */
  readonly outputs: readonly TensorSpec[];
  /** Single-row ModelInfer requests, serialized. */
  readonly payloads: readonly Uint8Array[];
  /** A batch of `batch` rows for session.run, cycling through the same rows. */
  feeds(batch: number): Record<string, ort.Tensor>;
  readonly flopsPerRow: number | null;
  /** How the rows were made, for the report. */
  readonly description: string;
}

export interface WorkloadRows {
  readonly model: ModelName;
  readonly modelPath: string;
  readonly servedName: string;
  readonly input: TensorSpec;
  /** Row data: Float32Array rows for FP32 inputs, BigInt64Array rows for INT64 inputs. */
  readonly rows: readonly (Float32Array | BigInt64Array)[];
  readonly flopsPerRow: number | null;
  readonly description: string;
}

function bytesOf(row: Float32Array | BigInt64Array): Uint8Array {
  return new Uint8Array(row.buffer, row.byteOffset, row.byteLength);
}

/** Completes rows into a workload: requests, batches, and the output signature from one run. */
export async function makeWorkload(spec: WorkloadRows): Promise<Workload> {
  const { input, rows } = spec;
  if (rows.length === 0) throw new Error(`${spec.model}: no rows`);
  const elements = rowElements(input);
  const feeds = (batch: number): Record<string, ort.Tensor> => {
    const first = rows[0] as Float32Array | BigInt64Array;
    const data = first instanceof Float32Array ? new Float32Array(batch * elements) : new BigInt64Array(batch * elements);
    for (let i = 0; i < batch; i++) (data as Float32Array).set(rows[i % rows.length] as Float32Array, i * elements);
    return { [input.name]: new ort.Tensor(first instanceof Float32Array ? 'float32' : 'int64', data, [batch, ...input.rowShape]) };
  };
  const payloads = rows.map((row, i) => encodeInferRequest(spec.servedName, [{ name: input.name, datatype: input.datatype, shape: [1, ...input.rowShape], raw: bytesOf(row) }], `r${i}`));
  const session = await ort.InferenceSession.create(spec.modelPath);
  let outputs: TensorSpec[];
  try {
    const result = await session.run(feeds(1));
    outputs = session.outputNames.map((name) => {
      const t = result[name] as ort.Tensor;
      return { name, datatype: oipType(t.type), rowShape: t.dims.slice(1) };
    });
  } finally {
    await session.release();
  }
  return { ...spec, outputs, payloads, feeds };
}

/** `count` rows of N(0,1) float32 values of `rowShape`, from a fixed seed. */
export function randomFloatRows(count: number, rowShape: readonly number[], seed: number): Float32Array[] {
  const random = seededRandom(seed);
  const n = rowShape.reduce((a, b) => a * b, 1);
  return Array.from({ length: count }, () => {
    const row = new Float32Array(n);
    for (let i = 0; i < n; i++) row[i] = random.normal();
    return row;
  });
}

/** `count` rows of token ids of `rowShape`, uniform below `vocab`, from a fixed seed. */
export function randomTokenRows(count: number, rowShape: readonly number[], vocab: number, seed: number): BigInt64Array[] {
  if (!(Number.isSafeInteger(vocab) && vocab >= 1)) throw new RangeError(`randomTokenRows: vocab must be a positive integer, got ${vocab}`);
  const random = seededRandom(seed);
  const n = rowShape.reduce((a, b) => a * b, 1);
  return Array.from({ length: count }, () => BigInt64Array.from({ length: n }, () => BigInt(Math.min(vocab - 1, Math.floor(random.next() * vocab)))));
}
