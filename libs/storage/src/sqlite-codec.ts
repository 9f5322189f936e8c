import type { DataEncoders } from './values.js';

/** Placeholder for a binary until `encodeBody` gives it an offset in the row's blob column. */
class BinRef {
  constructor(readonly bytes: Uint8Array) {}
}

export const sqliteEncoders: DataEncoders = {
  binary: (bytes) => new BinRef(bytes),
  // ISO text keeps the JSON readable with the sqlite3 shell; Dates have millisecond precision so nothing is lost.
  date: (date) => ({ $date: date.toISOString() }),
};

export interface EncodedBody {
  readonly json: string;
  /** Every binary of the document, back to back, raw: no base64 inflation or decoding cost. */
  readonly bins: Buffer | null;
  readonly bytes: number;
}

/**
 * The body is JSON text with binaries replaced by `{"$bin":[offset,length]}` into a blob stored
 * beside it, and dates by `{"$date":"<ISO>"}`. User keys never start with `$`, so tags are
 * unambiguous.
 */
export function encodeBody(body: Record<string, unknown>): EncodedBody {
  const parts: Uint8Array[] = [];
  let offset = 0;
  const json = JSON.stringify(body, (_key, value: unknown) => {
    if (value instanceof BinRef) {
      const tag = { $bin: [offset, value.bytes.byteLength] };
      parts.push(value.bytes);
      offset += value.bytes.byteLength;
      return tag;
    }
    return value;
  });
  const bins = parts.length === 0 ? null : Buffer.concat(parts, offset);
  return { json, bins, bytes: Buffer.byteLength(json, 'utf8') + offset };
}

export function decodeBody(json: string, bins: Buffer | null): Record<string, unknown> {
  return JSON.parse(json, (_key, value: unknown) => {
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      const tagged = value as { $bin?: [number, number]; $date?: string };
      if (tagged.$bin !== undefined) {
        const [start, length] = tagged.$bin;
        if (bins === null || start + length > bins.byteLength) throw new Error('corrupt document: binary out of range');
        // A copy, so callers own plain Uint8Arrays that do not pin the row's whole blob.
        return new Uint8Array(bins.subarray(start, start + length));
      }
      if (tagged.$date !== undefined) return new Date(tagged.$date);
    }
    return value;
  }) as Record<string, unknown>;
}
