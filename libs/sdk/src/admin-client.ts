import { credentials as grpcCredentials } from '@grpc/grpc-js';
import { durationFromMs, v1 } from '@aimass/proto';
import { UnaryCaller, channelOptionsOf, type CallOptions, type ConnectionOptions } from './caller.js';
import {
  fromTenantSettings,
  scopeCode,
  toApiKey,
  toTenant,
  type ApiKey,
  type ApiKeyScope,
  type CreatedApiKey,
  type Page,
  type PageOptions,
  type RotatedApiKey,
  type Tenant,
  type TenantSettings,
} from './admin.js';

export interface TenantAdminClientOptions extends Omit<ConnectionOptions, 'tenant' | 'apiKey'> {
  /**
   * The operator token (every tenant) or an API key with the `admin` scope (its own tenant only;
   * other tenants look absent: NotFoundError).
   */
  apiKey: string;
  /** Not needed: the operator names tenants in each call, and an API key's tenant is its own. */
  tenant?: string | undefined;
}

export interface UpdateTenantInput {
  displayName?: string | undefined;
  settings?: Partial<TenantSettings> | undefined;
  /**
   * Fields to change, as proto paths (`display_name`, `settings.quota.rate_per_second`, …).
   * Default: `display_name` when `displayName` is given, `settings` when `settings` is given.
   */
  updateMask?: string[] | undefined;
  /** The revision the change is based on; a mismatch fails with an AiMassError of code `ABORTED`. 0 or unset: no check. */
  expectedRevision?: number | undefined;
}

/**
 * Tenants and API keys (aimass.v1.TenantAdminService, served by fusion). Reads and revocations
 * are retried on UNAVAILABLE; creations are tried once (an answer lost in transit may hide a
 * created tenant or key). Errors are the SDK's typed errors (`NotFoundError`,
 * `PermissionDeniedError`, `UnauthenticatedError`, …).
 */
export class TenantAdminClient {
  readonly #client: v1.TenantAdminServiceClient;
  readonly #caller: UnaryCaller;

  constructor(options: TenantAdminClientOptions) {
    if (typeof options.apiKey !== 'string' || options.apiKey === '') {
      throw new TypeError('apiKey is required: the operator token, or an API key with the admin scope');
    }
    this.#caller = new UnaryCaller({ ...options, tenant: options.tenant ?? '' }, { tenantOptional: true });
    this.#client = new v1.TenantAdminServiceClient(options.address, options.credentials ?? grpcCredentials.createInsecure(), channelOptionsOf({ ...options, tenant: '' }));
  }

  async createTenant(tenantId: string, input: { displayName?: string; settings?: Partial<TenantSettings> } = {}, options: CallOptions = {}): Promise<Tenant> {
    const request: v1.CreateTenantRequest = { tenantId, displayName: input.displayName ?? '', settings: fromTenantSettings(input.settings) };
    return toTenant((await this.#caller.unary(this.#client, 'CreateTenant', this.#client.createTenant, request, options, false)).tenant);
  }

  /** A tenant; with an admin key, `tenantId` may be left empty for the key's own. */
  async getTenant(tenantId = '', options: CallOptions = {}): Promise<Tenant> {
    return toTenant((await this.#caller.unary(this.#client, 'GetTenant', this.#client.getTenant, { tenantId }, options)).tenant);
  }

  /** Tenants, deleted ones only with `includeDeleted`. */
  async listTenants(page: PageOptions & { includeDeleted?: boolean } = {}, options: CallOptions = {}): Promise<Page<Tenant>> {
    const request: v1.ListTenantsRequest = { page: { pageSize: page.pageSize ?? 0, pageToken: page.pageToken ?? '' }, includeDeleted: page.includeDeleted ?? false };
    const res = await this.#caller.unary(this.#client, 'ListTenants', this.#client.listTenants, request, options);
    return { items: res.tenants.map(toTenant), nextPageToken: res.nextPageToken };
  }

  async updateTenant(tenantId: string, input: UpdateTenantInput, options: CallOptions = {}): Promise<Tenant> {
    const mask = input.updateMask ?? [...(input.displayName !== undefined ? ['display_name'] : []), ...(input.settings !== undefined ? ['settings'] : [])];
    const request: v1.UpdateTenantRequest = {
      tenantId,
      displayName: input.displayName ?? '',
      settings: fromTenantSettings(input.settings),
      updateMask: mask,
      expectedRevision: input.expectedRevision ?? 0,
    };
    // Retried only when conditioned on a revision (a repeat then cannot apply twice).
    const idempotent = (input.expectedRevision ?? 0) !== 0;
    return toTenant((await this.#caller.unary(this.#client, 'UpdateTenant', this.#client.updateTenant, request, options, idempotent)).tenant);
  }

  async suspendTenant(tenantId: string, reason = '', options: CallOptions = {}): Promise<Tenant> {
    return toTenant((await this.#caller.unary(this.#client, 'SuspendTenant', this.#client.suspendTenant, { tenantId, reason }, options)).tenant);
  }

  async resumeTenant(tenantId: string, options: CallOptions = {}): Promise<Tenant> {
    return toTenant((await this.#caller.unary(this.#client, 'ResumeTenant', this.#client.resumeTenant, { tenantId }, options)).tenant);
  }

  /** Marks the tenant DELETING (its keys stop working) and erases its data; `confirm` must repeat the id. */
  async deleteTenant(tenantId: string, confirm: string, options: CallOptions = {}): Promise<Tenant> {
    return toTenant((await this.#caller.unary(this.#client, 'DeleteTenant', this.#client.deleteTenant, { tenantId, confirmTenantId: confirm }, options)).tenant);
  }

  async createApiKey(tenantId: string, input: { name: string; scopes: ApiKeyScope[]; expiresAt?: Date | undefined }, options: CallOptions = {}): Promise<CreatedApiKey> {
    const request: v1.CreateApiKeyRequest = { tenantId, name: input.name, scopes: input.scopes.map(scopeCode), expiresAt: input.expiresAt };
    const res = await this.#caller.unary(this.#client, 'CreateApiKey', this.#client.createApiKey, request, options, false);
    return { key: toApiKey(res.key), secret: res.secret };
  }

  async listApiKeys(tenantId: string, page: PageOptions & { includeRevoked?: boolean } = {}, options: CallOptions = {}): Promise<Page<ApiKey>> {
    const request: v1.ListApiKeysRequest = { tenantId, page: { pageSize: page.pageSize ?? 0, pageToken: page.pageToken ?? '' }, includeRevoked: page.includeRevoked ?? false };
    const res = await this.#caller.unary(this.#client, 'ListApiKeys', this.#client.listApiKeys, request, options);
    return { items: res.keys.map(toApiKey), nextPageToken: res.nextPageToken };
  }

  /** Revokes a key, effective at once on the fusion replica that answers, within seconds on the others. */
  async revokeApiKey(tenantId: string, keyId: string, options: CallOptions = {}): Promise<ApiKey> {
    return toApiKey((await this.#caller.unary(this.#client, 'RevokeApiKey', this.#client.revokeApiKey, { tenantId, keyId }, options)).key);
  }

  /**
   * A new key with the old one's name and scopes. The old key keeps working until revoked, or
   * for `revokeOldAfterMs` more when given.
   */
  async rotateApiKey(
    tenantId: string,
    keyId: string,
    input: { revokeOldAfterMs?: number | undefined; expiresAt?: Date | undefined } = {},
    options: CallOptions = {},
  ): Promise<RotatedApiKey> {
    const request: v1.RotateApiKeyRequest = {
      tenantId,
      keyId,
      revokeOldAfter: input.revokeOldAfterMs === undefined ? undefined : durationFromMs(input.revokeOldAfterMs),
      expiresAt: input.expiresAt,
    };
    const res = await this.#caller.unary(this.#client, 'RotateApiKey', this.#client.rotateApiKey, request, options, false);
    return { key: toApiKey(res.key), secret: res.secret, oldKey: toApiKey(res.oldKey) };
  }

  close(): void {
    this.#client.close();
  }
}
