import type { ActualVersion, ExpectedVersion } from './errors.js';

/**
 * A document body: a plain object whose values are, recursively, plain objects, arrays, strings
 * (well-formed UTF-16), finite numbers, booleans, null, `Date` and `Uint8Array`. Properties set to
 * `undefined` are dropped. Keys must not start with `$` nor contain `.` or NUL, so the same body is
 * valid in both adapters. Other typed arrays must be wrapped as bytes
 * (`new Uint8Array(f32.buffer, f32.byteOffset, f32.byteLength)`); they come back as `Uint8Array`.
 *
 * Typed as `object` so interfaces (which have no index signature) are accepted; the value rules
 * are checked at run time and broken ones raise `InvalidDocumentError`.
 */
export type DocumentData = object;

/** Values an indexed field may hold, and that `where` compares with (equality). */
export type IndexValue = string | number | boolean | Date | null;

/** Document fields every collection has; they may be used in index specs and `orderBy`. */
export type BuiltinField = 'id' | 'user' | 'createdAt' | 'updatedAt';

export interface IndexSpec {
  /**
   * Fields in key order: top-level fields of `data`, or the builtins `user`, `createdAt`,
   * `updatedAt`. The tenant is always the implicit first key and the id the implicit last one, so
   * `['user', 'at']` serves "this user's documents ordered by `at`", paged.
   */
  readonly fields: readonly string[];
  /**
   * Unique within a tenant. Every document of the collection must then hold a non-null value in
   * each of these fields (enforced on write), so both adapters agree on what a duplicate is.
   */
  readonly unique?: boolean;
}

export interface CollectionSpec {
  /** `[A-Za-z][A-Za-z0-9_]{0,62}`. */
  readonly name: string;
  readonly indexes?: readonly IndexSpec[];
}

export interface StoredDocument<T extends DocumentData = DocumentData> {
  readonly tenant: string;
  readonly id: string;
  /** The person this document is about; `deleteByUser` removes by it. */
  readonly user?: string;
  /** 1 on creation, +1 on every put. A delete forgets it: a re-created document starts at 1. */
  readonly version: number;
  readonly data: T;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export interface PutOptions {
  /**
   * `'any'` (default) writes unconditionally; `'absent'` only creates; a number only replaces that
   * version. A failed condition throws `VersionConflictError` and writes nothing.
   */
  readonly expectedVersion?: ExpectedVersion;
  /** Owner of the document. Omitted: a new document has none, an existing one keeps its owner. */
  readonly user?: string;
}

export interface DeleteOptions {
  readonly expectedVersion?: ExpectedVersion;
}

export type OrderDirection = 'asc' | 'desc';

export interface CountQuery {
  /**
   * Equality on indexed data fields; `null` also matches documents without the field, `undefined`
   * entries are ignored (handy for optional filters).
   */
  readonly where?: Readonly<Record<string, IndexValue | undefined>>;
  readonly user?: string;
}

export interface Query extends CountQuery {
  /**
   * `id` (default), `createdAt`, `updatedAt`, or an indexed data field; ties are broken by id, so
   * the order is total and paging is exact. Across value types the order is MongoDB's:
   * missing/null < numbers < strings < booleans < dates.
   */
  readonly orderBy?: { readonly field: string; readonly direction?: OrderDirection };
  /** 1..1000, default 100. */
  readonly limit?: number;
  /** `nextCursor` of the previous page of the same query. */
  readonly cursor?: string;
}

export interface Page<T extends DocumentData = DocumentData> {
  readonly items: StoredDocument<T>[];
  /**
   * Present when more documents followed at the time of the query. Keyset paging: documents
   * inserted meanwhile appear on a later page when they sort after the cursor and are never
   * duplicated; nothing that existed throughout is skipped.
   */
  readonly nextCursor?: string;
}

/** What a `WriteOp` names its collection by; any `Collection` of the same store. */
export interface CollectionRef {
  readonly name: string;
}

export type WriteOp =
  | {
      readonly type: 'put';
      readonly collection: CollectionRef;
      readonly tenant: string;
      readonly id: string;
      readonly data: DocumentData;
      readonly expectedVersion?: ExpectedVersion;
      readonly user?: string;
    }
  | {
      readonly type: 'delete';
      readonly collection: CollectionRef;
      readonly tenant: string;
      readonly id: string;
      readonly expectedVersion?: ExpectedVersion;
    }
  | {
      /** A condition without a write: the batch applies only if this document is at that version. */
      readonly type: 'check';
      readonly collection: CollectionRef;
      readonly tenant: string;
      readonly id: string;
      readonly expectedVersion: number | 'absent';
    };

export type WriteOpResult =
  | { readonly type: 'put'; readonly document: StoredDocument }
  | { readonly type: 'delete'; readonly deleted: boolean }
  | { readonly type: 'check'; readonly version: ActualVersion };

export interface Collection<T extends DocumentData = DocumentData> extends CollectionRef {
  get(tenant: string, id: string): Promise<StoredDocument<T> | undefined>;
  /** Creates or replaces; the returned document carries the caller's `data` object. */
  put(tenant: string, id: string, data: T, opts?: PutOptions): Promise<StoredDocument<T>>;
  /** `true` if a document was removed. */
  delete(tenant: string, id: string, opts?: DeleteOptions): Promise<boolean>;
  query(tenant: string, q?: Query): Promise<Page<T>>;
  count(tenant: string, q?: CountQuery): Promise<number>;
  /** Erasure: every document of that user in this collection and tenant; returns how many. */
  deleteByUser(tenant: string, user: string): Promise<number>;
  /** Tenant deletion: every document of that tenant in this collection; returns how many. */
  deleteByTenant(tenant: string): Promise<number>;

  /** Builders for `DocumentStore.writeAtomic`, typed by this collection. */
  putOp(tenant: string, id: string, data: T, opts?: PutOptions): WriteOp;
  deleteOp(tenant: string, id: string, opts?: DeleteOptions): WriteOp;
  checkOp(tenant: string, id: string, expectedVersion: number | 'absent'): WriteOp;
}

export interface DocumentStore {
  readonly kind: 'sqlite' | 'mongodb';
  /** Largest encoded document accepted; above it `put` throws `DocumentTooLargeError`. */
  readonly maxDocumentBytes: number;
  /** Opens a collection, creating its table or indexes idempotently (call at start-up). */
  collection<T extends DocumentData = DocumentData>(spec: CollectionSpec): Promise<Collection<T>>;
  /**
   * Applies the operations in order, as one transaction over any collections of this store: every
   * condition holds and every write applies, or nothing is written and the first failure is thrown
   * (`VersionConflictError` with `opIndex`, naming collection, tenant and id). At most 500 ops.
   */
  writeAtomic(ops: readonly WriteOp[]): Promise<WriteOpResult[]>;
  /** Resolves when the store can serve; rejects with `StoreUnavailableError` otherwise. */
  health(): Promise<void>;
  close(): Promise<void>;
}
