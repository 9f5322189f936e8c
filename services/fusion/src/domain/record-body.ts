import { v1 } from '@aimass/proto';

/**
 * The personal part of a prediction record, sealed as one payload with the user's key: the mail
 * itself, and everything derived from it that could give it away. The general model's embedding
 * is a dense encoding of the text (inversion attacks recover much of it), the sparse features
 * are hashed tokens (a dictionary reverses them), and the logits, probabilities and fused label
 * say what the mail was judged to be. Only what is the same for every user (the model's name,
 * version and label set) stays in the clear.
 */
export interface RecordBody {
  readonly input: v1.InputPayload;
  /** The general logits (referenced to class 0), kept as doubles as the service computed them. */
  readonly logits: readonly number[];
  readonly probabilities: readonly number[];
  /** The general embedding, float32 as the model produced it. */
  readonly embedding: readonly number[];
  /** The personal features, when the prediction computed them. */
  readonly sparse?: v1.SparseVector | undefined;
  /** The fused label the user was shown. */
  readonly label: string;
}

/** The body's own format version: a later layout must read this one until old records expire. */
const FORMAT_V1 = 1;
const HAS_SPARSE = 1;
const SECTIONS = 6;

/** Associated data of a record's sealed body: binds the ciphertext to its record. */
export function recordAssociatedData(predictionId: string): string {
  // Namespaced, so a record's payload can never pass for an event's (those are bound to the bare event id).
  return `aimass/fusion/prediction/v1:${predictionId}`;
}

function f64(values: readonly number[]): Uint8Array {
  const out = new Uint8Array(values.length * 8);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => view.setFloat64(i * 8, v, true));
  return out;
}

function f32(values: readonly number[]): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => view.setFloat32(i * 4, v, true));
  return out;
}

function readF64(bytes: Uint8Array): number[] {
  if (bytes.byteLength % 8 !== 0) throw new RecordBodyError(`a double section of ${bytes.byteLength} bytes`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Array.from({ length: bytes.byteLength / 8 }, (_, i) => view.getFloat64(i * 8, true));
}

function readF32(bytes: Uint8Array): number[] {
  if (bytes.byteLength % 4 !== 0) throw new RecordBodyError(`a float section of ${bytes.byteLength} bytes`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Array.from({ length: bytes.byteLength / 4 }, (_, i) => view.getFloat32(i * 4, true));
}

/** A body that does not parse: a bug or a format this version does not know, never a key matter. */
export class RecordBodyError extends Error {
  override readonly name = 'RecordBodyError';

  constructor(what: string) {
    super(`prediction record body unreadable: ${what}`);
  }
}

/**
 * `[format][flags]` then six sections, each a little-endian u32 length and its bytes: the encoded
 * InputPayload, logits (f64), probabilities (f64), embedding (f32), the encoded SparseVector
 * (empty when absent), the label (UTF-8).
 */
export function encodeRecordBody(body: RecordBody): Uint8Array {
  const sections = [
    v1.InputPayload.encode(body.input).finish(),
    f64(body.logits),
    f64(body.probabilities),
    f32(body.embedding),
    body.sparse ? v1.SparseVector.encode(body.sparse).finish() : new Uint8Array(0),
    new TextEncoder().encode(body.label),
  ];
  const out = new Uint8Array(2 + sections.reduce((n, s) => n + 4 + s.byteLength, 0));
  const view = new DataView(out.buffer);
  out[0] = FORMAT_V1;
  out[1] = body.sparse ? HAS_SPARSE : 0;
  let at = 2;
  for (const s of sections) {
    view.setUint32(at, s.byteLength, true);
    out.set(s, at + 4);
    at += 4 + s.byteLength;
  }
  return out;
}

/** The body back; throws `RecordBodyError` for anything `encodeRecordBody` did not write. */
export function decodeRecordBody(bytes: Uint8Array): RecordBody {
  if (bytes.byteLength < 2) throw new RecordBodyError(`${bytes.byteLength} bytes`);
  if (bytes[0] !== FORMAT_V1) throw new RecordBodyError(`format ${bytes[0]}, this version reads ${FORMAT_V1}`);
  const flags = bytes[1]!;
  if ((flags & ~HAS_SPARSE) !== 0) throw new RecordBodyError(`unknown flags ${flags}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const sections: Uint8Array[] = [];
  let at = 2;
  for (let i = 0; i < SECTIONS; i++) {
    if (at + 4 > bytes.byteLength) throw new RecordBodyError(`truncated before section ${i}`);
    const length = view.getUint32(at, true);
    if (at + 4 + length > bytes.byteLength) throw new RecordBodyError(`section ${i} runs past the end`);
    sections.push(bytes.subarray(at + 4, at + 4 + length));
    at += 4 + length;
  }
  if (at !== bytes.byteLength) throw new RecordBodyError(`${bytes.byteLength - at} bytes after the last section`);
  const [input, logits, probabilities, embedding, sparse, label] = sections as [Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array];
  try {
    return {
      input: v1.InputPayload.decode(input),
      logits: readF64(logits),
      probabilities: readF64(probabilities),
      embedding: readF32(embedding),
      sparse: flags & HAS_SPARSE ? v1.SparseVector.decode(sparse) : undefined,
      label: new TextDecoder('utf-8', { fatal: true }).decode(label),
    };
  } catch (err) {
    if (err instanceof RecordBodyError) throw err;
    throw new RecordBodyError(`a section does not decode (${err instanceof Error ? err.message : String(err)})`);
  }
}
