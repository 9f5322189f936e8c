import { MAX_USES_PER_CALL, principalOf, scopeFromProto, scopeToProto, type Authenticator, type Principal, type Scope } from '@aimass/auth';
import {
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
  UnavailableError,
  isValidTenantId,
  unary,
  type CallContext,
} from '@aimass/platform';
import { durationToMs, v1 } from '@aimass/proto';
import type { ApiKeyRecord, TenantRecord, TenantRegistry } from '../adapters/tenant-registry.js';
import {
  MAX_KEY_NAME_CHARS,
  TENANT_STATE_TO_PROTO,
  applyTenantUpdate,
  fullSettings,
  hasControlCharacters,
  pageSize,
  validateDisplayName,
  validateSettings,
} from '../domain/tenants.js';

export interface TenantAdminServiceOptions {
  readonly registry: TenantRegistry;
  /** Told of every key and tenant change, so this process refuses a revoked key at once. */
  readonly authenticator: Authenticator | undefined;
  /**
   * Erases a tenant's data once it is DELETING (publishes TenantDeleted, deletes fusion's own
   * records). Must be idempotent: a DeleteTenant repeated after a failure runs it again.
   */
  readonly purgeTenant: (tenantId: string, reason: string) => Promise<void>;
}

export function tenantToProto(t: TenantRecord): v1.Tenant {
  return {
    tenantId: t.tenantId,
    displayName: t.displayName,
    state: TENANT_STATE_TO_PROTO[t.state],
    settings: t.settings,
    revision: t.revision,
    createdAt: t.createdAt,
    updatedAt: t.updatedAt,
    deletion: t.deletion
      ? {
          requestedAt: t.deletion.requestedAt,
          services: [...t.deletion.services],
          confirmations: t.deletion.confirmations.map((c) => ({ service: c.service, confirmedAt: c.confirmedAt, itemsDeleted: c.itemsDeleted })),
          completedAt: t.deletion.completedAt,
          rounds: t.deletion.rounds,
        }
      : undefined,
  };
}

/** DELETING or DELETED: nothing of the tenant may change any more. */
const beingDeleted = (t: { state: string }) => t.state === 'deleting' || t.state === 'deleted';

export function apiKeyToProto(k: ApiKeyRecord): v1.ApiKey {
  return {
    keyId: k.keyId,
    tenantId: k.tenantId,
    name: k.name,
    scopes: k.scopes.map(scopeToProto),
    createdAt: k.createdAt,
    expiresAt: k.expiresAt,
    revokedAt: k.revokedAt,
    lastUsedAt: k.lastUsedAt,
  };
}

const MAX_REVOKE_OLD_AFTER_MS = 3650 * 86_400_000;

const OPERATOR_ONLY = "is for platform operators (the operator token): a tenant's admin key manages only its own tenant and keys";

/** Refuses tenant admin keys where only the operator may act. Without authentication (mode none) nothing is checked. */
function requireOperator(principal: Principal | undefined, what: string): void {
  if (principal && principal.kind !== 'operator') throw new PermissionDeniedError(`${what} ${OPERATOR_ONLY}`);
}

/**
 * The tenant a request may act on. An admin key reaches only its own tenant (an empty
 * tenant_id means it); any other id is NOT_FOUND, as if absent, so which tenants exist does not leak.
 */
function targetTenant(principal: Principal | undefined, requested: string): string {
  if (requested === '' && principal?.kind === 'api-key' && principal.tenant) return principal.tenant;
  if (!isValidTenantId(requested)) {
    throw new InvalidArgumentError('tenant_id must be 1-63 lower-case letters, digits and dashes, starting and ending with a letter or digit', { field: 'tenant_id' });
  }
  if (principal?.kind === 'api-key' && principal.tenant !== requested) throw new NotFoundError(`tenant ${requested} not found`);
  return requested;
}

function scopesOf(values: readonly v1.ApiKeyScope[]): Scope[] {
  if (values.length === 0) throw new InvalidArgumentError(`scopes: give at least one of ${['predict', 'feedback', 'consent', 'admin'].join(', ')}`, { field: 'scopes' });
  const scopes = new Set<Scope>();
  values.forEach((v, i) => {
    const scope = scopeFromProto(v);
    if (!scope) throw new InvalidArgumentError(`scopes[${i}]: ${v} is not a known scope`, { field: `scopes[${i}]` });
    scopes.add(scope);
  });
  return [...scopes];
}

function keyName(name: string): string {
  const trimmed = name.trim();
  if (trimmed === '') throw new InvalidArgumentError('name is required: say what the key is for (e.g. "mail-backend prod")', { field: 'name' });
  if ([...trimmed].length > MAX_KEY_NAME_CHARS) throw new InvalidArgumentError(`name is longer than ${MAX_KEY_NAME_CHARS} characters`, { field: 'name' });
  if (hasControlCharacters(trimmed)) throw new InvalidArgumentError('name must not contain control characters', { field: 'name' });
  return trimmed;
}

function futureExpiry(at: Date | undefined, field: string): Date | undefined {
  if (at === undefined) return undefined;
  if (!Number.isFinite(at.getTime())) throw new InvalidArgumentError(`${field} is not a valid time`, { field });
  if (at.getTime() <= Date.now()) throw new InvalidArgumentError(`${field} is in the past: give a future time or none`, { field });
  return at;
}

async function activeTenant(registry: TenantRegistry, tenantId: string): Promise<TenantRecord> {
  const tenant = await registry.requireTenant(tenantId);
  if (beingDeleted(tenant)) throw new FailedPreconditionError(`tenant ${tenantId} is ${tenant.state === 'deleted' ? 'deleted' : 'being deleted'}: its keys cannot change`);
  return tenant;
}

/** aimass.v1.TenantAdminService: tenants (operator) and their API keys (operator or the tenant's admin key). */
export function createTenantAdminService(options: TenantAdminServiceOptions): v1.TenantAdminServiceServer {
  const { registry, authenticator } = options;
  const who = (ctx: CallContext) => principalOf(ctx.metadata);
  const tenantsChanged = () => authenticator?.invalidateAll();

  return {
    createTenant: unary<v1.CreateTenantRequest, v1.CreateTenantResponse>(async (req, ctx) => {
      requireOperator(who(ctx), 'CreateTenant');
      if (!isValidTenantId(req.tenantId)) {
        throw new InvalidArgumentError('tenant_id must be 1-63 lower-case letters, digits and dashes, starting and ending with a letter or digit', { field: 'tenant_id' });
      }
      const displayName = validateDisplayName(req.displayName) || req.tenantId;
      const settings = validateSettings(fullSettings(req.settings));
      const tenant = await registry.createTenant(req.tenantId, { displayName, settings });
      ctx.logger.info({ tenant: tenant.tenantId }, 'tenant created');
      return { tenant: tenantToProto(tenant) };
    }),

    getTenant: unary<v1.GetTenantRequest, v1.GetTenantResponse>(async (req, ctx) => {
      const tenantId = targetTenant(who(ctx), req.tenantId);
      return { tenant: tenantToProto(await registry.requireTenant(tenantId)) };
    }),

    listTenants: unary<v1.ListTenantsRequest, v1.ListTenantsResponse>(async (req, ctx) => {
      requireOperator(who(ctx), 'ListTenants');
      const page = await registry.listTenants(pageSize(req.page), req.page?.pageToken || undefined, req.includeDeleted);
      return { tenants: page.tenants.map(tenantToProto), nextPageToken: page.next ?? '' };
    }),

    updateTenant: unary<v1.UpdateTenantRequest, v1.UpdateTenantResponse>(async (req, ctx) => {
      const tenantId = targetTenant(who(ctx), req.tenantId);
      const tenant = await registry.updateTenant(tenantId, req.expectedRevision, (current) => {
        if (beingDeleted(current)) throw new FailedPreconditionError(`tenant ${tenantId} is being deleted or deleted`);
        return applyTenantUpdate(current, req);
      });
      return { tenant: tenantToProto(tenant) };
    }),

    suspendTenant: unary<v1.SuspendTenantRequest, v1.SuspendTenantResponse>(async (req, ctx) => {
      requireOperator(who(ctx), 'SuspendTenant');
      const tenantId = targetTenant(undefined, req.tenantId);
      const tenant = await registry.updateTenant(tenantId, 0, (current) => {
        if (beingDeleted(current)) throw new FailedPreconditionError(`tenant ${tenantId} is being deleted or deleted`);
        return { state: 'suspended', reason: req.reason.slice(0, 500) };
      });
      tenantsChanged();
      ctx.logger.info({ tenant: tenantId }, 'tenant suspended');
      return { tenant: tenantToProto(tenant) };
    }),

    resumeTenant: unary<v1.ResumeTenantRequest, v1.ResumeTenantResponse>(async (req, ctx) => {
      requireOperator(who(ctx), 'ResumeTenant');
      const tenantId = targetTenant(undefined, req.tenantId);
      const tenant = await registry.updateTenant(tenantId, 0, (current) => {
        if (beingDeleted(current)) throw new FailedPreconditionError(`tenant ${tenantId} is being deleted or deleted and cannot be resumed`);
        return { state: 'active', reason: '' };
      });
      tenantsChanged();
      ctx.logger.info({ tenant: tenantId }, 'tenant resumed');
      return { tenant: tenantToProto(tenant) };
    }),

    deleteTenant: unary<v1.DeleteTenantRequest, v1.DeleteTenantResponse>(async (req, ctx) => {
      requireOperator(who(ctx), 'DeleteTenant');
      const tenantId = targetTenant(undefined, req.tenantId);
      if (req.confirmTenantId !== tenantId) {
        throw new InvalidArgumentError('confirm_tenant_id must repeat tenant_id: a guard against deleting the wrong tenant', { field: 'confirm_tenant_id' });
      }
      const reason = 'tenant deleted by the operator';
      // DELETING first: from here on every key of the tenant is refused, whatever happens next.
      // A DELETED tenant stays so: the repeat answers it with its receipt.
      const tenant = await registry.updateTenant(tenantId, 0, (current) => (current.state === 'deleted' ? undefined : { state: 'deleting', reason }));
      if (tenant.state === 'deleted') return { tenant: tenantToProto(tenant) };
      tenantsChanged();
      try {
        await registry.revokeAllKeys(tenantId);
        await options.purgeTenant(tenantId, reason);
      } catch (err) {
        ctx.logger.warn({ err, tenant: tenantId }, 'tenant marked DELETING but its data could not all be erased yet');
        throw new UnavailableError(`tenant ${tenantId} is DELETING and refused, but erasing its data did not complete: call DeleteTenant again`, { cause: err });
      }
      ctx.logger.info({ tenant: tenantId }, 'tenant deleting: keys revoked, TenantDeleted published');
      // Read again: the receipt (and, when every service answered fast, DELETED) is the caller's.
      return { tenant: tenantToProto((await registry.getTenant(tenantId)) ?? tenant) };
    }),

    createApiKey: unary<v1.CreateApiKeyRequest, v1.CreateApiKeyResponse>(async (req, ctx) => {
      const tenantId = targetTenant(who(ctx), req.tenantId);
      const name = keyName(req.name);
      const scopes = scopesOf(req.scopes);
      const expiresAt = futureExpiry(req.expiresAt, 'expires_at');
      await activeTenant(registry, tenantId);
      const created = await registry.createKey(tenantId, { name, scopes, expiresAt });
      ctx.logger.info({ tenant: tenantId, keyId: created.key.keyId, scopes }, 'API key created');
      return { key: apiKeyToProto(created.key), secret: created.secret };
    }),

    listApiKeys: unary<v1.ListApiKeysRequest, v1.ListApiKeysResponse>(async (req, ctx) => {
      const tenantId = targetTenant(who(ctx), req.tenantId);
      await registry.requireTenant(tenantId);
      const page = await registry.listKeys(tenantId, req.includeRevoked, pageSize(req.page), req.page?.pageToken || undefined);
      return { keys: page.keys.map(apiKeyToProto), nextPageToken: page.next ?? '' };
    }),

    revokeApiKey: unary<v1.RevokeApiKeyRequest, v1.RevokeApiKeyResponse>(async (req, ctx) => {
      const tenantId = targetTenant(who(ctx), req.tenantId);
      const key = await registry.revokeKey(tenantId, req.keyId);
      authenticator?.invalidate(key.keyId);
      ctx.logger.info({ tenant: tenantId, keyId: key.keyId }, 'API key revoked');
      return { key: apiKeyToProto(key) };
    }),

    rotateApiKey: unary<v1.RotateApiKeyRequest, v1.RotateApiKeyResponse>(async (req, ctx) => {
      const tenantId = targetTenant(who(ctx), req.tenantId);
      let revokeOldAfterMs: number | undefined;
      if (req.revokeOldAfter) {
        revokeOldAfterMs = durationToMs(req.revokeOldAfter);
        if (!Number.isFinite(revokeOldAfterMs) || revokeOldAfterMs < 0 || revokeOldAfterMs > MAX_REVOKE_OLD_AFTER_MS) {
          throw new InvalidArgumentError('revoke_old_after must be a duration from 0 to 3650 days', { field: 'revoke_old_after' });
        }
      }
      const expiresAt = futureExpiry(req.expiresAt, 'expires_at');
      await activeTenant(registry, tenantId);
      const rotated = await registry.rotateKey(tenantId, req.keyId, { revokeOldAfterMs, expiresAt });
      authenticator?.invalidate(rotated.old.keyId);
      ctx.logger.info({ tenant: tenantId, keyId: rotated.key.keyId, replaces: rotated.old.keyId }, 'API key rotated');
      return { key: apiKeyToProto(rotated.key), secret: rotated.secret, oldKey: apiKeyToProto(rotated.old) };
    }),
  };
}

/** aimass.v1.CredentialService: the stored form of a key, for the other services' authenticators (service tokens only). */
export function createCredentialService(registry: TenantRegistry): v1.CredentialServiceServer {
  return {
    lookupApiKey: unary<v1.LookupApiKeyRequest, v1.LookupApiKeyResponse>(async (req) => {
      const found = await registry.lookupForService(req.keyId);
      if (!found) throw new NotFoundError(`API key ${req.keyId.slice(0, 40)} not found`);
      return {
        key: apiKeyToProto(found.key),
        secretSha256: Buffer.from(found.secretSha256),
        tenantState: found.tenantState === 'unknown' ? v1.TenantState.TENANT_STATE_UNSPECIFIED : TENANT_STATE_TO_PROTO[found.tenantState],
      };
    }),

    recordApiKeyUse: unary<v1.RecordApiKeyUseRequest, v1.RecordApiKeyUseResponse>(async (req) => {
      if (req.uses.length > MAX_USES_PER_CALL) {
        throw new InvalidArgumentError(`uses holds ${req.uses.length} keys, at most ${MAX_USES_PER_CALL} are taken per call: split the report`, { field: 'uses' });
      }
      // A reporter whose clock runs ahead cannot date a use in the future.
      const now = Date.now();
      const uses = req.uses.flatMap((u) => (u.usedAt && Number.isFinite(u.usedAt.getTime()) ? [{ keyId: u.keyId, at: new Date(Math.min(u.usedAt.getTime(), now)) }] : []));
      return { recorded: await registry.recordUse(uses) };
    }),

    listTenantSettings: unary<v1.ListTenantSettingsRequest, v1.ListTenantSettingsResponse>(async (req) => {
      const page = await registry.listTenants(pageSize(req.page, 500, 500), req.page?.pageToken || undefined, false);
      return {
        tenants: page.tenants.map((t) => ({ tenantId: t.tenantId, state: TENANT_STATE_TO_PROTO[t.state], revision: t.revision, settings: t.settings })),
        nextPageToken: page.next ?? '',
      };
    }),
  };
}
