import { InvalidDocumentError, InvalidQueryError } from './errors.js';
import type { CollectionSpec, IndexValue } from './types.js';
import { isIndexValue } from './values.js';

export type IndexField = { readonly kind: 'data'; readonly name: string } | { readonly kind: 'builtin'; readonly name: 'user' | 'createdAt' | 'updatedAt' };

export interface NormalizedIndex {
  readonly fields: readonly IndexField[];
  readonly unique: boolean;
  /** Stable identity (names the index in both adapters, so re-declaring it is a no-op). */
  readonly key: string;
}

export interface NormalizedSpec {
  readonly name: string;
  readonly indexes: readonly NormalizedIndex[];
  /** Top-level data fields some index covers: the only ones `where` and `orderBy` accept. */
  readonly indexedDataFields: ReadonlySet<string>;
  /** Fields that must hold a non-null value because a unique index covers them. */
  readonly requiredDataFields: ReadonlySet<string>;
  readonly requiresUser: boolean;
}

const NAME = /^[A-Za-z][A-Za-z0-9_]{0,62}$/;
const BUILTIN_INDEXABLE = new Set(['user', 'createdAt', 'updatedAt']);
const RESERVED = new Set(['id', 'tenant', 'version', 'data']);

export function normalizeSpec(spec: CollectionSpec): NormalizedSpec {
  if (typeof spec?.name !== 'string' || !NAME.test(spec.name)) {
    throw new InvalidQueryError('spec.name', `collection name must match ${NAME.source}`);
  }
  const indexes: NormalizedIndex[] = [];
  const indexedDataFields = new Set<string>();
  const requiredDataFields = new Set<string>();
  const lowerNames = new Map<string, string>();
  let requiresUser = false;
  (spec.indexes ?? []).forEach((ix, i) => {
    const at = `spec.indexes[${i}]`;
    if (!Array.isArray(ix.fields) || ix.fields.length === 0) throw new InvalidQueryError(`${at}.fields`, 'must list at least one field');
    if (ix.fields.length > 8) throw new InvalidQueryError(`${at}.fields`, 'at most 8 fields');
    const fields: IndexField[] = [];
    for (const name of ix.fields) {
      if (typeof name !== 'string' || !NAME.test(name)) throw new InvalidQueryError(`${at}.fields`, `field ${JSON.stringify(name)} must match ${NAME.source}`);
      if (RESERVED.has(name)) {
        throw new InvalidQueryError(`${at}.fields`, `"${name}" cannot be indexed (the tenant leads and the id ends every index)`);
      }
      if (fields.some((f) => f.name === name)) throw new InvalidQueryError(`${at}.fields`, `"${name}" listed twice`);
      if (BUILTIN_INDEXABLE.has(name)) {
        fields.push({ kind: 'builtin', name: name as 'user' | 'createdAt' | 'updatedAt' });
        if (ix.unique && name === 'user') requiresUser = true;
        continue;
      }
      // SQLite column names are case-insensitive, so `At` and `at` would share one column.
      const seen = lowerNames.get(name.toLowerCase());
      if (seen !== undefined && seen !== name) throw new InvalidQueryError(`${at}.fields`, `"${name}" and "${seen}" differ only by case`);
      lowerNames.set(name.toLowerCase(), name);
      fields.push({ kind: 'data', name });
      indexedDataFields.add(name);
      if (ix.unique) requiredDataFields.add(name);
    }
    const unique = ix.unique === true;
    const key = `${unique ? 'ux' : 'ix'}:${fields.map((f) => f.name).join(',')}`;
    if (!indexes.some((x) => x.key === key)) indexes.push({ fields, unique, key });
  });
  return { name: spec.name, indexes, indexedDataFields, requiredDataFields, requiresUser };
}

/**
 * Reads the indexed fields of a normalized body. Values must be scalars so both adapters index
 * one key per document (MongoDB would index every element of an array).
 */
export function indexValuesOf(spec: NormalizedSpec, data: Record<string, unknown>, user: string | undefined): Map<string, IndexValue> {
  const out = new Map<string, IndexValue>();
  for (const field of spec.indexedDataFields) {
    const raw = data[field];
    const v = raw === undefined ? null : raw;
    if (!isIndexValue(v)) {
      throw new InvalidDocumentError(`data.${field}`, 'an indexed field must hold a string, number, boolean, Date or null');
    }
    if (v === null && spec.requiredDataFields.has(field)) {
      throw new InvalidDocumentError(`data.${field}`, 'a field of a unique index must be present and non-null');
    }
    out.set(field, v);
  }
  if (spec.requiresUser && user === undefined) {
    throw new InvalidDocumentError('user', 'a unique index covers user, so every put must name the user');
  }
  return out;
}
