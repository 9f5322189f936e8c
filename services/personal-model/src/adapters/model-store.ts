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
 *
 * The store is the encryption boundary: parameters go in and come out in clear, and are sealed
 * with the user's data key (the `PayloadSealer`) on their way to the document store. Version
 * records (numbers, pairing, counts, times) stay readable: they are the compare-and-set state and
 * the data subject's listing (ListVersions), not what the user's feedback taught the model.
 */
import { DataKeyError } from '@aimass/crypto';
import { PLAINTEXT_ALGORITHM, PayloadUnreadableError, plaintextSealer, type PayloadSealer } from '@aimass/events';
import { PERSONAL_MODEL_FORMAT } from '@aimass/ml';
import { DeadlineExceededError, FailedPreconditionError, InvalidArgumentError, NotFoundError, UnavailableError } from '@aimass/platform';
import type { v1 } from '@aimass/proto';
import {
  DocumentTooLargeError,
  InvalidQueryError,
  StoreUnavailableError,
  TENANT_TOMBSTONES,
  VersionConflictError,
  type Collection,
  type DocumentStore,
  type TenantTombstones,
  type WriteOp,
} from '@aimass/storage';
import {
  idempotencyDocumentId,
  parametersAssociatedData,
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
  /** The serialized model, or with `parameters_encryption` its AES-256-GCM ciphertext‖tag. */
  parameters: Uint8Array;
  parameters_content_type: string;
  /** How `parameters` is sealed; absent: stored in clear (no data keys configured, or written before they were). */
  parameters_encryption?: ParametersEncryption;
}

/** The `EncryptedPayload` fields besides the ciphertext, as stored. */
export interface ParametersEncryption {
  algorithm: string;
  key_id: string;
  nonce: Uint8Array;
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

/**
 * A version whose parameters cannot be opened, for good: its data key was destroyed (the user's
 * erasure: crypto-shredding), it is sealed for another user or version, altered, or stored in clear
 * while plaintext is not allowed. For readers it does not exist (NOT_FOUND); Score reads it as no model.
 */
export class UnreadableModelError extends NotFoundError {
  constructor(
    readonly version: number,
    reason: string,
    options?: ErrorOptions,
  ) {
    super(`version ${version} of the user's model cannot be read: ${reason}`, options);
  }
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

/** The proto's bytes type, without copying. */
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * Faults of the data keys as domain errors. An unreachable privacy service is UNAVAILABLE (the
 * caller retries; fusion falls back), whatever deadline the key call itself ran into.
 */
function keyError(err: unknown, action: string): never {
  if (err instanceof DataKeyError && err.code === 'creation_refused') {
    throw new FailedPreconditionError(`no data key can be made for this user (${err.message}): the user is being erased; nothing was written`, { cause: err });
  }
  if (err instanceof UnavailableError || err instanceof DeadlineExceededError) {
    throw new UnavailableError(`the user's data key could not be obtained from the privacy service to ${action} (${err.message}): retry`, { cause: err, retryAfterMs: 1000 });
  }
  throw err;
}

export interface PersonalModelStoreOptions {
  /**
   * Seals parameters with the user's data key (an `AesGcmSealer` of @aimass/crypto).
   * `plaintextSealer()` by default: parameters stored in clear (development and tests only).
   */
  sealer?: PayloadSealer | undefined;
  /**
   * Deleted tenants: every version write carries a check that its tenant has no tombstone, so a
   * Train already in flight when the tenant is deleted cannot write after the deletion.
   */
  tenantTombstones?: TenantTombstones | undefined;
}

export class PersonalModelStore {
  private constructor(
    readonly store: DocumentStore,
    private readonly current: Collection<PointerDoc>,
    private readonly versions: Collection<VersionDoc>,
    private readonly keys: Collection<IdempotencyDoc>,
    private readonly sealer: PayloadSealer,
    private readonly tenantTombstones: TenantTombstones | undefined,
  ) {}

  /** Opens (creating when needed) the collections and their indexes. */
  static async open(store: DocumentStore, options: PersonalModelStoreOptions = {}): Promise<PersonalModelStore> {
    const current = await store.collection<PointerDoc>({ name: COLLECTIONS.current });
    const versions = await store.collection<VersionDoc>({ name: COLLECTIONS.versions, indexes: [{ fields: ['user', 'seq'] }] });
    const keys = await store.collection<IdempotencyDoc>({ name: COLLECTIONS.idempotency });
    return new PersonalModelStore(store, current, versions, keys, options.sealer ?? plaintextSealer(), options.tenantTombstones);
  }

  async pointer(tenant: string, user: string): Promise<CurrentState | undefined> {
    const doc = await this.current.get(tenant, user).catch(storeError);
    return doc ? { version: doc.data.current_version, oldestVersion: doc.data.oldest_version, token: doc.version } : undefined;
  }

  /**
   * A version with its parameters opened. Throws `UnreadableModelError` when they cannot be
   * opened for good, `UnavailableError` when the user's data key cannot be fetched now.
   */
  async version(tenant: string, user: string, version: number): Promise<StoredVersion | undefined> {
    const doc = await this.versions.get(tenant, versionDocumentId(user, version)).catch(storeError);
    if (!doc) return undefined;
    return { info: toInfo(doc.data), parameters: await this.open(tenant, user, version, doc.data) };
  }

  /** A version's record without its parameters (nothing is decrypted). */
  async versionInfo(tenant: string, user: string, version: number): Promise<VersionInfo | undefined> {
    const doc = await this.versions.get(tenant, versionDocumentId(user, version)).catch(storeError);
    return doc ? toInfo(doc.data) : undefined;
  }

  private async open(tenant: string, user: string, version: number, doc: VersionDoc): Promise<Uint8Array> {
    const e = doc.parameters_encryption;
    const payload: v1.EncryptedPayload = e
      ? { algorithm: e.algorithm, keyId: e.key_id, nonce: asBuffer(e.nonce), ciphertext: asBuffer(doc.parameters) }
      : { algorithm: PLAINTEXT_ALGORITHM, keyId: '', nonce: Buffer.alloc(0), ciphertext: asBuffer(doc.parameters) };
    try {
      return await this.sealer.open({ tenant, userPseudonym: user }, payload, parametersAssociatedData(tenant, user, version));
    } catch (err) {
      if (err instanceof PayloadUnreadableError) throw new UnreadableModelError(version, err.message, { cause: err });
      return keyError(err, 'read the model');
    }
  }

  private async seal(tenant: string, user: string, version: number, parameters: Uint8Array): Promise<Pick<VersionDoc, 'parameters' | 'parameters_encryption'>> {
    let payload: v1.EncryptedPayload;
    try {
      payload = await this.sealer.seal({ tenant, userPseudonym: user }, parameters, parametersAssociatedData(tenant, user, version));
    } catch (err) {
      return keyError(err, 'store the model');
    }
    // In clear (no keys configured) the document keeps the shape it had before keys existed.
    if (payload.algorithm === PLAINTEXT_ALGORITHM) return { parameters: payload.ciphertext };
    return { parameters: payload.ciphertext, parameters_encryption: { algorithm: payload.algorithm, key_id: payload.keyId, nonce: payload.nonce } };
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
   * `parameters` are given in clear and sealed here, bound to (tenant, user, version).
   */
  async write(v: NewVersion): Promise<void> {
    const { tenant, user, info, base } = v;
    const { oldestVersion, remove } = retention(base, info.version, v.keep);
    const doc: VersionDoc = { ...fromInfo(info), ...(await this.seal(tenant, user, info.version, v.parameters)), parameters_content_type: PERSONAL_MODEL_FORMAT.contentType };
    const ops: WriteOp[] = [
      this.current.putOp(tenant, user, { current_version: info.version, oldest_version: oldestVersion }, { expectedVersion: base ? base.token : 'absent', user }),
      this.versions.putOp(tenant, versionDocumentId(user, info.version), doc, { expectedVersion: 'absent', user }),
    ];
    if (v.idempotency) {
      ops.push(this.keys.putOp(tenant, idempotencyDocumentId(user, v.idempotency.key), { key: v.idempotency.key, operation: v.idempotency.operation, info: fromInfo(info) }, { expectedVersion: 'absent', user }));
    }
    // Retention is bounded per write (a lowered limit catches up over a few writes) so a batch stays small.
    for (const old of remove.slice(0, 400)) ops.push(this.versions.deleteOp(tenant, versionDocumentId(user, old)));
    if (this.tenantTombstones) ops.push(this.tenantTombstones.checkOp(tenant));
    try {
      await this.store.writeAtomic(ops);
    } catch (err) {
      if (err instanceof VersionConflictError && err.collection === TENANT_TOMBSTONES) {
        throw new FailedPreconditionError(`tenant ${tenant} was deleted: its models are gone and no new version is written`);
      }
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

  /** Tenant deletion: every pointer, version and idempotency record of the tenant. Returns the documents deleted. */
  async deleteTenant(tenant: string): Promise<number> {
    try {
      // The pointers first, as for a user: readers then see no model.
      const current = await this.current.deleteByTenant(tenant);
      return current + (await this.versions.deleteByTenant(tenant)) + (await this.keys.deleteByTenant(tenant));
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
