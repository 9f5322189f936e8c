import { InvalidQueryError, VersionConflictError } from './errors.js';
import type { ActualVersion, ExpectedVersion } from './errors.js';
import { normalizeFilter, normalizeQuery } from './query.js';
import type { NormalizedFilter, NormalizedQuery } from './query.js';
import { indexValuesOf } from './spec.js';
import type { NormalizedSpec } from './spec.js';
import type {
  Collection,
  CountQuery,
  DeleteOptions,
  DocumentData,
  IndexValue,
  Page,
  PutOptions,
  Query,
  StoredDocument,
  WriteOp,
} from './types.js';
import { checkKeyPart, normalizeData } from './values.js';
import type { DataEncoders } from './values.js';

export const MAX_ATOMIC_OPS = 500;
/** MongoDB's BSON limit is 16 MiB for the whole document; this leaves room for the envelope. */
export const DEFAULT_MAX_DOCUMENT_BYTES = 15 * 1024 * 1024;

export interface PutRequest {
  readonly tenant: string;
  readonly id: string;
  readonly user: string | undefined;
  readonly expected: ExpectedVersion;
  /** The caller's object, returned as `StoredDocument.data`. */
  readonly data: DocumentData;
  /** The validated copy, with binaries and dates as the adapter encodes them. */
  readonly body: Record<string, unknown>;
  readonly indexValues: ReadonlyMap<string, IndexValue>;
}

export interface KeyRequest {
  readonly tenant: string;
  readonly id: string;
  readonly expected: ExpectedVersion;
}

export function checkExpected(v: unknown, field = 'expectedVersion'): ExpectedVersion {
  if (v === undefined) return 'any';
  if (v === 'any' || v === 'absent') return v;
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 1) return v;
  throw new InvalidQueryError(field, 'must be a positive integer, "absent" or "any"');
}

/** Throws unless `actual` satisfies `expected`. */
export function assertVersion(
  where: { collection: string; tenant: string; id: string; opIndex?: number },
  expected: ExpectedVersion,
  actual: ActualVersion,
): void {
  if (expected === 'any' || expected === actual) return;
  throw new VersionConflictError({ ...where, expected, actual });
}

/**
 * Argument checking shared by both adapters, so that what is rejected, and with which error, is
 * the same whichever store a service runs on. Adapters implement the `do*` methods.
 */
export abstract class BaseCollection<T extends DocumentData> implements Collection<T> {
  readonly name: string;
  protected readonly spec: NormalizedSpec;

  protected constructor(spec: NormalizedSpec) {
    this.name = spec.name;
    this.spec = spec;
  }

  protected abstract readonly encoders: DataEncoders;
  protected abstract doGet(tenant: string, id: string): Promise<StoredDocument<T> | undefined>;
  protected abstract doPut(req: PutRequest): Promise<StoredDocument<T>>;
  protected abstract doDelete(req: KeyRequest): Promise<boolean>;
  protected abstract doQuery(tenant: string, q: NormalizedQuery): Promise<Page<T>>;
  protected abstract doCount(tenant: string, f: NormalizedFilter): Promise<number>;
  protected abstract doDeleteByUser(tenant: string, user: string): Promise<number>;
  protected abstract doDeleteByTenant(tenant: string): Promise<number>;

  /** Validates and encodes a put; `writeAtomic` uses it for every put before any I/O. */
  preparePut(tenant: string, id: string, data: DocumentData, opts: PutOptions | undefined): PutRequest {
    checkKeyPart('tenant', tenant);
    checkKeyPart('id', id);
    const user = opts?.user === undefined ? undefined : checkKeyPart('user', opts.user);
    const expected = checkExpected(opts?.expectedVersion);
    const body = normalizeData(data, this.encoders);
    const indexValues = indexValuesOf(this.spec, data as Record<string, unknown>, user);
    return { tenant, id, user, expected, data, body, indexValues };
  }

  prepareKey(tenant: string, id: string, expectedVersion: unknown): KeyRequest {
    checkKeyPart('tenant', tenant, 'tenant', true);
    checkKeyPart('id', id, 'id', true);
    return { tenant, id, expected: checkExpected(expectedVersion) };
  }

  async get(tenant: string, id: string): Promise<StoredDocument<T> | undefined> {
    checkKeyPart('tenant', tenant, 'tenant', true);
    checkKeyPart('id', id, 'id', true);
    return this.doGet(tenant, id);
  }

  async put(tenant: string, id: string, data: T, opts?: PutOptions): Promise<StoredDocument<T>> {
    return this.doPut(this.preparePut(tenant, id, data, opts));
  }

  async delete(tenant: string, id: string, opts?: DeleteOptions): Promise<boolean> {
    return this.doDelete(this.prepareKey(tenant, id, opts?.expectedVersion));
  }

  async query(tenant: string, q?: Query): Promise<Page<T>> {
    checkKeyPart('tenant', tenant, 'tenant', true);
    return this.doQuery(tenant, normalizeQuery(this.spec, q));
  }

  async count(tenant: string, q?: CountQuery): Promise<number> {
    checkKeyPart('tenant', tenant, 'tenant', true);
    return this.doCount(tenant, normalizeFilter(this.spec, q));
  }

  async deleteByUser(tenant: string, user: string): Promise<number> {
    checkKeyPart('tenant', tenant, 'tenant', true);
    checkKeyPart('user', user, 'user', true);
    return this.doDeleteByUser(tenant, user);
  }

  async deleteByTenant(tenant: string): Promise<number> {
    checkKeyPart('tenant', tenant, 'tenant', true);
    return this.doDeleteByTenant(tenant);
  }

  putOp(tenant: string, id: string, data: T, opts?: PutOptions): WriteOp {
    return { type: 'put', collection: this, tenant, id, data, expectedVersion: opts?.expectedVersion, user: opts?.user };
  }

  deleteOp(tenant: string, id: string, opts?: DeleteOptions): WriteOp {
    return { type: 'delete', collection: this, tenant, id, expectedVersion: opts?.expectedVersion };
  }

  checkOp(tenant: string, id: string, expectedVersion: number | 'absent'): WriteOp {
    return { type: 'check', collection: this, tenant, id, expectedVersion };
  }
}

export type PreparedOp<C> =
  | { readonly type: 'put'; readonly collection: C; readonly req: PutRequest }
  | { readonly type: 'delete'; readonly collection: C; readonly req: KeyRequest }
  | { readonly type: 'check'; readonly collection: C; readonly req: KeyRequest };

/**
 * Validates a `writeAtomic` batch before any I/O. `own` maps an op's collection to the adapter's
 * collection, or `undefined` when it belongs to another store.
 */
export function prepareOps<C extends BaseCollection<DocumentData>>(
  ops: readonly WriteOp[],
  own: (ref: WriteOp['collection']) => C | undefined,
): PreparedOp<C>[] {
  if (!Array.isArray(ops)) throw new InvalidQueryError('ops', 'must be an array');
  if (ops.length > MAX_ATOMIC_OPS) throw new InvalidQueryError('ops', `at most ${MAX_ATOMIC_OPS} operations per atomic write`);
  return ops.map((op, i): PreparedOp<C> => {
    const collection = own(op.collection);
    if (collection === undefined) throw new InvalidQueryError(`ops[${i}].collection`, 'is not a collection of this store');
    try {
      switch (op.type) {
        case 'put':
          return { type: 'put', collection, req: collection.preparePut(op.tenant, op.id, op.data, op) };
        case 'delete':
          return { type: 'delete', collection, req: collection.prepareKey(op.tenant, op.id, op.expectedVersion) };
        case 'check': {
          if (op.expectedVersion === 'any' || op.expectedVersion === undefined) {
            throw new InvalidQueryError('expectedVersion', 'a check needs a version or "absent"');
          }
          return { type: 'check', collection, req: collection.prepareKey(op.tenant, op.id, op.expectedVersion) };
        }
        default:
          throw new InvalidQueryError('type', `unknown operation ${JSON.stringify((op as { type: unknown }).type)}`);
      }
    } catch (err) {
      if (err instanceof Error) err.message = `ops[${i}]: ${err.message}`;
      throw err;
    }
  });
}
