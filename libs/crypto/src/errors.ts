/**
 * Why a tenant's key-encryption key (KEK) is not available. Messages name the tenant, the version
 * and where the key was expected (a configuration key or a file), never the key's bytes.
 *
 * - `unknown_tenant`: the tenant has no KEK and no default is configured.
 * - `unknown_version`: the tenant's KEKs do not include the version a data key was wrapped with
 *   (a retired KEK that still wraps keys: restore it, or rewrap those keys first).
 * - `invalid_key`: a configured key is not 32 bytes (base64 or raw).
 * - `unreadable`: a key file or the key directory cannot be read.
 *
 * None of these says anything about a payload: they are configuration faults, so a consumer should
 * retry or stop rather than drop data as unreadable.
 */
export type TenantKeyErrorCode = 'unknown_tenant' | 'unknown_version' | 'invalid_key' | 'unreadable';

export class TenantKeyError extends Error {
  override readonly name = 'TenantKeyError';
  readonly code: TenantKeyErrorCode;
  /** The tenant concerned, when there is one (tenant ids are not personal data). */
  readonly tenant: string | undefined;

  constructor(code: TenantKeyErrorCode, message: string, options?: ErrorOptions & { tenant?: string | undefined }) {
    super(message, options);
    this.code = code;
    this.tenant = options?.tenant;
  }
}

/**
 * Why a user's data key cannot be used.
 *
 * - `not_found`: the user has no data key with that id: destroyed by erasure (crypto-shredding), or
 *   never stored in this key store. Final: what it sealed is unreadable for good.
 * - `other_user`: the key id belongs to another user or tenant than the one asked for.
 * - `unwrap_failed`: the stored wrapped key does not authenticate: the record was moved from
 *   another user or tenant or altered, or the tenant key configured under its version is not the
 *   one it was wrapped with. A key-store integrity or configuration fault, not a property of a
 *   payload, so it is not reported as `PayloadUnreadableError`.
 * - `creation_refused`: the ring's `mayCreate` policy (the privacy service's erasure tombstone)
 *   refused a new key for this user.
 * - `invalid_scope`: an empty tenant or pseudonym.
 */
export type DataKeyErrorCode = 'not_found' | 'other_user' | 'unwrap_failed' | 'creation_refused' | 'invalid_scope';

export class DataKeyError extends Error {
  override readonly name = 'DataKeyError';
  readonly code: DataKeyErrorCode;

  constructor(code: DataKeyErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}
