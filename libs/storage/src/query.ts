import { InvalidQueryError } from './errors.js';
import type { NormalizedSpec } from './spec.js';
import type { CountQuery, IndexValue, OrderDirection, Query, StoredDocument } from './types.js';
import { checkKeyPart, isIndexValue, rankOf } from './values.js';

export const DEFAULT_LIMIT = 100;
export const MAX_LIMIT = 1000;

export type OrderField = { readonly kind: 'id' } | { readonly kind: 'builtin'; readonly name: 'createdAt' | 'updatedAt' } | { readonly kind: 'data'; readonly name: string };

/** Where the previous page ended: the order value of its last document and that document's id. */
export interface CursorPosition {
  readonly value: IndexValue;
  readonly id: string;
}

export interface NormalizedFilter {
  readonly where: ReadonlyArray<{ readonly field: string; readonly value: IndexValue }>;
  readonly user: string | undefined;
}

export interface NormalizedQuery extends NormalizedFilter {
  readonly order: OrderField;
  readonly direction: OrderDirection;
  readonly limit: number;
  readonly after: CursorPosition | undefined;
}

export function normalizeFilter(spec: NormalizedSpec, q: CountQuery | undefined): NormalizedFilter {
  const where: Array<{ field: string; value: IndexValue }> = [];
  if (q?.where !== undefined) {
    if (typeof q.where !== 'object' || q.where === null) throw new InvalidQueryError('where', 'must be an object');
    for (const [field, value] of Object.entries(q.where)) {
      if (value === undefined) continue;
      if (!spec.indexedDataFields.has(field)) {
        const hint = field === 'user' ? 'pass it as the `user` option' : `indexed fields of ${spec.name}: ${[...spec.indexedDataFields].join(', ') || 'none'}`;
        throw new InvalidQueryError(`where.${field}`, `"${field}" is not an indexed field (${hint})`);
      }
      if (!isIndexValue(value)) throw new InvalidQueryError(`where.${field}`, 'must be a string, finite number, boolean, valid Date or null');
      where.push({ field, value });
    }
  }
  const user = q?.user === undefined ? undefined : checkKeyPart('user', q.user, 'user', true);
  return { where, user };
}

export function normalizeQuery(spec: NormalizedSpec, q: Query | undefined): NormalizedQuery {
  const filter = normalizeFilter(spec, q);
  const field = q?.orderBy?.field ?? 'id';
  let order: OrderField;
  if (field === 'id') order = { kind: 'id' };
  else if (field === 'createdAt' || field === 'updatedAt') order = { kind: 'builtin', name: field };
  else if (spec.indexedDataFields.has(field)) order = { kind: 'data', name: field };
  else {
    throw new InvalidQueryError(
      'orderBy.field',
      `"${field}" is not an indexed field of ${spec.name} (use id, createdAt, updatedAt${[...spec.indexedDataFields].map((f) => `, ${f}`).join('')})`,
    );
  }
  const direction = q?.orderBy?.direction ?? 'asc';
  if (direction !== 'asc' && direction !== 'desc') throw new InvalidQueryError('orderBy.direction', 'must be "asc" or "desc"');
  const limit = q?.limit ?? DEFAULT_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) throw new InvalidQueryError('limit', `must be an integer from 1 to ${MAX_LIMIT}`);
  const after = q?.cursor === undefined ? undefined : decodeCursor(q.cursor, field, direction);
  return { ...filter, order, direction, limit, after };
}

/** The value a document sorts by under `order`. */
export function orderValueOf(order: OrderField, doc: StoredDocument): IndexValue {
  switch (order.kind) {
    case 'id':
      return doc.id;
    case 'builtin':
      return doc[order.name];
    case 'data': {
      const v = (doc.data as Record<string, unknown>)[order.name];
      return isIndexValue(v) ? v : null;
    }
  }
}

interface CursorJson {
  f: string;
  d: OrderDirection;
  r: number;
  v: string | number | boolean | null;
  i: string;
}

/** Opaque to callers; carries the order so a cursor cannot be replayed against another ordering. */
export function encodeCursor(field: string, direction: OrderDirection, pos: CursorPosition): string {
  const v = pos.value instanceof Date ? pos.value.getTime() : pos.value;
  const json: CursorJson = { f: field, d: direction, r: rankOf(pos.value), v, i: pos.id };
  return Buffer.from(JSON.stringify(json), 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string, field: string, direction: OrderDirection): CursorPosition {
  const bad = (why: string): never => {
    throw new InvalidQueryError('cursor', why);
  };
  if (typeof cursor !== 'string' || cursor.length === 0 || cursor.length > 8192) return bad('not a cursor of this store');
  let json: Partial<CursorJson>;
  try {
    json = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as Partial<CursorJson>;
  } catch {
    return bad('not a cursor of this store');
  }
  if (typeof json !== 'object' || json === null || typeof json.i !== 'string') return bad('not a cursor of this store');
  if (json.f !== field || json.d !== direction) return bad(`was issued for orderBy ${String(json.f)} ${String(json.d)}, not ${field} ${direction}`);
  const { r, v } = json;
  let value: IndexValue;
  if (r === 0 && v === null) value = null;
  else if (r === 1 && typeof v === 'number' && Number.isFinite(v)) value = v;
  else if (r === 2 && typeof v === 'string') value = v;
  else if (r === 3 && typeof v === 'boolean') value = v;
  else if (r === 4 && typeof v === 'number' && Number.isFinite(v)) value = new Date(v);
  else return bad('not a cursor of this store');
  if ((field === 'createdAt' || field === 'updatedAt') && r !== 4) return bad('not a cursor of this store');
  if (field === 'id' && r !== 2) return bad('not a cursor of this store');
  return { value, id: json.i };
}
