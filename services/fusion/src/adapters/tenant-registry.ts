import { generateApiKey, type CredentialSource, type KeyUse, type Scope, type StoredCredential } from '@aimass/auth';
import { AlreadyExistsError, ConflictError, FailedPreconditionError, InvalidArgumentError, NotFoundError } from '@aimass/platform';
import { v1 } from '@aimass/proto';
import { InvalidQueryError, VersionConflictError, type Collection, type DocumentStore, type StoredDocument } from '@aimass/storage';
import { fullSettings, type TenantDeletion, type TenantFields, type TenantState } from '../domain/tenants.js';
import { GLOBAL_TENANT } from './records.js';

/** A tenant as stored (partition `_global`, id = tenant id; the document version is its revision). */
export interface TenantDoc {
  tenantId: string;
  displayName: string;
  state: TenantState;
  /** TenantSettings in its proto JSON form (enum names), so a renumbering cannot alter it. */
  settings: Record<string, unknown>;
  /** Why it was last suspended or deleted (audit). */
  reason: string;
  /** The deletion receipt, from DeleteTenant on. */
  deletion?: DeletionDoc | undefined;
}

interface DeletionDoc {
  requested_at: Date;
  services: string[];
  confirmations: Array<{ service: string; confirmed_at: Date; items_deleted: number }>;
  completed_at?: Date | undefined;
  rounds: number;
  round_at: Date;
}

function deletionOf(d: DeletionDoc | undefined): TenantDeletion | undefined {
  if (!d) return undefined;
  return {
    requestedAt: d.requested_at,
    services: d.services,
    confirmations: d.confirmations.map((c) => ({ service: c.service, confirmedAt: c.confirmed_at, itemsDeleted: c.items_deleted })),
    completedAt: d.completed_at ?? undefined,
    rounds: d.rounds,
    roundAt: d.round_at,
  };
}

function deletionDoc(d: TenantDeletion): DeletionDoc {
  return {
    requested_at: d.requestedAt,
    services: [...d.services],
    confirmations: d.confirmations.map((c) => ({ service: c.service, confirmed_at: c.confirmedAt, items_deleted: c.itemsDeleted })),
    ...(d.completedAt ? { completed_at: d.completedAt } : {}),
    rounds: d.rounds,
    round_at: d.roundAt,
  };
}

/** An API key as stored (partition `_global`, id = key id, so a key is found from its id alone). */
export interface ApiKeyDoc {
  keyId: string;
  tenantId: string;
  name: string;
  scopes: Scope[];
  secretSha256: Uint8Array;
  expiresAt: Date | null;
  revokedAt: Date | null;
  revoked: boolean;
}

export interface TenantRecord extends TenantFields {
  readonly tenantId: string;
  readonly state: TenantState;
  readonly revision: number;
  readonly createdAt: Date;
  readonly updatedAt: Date;
  /** The deletion receipt (DELETING or DELETED); undefined before DeleteTenant. */
  readonly deletion: TenantDeletion | undefined;
}

export interface ApiKeyRecord {
  readonly keyId: string;
  readonly tenantId: string;
  readonly name: string;
  readonly scopes: readonly Scope[];
  readonly createdAt: Date;
  readonly expiresAt: Date | undefined;
  readonly revokedAt: Date | undefined;
  /** When a call it authenticated last arrived, as reported (about every 30 s); undefined when never, or where not read. */
  readonly lastUsedAt?: Date | undefined;
}

/**
 * A key's last use, apart from the key (partition = its tenant, id = key id): the frequent
 * write of a busy key never races the key's revocation or rotation, which compare-and-set the key.
 */
interface KeyUsageDoc {
  at: Date;
}

export interface NewApiKey {
  readonly key: ApiKeyRecord;
  /** The whole key, `amk_<keyId>_<secret>`: returned once, never stored. */
  readonly secret: string;
}

function tenantRecord(doc: StoredDocument<TenantDoc>): TenantRecord {
  return {
    tenantId: doc.data.tenantId,
    displayName: doc.data.displayName,
    state: doc.data.state,
    settings: fullSettings(v1.TenantSettings.fromJSON(doc.data.settings)),
    revision: doc.version,
    createdAt: doc.createdAt,
    updatedAt: doc.updatedAt,
    deletion: deletionOf(doc.data.deletion),
  };
}

function keyRecord(doc: StoredDocument<ApiKeyDoc>): ApiKeyRecord {
  return {
    keyId: doc.data.keyId,
    tenantId: doc.data.tenantId,
    name: doc.data.name,
    scopes: doc.data.scopes,
    createdAt: doc.createdAt,
    expiresAt: doc.data.expiresAt ?? undefined,
    revokedAt: doc.data.revokedAt ?? undefined,
  };
}

/** A page token the store does not recognise is the caller's mistake, not a fault. */
async function paged<T>(read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (err) {
    if (err instanceof InvalidQueryError && err.field.includes('cursor')) {
      throw new InvalidArgumentError('page.page_token is not one this list returned: start again without it', { field: 'page.page_token' });
    }
    throw err;
  }
}

const settingsJson = (settings: v1.TenantSettings) => v1.TenantSettings.toJSON(settings) as Record<string, unknown>;

/**
 * Tenants and their API keys in fusion's store. Both live in the store-wide `_global` partition:
 * tenants are listed across tenants by the operator, and a key must be found from its id alone
 * when a call presents it. Revisions are the documents' versions, so UpdateTenant's
 * compare-and-set is the store's.
 */
export class TenantRegistry implements CredentialSource {
  readonly #store: DocumentStore;
  readonly #tenants: Collection<TenantDoc>;
  readonly #keys: Collection<ApiKeyDoc>;
  readonly #usage: Collection<KeyUsageDoc>;

  private constructor(store: DocumentStore, tenants: Collection<TenantDoc>, keys: Collection<ApiKeyDoc>, usage: Collection<KeyUsageDoc>) {
    this.#store = store;
    this.#tenants = tenants;
    this.#keys = keys;
    this.#usage = usage;
  }

  static async open(store: DocumentStore): Promise<TenantRegistry> {
    const tenants = await store.collection<TenantDoc>({ name: 'tenant_registry' });
    const keys = await store.collection<ApiKeyDoc>({ name: 'api_keys', indexes: [{ fields: ['tenantId', 'revoked'] }, { fields: ['tenantId'] }] });
    const usage = await store.collection<KeyUsageDoc>({ name: 'api_key_usage' });
    return new TenantRegistry(store, tenants, keys, usage);
  }

  async createTenant(tenantId: string, fields: TenantFields): Promise<TenantRecord> {
    try {
      const doc = await this.#tenants.put(
        GLOBAL_TENANT,
        tenantId,
        { tenantId, displayName: fields.displayName, state: 'active', settings: settingsJson(fields.settings), reason: '' },
        { expectedVersion: 'absent' },
      );
      return tenantRecord(doc);
    } catch (err) {
      if (err instanceof VersionConflictError) throw new AlreadyExistsError(`tenant ${tenantId} already exists`);
      throw err;
    }
  }

  async getTenant(tenantId: string): Promise<TenantRecord | undefined> {
    const doc = await this.#tenants.get(GLOBAL_TENANT, tenantId);
    return doc ? tenantRecord(doc) : undefined;
  }

  async requireTenant(tenantId: string): Promise<TenantRecord> {
    const tenant = await this.getTenant(tenantId);
    if (!tenant) throw new NotFoundError(`tenant ${tenantId} not found`);
    return tenant;
  }

  /** A page of tenants by id; DELETED ones only with `includeDeleted` (a page may then hold fewer than `limit`). */
  async listTenants(limit: number, cursor: string | undefined, includeDeleted = true): Promise<{ tenants: TenantRecord[]; next: string | undefined }> {
    const page = await paged(() => this.#tenants.query(GLOBAL_TENANT, { limit, ...(cursor ? { cursor } : {}) }));
    const tenants = page.items.map(tenantRecord).filter((t) => includeDeleted || t.state !== 'deleted');
    return { tenants, next: page.nextCursor };
  }

  /**
   * Changes a tenant with a compare-and-set on its revision (`expected` 0: on the revision just
   * read, retried once when a concurrent change wins).
   */
  async updateTenant(
    tenantId: string,
    expected: number,
    change: (current: TenantRecord) => (Partial<TenantFields> & { state?: TenantState; reason?: string; deletion?: TenantDeletion }) | undefined,
  ): Promise<TenantRecord> {
    for (let attempt = 0; ; attempt++) {
      const doc = await this.#tenants.get(GLOBAL_TENANT, tenantId);
      if (!doc) throw new NotFoundError(`tenant ${tenantId} not found`);
      if (expected !== 0 && doc.version !== expected) {
        throw new ConflictError(`tenant ${tenantId} is at revision ${doc.version}, not ${expected}: read it again and reapply the change`);
      }
      const next = change(tenantRecord(doc));
      // Nothing to change (a confirmation already recorded): no write.
      if (next === undefined) return tenantRecord(doc);
      const data: TenantDoc = {
        ...doc.data,
        ...(next.displayName !== undefined ? { displayName: next.displayName } : {}),
        ...(next.settings !== undefined ? { settings: settingsJson(next.settings) } : {}),
        ...(next.state !== undefined ? { state: next.state } : {}),
        ...(next.reason !== undefined ? { reason: next.reason } : {}),
        ...(next.deletion !== undefined ? { deletion: deletionDoc(next.deletion) } : {}),
      };
      try {
        return tenantRecord(await this.#tenants.put(GLOBAL_TENANT, tenantId, data, { expectedVersion: doc.version }));
      } catch (err) {
        if (!(err instanceof VersionConflictError)) throw err;
        if (expected !== 0 || attempt >= 3) throw new ConflictError(`tenant ${tenantId} changed concurrently: read it again and reapply the change`);
      }
    }
  }

  async createKey(tenantId: string, init: { name: string; scopes: readonly Scope[]; expiresAt: Date | undefined }): Promise<NewApiKey> {
    const generated = generateApiKey();
    const doc = await this.#keys.put(
      GLOBAL_TENANT,
      generated.keyId,
      {
        keyId: generated.keyId,
        tenantId,
        name: init.name,
        scopes: [...init.scopes],
        secretSha256: generated.secretSha256,
        expiresAt: init.expiresAt ?? null,
        revokedAt: null,
        revoked: false,
      },
      { expectedVersion: 'absent' },
    );
    return { key: keyRecord(doc), secret: generated.key };
  }

  /** A key of that tenant; NOT_FOUND also for another tenant's key (existence does not leak). */
  async #ownKey(tenantId: string, keyId: string): Promise<StoredDocument<ApiKeyDoc>> {
    const doc = /^[a-z2-7]{16}$/.test(keyId) ? await this.#keys.get(GLOBAL_TENANT, keyId) : undefined;
    if (!doc || doc.data.tenantId !== tenantId) throw new NotFoundError(`API key ${keyId.slice(0, 40)} not found in tenant ${tenantId}`);
    return doc;
  }

  async listKeys(tenantId: string, includeRevoked: boolean, limit: number, cursor: string | undefined): Promise<{ keys: ApiKeyRecord[]; next: string | undefined }> {
    const page = await paged(() =>
      this.#keys.query(GLOBAL_TENANT, {
        where: { tenantId, revoked: includeRevoked ? undefined : false },
        orderBy: { field: 'createdAt', direction: 'desc' },
        limit,
        ...(cursor ? { cursor } : {}),
      }),
    );
    const keys = await Promise.all(
      page.items.map(async (doc) => ({ ...keyRecord(doc), lastUsedAt: (await this.#usage.get(doc.data.tenantId, doc.data.keyId))?.data.at })),
    );
    return { keys, next: page.nextCursor };
  }

  /**
   * Moves keys' last use forward (CredentialSource.recordUse: this replica's authenticator, and
   * RecordApiKeyUse for the other services'). Unknown keys are ignored; an earlier time than the
   * one stored changes nothing. Returns how many moved.
   */
  async recordUse(uses: readonly KeyUse[]): Promise<number> {
    let moved = 0;
    for (const use of uses) {
      const key = /^[a-z2-7]{16}$/.test(use.keyId) ? await this.#keys.get(GLOBAL_TENANT, use.keyId) : undefined;
      if (!key) continue;
      for (let attempt = 0; attempt < 3; attempt++) {
        const current = await this.#usage.get(key.data.tenantId, use.keyId);
        if (current && current.data.at.getTime() >= use.at.getTime()) break;
        try {
          await this.#usage.put(key.data.tenantId, use.keyId, { at: use.at }, { expectedVersion: current ? current.version : 'absent' });
          moved++;
          break;
        } catch (err) {
          // Another replica's report in between: read again and compare.
          if (!(err instanceof VersionConflictError)) throw err;
        }
      }
    }
    return moved;
  }

  /** The tenant's keys' last uses (its deletion; the keys themselves stay, revoked). */
  deleteUsage(tenantId: string): Promise<number> {
    return this.#usage.deleteByTenant(tenantId);
  }

  /** Revokes a key (idempotent: a revoked key is returned as it is). */
  async revokeKey(tenantId: string, keyId: string, now = new Date()): Promise<ApiKeyRecord> {
    const doc = await this.#ownKey(tenantId, keyId);
    if (doc.data.revoked) return keyRecord(doc);
    return keyRecord(await this.#keys.put(GLOBAL_TENANT, keyId, { ...doc.data, revoked: true, revokedAt: now }, { expectedVersion: doc.version }));
  }

  /**
   * A new key with the old one's name and scopes; the old one stays valid, until `revokeOldAfterMs`
   * from now when given (its expiry is brought forward, never pushed back). One atomic write.
   */
  async rotateKey(
    tenantId: string,
    keyId: string,
    options: { revokeOldAfterMs: number | undefined; expiresAt: Date | undefined; now?: Date },
  ): Promise<NewApiKey & { old: ApiKeyRecord }> {
    const now = options.now ?? new Date();
    const old = await this.#ownKey(tenantId, keyId);
    if (old.data.revoked) throw new FailedPreconditionError(`API key ${keyId} is revoked: create a new key instead of rotating it`);
    const generated = generateApiKey();
    const fresh: ApiKeyDoc = {
      keyId: generated.keyId,
      tenantId,
      name: old.data.name,
      scopes: [...old.data.scopes],
      secretSha256: generated.secretSha256,
      expiresAt: options.expiresAt ?? null,
      revokedAt: null,
      revoked: false,
    };
    let oldData = old.data;
    if (options.revokeOldAfterMs !== undefined) {
      const at = new Date(now.getTime() + options.revokeOldAfterMs);
      if (!oldData.expiresAt || oldData.expiresAt.getTime() > at.getTime()) oldData = { ...oldData, expiresAt: at };
    }
    try {
      const results = await this.#store.writeAtomic([
        this.#keys.putOp(GLOBAL_TENANT, generated.keyId, fresh, { expectedVersion: 'absent' }),
        this.#keys.putOp(GLOBAL_TENANT, keyId, oldData, { expectedVersion: old.version }),
      ]);
      const [created, updated] = results.map((r) => (r.type === 'put' ? (r.document as StoredDocument<ApiKeyDoc>) : undefined));
      return { key: keyRecord(created!), secret: generated.key, old: keyRecord(updated!) };
    } catch (err) {
      if (err instanceof VersionConflictError) throw new ConflictError(`API key ${keyId} changed concurrently (revoked or rotated): list the keys and try again`);
      throw err;
    }
  }

  /** Every key of a tenant, revoked ones included (tenant deletion). */
  async revokeAllKeys(tenantId: string, now = new Date()): Promise<number> {
    let revoked = 0;
    for (;;) {
      const { keys } = await this.listKeys(tenantId, false, 500, undefined);
      if (keys.length === 0) return revoked;
      for (const key of keys) {
        await this.revokeKey(tenantId, key.keyId, now);
        revoked++;
      }
    }
  }

  // CredentialSource: the authenticator's view of a key.
  async lookup(keyId: string): Promise<StoredCredential | undefined> {
    const doc = await this.#keys.get(GLOBAL_TENANT, keyId);
    if (!doc) return undefined;
    const tenant = await this.#tenants.get(GLOBAL_TENANT, doc.data.tenantId);
    return {
      keyId,
      tenant: doc.data.tenantId,
      scopes: doc.data.scopes,
      secretSha256: doc.data.secretSha256,
      expiresAt: doc.data.expiresAt ?? undefined,
      revokedAt: doc.data.revokedAt ?? undefined,
      // A deleted tenant is no tenant any more for the authenticator (its keys were revoked anyway).
      tenantState: !tenant || tenant.data.state === 'deleted' ? 'unknown' : tenant.data.state,
    };
  }

  /** LookupApiKey's answer; undefined for an unknown key. */
  async lookupForService(keyId: string): Promise<{ key: ApiKeyRecord; secretSha256: Uint8Array; tenantState: TenantState | 'unknown' } | undefined> {
    const doc = /^[a-z2-7]{16}$/.test(keyId) ? await this.#keys.get(GLOBAL_TENANT, keyId) : undefined;
    if (!doc) return undefined;
    const tenant = await this.#tenants.get(GLOBAL_TENANT, doc.data.tenantId);
    return { key: keyRecord(doc), secretSha256: doc.data.secretSha256, tenantState: tenant?.data.state ?? 'unknown' };
  }
}
