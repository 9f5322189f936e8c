import { describe, expect, it } from 'vitest';
import { InvalidQueryError } from './errors.js';
import { DEFAULT_LIMIT, decodeCursor, encodeCursor, normalizeQuery } from './query.js';
import { normalizeSpec } from './spec.js';

const spec = normalizeSpec({ name: 'notes', indexes: [{ fields: ['user', 'at'] }, { fields: ['kind'] }] });

describe('cursors', () => {
  it('round-trip every value type', () => {
    for (const value of [null, 0, -1.5, 'ключ', true, false, new Date(123)]) {
      const c = encodeCursor('at', 'desc', { value, id: 'id/1' });
      expect(c).toMatch(/^[A-Za-z0-9_-]+$/);
      expect(decodeCursor(c, 'at', 'desc')).toEqual({ value, id: 'id/1' });
    }
  });

  it('refuse another ordering, other kinds of value for builtins, and garbage', () => {
    const c = encodeCursor('at', 'asc', { value: 1, id: 'a' });
    expect(() => decodeCursor(c, 'at', 'desc')).toThrow(/issued for orderBy at asc/);
    expect(() => decodeCursor(c, 'kind', 'asc')).toThrow(InvalidQueryError);
    expect(() => decodeCursor(encodeCursor('createdAt', 'asc', { value: 'x', id: 'a' }), 'createdAt', 'asc')).toThrow(InvalidQueryError);
    const forged = Buffer.from(JSON.stringify({ f: 'at', d: 'asc', r: 4, v: 'not a number', i: 'a' })).toString('base64url');
    expect(() => decodeCursor(forged, 'at', 'asc')).toThrow(InvalidQueryError);
    expect(() => decodeCursor('%%%', 'at', 'asc')).toThrow(InvalidQueryError);
  });
});

describe('normalizeQuery', () => {
  it('defaults to id order, ascending, 100 per page', () => {
    expect(normalizeQuery(spec, undefined)).toEqual({ where: [], user: undefined, order: { kind: 'id' }, direction: 'asc', limit: DEFAULT_LIMIT, after: undefined });
  });

  it('accepts indexed fields and builtins, and names what it refuses', () => {
    expect(normalizeQuery(spec, { where: { kind: 'x', at: undefined }, user: 'u', orderBy: { field: 'at', direction: 'desc' } })).toMatchObject({
      where: [{ field: 'kind', value: 'x' }],
      user: 'u',
      order: { kind: 'data', name: 'at' },
      direction: 'desc',
    });
    expect(normalizeQuery(spec, { orderBy: { field: 'createdAt' } }).order).toEqual({ kind: 'builtin', name: 'createdAt' });
    expect(() => normalizeQuery(spec, { where: { user: 'u' } })).toThrow(/pass it as the `user` option/);
    expect(() => normalizeQuery(spec, { where: { text: 'u' } })).toThrow(/where\.text: "text" is not an indexed field \(indexed fields of notes: at, kind\)/);
    expect(() => normalizeQuery(spec, { orderBy: { field: 'user' } })).toThrow(InvalidQueryError);
    expect(() => normalizeQuery(spec, { orderBy: { field: 'at', direction: 'up' as 'asc' } })).toThrow(/orderBy\.direction/);
    expect(() => normalizeQuery(spec, { where: { kind: new Date(Number.NaN) } })).toThrow(/where\.kind/);
  });
});
