import { BSON, Binary } from 'mongodb';
import { describe, expect, it } from 'vitest';
import { afterClauses, duplicateFields, fromBson, mongoFind, mongoIndexes } from './mongodb.js';
import { normalizeQuery } from './query.js';
import { normalizeSpec } from './spec.js';

// Pure parts of the MongoDB adapter: what it sends and how it reads replies. The behaviour against
// a server is covered by the contract suite (test/mongodb.contract.test.ts) when a server is given.

const spec = normalizeSpec({ name: 'notes', indexes: [{ fields: ['user', 'at'] }, { fields: ['hash'], unique: true }] });

describe('mongoFind', () => {
  it('scopes by tenant, maps data fields under data., and sorts with _id as the tie-breaker', () => {
    const nq = normalizeQuery(spec, { user: 'alice', where: { hash: 'h', at: null }, orderBy: { field: 'at', direction: 'desc' } });
    expect(mongoFind('acme', nq)).toEqual({
      filter: { tenant: 'acme', user: 'alice', 'data.hash': 'h', 'data.at': null },
      sort: { 'data.at': -1, _id: -1 },
    });
  });

  it('continues an id order with a range on _id inside the tenant', () => {
    const first = normalizeQuery(spec, { limit: 1 });
    expect(mongoFind('acme', first)).toEqual({ filter: { tenant: 'acme' }, sort: { _id: 1 } });
    const cursor = Buffer.from(JSON.stringify({ f: 'id', d: 'asc', r: 2, v: 'k', i: 'k' })).toString('base64url');
    expect(mongoFind('acme', normalizeQuery(spec, { cursor })).filter).toEqual({ tenant: 'acme', _id: { $gt: 'acme/k' } });
  });

  it('continues a createdAt order with an $or on (createdAt, _id)', () => {
    const cursor = Buffer.from(JSON.stringify({ f: 'createdAt', d: 'asc', r: 4, v: 1000, i: 'x' })).toString('base64url');
    const { filter, sort } = mongoFind('t', normalizeQuery(spec, { orderBy: { field: 'createdAt' }, cursor }));
    expect(sort).toEqual({ createdAt: 1, _id: 1 });
    expect(filter['$or']).toEqual([{ createdAt: new Date(1000), _id: { $gt: 't/x' } }, { createdAt: { $gt: new Date(1000) } }]);
  });
});

describe('afterClauses', () => {
  it('ascending adds the types that sort after the cursor value', () => {
    expect(afterClauses('data.k', 'asc', { value: 'm', id: 'x' }, 't/x')).toEqual([
      { 'data.k': 'm', _id: { $gt: 't/x' } },
      { 'data.k': { $gt: 'm' } },
      { 'data.k': { $type: ['bool', 'date'] } },
    ]);
    expect(afterClauses('data.k', 'asc', { value: null, id: 'x' }, 't/x')).toEqual([
      { 'data.k': null, _id: { $gt: 't/x' } },
      { 'data.k': { $type: ['number', 'string', 'bool', 'date'] } },
    ]);
    expect(afterClauses('data.k', 'asc', { value: new Date(5), id: 'x' }, 't/x')).toEqual([
      { 'data.k': new Date(5), _id: { $gt: 't/x' } },
      { 'data.k': { $gt: new Date(5) } },
    ]);
  });

  it('descending adds the types that sort before it, then missing/null', () => {
    expect(afterClauses('data.k', 'desc', { value: true, id: 'x' }, 't/x')).toEqual([
      { 'data.k': true, _id: { $lt: 't/x' } },
      { 'data.k': { $lt: true } },
      { 'data.k': { $type: ['number', 'string'] } },
      { 'data.k': null },
    ]);
    expect(afterClauses('data.k', 'desc', { value: null, id: 'x' }, 't/x')).toEqual([{ 'data.k': null, _id: { $lt: 't/x' } }]);
  });
});

describe('mongoIndexes', () => {
  it('leads every index with the tenant, ends non-unique ones with _id, and makes unique ones partial', () => {
    expect(mongoIndexes(spec)).toEqual([
      { name: 'ix:id', key: { tenant: 1, _id: 1 } },
      { name: 'ix:user', key: { tenant: 1, user: 1, _id: 1 } },
      { name: 'ix:user,at', key: { tenant: 1, user: 1, 'data.at': 1, _id: 1 } },
      { name: 'ux:hash', key: { tenant: 1, 'data.hash': 1 }, unique: true, partialFilterExpression: { 'data.hash': { $exists: true } } },
    ]);
    expect(Object.keys(mongoIndexes(spec)[2]!.key)).toEqual(['tenant', 'user', 'data.at', '_id']);
  });
});

describe('reading BSON', () => {
  it('turns Binary back into plain Uint8Array copies and keeps dates', () => {
    const doc = { w: new Uint8Array([1, 2, 3]), nested: [{ b: new Uint8Array([4]) }, new Date(9)], n: 1 };
    const wire = BSON.deserialize(BSON.serialize({ data: doc }));
    expect(wire['data'].w).toBeInstanceOf(Binary);
    const back = fromBson(wire['data']) as typeof doc;
    expect(back.w.constructor).toBe(Uint8Array);
    expect([...back.w]).toEqual([1, 2, 3]);
    expect([...(back.nested[0] as { b: Uint8Array }).b]).toEqual([4]);
    expect(back.nested[1]).toEqual(new Date(9));
    expect(back.n).toBe(1);
  });

  it('tells which unique index a duplicate key hit', () => {
    expect(duplicateFields({ message: 'E11000', keyPattern: { _id: 1 } })).toEqual(['_id']);
    expect(duplicateFields({ message: 'E11000', keyPattern: { tenant: 1, 'data.hash': 1 } })).toEqual(['hash']);
    expect(duplicateFields({ message: 'E11000 duplicate key error collection: db.keys index: ux:hash,user dup key: { }' })).toEqual(['hash', 'user']);
    expect(duplicateFields({ message: 'E11000 duplicate key error collection: db.keys index: _id_ dup key: { }' })).toEqual(['_id']);
  });
});
