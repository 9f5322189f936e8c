import { describe, expect, it } from 'vitest';
import { InvalidDocumentError, InvalidQueryError } from './errors.js';
import { MAX_DATA_DEPTH, checkKeyPart, normalizeData, rankOf } from './values.js';

const identity = { binary: (b: Uint8Array) => b, date: (d: Date) => d };

describe('normalizeData', () => {
  it('returns a copy without undefined properties, passing binaries and dates through the encoders', () => {
    const bytes = new Uint8Array([1, 2]);
    const input = { a: 1, gone: undefined, nested: { b: [bytes, new Date(5)] } };
    const out = normalizeData(input, { binary: (b) => ({ bin: b.length }), date: (d) => ({ ms: d.getTime() }) });
    expect(out).toEqual({ a: 1, nested: { b: [{ bin: 2 }, { ms: 5 }] } });
    expect(out).not.toBe(input);
    expect('gone' in out).toBe(false);
  });

  it('keeps a "__proto__" key as data instead of changing the prototype', () => {
    const input = JSON.parse('{"__proto__": {"x": 1}, "y": 2}') as Record<string, unknown>;
    const out = normalizeData(input, identity);
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(Object.keys(out)).toEqual(['__proto__', 'y']);
    expect(JSON.stringify(out)).toBe('{"__proto__":{"x":1},"y":2}');
  });

  it('accepts null-prototype objects and rejects class instances', () => {
    const bare = Object.assign(Object.create(null) as object, { a: 1 });
    expect(normalizeData({ bare }, identity)).toEqual({ bare: { a: 1 } });
    class Point {
      x = 1;
    }
    expect(() => normalizeData({ p: new Point() }, identity)).toThrow(/data\.p: Point is not a plain object/);
  });

  it('limits nesting depth, which also stops cycles', () => {
    let deep: Record<string, unknown> = {};
    const root = deep;
    for (let i = 0; i < MAX_DATA_DEPTH + 1; i++) {
      const next = {};
      deep['n'] = next;
      deep = next;
    }
    expect(() => normalizeData(root, identity)).toThrow(InvalidDocumentError);
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    expect(() => normalizeData(cyclic, identity)).toThrow(/nested deeper/);
    const arrays: unknown[] = [];
    arrays.push(arrays);
    expect(() => normalizeData({ arrays }, identity)).toThrow(/nested deeper/);
  });

  it('names the path of the first bad value', () => {
    const err = (() => {
      try {
        normalizeData({ a: [{ ok: 1 }, { bad: Symbol('s') }] }, identity);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toMatchObject({ code: 'invalid_document', path: 'data.a[1].bad' });
  });
});

describe('rankOf', () => {
  it('follows MongoDB type order', () => {
    expect([null, undefined, 3, 'a', false, new Date()].map(rankOf)).toEqual([0, 0, 1, 2, 3, 4]);
  });
});

describe('checkKeyPart', () => {
  it('accepts unicode and enforces byte limits per kind', () => {
    expect(checkKeyPart('id', '模型🧠')).toBe('模型🧠');
    expect(checkKeyPart('tenant', 'é'.repeat(64))).toHaveLength(64);
    expect(() => checkKeyPart('tenant', 'é'.repeat(65))).toThrow(/longer than 128 UTF-8 bytes/);
    expect(() => checkKeyPart('id', 'x'.repeat(1025))).toThrow(InvalidDocumentError);
  });

  it('rejects what would break keys, as query or document errors', () => {
    expect(() => checkKeyPart('tenant', 'a/b')).toThrow(/must not contain "\/"/);
    expect(checkKeyPart('id', 'a/b')).toBe('a/b');
    expect(() => checkKeyPart('id', 'a\0b')).toThrow(/NUL/);
    expect(() => checkKeyPart('user', '\udc00')).toThrow(/well-formed/);
    expect(() => checkKeyPart('id', 5)).toThrow(/non-empty string/);
    expect(() => checkKeyPart('id', '', 'id', true)).toThrow(InvalidQueryError);
  });
});
