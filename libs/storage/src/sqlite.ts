import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import {
  BaseCollection,
  DEFAULT_MAX_DOCUMENT_BYTES,
  assertVersion,
  prepareOps,
} from './collection.js';
import type { KeyRequest, PreparedOp, PutRequest } from './collection.js';
import {
  DocumentTooLargeError,
  InvalidQueryError,
  StorageError,
  StoreUnavailableError,
  UniqueConstraintError,
} from './errors.js';
import type { ActualVersion } from './errors.js';
import { encodeCursor, orderValueOf } from './query.js';
import type { NormalizedFilter, NormalizedQuery } from './query.js';
import { normalizeSpec } from './spec.js';
import type { IndexField, NormalizedSpec } from './spec.js';
import { decodeBody, encodeBody, sqliteEncoders } from './sqlite-codec.js';
import type { EncodedBody } from './sqlite-codec.js';
import type {
  CollectionRef,
  CollectionSpec,
  DocumentData,
  DocumentStore,
  IndexValue,
  Page,
  StoredDocument,
  WriteOp,
  WriteOpResult,
} from './types.js';
import { rankOf } from './values.js';
import type { DataEncoders } from './values.js';

export interface SqliteStoreOptions {
  /** Database file (its directory is created), or `':memory:'` for a private in-memory store. */
  readonly path: string;
  /** How long a write waits for another connection's write lock before failing `unavailable`. Default 5000. */
  readonly busyTimeoutMs?: number;
  /**
   * `NORMAL` (default): in WAL mode a commit is durable against process crashes and the file can
   * never be corrupted; only an OS crash or power loss may lose the last commits since the previous
   * checkpoint. `FULL` fsyncs on every commit for that case too, at a large cost per write.
   */
  readonly synchronous?: 'NORMAL' | 'FULL';
  readonly maxDocumentBytes?: number;
}

type Db = Database.Database;
type Stmt = Database.Statement<unknown[], unknown>;

interface DocRow {
  id: string;
  user: string | null;
  version: number;
  created_at: number;
  updated_at: number;
  data: string;
  bins: Buffer | null;
}

interface CurrentRow {
  version: number;
  created_at: number;
  user: string | null;
}

const q = (ident: string): string => `"${ident.replaceAll('"', '""')}"`;
const rankCol = (field: string): string => q(`t:${field}`);
const valueCol = (field: string): string => q(`v:${field}`);
const SELECT_COLS = `id, "user", version, created_at, updated_at, data, bins`;
const MAX_CACHED_STATEMENTS = 500;

/** An index value as SQLite binds it: the rank column orders types, the value column within one. */
function bindValue(v: IndexValue): string | number {
  if (v === null) return 0;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (v instanceof Date) return v.getTime();
  return v;
}

function isSqliteError(err: unknown): err is Error & { code: string } {
  return err instanceof Database.SqliteError;
}

/** Opens (creating if needed) a SQLite store: one file per service, WAL, shared by any number of connections. */
export async function openSqliteStore(options: SqliteStoreOptions): Promise<DocumentStore> {
  const { path } = options;
  const memory = path === ':memory:' || path === '';
  if (!memory) mkdirSync(dirname(path), { recursive: true });
  const busyTimeoutMs = options.busyTimeoutMs ?? 5000;
  let db: Db;
  try {
    db = new Database(path, { timeout: busyTimeoutMs });
  } catch (err) {
    throw new StoreUnavailableError(`cannot open SQLite database ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    // Another connection opening the same file at the same moment can hold the lock that switching
    // the journal mode needs, or be rebuilding the WAL index, and SQLite answers both with
    // SQLITE_BUSY without calling the busy handler: read the mode first (a WAL file needs no
    // switch), and retry each of these statements until the busy timeout.
    const current = await retryWhileBusy(() => db.pragma('journal_mode', { simple: true }), busyTimeoutMs);
    const mode = current === 'wal' ? current : await retryWhileBusy(() => db.pragma('journal_mode = WAL', { simple: true }), busyTimeoutMs);
    if (!memory && mode !== 'wal') throw new StoreUnavailableError(`SQLite refused WAL mode for ${path} (got ${String(mode)})`);
    await retryWhileBusy(() => db.pragma(`synchronous = ${options.synchronous ?? 'NORMAL'}`), busyTimeoutMs);
    // A large write (a model) can grow the WAL; truncate it back after checkpoints.
    await retryWhileBusy(() => db.pragma('journal_size_limit = 67108864'), busyTimeoutMs);
  } catch (err) {
    db.close();
    throw err;
  }
  return new SqliteStore(db, options.maxDocumentBytes ?? DEFAULT_MAX_DOCUMENT_BYTES);
}

function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'));
}

/** Runs `fn` again after short pauses while SQLite reports the file busy, for up to `timeoutMs`. */
async function retryWhileBusy<R>(fn: () => R, timeoutMs: number): Promise<R> {
  const deadline = Date.now() + timeoutMs;
  for (let pause = 5; ; pause = Math.min(pause * 2, 200)) {
    try {
      return fn();
    } catch (err) {
      if (!isBusy(err) || Date.now() + pause > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
  }
}

interface TableShape {
  readonly table: string;
  /** Data fields that have rank/value columns, whoever declared them: writes keep them all current. */
  readonly dataColumns: readonly string[];
}

class SqliteStore implements DocumentStore {
  readonly kind = 'sqlite';
  readonly maxDocumentBytes: number;
  readonly #db: Db;
  readonly #statements = new Map<string, Stmt>();
  readonly #shapes = new Map<string, TableShape>();
  readonly #txn: Database.Transaction<(fn: () => unknown) => unknown>;
  #schemaVersion = -1;
  #closed = false;

  constructor(db: Db, maxDocumentBytes: number) {
    this.#db = db;
    this.maxDocumentBytes = maxDocumentBytes;
    this.#txn = db.transaction((fn: () => unknown) => fn());
  }

  stmt(sql: string): Stmt {
    let s = this.#statements.get(sql);
    if (s === undefined) {
      // Query shapes come from code, so the set is small; the bound only guards against misuse.
      if (this.#statements.size >= MAX_CACHED_STATEMENTS) this.#statements.clear();
      s = this.#db.prepare(sql);
      this.#statements.set(sql, s);
    }
    return s;
  }

  /** Runs `fn` synchronously, mapping closed stores and SQLite failures to storage errors. */
  run<R>(fn: () => R): R {
    if (this.#closed) throw new StoreUnavailableError('the SQLite store is closed');
    try {
      return fn();
    } catch (err) {
      if (err instanceof StorageError) throw err;
      if (isSqliteError(err) && (err.code.startsWith('SQLITE_BUSY') || err.code.startsWith('SQLITE_LOCKED'))) {
        throw new StoreUnavailableError(`SQLite database is busy: ${err.message}`, { cause: err });
      }
      throw err;
    }
  }

  /**
   * A write transaction that takes the write lock up front (BEGIN IMMEDIATE): a version read inside
   * it cannot change before the write, whichever connection or process races it.
   */
  write<R>(fn: () => R): R {
    return this.run(() =>
      this.#txn.immediate(() => {
        this.#refreshShapes();
        return fn();
      }) as R,
    );
  }

  /** Another connection may have added index columns since we looked; writes must fill them. */
  #refreshShapes(): void {
    const version = this.stmt('PRAGMA schema_version').pluck().get() as number;
    if (version === this.#schemaVersion) return;
    for (const name of this.#shapes.keys()) this.#shapes.set(name, this.#loadShape(name));
    this.#schemaVersion = version;
  }

  #loadShape(name: string): TableShape {
    const table = `doc_${name}`;
    const cols = this.#db.prepare(`PRAGMA table_info(${q(table)})`).all() as Array<{ name: string }>;
    const dataColumns = cols.filter((c) => c.name.startsWith('v:')).map((c) => c.name.slice(2));
    return { table, dataColumns };
  }

  shape(name: string): TableShape {
    const s = this.#shapes.get(name);
    if (s === undefined) throw new Error(`collection ${name} was not opened`);
    return s;
  }

  async collection<T extends DocumentData = DocumentData>(spec: CollectionSpec): Promise<SqliteCollection<T>> {
    const norm = normalizeSpec(spec);
    this.write(() => this.#ensureTable(norm));
    return new SqliteCollection<T>(this, norm);
  }

  #ensureTable(spec: NormalizedSpec): void {
    const table = `doc_${spec.name}`;
    const db = this.#db;
    db.exec(`CREATE TABLE IF NOT EXISTS ${q(table)} (
      tenant TEXT NOT NULL,
      id TEXT NOT NULL,
      "user" TEXT,
      version INTEGER NOT NULL,
      created_at INTEGER NOT NULL,
      updated_at INTEGER NOT NULL,
      data TEXT NOT NULL,
      bins BLOB,
      PRIMARY KEY (tenant, id)
    )`);
    db.exec(`CREATE INDEX IF NOT EXISTS ${q(`ix:user@${table}`)} ON ${q(table)} (tenant, "user", id)`);
    const existing = new Set(this.#loadShape(spec.name).dataColumns);
    const added = [...spec.indexedDataFields].filter((f) => !existing.has(f));
    for (const field of added) {
      db.exec(`ALTER TABLE ${q(table)} ADD COLUMN ${rankCol(field)} INTEGER NOT NULL DEFAULT 0`);
      db.exec(`ALTER TABLE ${q(table)} ADD COLUMN ${valueCol(field)} NOT NULL DEFAULT 0`);
    }
    if (added.length > 0) this.#backfill(table, added);
    for (const ix of spec.indexes) {
      const cols = ix.fields.flatMap((f) => columnsOf(f));
      const keyCols = ['tenant', ...cols, ...(ix.unique ? [] : ['id'])].join(', ');
      try {
        db.exec(`CREATE ${ix.unique ? 'UNIQUE ' : ''}INDEX IF NOT EXISTS ${q(`${ix.key}@${table}`)} ON ${q(table)} (${keyCols})`);
      } catch (err) {
        if (isSqliteError(err) && err.code.startsWith('SQLITE_CONSTRAINT')) {
          throw new InvalidQueryError('spec.indexes', `documents of ${spec.name} already violate unique index (${ix.fields.map((f) => f.name).join(', ')})`);
        }
        throw err;
      }
    }
    this.#shapes.set(spec.name, this.#loadShape(spec.name));
  }

  /** Fills newly added index columns from the stored bodies (only when a spec gains an index). */
  #backfill(table: string, fields: readonly string[]): void {
    const sets = fields.map((f) => `${rankCol(f)} = ?, ${valueCol(f)} = ?`).join(', ');
    const update = this.#db.prepare(`UPDATE ${q(table)} SET ${sets} WHERE rowid = ?`);
    const rows = this.#db.prepare(`SELECT rowid AS r, data, bins FROM ${q(table)}`).all() as Array<{ r: number; data: string; bins: Buffer | null }>;
    for (const row of rows) {
      const data = decodeBody(row.data, row.bins);
      const params: unknown[] = [];
      for (const f of fields) {
        const v = indexable(data[f]);
        params.push(rankOf(v), bindValue(v));
      }
      update.run(...params, row.r);
    }
  }

  async writeAtomic(ops: readonly WriteOp[]): Promise<WriteOpResult[]> {
    this.run(() => undefined);
    const prepared = prepareOps(ops, (ref) => this.#own(ref));
    const encoded = prepared.map((op) => (op.type === 'put' ? op.collection.encode(op.req) : undefined));
    return this.write(() =>
      prepared.map((op: PreparedOp<SqliteCollection<DocumentData>>, i): WriteOpResult => {
        switch (op.type) {
          case 'put':
            return { type: 'put', document: op.collection.applyPut(op.req, encoded[i] as EncodedBody, i) };
          case 'delete':
            return { type: 'delete', deleted: op.collection.applyDelete(op.req, i) };
          case 'check': {
            const actual = op.collection.currentVersion(op.req.tenant, op.req.id);
            assertVersion({ collection: op.collection.name, tenant: op.req.tenant, id: op.req.id, opIndex: i }, op.req.expected, actual);
            return { type: 'check', version: actual };
          }
        }
      }),
    );
  }

  #own(ref: CollectionRef): SqliteCollection<DocumentData> | undefined {
    return ref instanceof SqliteCollection && ref.store === this ? (ref as SqliteCollection<DocumentData>) : undefined;
  }

  async health(): Promise<void> {
    this.run(() => this.stmt('SELECT 1').get());
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      // Lets SQLite refresh planner statistics for the indexes the queries used. It may write
      // (ANALYZE), so another connection's lock can refuse it: statistics are a nicety, and a
      // close must not fail for them.
      this.#db.pragma('optimize');
    } catch (err) {
      if (!isBusy(err)) throw err;
    } finally {
      this.#db.close();
    }
  }
}

function columnsOf(f: IndexField): string[] {
  if (f.kind === 'data') return [rankCol(f.name), valueCol(f.name)];
  return [f.name === 'user' ? '"user"' : f.name === 'createdAt' ? 'created_at' : 'updated_at'];
}

function indexable(v: unknown): IndexValue {
  if (v === undefined || v === null) return null;
  if (typeof v === 'string' || typeof v === 'boolean' || v instanceof Date) return v;
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  // Only reachable for columns declared by another spec: they index such values as missing.
  return null;
}

class SqliteCollection<T extends DocumentData> extends BaseCollection<T> {
  readonly store: SqliteStore;
  protected readonly encoders: DataEncoders = sqliteEncoders;

  constructor(store: SqliteStore, spec: NormalizedSpec) {
    super(spec);
    this.store = store;
  }

  get #table(): string {
    return q(this.store.shape(this.name).table);
  }

  encode(req: PutRequest): EncodedBody {
    const enc = encodeBody(req.body);
    const size = enc.bytes + Buffer.byteLength(req.tenant) + Buffer.byteLength(req.id) + (req.user === undefined ? 0 : Buffer.byteLength(req.user));
    if (size > this.store.maxDocumentBytes) {
      throw new DocumentTooLargeError({ collection: this.name, id: req.id, size, limit: this.store.maxDocumentBytes });
    }
    return enc;
  }

  #toDoc(tenant: string, row: DocRow): StoredDocument<T> {
    return {
      tenant,
      id: row.id,
      ...(row.user === null ? {} : { user: row.user }),
      version: row.version,
      data: decodeBody(row.data, row.bins) as T,
      createdAt: new Date(row.created_at),
      updatedAt: new Date(row.updated_at),
    };
  }

  #current(tenant: string, id: string): CurrentRow | undefined {
    return this.store.stmt(`SELECT version, created_at, "user" FROM ${this.#table} WHERE tenant = ? AND id = ?`).get(tenant, id) as CurrentRow | undefined;
  }

  currentVersion(tenant: string, id: string): ActualVersion {
    return this.#current(tenant, id)?.version ?? 'absent';
  }

  /** Must run inside `store.write`. */
  applyPut(req: PutRequest, enc: EncodedBody, opIndex?: number): StoredDocument<T> {
    const { tenant, id } = req;
    const cur = this.#current(tenant, id);
    assertVersion({ collection: this.name, tenant, id, opIndex }, req.expected, cur?.version ?? 'absent');
    const now = Date.now();
    const user = req.user ?? cur?.user ?? null;
    const { dataColumns } = this.store.shape(this.name);
    const indexParams: unknown[] = [];
    for (const f of dataColumns) {
      const v = req.indexValues.get(f) ?? indexable((req.data as Record<string, unknown>)[f]);
      indexParams.push(rankOf(v), bindValue(v));
    }
    const version = (cur?.version ?? 0) + 1;
    const createdAt = cur?.created_at ?? now;
    try {
      if (cur === undefined) {
        const cols = ['tenant', 'id', '"user"', 'version', 'created_at', 'updated_at', 'data', 'bins', ...dataColumns.flatMap((f) => [rankCol(f), valueCol(f)])];
        this.store
          .stmt(`INSERT INTO ${this.#table} (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`)
          .run(tenant, id, user, version, now, now, enc.json, enc.bins, ...indexParams);
      } else {
        const sets = ['"user" = ?', 'version = ?', 'updated_at = ?', 'data = ?', 'bins = ?', ...dataColumns.flatMap((f) => [`${rankCol(f)} = ?`, `${valueCol(f)} = ?`])];
        this.store
          .stmt(`UPDATE ${this.#table} SET ${sets.join(', ')} WHERE tenant = ? AND id = ?`)
          .run(user, version, now, enc.json, enc.bins, ...indexParams, tenant, id);
      }
    } catch (err) {
      if (isSqliteError(err) && err.code === 'SQLITE_CONSTRAINT_UNIQUE') {
        throw new UniqueConstraintError({ collection: this.name, tenant, id, fields: uniqueFieldsOf(err.message), opIndex, cause: err });
      }
      throw err;
    }
    return {
      tenant,
      id,
      ...(user === null ? {} : { user }),
      version,
      data: req.data as T,
      createdAt: new Date(createdAt),
      updatedAt: new Date(now),
    };
  }

  /** Must run inside `store.write`. */
  applyDelete(req: KeyRequest, opIndex?: number): boolean {
    const { tenant, id, expected } = req;
    if (expected !== 'any') {
      assertVersion({ collection: this.name, tenant, id, opIndex }, expected, this.currentVersion(tenant, id));
    }
    return this.store.stmt(`DELETE FROM ${this.#table} WHERE tenant = ? AND id = ?`).run(tenant, id).changes > 0;
  }

  protected async doGet(tenant: string, id: string): Promise<StoredDocument<T> | undefined> {
    return this.store.run(() => {
      const row = this.store.stmt(`SELECT ${SELECT_COLS} FROM ${this.#table} WHERE tenant = ? AND id = ?`).get(tenant, id) as DocRow | undefined;
      return row === undefined ? undefined : this.#toDoc(tenant, row);
    });
  }

  protected async doPut(req: PutRequest): Promise<StoredDocument<T>> {
    const enc = this.encode(req);
    return this.store.write(() => this.applyPut(req, enc));
  }

  protected async doDelete(req: KeyRequest): Promise<boolean> {
    return this.store.write(() => this.applyDelete(req));
  }

  #filterSql(tenant: string, f: NormalizedFilter): { sql: string; params: unknown[] } {
    const clauses = ['tenant = ?'];
    const params: unknown[] = [tenant];
    if (f.user !== undefined) {
      clauses.push('"user" = ?');
      params.push(f.user);
    }
    for (const { field, value } of f.where) {
      if (value === null) {
        clauses.push(`${rankCol(field)} = 0`);
      } else {
        clauses.push(`${rankCol(field)} = ? AND ${valueCol(field)} = ?`);
        params.push(rankOf(value), bindValue(value));
      }
    }
    return { sql: clauses.join(' AND '), params };
  }

  protected async doQuery(tenant: string, nq: NormalizedQuery): Promise<Page<T>> {
    return this.store.run(() => {
      const { sql, params } = this.#filterSql(tenant, nq);
      let orderCols: string[];
      let after: unknown[] = [];
      const order = nq.order;
      if (order.kind === 'id') {
        orderCols = ['id'];
        if (nq.after) after = [nq.after.id];
      } else if (order.kind === 'builtin') {
        orderCols = [order.name === 'createdAt' ? 'created_at' : 'updated_at', 'id'];
        if (nq.after) after = [bindValue(nq.after.value), nq.after.id];
      } else {
        orderCols = [rankCol(order.name), valueCol(order.name), 'id'];
        if (nq.after) after = [rankOf(nq.after.value), bindValue(nq.after.value), nq.after.id];
      }
      const dir = nq.direction === 'asc' ? 'ASC' : 'DESC';
      let where = sql;
      if (nq.after) {
        // A row-value comparison is one range over the index, so every page costs O(limit).
        const cmp = nq.direction === 'asc' ? '>' : '<';
        where += ` AND (${orderCols.join(', ')}) ${cmp} (${orderCols.map(() => '?').join(', ')})`;
      }
      const text = `SELECT ${SELECT_COLS} FROM ${this.#table} WHERE ${where} ORDER BY ${orderCols.map((c) => `${c} ${dir}`).join(', ')} LIMIT ?`;
      // One extra row tells whether another page exists without a second query.
      const rows = this.store.stmt(text).all(...params, ...after, nq.limit + 1) as DocRow[];
      const items = rows.slice(0, nq.limit).map((r) => this.#toDoc(tenant, r));
      const last = items[items.length - 1];
      if (rows.length <= nq.limit || last === undefined) return { items };
      const field = order.kind === 'id' ? 'id' : order.name;
      return { items, nextCursor: encodeCursor(field, nq.direction, { value: orderValueOf(order, last), id: last.id }) };
    });
  }

  protected async doCount(tenant: string, f: NormalizedFilter): Promise<number> {
    return this.store.run(() => {
      const { sql, params } = this.#filterSql(tenant, f);
      return this.store.stmt(`SELECT count(*) FROM ${this.#table} WHERE ${sql}`).pluck().get(...params) as number;
    });
  }

  protected async doDeleteByUser(tenant: string, user: string): Promise<number> {
    return this.store.write(() => this.store.stmt(`DELETE FROM ${this.#table} WHERE tenant = ? AND "user" = ?`).run(tenant, user).changes);
  }

  protected async doDeleteByTenant(tenant: string): Promise<number> {
    return this.store.write(() => this.store.stmt(`DELETE FROM ${this.#table} WHERE tenant = ?`).run(tenant).changes);
  }
}

/** "UNIQUE constraint failed: doc_x.tenant, doc_x.t:hash, doc_x.v:hash" → ["hash"]. */
function uniqueFieldsOf(message: string): string[] {
  const list = message.split(':').slice(1).join(':');
  return list
    .split(',')
    .map((s) => s.trim().replace(/^[^.]*\./, ''))
    .flatMap((col) => {
      if (col.startsWith('v:')) return [col.slice(2)];
      const builtin = ({ user: 'user', created_at: 'createdAt', updated_at: 'updatedAt' } as Record<string, string>)[col];
      return builtin === undefined ? [] : [builtin];
    });
}

