/**
 * Personal model versions in a DocumentStore (SQLite embedded, MongoDB in a cluster).
 *
 * Collections, every document owned by the user's pseudonym (`user`) so erasure finds it:
 * - `personal_current`, id = pseudonym: the current version and the oldest kept one. Its store
 *   version is the compare-and-set token of the user's model: every new version is written in one
 *   `writeAtomic` with a conditional put of this pointer, so of two writers that read the same
 *   pointer exactly one commits and the other gets a conflict (nothing of it is written).
 * - `personal_versions`, id = `<pseudonym>:<version>`: one document per kept version, parameters
 *   as bytes plus the version's record (general model, labels, example count, kind, feedback
 *   watermark, ...).
 * - `personal_idempotency`, id = `<pseudonym>:<key>`: the version an idempotency key produced,
 *   created (`absent`) in the same batch, so a key is applied at most once even under races.
 */
import { PERSONAL_MODEL_FORMAT } from '@aimass/ml';
import { FailedPreconditionError, InvalidArgumentError, UnavailableError } from '@aimass/platform';
import {
  DocumentTooLargeError,
  InvalidQueryError,
  StoreUnavailableError,
  VersionConflictError,
  type Collection,
  type DocumentStore,
  type WriteOp,
} from '@aimass/storage';
import {
  idempotencyDocumentId,
  retention,
  versionDocumentId,
  type CurrentPointer,
  type GeneralModelRef,
  type UpdateKindName,
  type VersionInfo,
} from '../domain/versions.js';

interface PointerDoc {
  current_version: number;
  oldest_version: number;
}

/** `seq` is the per-user version number (`version` is the store's own document version). */
interface InfoFields {
  seq: number;
  general_model: GeneralModelRef;
  labels: string[];
  example_count: number;
  kind: UpdateKindName;
  restored_from_version: number;
  created_at: Date;
  /** Absent in versions written before the watermark existed: read as 0. */
  last_applied_sequence?: number;
}

interface VersionDoc extends InfoFields {
  parameters: Uint8Array;
  parameters_content_type: string;
}

interface IdempotencyDoc {
  key: string;
  operation: 'train' | 'refit';
  info: InfoFields;
}

export const COLLECTIONS = Object.freeze({ current: 'personal_current', versions: 'personal_versions', idempotency: 'personal_idempotency' });

/** A read pointer: the user's current version and the store's compare-and-set token for it. */
export interface CurrentState extends CurrentPointer {
  readonly token: number;
}

export interface StoredVersion {
  info: VersionInfo;
  parameters: Uint8Array;
}

export interface NewVersion {
  tenant: string;
  user: string;
  /** The pointer the new version builds on (undefined: the user has no model). */
  base: CurrentState | undefined;
  info: VersionInfo;
  parameters: Uint8Array;
  keep: number;
  idempotency?: { key: string; operation: 'train' | 'refit' } | undefined;
}

/** Why a write did not commit. */
export class WriteConflict extends Error {
  constructor(
    readonly reason: 'pointer' | 'idempotency',
    message: string,
  ) {
    super(message);
    this.name = 'WriteConflict';
  }
}

function toInfo(d: InfoFields): VersionInfo {
  return {
    version: d.seq,
    generalModel: { name: d.general_model.name, version: d.general_model.version },
    labels: [...d.labels],
    exampleCount: d.example_count,
    kind: d.kind,
    restoredFromVersion: d.restored_from_version,
    createdAt: d.created_at,
    lastAppliedSequence: d.last_applied_sequence ?? 0,
  };
}

function fromInfo(info: VersionInfo): InfoFields {
  return {
    seq: info.version,
    general_model: { name: info.generalModel.name, version: info.generalModel.version },
    labels: [...info.labels],
    example_count: info.exampleCount,
    kind: info.kind,
    restored_from_version: info.restoredFromVersion,
    created_at: info.createdAt,
    last_applied_sequence: info.lastAppliedSequence,
  };
}

/** Storage failures a caller can act on become domain errors; anything else stays a bug (INTERNAL). */
function storeError(err: unknown): never {
  if (err instanceof StoreUnavailableError) throw new UnavailableError(`personal model store unavailable: ${err.message}`, { cause: err, retryAfterMs: 1000 });
  if (err instanceof DocumentTooLargeError) {
    throw new FailedPreconditionError(`the model would be ${err.size} bytes, more than the store accepts (${err.limit}): train with fewer sparse features`, { cause: err });
  }
  throw err;
}

export class PersonalModelStore {
  private constructor(
    readonly store: DocumentStore,
    private readonly current: Collection<PointerDoc>,
    private readonly versions: Collection<VersionDoc>,
    private readonly keys: Collection<IdempotencyDoc>,
  ) {}

  /** Opens (creating when needed) the collections and their indexes. */
  static async open(store: DocumentStore): Promise<PersonalModelStore> {
    const current = await store.collection<PointerDoc>({ name: COLLECTIONS.current });
    const versions = await store.collection<VersionDoc>({ name: COLLECTIONS.versions, indexes: [{ fields: ['user', 'seq'] }] });
    const keys = await store.collection<IdempotencyDoc>({ name: COLLECTIONS.idempotency });
    return new PersonalModelStore(store, current, versions, keys);
  }

  async pointer(tenant: string, user: string): Promise<CurrentState | undefined> {
    const doc = await this.current.get(tenant, user).catch(storeError);
    return doc ? { version: doc.data.current_version, oldestVersion: doc.data.oldest_version, token: doc.version } : undefined;
  }

  async version(tenant: string, user: string, version: number): Promise<StoredVersion | undefined> {
    const doc = await this.versions.get(tenant, versionDocumentId(user, version)).catch(storeError);
    if (!doc) return undefined;
    return { info: toInfo(doc.data), parameters: doc.data.parameters };
  }

  async idempotent(tenant: string, user: string, key: string): Promise<{ operation: 'train' | 'refit'; info: VersionInfo } | undefined> {
    const doc = await this.keys.get(tenant, idempotencyDocumentId(user, key)).catch(storeError);
    return doc ? { operation: doc.data.operation, info: toInfo(doc.data.info) } : undefined;
  }

  /** Kept versions, newest first, without parameters. */
  async listVersions(tenant: string, user: string, page: { limit: number; cursor?: string | undefined }): Promise<{ items: VersionInfo[]; nextCursor?: string | undefined }> {
    try {
      const result = await this.versions.query(tenant, {
        user,
        orderBy: { field: 'seq', direction: 'desc' },
        limit: page.limit,
        ...(page.cursor ? { cursor: page.cursor } : {}),
      });
      return { items: result.items.map((d) => toInfo(d.data)), nextCursor: result.nextCursor };
    } catch (err) {
      if (err instanceof InvalidQueryError && err.field.includes('cursor')) {
        throw new InvalidArgumentError('page.page_token is not a token of this listing: pass next_page_token from the previous page unchanged', { field: 'page.page_token' });
      }
      return storeError(err);
    }
  }

  /**
   * Writes a new version atomically: the version document, the pointer (compare-and-set on the
   * pointer read before training), the idempotency record, and the deletion of versions past
   * retention. Throws WriteConflict when another writer moved the pointer or used the key first.
   */
  async write(v: NewVersion): Promise<void> {
    const { tenant, user, info, base } = v;
    const { oldestVersion, remove } = retention(base, info.version, v.keep);
    const doc: VersionDoc = { ...fromInfo(info), parameters: v.parameters, parameters_content_type: PERSONAL_MODEL_FORMAT.contentType };
    const ops: WriteOp[] = [
      this.current.putOp(tenant, user, { current_version: info.version, oldest_version: oldestVersion }, { expectedVersion: base ? base.token : 'absent', user }),
      this.versions.putOp(tenant, versionDocumentId(user, info.version), doc, { expectedVersion: 'absent', user }),
    ];
    if (v.idempotency) {
      ops.push(this.keys.putOp(tenant, idempotencyDocumentId(user, v.idempotency.key), { key: v.idempotency.key, operation: v.idempotency.operation, info: fromInfo(info) }, { expectedVersion: 'absent', user }));
    }
    // Retention is bounded per write (a lowered limit catches up over a few writes) so a batch stays small.
    for (const old of remove.slice(0, 400)) ops.push(this.versions.deleteOp(tenant, versionDocumentId(user, old)));
    try {
      await this.store.writeAtomic(ops);
    } catch (err) {
      if (err instanceof VersionConflictError) {
        if (err.opIndex === 2 && v.idempotency) throw new WriteConflict('idempotency', `idempotency key already applied`);
        throw new WriteConflict('pointer', `the model changed concurrently (its pointer is at store version ${String(err.actual)}, expected ${String(err.expected)})`);
      }
      storeError(err);
    }
  }

  /** Erasure: the pointer first (readers then see no model), then versions and idempotency records. Returns the versions deleted. */
  async deleteUser(tenant: string, user: string): Promise<number> {
    try {
      await this.current.deleteByUser(tenant, user);
      const versions = await this.versions.deleteByUser(tenant, user);
      await this.keys.deleteByUser(tenant, user);
      return versions;
    } catch (err) {
      return storeError(err);
    }
  }

  /** Documents of a user in each collection (tests and erasure receipts). */
  async countUser(tenant: string, user: string): Promise<{ current: number; versions: number; idempotency: number }> {
    const [current, versions, idempotency] = await Promise.all([
      this.current.count(tenant, { user }),
      this.versions.count(tenant, { user }),
      this.keys.count(tenant, { user }),
    ]);
    return { current, versions, idempotency };
  }
}
