import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempDir } from '@aimass/testing';
import type { TempDir } from '@aimass/testing';
import { DEFAULT_MAX_DOCUMENT_BYTES, DocumentTooLargeError, StoreUnavailableError, VersionConflictError, openSqliteStore } from '@aimass/storage';
import type { DocumentStore } from '@aimass/storage';
import { transpileSources } from './support/transpile.js';

describe('SQLite adapter', () => {
  let dir: TempDir;
  const open: DocumentStore[] = [];
  const openStore = async (path: string, busyTimeoutMs?: number): Promise<DocumentStore> => {
    const store = await openSqliteStore({ path, busyTimeoutMs });
    open.push(store);
    return store;
  };

  beforeEach(async () => {
    dir = await tempDir('aimass-storage-');
  });

  afterEach(async () => {
    for (const s of open.splice(0)) await s.close();
    await dir.remove();
  });

  it('creates the file and its directory, in WAL mode', async () => {
    const path = join(dir.path, 'nested', 'deeper', 'service.db');
    const store = await openStore(path);
    const col = await store.collection<{ n: number }>({ name: 'things' });
    await col.put('t', 'a', { n: 1 });
    expect(existsSync(path)).toBe(true);
    expect(existsSync(`${path}-wal`)).toBe(true);
    const raw = new Database(path, { readonly: true });
    try {
      expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
    } finally {
      raw.close();
    }
  });

  it('keeps data across close and reopen, and checkpoints the WAL away on close', async () => {
    const path = join(dir.path, 'durable.db');
    const first = await openSqliteStore({ path });
    const col = await first.collection<{ w: Uint8Array; at: Date }>({ name: 'models', indexes: [{ fields: ['user', 'createdAt'] }] });
    const w = new Uint8Array(70_000).map((_, i) => i % 251);
    const written = await col.put('t', 'alice:1', { w, at: new Date(123) }, { user: 'alice' });
    await col.put('t', 'alice:1', { w, at: new Date(456) }, { expectedVersion: 1 });
    await first.close();
    expect(existsSync(`${path}-wal`)).toBe(false);

    const second = await openStore(path);
    const again = await second.collection<{ w: Uint8Array; at: Date }>({ name: 'models', indexes: [{ fields: ['user', 'createdAt'] }] });
    const got = await again.get('t', 'alice:1');
    expect(got).toMatchObject({ version: 2, user: 'alice', createdAt: written.createdAt, data: { at: new Date(456) } });
    expect(Buffer.from(got!.data.w).equals(Buffer.from(w))).toBe(true);
    expect(await again.count('t', { user: 'alice' })).toBe(1);
  });

  it('two instances on one file: compare-and-set is checked against the other connection’s writes', async () => {
    const path = join(dir.path, 'shared.db');
    const a = await openStore(path);
    const b = await openStore(path);
    const ca = await a.collection<{ v: string }>({ name: 'pointers' });
    const cb = await b.collection<{ v: string }>({ name: 'pointers' });
    await ca.put('t', 'alice', { v: 'one' }, { expectedVersion: 'absent' });
    const seenByB = await cb.get('t', 'alice');
    expect(seenByB?.version).toBe(1);
    await ca.put('t', 'alice', { v: 'two' }, { expectedVersion: 1 });
    const err = await cb.put('t', 'alice', { v: 'stale' }, { expectedVersion: seenByB!.version }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VersionConflictError);
    expect(err).toMatchObject({ expected: 1, actual: 2 });
    await expect(b.writeAtomic([cb.checkOp('t', 'alice', 1), cb.putOp('t', 'bob', { v: 'x' })])).rejects.toBeInstanceOf(VersionConflictError);
    expect(await ca.get('t', 'bob')).toBeUndefined();
    expect(await cb.put('t', 'alice', { v: 'absent?' }, { expectedVersion: 'absent' }).catch((e: unknown) => e)).toBeInstanceOf(VersionConflictError);
    expect((await cb.get('t', 'alice'))?.data.v).toBe('two');
  });

  it('an index added through one instance is kept current by writes of the other', async () => {
    const path = join(dir.path, 'schema.db');
    const a = await openStore(path);
    const b = await openStore(path);
    const old = await a.collection<{ color: string }>({ name: 'paint' });
    await old.put('t', 'first', { color: 'red' });
    const indexed = await b.collection<{ color: string }>({ name: 'paint', indexes: [{ fields: ['color'] }] });
    await old.put('t', 'second', { color: 'red' });
    await old.put('t', 'third', { color: 'blue' });
    const reds = await indexed.query('t', { where: { color: 'red' } });
    expect(reds.items.map((d) => d.id)).toEqual(['first', 'second']);
  });

  it('worker threads racing on one file lose no update and create each document once', async () => {
    const path = join(dir.path, 'race.db');
    const build = join(dir.path, 'build');
    await transpileSources(build);
    const setup = await openStore(path);
    const col = await setup.collection<{ n: number }>({ name: 'race' });
    await col.put('t', 'counter', { n: 0 });

    const workers = 3;
    const increments = 60;
    const claimIds = Array.from({ length: 60 }, (_, i) => `claim-${i}`);
    const threads = Array.from(
      { length: workers },
      (_, worker) =>
        new Worker(new URL('./fixtures/cas-worker.mjs', import.meta.url), {
          workerData: { moduleUrl: pathToFileURL(join(build, 'sqlite.js')).href, path, increments, claimIds, worker },
        }),
    );
    const ready = threads.map((w) => new Promise<void>((resolve, reject) => {
      w.once('message', () => resolve());
      w.once('error', reject);
    }));
    await Promise.all(ready);
    const done = threads.map(
      (w) =>
        new Promise<{ conflicts: number; won: string[] }>((resolve, reject) => {
          w.once('message', resolve);
          w.once('error', reject);
          w.once('exit', (code) => code !== 0 && reject(new Error(`worker exited with ${code}`)));
        }),
    );
    for (const w of threads) w.postMessage('go');
    const results = await Promise.all(done);

    const final = await col.get('t', 'counter');
    expect(final?.data.n).toBe(workers * increments);
    expect(final?.version).toBe(workers * increments + 1);
    // The workers did contend: some writes lost the race and retried.
    expect(results.reduce((n, r) => n + r.conflicts, 0)).toBeGreaterThan(0);
    const won = results.flatMap((r) => r.won).sort();
    expect(won).toEqual([...claimIds].sort());
    for (const id of claimIds) expect((await col.get('t', id))?.version).toBe(1);
  });

  it('a write that waits longer than busyTimeoutMs for another connection’s lock fails as unavailable', async () => {
    const path = join(dir.path, 'busy.db');
    const store = await openStore(path, 100);
    const col = await store.collection<{ n: number }>({ name: 'c' });
    const holder = new Database(path);
    try {
      holder.exec('BEGIN IMMEDIATE');
      const started = Date.now();
      const err = await col.put('t', 'a', { n: 1 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StoreUnavailableError);
      expect(Date.now() - started).toBeGreaterThanOrEqual(90);
      expect(await col.get('t', 'a')).toBeUndefined();
      holder.exec('ROLLBACK');
      expect((await col.put('t', 'a', { n: 1 })).version).toBe(1);
    } finally {
      holder.close();
    }
  });

  it('defaults to a 15 MiB document limit', async () => {
    const store = await openStore(':memory:');
    expect(store.maxDocumentBytes).toBe(DEFAULT_MAX_DOCUMENT_BYTES);
    expect(DEFAULT_MAX_DOCUMENT_BYTES).toBe(15 * 1024 * 1024);
    const col = await store.collection<{ w: Uint8Array }>({ name: 'big' });
    const fits = new Uint8Array(DEFAULT_MAX_DOCUMENT_BYTES - 1024).fill(3);
    await col.put('t', 'fits', { w: fits });
    expect((await col.get('t', 'fits'))?.data.w.byteLength).toBe(fits.byteLength);
    await expect(col.put('t', 'over', { w: new Uint8Array(DEFAULT_MAX_DOCUMENT_BYTES) })).rejects.toBeInstanceOf(DocumentTooLargeError);
  });

  it('stores a collection as one table: JSON text, binaries raw in a blob, index columns beside', async () => {
    const path = join(dir.path, 'layout.db');
    const store = await openStore(path);
    const col = await store.collection<{ w: Uint8Array; at: Date; kind: string }>({ name: 'layout', indexes: [{ fields: ['kind'] }] });
    await col.put('acme', 'x', { w: new Uint8Array([1, 2, 3]), at: new Date(0), kind: 'k' }, { user: 'u' });
    const raw = new Database(path, { readonly: true });
    try {
      const row = raw.prepare('SELECT tenant, id, "user", version, data, bins, "t:kind" AS t, "v:kind" AS v FROM doc_layout').get() as Record<string, unknown>;
      expect(row).toMatchObject({ tenant: 'acme', id: 'x', user: 'u', version: 1, t: 2, v: 'k' });
      expect(JSON.parse(row['data'] as string)).toEqual({ w: { $bin: [0, 3] }, at: { $date: '1970-01-01T00:00:00.000Z' }, kind: 'k' });
      expect([...(row['bins'] as Buffer)]).toEqual([1, 2, 3]);
      const plan = raw
        .prepare(`EXPLAIN QUERY PLAN SELECT id FROM doc_layout WHERE tenant = ? AND "t:kind" = ? AND "v:kind" = ? AND id > ? ORDER BY id LIMIT 10`)
        .all('acme', 2, 'k', 'a') as Array<{ detail: string }>;
      expect(plan.map((p) => p.detail).join(' ')).toMatch(/USING (COVERING )?INDEX/);
    } finally {
      raw.close();
    }
  });
});
