import {
  BSON,
  Binary,
  MongoClient,
  MongoNetworkError,
  MongoNotConnectedError,
  MongoServerError,
  MongoServerSelectionError,
  MongoTopologyClosedError,
} from 'mongodb';
import type { ClientSession, Collection as MongoCollection, Db, Document, Filter, IndexDescription, MongoClientOptions, Sort } from 'mongodb';
import { BaseCollection, DEFAULT_MAX_DOCUMENT_BYTES, assertVersion, prepareOps } from './collection.js';
import type { KeyRequest, PreparedOp, PutRequest } from './collection.js';
import { DocumentTooLargeError, StorageError, StoreUnavailableError, UniqueConstraintError, VersionConflictError } from './errors.js';
import type { ActualVersion } from './errors.js';
import { encodeCursor, orderValueOf } from './query.js';
import type { CursorPosition, NormalizedFilter, NormalizedQuery } from './query.js';
import { normalizeSpec } from './spec.js';
import type { IndexField, NormalizedSpec } from './spec.js';
import type {
  CollectionRef,
  CollectionSpec,
  DocumentData,
  DocumentStore,
  OrderDirection,
  Page,
  StoredDocument,
  WriteOp,
  WriteOpResult,
} from './types.js';
import { rankOf } from './values.js';
import type { DataEncoders, IndexRank } from './values.js';

export interface MongoStoreOptions {
  /** A replica set (or sharded cluster) is needed for `writeAtomic`: MongoDB transactions require one. */
  readonly url: string;
  /** One database per service. */
  readonly database: string;
  readonly maxDocumentBytes?: number;
  /** Passed to `MongoClient`, e.g. TLS files or `serverSelectionTimeoutMS`. */
  readonly clientOptions?: MongoClientOptions;
}

/**
 * Stored shape. `_id` is `<tenant>/<id>` (tenants never contain `/`), so the tenant is part of the
 * primary key and, within a tenant, `_id` order is id order.
 */
interface MongoDoc {
  _id: string;
  tenant: string;
  id: string;
  user?: string;
  version: number;
  createdAt: Date;
  updatedAt: Date;
  data: Record<string, unknown>;
  /** Bumped by `check` ops in a transaction so a concurrent writer of that document conflicts. */
  _lock?: number;
}

const DUPLICATE_KEY = 11000;
const MAX_UPSERT_RETRIES = 3;
const HEAD_PROJECTION = { data: 0 } as const;

const mongoEncoders: DataEncoders = {
  // The driver writes Uint8Array as BSON Binary and Date as BSON date natively.
  binary: (bytes) => bytes,
  date: (date) => date,
};

const docKey = (tenant: string, id: string): string => `${tenant}/${id}`;

function fieldPath(f: IndexField | { kind: 'data'; name: string }): string {
  return f.kind === 'data' ? `data.${f.name}` : f.name;
}

/** BSON type aliases per `rankOf` rank (rank 0, null/missing, is matched with `{path: null}`). */
const TYPE_OF_RANK: Record<Exclude<IndexRank, 0>, string> = { 1: 'number', 2: 'string', 3: 'bool', 4: 'date' };

/** Binaries come back as BSON `Binary`; callers get plain `Uint8Array` copies. */
export function fromBson(value: unknown): unknown {
  if (value instanceof Binary) return new Uint8Array(value.value());
  if (value instanceof Date || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map(fromBson);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    const decoded = fromBson(v);
    if (k === '__proto__') Object.defineProperty(out, k, { value: decoded, enumerable: true, writable: true, configurable: true });
    else out[k] = decoded;
  }
  return out;
}

export function mongoFilter(tenant: string, f: NormalizedFilter): Filter<Document> {
  const filter: Filter<Document> = { tenant };
  if (f.user !== undefined) filter['user'] = f.user;
  // `{path: null}` also matches a missing field, as SQLite's rank 0 does.
  for (const { field, value } of f.where) filter[`data.${field}`] = value;
  return filter;
}

/**
 * Keyset condition "after this position" for an order by `path` then `_id`. MongoDB's `$gt`/`$lt`
 * only compare within one BSON type, so the types that sort after (or before) the cursor's are
 * added explicitly; together the branches follow MongoDB's cross-type sort order.
 */
export function afterClauses(path: string, direction: OrderDirection, after: CursorPosition, afterKey: string): Document[] {
  const cmp = direction === 'asc' ? '$gt' : '$lt';
  const r = rankOf(after.value);
  const clauses: Document[] = [{ [path]: after.value, _id: { [cmp]: afterKey } }];
  if (r !== 0) clauses.push({ [path]: { [cmp]: after.value } });
  const ranks = ([1, 2, 3, 4] as const).filter((x) => (direction === 'asc' ? x > r : x < r));
  if (ranks.length > 0) clauses.push({ [path]: { $type: ranks.map((x) => TYPE_OF_RANK[x]) } });
  if (direction === 'desc' && r !== 0) clauses.push({ [path]: null });
  return clauses;
}

export function mongoFind(tenant: string, nq: NormalizedQuery): { filter: Filter<Document>; sort: Sort } {
  const filter = mongoFilter(tenant, nq);
  const dir = nq.direction === 'asc' ? 1 : -1;
  const order = nq.order;
  if (order.kind === 'id') {
    if (nq.after) filter['_id'] = { [nq.direction === 'asc' ? '$gt' : '$lt']: docKey(tenant, nq.after.id) };
    return { filter, sort: { _id: dir } };
  }
  const path = fieldPath(order);
  if (nq.after) filter['$or'] = afterClauses(path, nq.direction, nq.after, docKey(tenant, nq.after.id));
  return { filter, sort: { [path]: dir, _id: dir } };
}

/** The index set for a spec: what `createIndexes` is given at start-up. */
export function mongoIndexes(spec: NormalizedSpec): IndexDescription[] {
  const out: IndexDescription[] = [
    { name: 'ix:id', key: { tenant: 1, _id: 1 } },
    { name: 'ix:user', key: { tenant: 1, user: 1, _id: 1 } },
  ];
  for (const ix of spec.indexes) {
    const key: Record<string, 1> = { tenant: 1 };
    for (const f of ix.fields) key[fieldPath(f)] = 1;
    if (!ix.unique) {
      key['_id'] = 1;
      out.push({ name: ix.key, key });
    } else {
      // Unique fields are required on write; the filter keeps transient placeholders out of it.
      const partialFilterExpression: Document = {};
      for (const f of ix.fields) partialFilterExpression[fieldPath(f)] = { $exists: true };
      out.push({ name: ix.key, key, unique: true, partialFilterExpression });
    }
  }
  return out;
}

function isDuplicateKey(err: unknown): err is MongoServerError {
  return err instanceof MongoServerError && err.code === DUPLICATE_KEY;
}

/** Which unique index a duplicate-key error is about: `_id`, or the fields of one of ours. */
export function duplicateFields(err: { message: string; keyPattern?: unknown }): string[] {
  const pattern = err.keyPattern;
  if (typeof pattern === 'object' && pattern !== null) {
    return Object.keys(pattern)
      .filter((k) => k !== 'tenant')
      .map((k) => k.replace(/^data\./, ''));
  }
  // Older servers only name the index in the message: "... index: ux:hash dup key: {...}".
  const name = /index: (\S+) dup key/.exec(err.message)?.[1];
  if (name === undefined || name === '_id_') return ['_id'];
  return name.startsWith('ux:') ? name.slice(3).split(',') : [name];
}

function mapMongoError(err: unknown): unknown {
  if (err instanceof StorageError) return err;
  if (
    err instanceof MongoNetworkError ||
    err instanceof MongoServerSelectionError ||
    err instanceof MongoNotConnectedError ||
    err instanceof MongoTopologyClosedError
  ) {
    return new StoreUnavailableError(`MongoDB unreachable: ${err.message}`, { cause: err });
  }
  if (err instanceof MongoServerError && (err.code === 20 || err.code === 263) && /transaction/i.test(err.message)) {
    return new StoreUnavailableError(`MongoDB transactions need a replica set or a sharded cluster: ${err.message}`, { cause: err });
  }
  return err;
}

async function guard<R>(fn: () => Promise<R>): Promise<R> {
  try {
    return await fn();
  } catch (err) {
    throw mapMongoError(err);
  }
}

/** Connects, checks the server answers, and returns the store. Indexes are made by `collection()`. */
export async function openMongoStore(options: MongoStoreOptions): Promise<DocumentStore> {
  const client = new MongoClient(options.url, { ignoreUndefined: true, ...options.clientOptions });
  try {
    await client.connect();
    const db = client.db(options.database);
    await db.command({ ping: 1 });
    return new MongoStore(client, db, options.maxDocumentBytes ?? DEFAULT_MAX_DOCUMENT_BYTES);
  } catch (err) {
    await client.close().catch(() => undefined);
    throw mapMongoError(err);
  }
}

class MongoStore implements DocumentStore {
  readonly kind = 'mongodb';
  readonly maxDocumentBytes: number;
  readonly client: MongoClient;
  readonly db: Db;
  #closed = false;

  constructor(client: MongoClient, db: Db, maxDocumentBytes: number) {
    this.client = client;
    this.db = db;
    this.maxDocumentBytes = maxDocumentBytes;
  }

  checkOpen(): void {
    if (this.#closed) throw new StoreUnavailableError('the MongoDB store is closed');
  }

  async collection<T extends DocumentData = DocumentData>(spec: CollectionSpec): Promise<MongoDocCollection<T>> {
    this.checkOpen();
    const norm = normalizeSpec(spec);
    const coll = this.db.collection<MongoDoc>(norm.name);
    await guard(() => coll.createIndexes(mongoIndexes(norm)));
    return new MongoDocCollection<T>(this, norm, coll);
  }

  /**
   * One session transaction (snapshot reads, majority commit). `withTransaction` retries the whole
   * callback on transient errors such as write conflicts with a concurrent transaction, so
   * conditions are re-read on each attempt; a failed condition aborts without retry.
   */
  async writeAtomic(ops: readonly WriteOp[]): Promise<WriteOpResult[]> {
    this.checkOpen();
    const prepared = prepareOps(ops, (ref) => this.#own(ref));
    const docs = prepared.map((op) => (op.type === 'put' ? op.collection.newDoc(op.req, new Date(0)) : undefined));
    prepared.forEach((op, i) => {
      const doc = docs[i];
      if (op.type === 'put' && doc !== undefined) op.collection.checkSize(doc);
    });
    const session = this.client.startSession();
    try {
      return await guard(() =>
        session.withTransaction(
          async (s) => {
            const results: WriteOpResult[] = [];
            for (const [i, op] of prepared.entries()) results.push(await applyInTransaction(op, i, s));
            return results;
          },
          { readConcern: { level: 'snapshot' }, writeConcern: { w: 'majority' }, readPreference: 'primary' },
        ),
      );
    } finally {
      await session.endSession();
    }
  }

  #own(ref: CollectionRef): MongoDocCollection<DocumentData> | undefined {
    return ref instanceof MongoDocCollection && ref.store === this ? (ref as MongoDocCollection<DocumentData>) : undefined;
  }

  async health(): Promise<void> {
    this.checkOpen();
    await guard(() => this.db.command({ ping: 1 }));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.client.close();
  }
}

async function applyInTransaction(op: PreparedOp<MongoDocCollection<DocumentData>>, opIndex: number, session: ClientSession): Promise<WriteOpResult> {
  const c = op.collection;
  const { tenant, id, expected } = op.req;
  const _id = docKey(tenant, id);
  const where = { collection: c.name, tenant, id, opIndex };
  const cur = await c.coll.findOne({ _id }, { session, projection: HEAD_PROJECTION });
  assertVersion(where, expected, cur?.version ?? 'absent');
  switch (op.type) {
    case 'put': {
      const now = new Date();
      try {
        if (cur === null) {
          const doc = c.newDoc(op.req, now);
          await c.coll.insertOne(doc, { session });
          return { type: 'put', document: c.toStored({ ...doc, data: {} }, op.req.data) };
        }
        const version = cur.version + 1;
        const user = op.req.user ?? cur.user;
        const res = await c.coll.updateOne(
          { _id, version: cur.version },
          { $set: { data: op.req.body, version, updatedAt: now, ...(op.req.user === undefined ? {} : { user: op.req.user }) } },
          { session },
        );
        // Under snapshot isolation a concurrent change surfaces as a (retried) write conflict; this is a backstop.
        if (res.matchedCount === 0) throw new VersionConflictError({ ...where, expected, actual: 'absent' });
        return { type: 'put', document: c.toStored({ ...cur, version, updatedAt: now, ...(user === undefined ? {} : { user }) }, op.req.data) };
      } catch (err) {
        throw c.uniqueError(err, tenant, id, opIndex);
      }
    }
    case 'delete': {
      if (cur === null) return { type: 'delete', deleted: false };
      const res = await c.coll.deleteOne({ _id, version: cur.version }, { session });
      return { type: 'delete', deleted: res.deletedCount > 0 };
    }
    case 'check': {
      // A read alone takes no lock: write something so that a concurrent writer of this key
      // conflicts with us (a conflict retries the transaction, which then re-checks).
      if (cur !== null) {
        await c.coll.updateOne({ _id, version: cur.version }, { $inc: { _lock: 1 } }, { session });
        return { type: 'check', version: cur.version };
      }
      const now = new Date();
      await c.coll.insertOne({ _id, tenant, id, version: 0, createdAt: now, updatedAt: now, data: {} }, { session });
      await c.coll.deleteOne({ _id }, { session });
      return { type: 'check', version: 'absent' };
    }
  }
}

class MongoDocCollection<T extends DocumentData> extends BaseCollection<T> {
  readonly store: MongoStore;
  readonly coll: MongoCollection<MongoDoc>;
  protected readonly encoders = mongoEncoders;

  constructor(store: MongoStore, spec: NormalizedSpec, coll: MongoCollection<MongoDoc>) {
    super(spec);
    this.store = store;
    this.coll = coll;
  }

  newDoc(req: PutRequest, now: Date): MongoDoc {
    return {
      _id: docKey(req.tenant, req.id),
      tenant: req.tenant,
      id: req.id,
      ...(req.user === undefined ? {} : { user: req.user }),
      version: 1,
      createdAt: now,
      updatedAt: now,
      data: req.body,
    };
  }

  checkSize(doc: MongoDoc): void {
    const size = BSON.calculateObjectSize(doc, { ignoreUndefined: true });
    if (size > this.store.maxDocumentBytes) {
      throw new DocumentTooLargeError({ collection: this.name, id: doc.id, size, limit: this.store.maxDocumentBytes });
    }
  }

  toStored(raw: MongoDoc, data?: DocumentData): StoredDocument<T> {
    return {
      tenant: raw.tenant,
      id: raw.id,
      ...(raw.user === undefined || raw.user === null ? {} : { user: raw.user }),
      version: raw.version,
      data: (data ?? fromBson(raw.data)) as T,
      createdAt: raw.createdAt,
      updatedAt: raw.updatedAt,
    };
  }

  uniqueError(err: unknown, tenant: string, id: string, opIndex?: number): unknown {
    if (isDuplicateKey(err)) {
      const fields = duplicateFields(err);
      if (!fields.includes('_id')) return new UniqueConstraintError({ collection: this.name, tenant, id, fields, opIndex, cause: err });
    }
    return err;
  }

  async #actual(tenant: string, id: string): Promise<ActualVersion> {
    const cur = await this.coll.findOne({ _id: docKey(tenant, id) }, { projection: { version: 1 } });
    return cur?.version ?? 'absent';
  }

  async #conflict(req: KeyRequest): Promise<VersionConflictError> {
    return new VersionConflictError({ collection: this.name, tenant: req.tenant, id: req.id, expected: req.expected, actual: await this.#actual(req.tenant, req.id) });
  }

  protected async doGet(tenant: string, id: string): Promise<StoredDocument<T> | undefined> {
    this.store.checkOpen();
    const raw = await guard(() => this.coll.findOne({ _id: docKey(tenant, id) }));
    return raw === null ? undefined : this.toStored(raw);
  }

  protected async doPut(req: PutRequest): Promise<StoredDocument<T>> {
    this.store.checkOpen();
    const now = new Date();
    const doc = this.newDoc(req, now);
    this.checkSize(doc);
    const _id = doc._id;
    const userSet = req.user === undefined ? {} : { user: req.user };
    return guard(async () => {
      try {
        if (req.expected === 'absent') {
          try {
            await this.coll.insertOne(doc);
          } catch (err) {
            if (isDuplicateKey(err) && duplicateFields(err).includes('_id')) throw await this.#conflict(req);
            throw err;
          }
          return this.toStored(doc, req.data);
        }
        if (typeof req.expected === 'number') {
          const head = await this.coll.findOneAndUpdate(
            { _id, version: req.expected },
            { $set: { data: req.body, version: req.expected + 1, updatedAt: now, ...userSet } },
            { returnDocument: 'after', projection: HEAD_PROJECTION },
          );
          if (head === null) throw await this.#conflict(req);
          return this.toStored(head, req.data);
        }
        // Unconditional: a single upsert, so creation and replacement are one atomic step.
        for (let attempt = 1; ; attempt++) {
          try {
            const head = await this.coll.findOneAndUpdate(
              { _id },
              { $set: { data: req.body, updatedAt: now, ...userSet }, $inc: { version: 1 }, $setOnInsert: { tenant: req.tenant, id: req.id, createdAt: now } },
              { upsert: true, returnDocument: 'after', projection: HEAD_PROJECTION },
            );
            if (head === null) throw new Error('upsert returned no document');
            return this.toStored(head, req.data);
          } catch (err) {
            // Two upserts of a new _id can race; the loser retries as an update.
            if (attempt < MAX_UPSERT_RETRIES && isDuplicateKey(err) && duplicateFields(err).includes('_id')) continue;
            throw err;
          }
        }
      } catch (err) {
        throw this.uniqueError(err, req.tenant, req.id);
      }
    });
  }

  protected async doDelete(req: KeyRequest): Promise<boolean> {
    this.store.checkOpen();
    const _id = docKey(req.tenant, req.id);
    return guard(async () => {
      if (req.expected === 'any') return (await this.coll.deleteOne({ _id })).deletedCount > 0;
      if (req.expected === 'absent') {
        if ((await this.#actual(req.tenant, req.id)) !== 'absent') throw await this.#conflict(req);
        return false;
      }
      const res = await this.coll.deleteOne({ _id, version: req.expected });
      if (res.deletedCount === 0) throw await this.#conflict(req);
      return true;
    });
  }

  protected async doQuery(tenant: string, nq: NormalizedQuery): Promise<Page<T>> {
    this.store.checkOpen();
    const { filter, sort } = mongoFind(tenant, nq);
    const raws = await guard(() =>
      this.coll
        .find(filter as Filter<MongoDoc>)
        .sort(sort)
        .limit(nq.limit + 1)
        .toArray(),
    );
    const items = raws.slice(0, nq.limit).map((r) => this.toStored(r));
    const last = items[items.length - 1];
    if (raws.length <= nq.limit || last === undefined) return { items };
    const order = nq.order;
    const field = order.kind === 'id' ? 'id' : order.name;
    return { items, nextCursor: encodeCursor(field, nq.direction, { value: orderValueOf(order, last), id: last.id }) };
  }

  protected async doCount(tenant: string, f: NormalizedFilter): Promise<number> {
    this.store.checkOpen();
    return guard(() => this.coll.countDocuments(mongoFilter(tenant, f) as Filter<MongoDoc>));
  }

  protected async doDeleteByUser(tenant: string, user: string): Promise<number> {
    this.store.checkOpen();
    return guard(async () => (await this.coll.deleteMany({ tenant, user })).deletedCount);
  }

  protected async doDeleteByTenant(tenant: string): Promise<number> {
    this.store.checkOpen();
    return guard(async () => (await this.coll.deleteMany({ tenant })).deletedCount);
  }
}
