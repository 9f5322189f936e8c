import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  DocumentTooLargeError,
  InvalidDocumentError,
  InvalidQueryError,
  MAX_LIMIT,
  StoreUnavailableError,
  UniqueConstraintError,
  VersionConflictError,
} from '@aimass/storage';
import type { Collection, DocumentStore, IndexValue, StoredDocument } from '@aimass/storage';

/** Opens a fresh store; the suite closes it after each test. `maxDocumentBytes` should be small (1 MiB) to keep the size test fast. */
export type StoreFactory = () => Promise<DocumentStore>;

interface Note {
  text: string;
  seq?: number;
  kind?: string;
  k?: IndexValue;
  at?: Date;
  bytes?: Uint8Array;
}

const uid = (): string => randomBytes(5).toString('hex');

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

/** Sorts ids as both stores do: by UTF-8 bytes (not UTF-16 code units, as JS does). */
const byUtf8 = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

async function pageAll<T extends object>(
  col: Collection<T>,
  tenant: string,
  q: Parameters<Collection<T>['query']>[1],
): Promise<StoredDocument<T>[]> {
  const out: StoredDocument<T>[] = [];
  let cursor: string | undefined;
  for (let pages = 0; ; pages++) {
    if (pages > 10_000) throw new Error('paging does not end');
    const page = await col.query(tenant, { ...q, cursor });
    out.push(...page.items);
    if (page.nextCursor === undefined) return out;
    cursor = page.nextCursor;
  }
}

/**
 * The behaviour every `DocumentStore` adapter must have. Each test opens a fresh store and uses
 * fresh tenant and collection names, so the suite also runs against a shared MongoDB database.
 */
export function describeDocumentStoreContract(name: string, factory: StoreFactory): void {
  describe(`DocumentStore contract: ${name}`, () => {
    let store: DocumentStore;
    let notes: Collection<Note>;
    let tenant: string;
    let other: string;

    const open = () =>
      store.collection<Note>({
        name: `notes_${uid()}`,
        indexes: [{ fields: ['seq'] }, { fields: ['kind', 'seq'] }, { fields: ['user', 'createdAt'] }, { fields: ['user', 'updatedAt'] }, { fields: ['k'] }, { fields: ['at'] }],
      });

    beforeEach(async () => {
      store = await factory();
      notes = await open();
      tenant = `t-${uid()}`;
      other = `u-${uid()}`;
    });

    afterEach(async () => {
      await store.close();
    });

    describe('get and put', () => {
      it('get of a missing document resolves undefined', async () => {
        expect(await notes.get(tenant, 'nope')).toBeUndefined();
      });

      it('put creates version 1 and each put adds 1; createdAt stays, updatedAt moves forward', async () => {
        const first = await notes.put(tenant, 'a', { text: 'one' });
        expect(first).toMatchObject({ tenant, id: 'a', version: 1, data: { text: 'one' } });
        expect(first.createdAt.getTime()).toBe(first.updatedAt.getTime());
        const got = await notes.get(tenant, 'a');
        expect(got).toEqual(first);

        const second = await notes.put(tenant, 'a', { text: 'two' });
        expect(second.version).toBe(2);
        expect(second.createdAt).toEqual(first.createdAt);
        expect(second.updatedAt.getTime()).toBeGreaterThanOrEqual(first.updatedAt.getTime());
        expect(await notes.get(tenant, 'a')).toEqual(second);
      });

      it('put expecting absent on an existing document conflicts and writes nothing', async () => {
        await notes.put(tenant, 'a', { text: 'one' }, { expectedVersion: 'absent' });
        const err = await rejection(notes.put(tenant, 'a', { text: 'two' }, { expectedVersion: 'absent' }));
        expect(err).toBeInstanceOf(VersionConflictError);
        expect(err).toMatchObject({ code: 'version_conflict', collection: notes.name, tenant, id: 'a', expected: 'absent', actual: 1 });
        expect((await notes.get(tenant, 'a'))?.data.text).toBe('one');
      });

      it('put with a wrong expected version reports expected and actual', async () => {
        await notes.put(tenant, 'a', { text: 'one' });
        await notes.put(tenant, 'a', { text: 'two' }, { expectedVersion: 1 });
        const err = await rejection(notes.put(tenant, 'a', { text: 'three' }, { expectedVersion: 1 }));
        expect(err).toMatchObject({ code: 'version_conflict', expected: 1, actual: 2 });
        expect(err instanceof Error && err.message).toContain('a');
        const ok = await notes.put(tenant, 'a', { text: 'three' }, { expectedVersion: 2 });
        expect(ok.version).toBe(3);
      });

      it('put expecting a version of a missing document conflicts with actual absent', async () => {
        const err = await rejection(notes.put(tenant, 'ghost', { text: 'x' }, { expectedVersion: 1 }));
        expect(err).toMatchObject({ code: 'version_conflict', expected: 1, actual: 'absent' });
        expect(await notes.get(tenant, 'ghost')).toBeUndefined();
      });

      it('an omitted user keeps the owner; a given one replaces it', async () => {
        await notes.put(tenant, 'a', { text: 'one' }, { user: 'alice' });
        expect((await notes.put(tenant, 'a', { text: 'two' })).user).toBe('alice');
        expect((await notes.get(tenant, 'a'))?.user).toBe('alice');
        await notes.put(tenant, 'a', { text: 'three' }, { expectedVersion: 2 });
        expect((await notes.get(tenant, 'a'))?.user).toBe('alice');
        await notes.put(tenant, 'a', { text: 'four' }, { user: 'bob' });
        expect((await notes.get(tenant, 'a'))?.user).toBe('bob');
        expect((await notes.put(tenant, 'b', { text: 'x' })).user).toBeUndefined();
        expect((await notes.get(tenant, 'b'))?.user).toBeUndefined();
      });

      it('rejects bad arguments with errors that name them', async () => {
        expect(await rejection(notes.put(tenant, 'a', { text: 'x' }, { expectedVersion: 0 }))).toMatchObject({ code: 'invalid_query', field: 'expectedVersion' });
        expect(await rejection(notes.put('', 'a', { text: 'x' }))).toMatchObject({ code: 'invalid_document', path: 'tenant' });
        expect(await rejection(notes.put('a/b', 'a', { text: 'x' }))).toMatchObject({ path: 'tenant' });
        expect(await rejection(notes.put(tenant, '', { text: 'x' }))).toMatchObject({ path: 'id' });
        expect(await rejection(notes.get(tenant, 'x'.repeat(1025)))).toMatchObject({ code: 'invalid_query', field: 'id' });
        expect(await rejection(notes.put(tenant, 'a', { text: 'x' }, { user: '' }))).toMatchObject({ path: 'user' });
      });
    });

    describe('delete', () => {
      it('returns true once and false afterwards', async () => {
        await notes.put(tenant, 'a', { text: 'x' });
        expect(await notes.delete(tenant, 'a')).toBe(true);
        expect(await notes.delete(tenant, 'a')).toBe(false);
        expect(await notes.get(tenant, 'a')).toBeUndefined();
      });

      it('with a wrong expected version conflicts and keeps the document', async () => {
        await notes.put(tenant, 'a', { text: 'x' });
        await notes.put(tenant, 'a', { text: 'y' });
        expect(await rejection(notes.delete(tenant, 'a', { expectedVersion: 1 }))).toMatchObject({ code: 'version_conflict', expected: 1, actual: 2 });
        expect((await notes.get(tenant, 'a'))?.version).toBe(2);
        expect(await rejection(notes.delete(tenant, 'missing', { expectedVersion: 1 }))).toMatchObject({ actual: 'absent' });
        expect(await notes.delete(tenant, 'a', { expectedVersion: 2 })).toBe(true);
        expect(await notes.get(tenant, 'a')).toBeUndefined();
      });

      it('a re-created document starts again at version 1', async () => {
        await notes.put(tenant, 'a', { text: 'x' });
        await notes.put(tenant, 'a', { text: 'y' });
        await notes.delete(tenant, 'a');
        expect((await notes.put(tenant, 'a', { text: 'z' }, { expectedVersion: 'absent' })).version).toBe(1);
      });
    });

    describe('compare-and-set under concurrency', () => {
      it('of 25 concurrent puts expecting the same version exactly one wins', async () => {
        await notes.put(tenant, 'pointer', { text: 'v0' });
        const results = await Promise.allSettled(
          Array.from({ length: 25 }, (_, i) => notes.put(tenant, 'pointer', { text: `w${i}` }, { expectedVersion: 1 })),
        );
        const won = results.filter((r) => r.status === 'fulfilled');
        const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
        expect(won).toHaveLength(1);
        expect(lost).toHaveLength(24);
        for (const r of lost) expect(r.reason).toBeInstanceOf(VersionConflictError);
        const final = await notes.get(tenant, 'pointer');
        expect(final?.version).toBe(2);
        expect(final?.data.text).toBe((won[0] as PromiseFulfilledResult<StoredDocument<Note>>).value.data.text);
      });

      it('of 25 concurrent creates expecting absent exactly one wins', async () => {
        const results = await Promise.allSettled(
          Array.from({ length: 25 }, (_, i) => notes.put(tenant, 'once', { text: `c${i}` }, { expectedVersion: 'absent' })),
        );
        expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
        expect((await notes.get(tenant, 'once'))?.version).toBe(1);
      });

      it('concurrent read-modify-write loops lose no update', async () => {
        await notes.put(tenant, 'counter', { text: 'counter', seq: 0 });
        const increment = async (): Promise<number> => {
          for (let conflicts = 0; ; conflicts++) {
            const cur = await notes.get(tenant, 'counter');
            if (cur === undefined) throw new Error('counter vanished');
            try {
              await notes.put(tenant, 'counter', { text: 'counter', seq: (cur.data.seq ?? 0) + 1 }, { expectedVersion: cur.version });
              return conflicts;
            } catch (err) {
              if (!(err instanceof VersionConflictError)) throw err;
            }
          }
        };
        await Promise.all(Array.from({ length: 30 }, increment));
        const final = await notes.get(tenant, 'counter');
        expect(final?.data.seq).toBe(30);
        expect(final?.version).toBe(31);
      });
    });

    describe('tenant isolation', () => {
      it('the same id in two tenants is two documents', async () => {
        await notes.put(tenant, 'same', { text: 'mine' }, { user: 'alice' });
        await notes.put(other, 'same', { text: 'theirs' }, { user: 'alice' });
        await notes.put(other, 'same', { text: 'theirs 2' });
        expect(await notes.get(tenant, 'same')).toMatchObject({ tenant, version: 1, data: { text: 'mine' } });
        expect(await notes.get(other, 'same')).toMatchObject({ tenant: other, version: 2, data: { text: 'theirs 2' } });
        await notes.delete(other, 'same');
        expect((await notes.get(tenant, 'same'))?.data.text).toBe('mine');
      });

      it('queries, counts and deletes never cross tenants', async () => {
        for (let i = 0; i < 5; i++) {
          await notes.put(tenant, `n${i}`, { text: 'a', seq: i, kind: 'k' }, { user: 'alice' });
          await notes.put(other, `n${i}`, { text: 'b', seq: i, kind: 'k' }, { user: 'alice' });
        }
        const mine = await notes.query(tenant, { where: { kind: 'k' } });
        expect(mine.items).toHaveLength(5);
        expect(mine.items.every((d) => d.tenant === tenant && d.data.text === 'a')).toBe(true);
        expect(await notes.count(tenant, { user: 'alice' })).toBe(5);
        expect(await notes.deleteByUser(tenant, 'alice')).toBe(5);
        expect(await notes.count(tenant)).toBe(0);
        expect(await notes.count(other)).toBe(5);
        expect(await notes.count(other, { user: 'alice' })).toBe(5);
        expect(await notes.deleteByTenant(other)).toBe(5);
        expect(await notes.count(other)).toBe(0);
      });

      it('a unique index is unique within a tenant only', async () => {
        const keys = await store.collection<{ hash: string }>({ name: `keys_${uid()}`, indexes: [{ fields: ['hash'], unique: true }] });
        await keys.put(tenant, 'k1', { hash: 'h1' });
        const err = await rejection(keys.put(tenant, 'k2', { hash: 'h1' }));
        expect(err).toBeInstanceOf(UniqueConstraintError);
        expect(err).toMatchObject({ code: 'unique_conflict', id: 'k2', fields: ['hash'] });
        expect(await keys.get(tenant, 'k2')).toBeUndefined();
        await keys.put(other, 'k2', { hash: 'h1' });
        expect((await keys.query(tenant, { where: { hash: 'h1' } })).items.map((d) => d.id)).toEqual(['k1']);
        expect(await rejection(keys.put(tenant, 'k3', {} as { hash: string }))).toMatchObject({ code: 'invalid_document', path: 'data.hash' });
      });
    });

    describe('query', () => {
      it('filters by indexed fields and orders by them, ties broken by id', async () => {
        for (const [id, seq, kind] of [
          ['e', 3, 'x'],
          ['a', 1, 'x'],
          ['d', 2, 'y'],
          ['c', 2, 'x'],
          ['b', 2, 'x'],
        ] as const) {
          await notes.put(tenant, id, { text: id, seq, kind });
        }
        const asc = await notes.query(tenant, { where: { kind: 'x' }, orderBy: { field: 'seq' } });
        expect(asc.items.map((d) => d.id)).toEqual(['a', 'b', 'c', 'e']);
        expect(asc.nextCursor).toBeUndefined();
        const desc = await notes.query(tenant, { where: { kind: 'x' }, orderBy: { field: 'seq', direction: 'desc' } });
        expect(desc.items.map((d) => d.id)).toEqual(['e', 'c', 'b', 'a']);
        const two = await notes.query(tenant, { where: { kind: 'x', seq: 2 } });
        expect(two.items.map((d) => d.id)).toEqual(['b', 'c']);
        const limited = await notes.query(tenant, { orderBy: { field: 'seq' }, limit: 2 });
        expect(limited.items.map((d) => d.id)).toEqual(['a', 'b']);
        expect(limited.nextCursor).toEqual(expect.any(String));
        const all = await notes.query(tenant);
        expect(all.items.map((d) => d.id)).toEqual(['a', 'b', 'c', 'd', 'e']);
        // A page that ends exactly at the last document says so: no cursor to an empty page.
        expect((await notes.query(tenant, { limit: 5 })).nextCursor).toBeUndefined();
        const fourth = await notes.query(tenant, { limit: 4 });
        expect((await notes.query(tenant, { limit: 4, cursor: fourth.nextCursor })).items.map((d) => d.id)).toEqual(['e']);
        expect(await notes.count(tenant, { where: { kind: 'x' } })).toBe(4);
      });

      it('where null matches documents without the field', async () => {
        await notes.put(tenant, 'with', { text: 'w', kind: 'x' });
        await notes.put(tenant, 'without', { text: 'wo' });
        await notes.put(tenant, 'explicit', { text: 'e', k: null });
        expect((await notes.query(tenant, { where: { kind: null } })).items.map((d) => d.id)).toEqual(['explicit', 'without']);
        expect((await notes.query(tenant, { where: { k: null } })).items).toHaveLength(3);
      });

      it('values of mixed types order as MongoDB does (missing/null < numbers < strings < booleans < dates), both ways, across pages', async () => {
        const values: Array<[string, IndexValue | undefined]> = [
          ['d01', new Date(2000)],
          ['d02', 'b'],
          ['d03', true],
          ['d04', 10],
          ['d05', undefined],
          ['d06', new Date(1000)],
          ['d07', 'a'],
          ['d08', false],
          ['d09', 2],
          ['d10', null],
          ['d11', -1.5],
          ['d12', 'a'],
        ];
        for (const [id, k] of values) await notes.put(tenant, id, k === undefined ? { text: id } : { text: id, k });
        const expected = ['d05', 'd10', 'd11', 'd09', 'd04', 'd07', 'd12', 'd02', 'd08', 'd03', 'd06', 'd01'];
        for (const limit of [1, 2, 5, 100]) {
          const asc = await pageAll(notes, tenant, { orderBy: { field: 'k' }, limit });
          expect(asc.map((d) => d.id)).toEqual(expected);
          const desc = await pageAll(notes, tenant, { orderBy: { field: 'k', direction: 'desc' }, limit });
          expect(desc.map((d) => d.id)).toEqual([...expected].reverse());
        }
        expect((await notes.query(tenant, { where: { k: 'a' } })).items.map((d) => d.id)).toEqual(['d07', 'd12']);
        expect((await notes.query(tenant, { where: { k: new Date(1000) } })).items.map((d) => d.id)).toEqual(['d06']);
        expect((await notes.query(tenant, { where: { k: false } })).items.map((d) => d.id)).toEqual(['d08']);
        expect((await notes.query(tenant, { where: { k: 2 } })).items.map((d) => d.id)).toEqual(['d09']);
      });

      it("a user's history in time order, paged (feedback)", async () => {
        const ids: string[] = [];
        for (let i = 0; i < 12; i++) {
          const id = `f${String(i).padStart(2, '0')}`;
          ids.push(id);
          await notes.put(tenant, id, { text: id }, { user: 'alice' });
          await notes.put(tenant, `other${i}`, { text: 'x' }, { user: 'bob' });
        }
        const history = await pageAll(notes, tenant, { user: 'alice', orderBy: { field: 'createdAt' }, limit: 5 });
        expect(history.map((d) => d.id)).toEqual(ids);
        for (let i = 1; i < history.length; i++) {
          expect(history[i]!.createdAt.getTime()).toBeGreaterThanOrEqual(history[i - 1]!.createdAt.getTime());
        }
        const newest = await notes.query(tenant, { user: 'alice', orderBy: { field: 'createdAt', direction: 'desc' }, limit: 3 });
        expect(newest.items.map((d) => d.id)).toEqual(ids.slice(-3).reverse());
        const byUpdate = await pageAll(notes, tenant, { user: 'alice', orderBy: { field: 'updatedAt' }, limit: 4 });
        expect(byUpdate.map((d) => d.id)).toEqual(ids);
      });

      it('cursor paging sees every document once while others are inserted concurrently', async () => {
        const initial = new Set<string>();
        for (let i = 0; i < 120; i++) {
          const id = `i${String(i).padStart(3, '0')}`;
          initial.add(id);
          await notes.put(tenant, id, { text: id, seq: i * 10 });
        }
        const inserted = new Set<string>();
        let paging = true;
        const inserter = async () => {
          for (let i = 0; paging && i < 500; i++) {
            const id = `n${String(i).padStart(3, '0')}`;
            // Spread over the whole range: some land behind the cursor, some ahead of it.
            await notes.put(tenant, id, { text: id, seq: (i * 37) % 1200 + 5 });
            inserted.add(id);
          }
        };
        const pager = async () => {
          const seen: StoredDocument<Note>[] = [];
          let cursor: string | undefined;
          do {
            const page = await notes.query(tenant, { orderBy: { field: 'seq' }, limit: 7, cursor });
            seen.push(...page.items);
            cursor = page.nextCursor;
          } while (cursor !== undefined);
          paging = false;
          return seen;
        };
        const [seen] = await Promise.all([pager(), inserter()]);
        const ids = seen.map((d) => d.id);
        expect(new Set(ids).size).toBe(ids.length);
        for (const id of initial) expect(ids).toContain(id);
        for (const id of ids) expect(initial.has(id) || inserted.has(id)).toBe(true);
        const seqs = seen.map((d) => d.data.seq ?? -1);
        expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
        expect(inserted.size).toBeGreaterThan(0);
      });

      it('only indexed fields are accepted in where and orderBy, and the error names the field', async () => {
        const err = await rejection(notes.query(tenant, { where: { text: 'x' } }));
        expect(err).toBeInstanceOf(InvalidQueryError);
        expect(err).toMatchObject({ code: 'invalid_query', field: 'where.text' });
        expect(await rejection(notes.count(tenant, { where: { text: 'x' } }))).toMatchObject({ field: 'where.text' });
        expect(await rejection(notes.query(tenant, { orderBy: { field: 'text' } }))).toMatchObject({ field: 'orderBy.field' });
        expect(await rejection(notes.query(tenant, { where: { seq: [1] as unknown as number } }))).toMatchObject({ field: 'where.seq' });
      });

      it('limit is bounded', async () => {
        for (const limit of [0, -1, 1.5, MAX_LIMIT + 1]) {
          expect(await rejection(notes.query(tenant, { limit }))).toMatchObject({ code: 'invalid_query', field: 'limit' });
        }
        await expect(notes.query(tenant, { limit: MAX_LIMIT })).resolves.toEqual({ items: [] });
      });

      it('a cursor only continues the ordering it came from', async () => {
        for (let i = 0; i < 3; i++) await notes.put(tenant, `c${i}`, { text: 'x', seq: i });
        const page = await notes.query(tenant, { orderBy: { field: 'seq' }, limit: 1 });
        expect(page.nextCursor).toBeDefined();
        expect(await rejection(notes.query(tenant, { orderBy: { field: 'seq', direction: 'desc' }, limit: 1, cursor: page.nextCursor }))).toMatchObject({ field: 'cursor' });
        expect(await rejection(notes.query(tenant, { limit: 1, cursor: page.nextCursor }))).toMatchObject({ field: 'cursor' });
        expect(await rejection(notes.query(tenant, { limit: 1, cursor: 'garbage' }))).toMatchObject({ field: 'cursor' });
      });

      it('an index added to an existing collection covers documents written before it', async () => {
        const plain = await store.collection<{ color?: string }>({ name: `late_${uid()}` });
        await plain.put(tenant, 'r', { color: 'red' });
        await plain.put(tenant, 'b', { color: 'blue' });
        await plain.put(tenant, 'n', {});
        const indexed = await store.collection<{ color?: string }>({ name: plain.name, indexes: [{ fields: ['color'] }] });
        expect((await indexed.query(tenant, { where: { color: 'red' } })).items.map((d) => d.id)).toEqual(['r']);
        expect((await indexed.query(tenant, { orderBy: { field: 'color' } })).items.map((d) => d.id)).toEqual(['n', 'b', 'r']);
        // Writes through the older handle keep the new index current.
        await plain.put(tenant, 'g', { color: 'green' });
        expect((await indexed.query(tenant, { where: { color: 'green' } })).items.map((d) => d.id)).toEqual(['g']);
        // Opening again with the same spec is a no-op.
        const again = await store.collection<{ color?: string }>({ name: plain.name, indexes: [{ fields: ['color'] }] });
        expect(await again.count(tenant)).toBe(4);
      });
    });

    describe('erasure', () => {
      it('deleteByUser removes all and only that user’s documents, in that tenant and collection', async () => {
        const models = await store.collection<{ w: Uint8Array }>({ name: `models_${uid()}` });
        for (let i = 0; i < 7; i++) {
          await notes.put(tenant, `a${i}`, { text: 'a' }, { user: 'alice' });
          await notes.put(tenant, `b${i}`, { text: 'b' }, { user: 'bob' });
        }
        await notes.put(tenant, 'nobody', { text: 'n' });
        await notes.put(other, 'a0', { text: 'a' }, { user: 'alice' });
        await models.put(tenant, 'alice:1', { w: new Uint8Array([1]) }, { user: 'alice' });

        expect(await notes.deleteByUser(tenant, 'alice')).toBe(7);
        expect(await notes.count(tenant, { user: 'alice' })).toBe(0);
        expect(await notes.count(tenant, { user: 'bob' })).toBe(7);
        expect(await notes.get(tenant, 'nobody')).toBeDefined();
        expect(await notes.get(other, 'a0')).toBeDefined();
        expect(await models.get(tenant, 'alice:1')).toBeDefined();
        expect(await notes.deleteByUser(tenant, 'alice')).toBe(0);
        expect(await models.deleteByUser(tenant, 'alice')).toBe(1);
      });

      it('deleteByTenant removes only that tenant', async () => {
        for (let i = 0; i < 4; i++) {
          await notes.put(tenant, `x${i}`, { text: 'x' });
          await notes.put(other, `x${i}`, { text: 'y' });
        }
        expect(await notes.deleteByTenant(tenant)).toBe(4);
        expect(await notes.count(tenant)).toBe(0);
        expect(await notes.count(other)).toBe(4);
      });
    });

    describe('writeAtomic', () => {
      it('applies every operation across collections and returns their results', async () => {
        const pointers = await store.collection<{ current: number }>({ name: `ptr_${uid()}` });
        await pointers.put(tenant, 'alice', { current: 1 }, { user: 'alice' });
        await notes.put(tenant, 'old', { text: 'old' });
        const results = await store.writeAtomic([
          notes.putOp(tenant, 'model:2', { text: 'weights' }, { expectedVersion: 'absent', user: 'alice' }),
          pointers.putOp(tenant, 'alice', { current: 2 }, { expectedVersion: 1 }),
          notes.deleteOp(tenant, 'old', { expectedVersion: 1 }),
          notes.checkOp(tenant, 'tombstone:alice', 'absent'),
        ]);
        expect(results).toMatchObject([
          { type: 'put', document: { id: 'model:2', version: 1, user: 'alice', data: { text: 'weights' } } },
          { type: 'put', document: { id: 'alice', version: 2, user: 'alice', data: { current: 2 } } },
          { type: 'delete', deleted: true },
          { type: 'check', version: 'absent' },
        ]);
        expect((await pointers.get(tenant, 'alice'))?.data.current).toBe(2);
        expect((await notes.get(tenant, 'model:2'))?.user).toBe('alice');
        expect(await notes.get(tenant, 'old')).toBeUndefined();
      });

      it('one failing condition writes nothing and names the failing document', async () => {
        const pointers = await store.collection<{ current: number }>({ name: `ptr_${uid()}` });
        await pointers.put(tenant, 'alice', { current: 1 });
        await pointers.put(tenant, 'alice', { current: 2 });
        await notes.put(tenant, 'keep', { text: 'keep' });
        const err = await rejection(
          store.writeAtomic([
            notes.putOp(tenant, 'model:3', { text: 'w' }, { expectedVersion: 'absent' }),
            notes.deleteOp(tenant, 'keep'),
            pointers.putOp(tenant, 'alice', { current: 3 }, { expectedVersion: 1 }),
          ]),
        );
        expect(err).toBeInstanceOf(VersionConflictError);
        expect(err).toMatchObject({ collection: pointers.name, tenant, id: 'alice', expected: 1, actual: 2, opIndex: 2 });
        expect(await notes.get(tenant, 'model:3')).toBeUndefined();
        expect(await notes.get(tenant, 'keep')).toBeDefined();
        expect((await pointers.get(tenant, 'alice'))?.data.current).toBe(2);
      });

      it('a failing check blocks the batch (tombstone present → no model write)', async () => {
        await notes.put(tenant, 'tombstone:alice', { text: 'erased' });
        const err = await rejection(
          store.writeAtomic([notes.checkOp(tenant, 'tombstone:alice', 'absent'), notes.putOp(tenant, 'model', { text: 'w' })]),
        );
        expect(err).toMatchObject({ code: 'version_conflict', id: 'tombstone:alice', expected: 'absent', actual: 1, opIndex: 0 });
        expect(await notes.get(tenant, 'model')).toBeUndefined();
        const ok = await store.writeAtomic([notes.checkOp(tenant, 'tombstone:alice', 1), notes.putOp(tenant, 'model', { text: 'w' })]);
        expect(ok[0]).toEqual({ type: 'check', version: 1 });
        expect((await notes.get(tenant, 'tombstone:alice'))?.version).toBe(1);
      });

      it('operations see the earlier ones of the same batch', async () => {
        const res = await store.writeAtomic([
          notes.putOp(tenant, 'x', { text: '1' }, { expectedVersion: 'absent' }),
          notes.putOp(tenant, 'x', { text: '2' }, { expectedVersion: 1 }),
        ]);
        expect(res[1]).toMatchObject({ type: 'put', document: { version: 2 } });
        expect((await notes.get(tenant, 'x'))?.data.text).toBe('2');
      });

      it('a unique violation inside a batch rolls it back', async () => {
        const keys = await store.collection<{ hash: string }>({ name: `keys_${uid()}`, indexes: [{ fields: ['hash'], unique: true }] });
        await keys.put(tenant, 'k1', { hash: 'h1' });
        const err = await rejection(store.writeAtomic([notes.putOp(tenant, 'side', { text: 's' }), keys.putOp(tenant, 'k2', { hash: 'h1' })]));
        expect(err).toBeInstanceOf(UniqueConstraintError);
        expect(await notes.get(tenant, 'side')).toBeUndefined();
      });

      it('rejects invalid batches before writing anything', async () => {
        const elsewhere = await factory();
        try {
          const foreign = await elsewhere.collection<Note>({ name: notes.name });
          expect(await rejection(store.writeAtomic([notes.putOp(tenant, 'a', { text: 'a' }), foreign.putOp(tenant, 'b', { text: 'b' })]))).toMatchObject({
            field: 'ops[1].collection',
          });
          expect(await rejection(store.writeAtomic([notes.putOp(tenant, 'a', { text: 'a' }), notes.putOp(tenant, 'b', { text: Number.NaN as unknown as string })]))).toBeInstanceOf(
            InvalidDocumentError,
          );
          expect(await notes.get(tenant, 'a')).toBeUndefined();
        } finally {
          await elsewhere.close();
        }
      });
    });

    describe('values', () => {
      it('Uint8Array and Date round-trip exactly, nested and in arrays', async () => {
        const weights = new Float32Array([0.1, -2.5, Math.PI, Number.MIN_VALUE, Number.NaN, -0]);
        const bytes = new Uint8Array(weights.buffer);
        const big = new Uint8Array(300_000).map((_, i) => (i * 7919) & 0xff);
        const data = {
          weights: bytes,
          big,
          empty: new Uint8Array(0),
          when: new Date('2024-02-29T12:34:56.789Z'),
          early: new Date(-1),
          nested: { list: [new Uint8Array([0, 255, 1]), new Date(0), { deeper: [[new Uint8Array([9])]] }], n: null, f: 1.5e-300, neg: -42, t: true },
          text: 'plain',
        };
        await notes.put(tenant, 'bin', data as unknown as Note);
        const got = (await notes.get(tenant, 'bin'))?.data as unknown as typeof data;
        expect(got.weights).toBeInstanceOf(Uint8Array);
        expect(got.weights.constructor).toBe(Uint8Array);
        expect(Buffer.from(got.weights).equals(Buffer.from(bytes))).toBe(true);
        const back = new Float32Array(got.weights.buffer, got.weights.byteOffset, got.weights.byteLength / 4);
        expect(Array.from(back)).toEqual(Array.from(weights));
        expect(Buffer.from(got.big).equals(Buffer.from(big))).toBe(true);
        expect(got.empty).toEqual(new Uint8Array(0));
        expect(got.when).toBeInstanceOf(Date);
        expect(got.when.getTime()).toBe(data.when.getTime());
        expect(got.early.getTime()).toBe(-1);
        expect(got.nested).toEqual(data.nested);
        expect(got.text).toBe('plain');
      });

      it('a Buffer is stored as its bytes and comes back as a Uint8Array', async () => {
        await notes.put(tenant, 'buf', { text: 'b', bytes: Buffer.from('héllo') });
        const got = await notes.get(tenant, 'buf');
        expect(got?.data.bytes?.constructor).toBe(Uint8Array);
        expect(Buffer.from(got!.data.bytes!).toString()).toBe('héllo');
      });

      it('undefined properties are dropped', async () => {
        await notes.put(tenant, 'u', { text: 'x', kind: undefined });
        const got = await notes.get(tenant, 'u');
        expect(got?.data).toEqual({ text: 'x' });
        expect('kind' in (got?.data ?? {})).toBe(false);
      });

      it('unicode ids, tenants, users and values', async () => {
        const ids = ['ключ', '模型/版本:1', '🧠 model', 'é', 'e\u0301', 'ﬀ', 'a b\tc', "quote'\"", '\u{10FFFF}'];
        const t = `租户-${uid()}`;
        for (const id of ids) await notes.put(t, id, { text: `${id}✓`, kind: id }, { user: 'üser-😀' });
        for (const id of ids) {
          const got = await notes.get(t, id);
          expect(got).toMatchObject({ tenant: t, id, user: 'üser-😀', data: { text: `${id}✓` } });
        }
        const listed = await pageAll(notes, t, { limit: 2 });
        expect(listed.map((d) => d.id)).toEqual([...ids].sort(byUtf8));
        expect((await notes.query(t, { where: { kind: '模型/版本:1' } })).items.map((d) => d.id)).toEqual(['模型/版本:1']);
        expect(await notes.deleteByUser(t, 'üser-😀')).toBe(ids.length);
      });

      it('values that would not round-trip are rejected with the path', async () => {
        const bad: Array<[unknown, string]> = [
          [{ text: 'x', n: Number.NaN }, 'data.n'],
          [{ text: 'x', n: Infinity }, 'data.n'],
          [{ text: 'x', f: new Float32Array(2) }, 'data.f'],
          [{ text: 'x', m: new Map() }, 'data.m'],
          [{ text: 'x', a: [1, undefined] }, 'data.a[1]'],
          [{ text: 'x', $set: 1 }, 'data["$set"]'],
          [{ text: 'x', 'a.b': 1 }, 'data["a.b"]'],
          [{ text: 'x', d: new Date(Number.NaN) }, 'data.d'],
          [{ text: 'x', s: 'lone \ud800' }, 'data.s'],
          [{ text: 'x', b: 1n }, 'data.b'],
          [{ text: 'x', seq: [1] }, 'data.seq'],
          [[1, 2], 'data'],
        ];
        for (const [data, path] of bad) {
          const err = await rejection(notes.put(tenant, 'bad', data as Note));
          expect(err).toBeInstanceOf(InvalidDocumentError);
          expect(err).toMatchObject({ code: 'invalid_document', path });
        }
        expect(await notes.get(tenant, 'bad')).toBeUndefined();
      });

      it('a document above maxDocumentBytes is rejected with a clear error; below it is stored', async () => {
        const limit = store.maxDocumentBytes;
        expect(limit).toBeGreaterThan(1024);
        const err = await rejection(notes.put(tenant, 'huge', { text: 'x', bytes: new Uint8Array(limit + 1) }));
        expect(err).toBeInstanceOf(DocumentTooLargeError);
        expect(err).toMatchObject({ code: 'document_too_large', id: 'huge', limit });
        expect((err as DocumentTooLargeError).size).toBeGreaterThan(limit);
        expect((err as Error).message).toMatch(/above the limit/);
        expect(await notes.get(tenant, 'huge')).toBeUndefined();
        expect(await rejection(store.writeAtomic([notes.putOp(tenant, 'huge', { text: 'x', bytes: new Uint8Array(limit + 1) })]))).toBeInstanceOf(DocumentTooLargeError);
        const fits = await notes.put(tenant, 'fits', { text: 'x', bytes: new Uint8Array(limit - 4096).fill(7) });
        expect(fits.version).toBe(1);
        expect((await notes.get(tenant, 'fits'))?.data.bytes?.byteLength).toBe(limit - 4096);
      });
    });

    describe('lifecycle', () => {
      it('health resolves on an open store; a closed store rejects as unavailable', async () => {
        await expect(store.health()).resolves.toBeUndefined();
        const extra = await factory();
        const col = await extra.collection<Note>({ name: notes.name });
        await extra.close();
        await extra.close();
        expect(await rejection(extra.health())).toBeInstanceOf(StoreUnavailableError);
        expect(await rejection(col.get(tenant, 'a'))).toMatchObject({ code: 'unavailable' });
      });

      it('invalid specs are refused', async () => {
        expect(await rejection(store.collection({ name: 'bad name' }))).toMatchObject({ field: 'spec.name' });
        expect(await rejection(store.collection({ name: 'ok', indexes: [{ fields: ['version'] }] }))).toMatchObject({ field: 'spec.indexes[0].fields' });
        expect(await rejection(store.collection({ name: 'ok', indexes: [{ fields: [] }] }))).toMatchObject({ field: 'spec.indexes[0].fields' });
      });
    });
  });
}
