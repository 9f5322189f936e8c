import { describe, expect, it } from 'vitest';
import { indexValuesOf, normalizeSpec } from './spec.js';

describe('normalizeSpec', () => {
  it('splits builtin and data fields, names indexes stably and drops duplicates', () => {
    const spec = normalizeSpec({
      name: 'keys',
      indexes: [{ fields: ['user', 'createdAt'] }, { fields: ['hash'], unique: true }, { fields: ['hash'], unique: true }, { fields: ['hash'] }],
    });
    expect(spec.indexes.map((i) => i.key)).toEqual(['ix:user,createdAt', 'ux:hash', 'ix:hash']);
    expect(spec.indexes[0]?.fields).toEqual([
      { kind: 'builtin', name: 'user' },
      { kind: 'builtin', name: 'createdAt' },
    ]);
    expect([...spec.indexedDataFields]).toEqual(['hash']);
    expect([...spec.requiredDataFields]).toEqual(['hash']);
  });

  it('refuses names SQLite or MongoDB could not hold apart', () => {
    expect(() => normalizeSpec({ name: '1bad' })).toThrow(/spec\.name/);
    expect(() => normalizeSpec({ name: 'system.x' })).toThrow(/spec\.name/);
    expect(() => normalizeSpec({ name: 'c', indexes: [{ fields: ['at'] }, { fields: ['At'] }] })).toThrow(/differ only by case/);
    expect(() => normalizeSpec({ name: 'c', indexes: [{ fields: ['id'] }] })).toThrow(/cannot be indexed/);
    expect(() => normalizeSpec({ name: 'c', indexes: [{ fields: ['a', 'a'] }] })).toThrow(/listed twice/);
    expect(() => normalizeSpec({ name: 'c', indexes: [{ fields: ['a.b'] }] })).toThrow(/must match/);
  });
});

describe('indexValuesOf', () => {
  const spec = normalizeSpec({ name: 'c', indexes: [{ fields: ['at'] }, { fields: ['hash'], unique: true }, { fields: ['user'], unique: true }] });

  it('reads scalars and treats missing as null', () => {
    const values = indexValuesOf(spec, { hash: 'h', other: [1] }, 'u');
    expect(Object.fromEntries(values)).toEqual({ at: null, hash: 'h' });
  });

  it('refuses non-scalars in indexed fields and missing unique fields', () => {
    expect(() => indexValuesOf(spec, { at: [1], hash: 'h' }, 'u')).toThrow(/data\.at: an indexed field/);
    expect(() => indexValuesOf(spec, { at: { $gt: 1 }, hash: 'h' }, 'u')).toThrow(/data\.at/);
    expect(() => indexValuesOf(spec, { hash: null }, 'u')).toThrow(/data\.hash: a field of a unique index/);
    expect(() => indexValuesOf(spec, { hash: 'h' }, undefined)).toThrow(/must name the user/);
  });
});
