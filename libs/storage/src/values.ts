import { InvalidDocumentError, InvalidQueryError } from './errors.js';
import type { IndexValue } from './types.js';

/** MongoDB caps BSON nesting at 100 levels; the envelope uses some, so data gets fewer. */
export const MAX_DATA_DEPTH = 64;
export const MAX_TENANT_BYTES = 128;
export const MAX_ID_BYTES = 1024;

const wellFormed = (s: string): boolean => (s as string & { isWellFormed(): boolean }).isWellFormed();

function isPlainObject(v: object): boolean {
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

export interface DataEncoders {
  binary(bytes: Uint8Array): unknown;
  date(date: Date): unknown;
}

/**
 * Validates a document body against the rules of `DocumentData` and returns a copy in which
 * binaries and dates went through `encoders` and `undefined` properties are gone. One walk for
 * both adapters keeps "what is a valid document" identical across them.
 */
export function normalizeData(data: unknown, encoders: DataEncoders): Record<string, unknown> {
  if (typeof data !== 'object' || data === null || Array.isArray(data) || !isPlainObject(data)) {
    throw new InvalidDocumentError('data', 'must be a plain object');
  }
  return walkObject(data as Record<string, unknown>, 'data', 1, encoders);
}

function walkObject(obj: Record<string, unknown>, path: string, depth: number, enc: DataEncoders): Record<string, unknown> {
  if (depth > MAX_DATA_DEPTH) throw new InvalidDocumentError(path, `nested deeper than ${MAX_DATA_DEPTH} levels`);
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(obj)) {
    const value = obj[key];
    if (value === undefined) continue;
    checkKey(key, path);
    const encoded = walkValue(value, `${path}.${key}`, depth, enc);
    // Plain assignment of "__proto__" would set the prototype instead of a property.
    if (key === '__proto__') Object.defineProperty(out, key, { value: encoded, enumerable: true, writable: true, configurable: true });
    else out[key] = encoded;
  }
  return out;
}

function checkKey(key: string, path: string): void {
  // `$` starts MongoDB operators and our own tags; `.` is MongoDB's path separator.
  if (key.startsWith('$') || key.includes('.') || key.includes('\0') || !wellFormed(key)) {
    throw new InvalidDocumentError(`${path}[${JSON.stringify(key)}]`, 'keys must not start with "$" nor contain "." or NUL, and must be well-formed UTF-16');
  }
}

function walkValue(value: unknown, path: string, depth: number, enc: DataEncoders): unknown {
  switch (typeof value) {
    case 'string':
      if (!wellFormed(value)) throw new InvalidDocumentError(path, 'string holds a lone surrogate');
      return value;
    case 'number':
      if (!Number.isFinite(value)) throw new InvalidDocumentError(path, `${value} is not a finite number`);
      return value;
    case 'boolean':
      return value;
    case 'object': {
      if (value === null) return null;
      if (value instanceof Uint8Array) return enc.binary(value);
      if (value instanceof Date) {
        if (Number.isNaN(value.getTime())) throw new InvalidDocumentError(path, 'invalid Date');
        return enc.date(value);
      }
      if (Array.isArray(value)) {
        if (depth + 1 > MAX_DATA_DEPTH) throw new InvalidDocumentError(path, `nested deeper than ${MAX_DATA_DEPTH} levels`);
        const out = new Array<unknown>(value.length);
        for (let i = 0; i < value.length; i++) {
          const item: unknown = value[i];
          if (item === undefined) throw new InvalidDocumentError(`${path}[${i}]`, 'arrays must not hold undefined or holes');
          out[i] = walkValue(item, `${path}[${i}]`, depth + 1, enc);
        }
        return out;
      }
      if (ArrayBuffer.isView(value)) {
        throw new InvalidDocumentError(path, `${value.constructor.name} is not stored as is: wrap its bytes in a Uint8Array`);
      }
      if (!isPlainObject(value)) {
        throw new InvalidDocumentError(path, `${value.constructor?.name ?? 'object'} is not a plain object`);
      }
      return walkObject(value as Record<string, unknown>, path, depth + 1, enc);
    }
    default:
      throw new InvalidDocumentError(path, `${typeof value} values cannot be stored`);
  }
}

/**
 * Position of a value's type in MongoDB's cross-type sort order (missing/null < numbers < strings
 * < booleans < dates). SQLite stores it beside the value so both adapters order alike.
 */
export type IndexRank = 0 | 1 | 2 | 3 | 4;

export function isIndexValue(v: unknown): v is IndexValue {
  return (
    v === null ||
    typeof v === 'string' ||
    typeof v === 'boolean' ||
    (typeof v === 'number' && Number.isFinite(v)) ||
    (v instanceof Date && !Number.isNaN(v.getTime()))
  );
}

export function rankOf(v: IndexValue | undefined): IndexRank {
  if (v === null || v === undefined) return 0;
  if (typeof v === 'number') return 1;
  if (typeof v === 'string') return 2;
  if (typeof v === 'boolean') return 3;
  return 4;
}

type KeyKind = 'tenant' | 'id' | 'user';

/** Tenants, ids and users are key parts in both adapters; `/` is reserved as the MongoDB `_id` separator. */
export function checkKeyPart(kind: KeyKind, value: unknown, field: string = kind, asQuery = false): string {
  const fail = (msg: string): never => {
    throw asQuery ? new InvalidQueryError(field, msg) : new InvalidDocumentError(field, msg);
  };
  if (typeof value !== 'string' || value.length === 0) return fail('must be a non-empty string');
  if (value.includes('\0')) return fail('must not contain NUL');
  if (!wellFormed(value)) return fail('must be well-formed UTF-16');
  const max = kind === 'tenant' ? MAX_TENANT_BYTES : MAX_ID_BYTES;
  if (Buffer.byteLength(value, 'utf8') > max) return fail(`longer than ${max} UTF-8 bytes`);
  if (kind === 'tenant' && value.includes('/')) return fail('must not contain "/"');
  return value;
}
