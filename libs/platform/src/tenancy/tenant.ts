import { Metadata } from '@grpc/grpc-js';
import { InvalidArgumentError } from '../errors/domain-errors.js';

/**
 * The metadata key that carries the tenant between services. Until API keys exist (the tenant
 * then comes from the key), the public API reads it from here as well; internal calls always
 * forward it, so every store query and cache key downstream can be scoped by it.
 */
export const TENANT_METADATA_KEY = 'x-aimass-tenant';

/**
 * Tenant ids end up in NATS subjects, collection keys and metric labels, so they are kept to
 * one subject token: lower-case letters, digits and dashes, at most 63 characters.
 */
export const TENANT_ID_PATTERN = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

export function isValidTenantId(value: string): boolean {
  return TENANT_ID_PATTERN.test(value);
}

export function assertTenantId(value: string): string {
  if (!isValidTenantId(value)) {
    throw new InvalidArgumentError(
      `invalid tenant id ${JSON.stringify(value.slice(0, 80))}: use 1-63 lower-case letters, digits and dashes, starting and ending with a letter or digit`,
    );
  }
  return value;
}

/** The tenant a call is made for; INVALID_ARGUMENT when the header is missing or malformed. */
export function tenantFromMetadata(metadata: Metadata): string {
  const values = metadata.get(TENANT_METADATA_KEY);
  if (values.length === 0) {
    throw new InvalidArgumentError(`tenant required: send the "${TENANT_METADATA_KEY}" metadata header`);
  }
  if (values.length > 1) {
    throw new InvalidArgumentError(`exactly one "${TENANT_METADATA_KEY}" header expected, got ${values.length}`);
  }
  const value = values[0];
  return assertTenantId(typeof value === 'string' ? value : value!.toString('utf8'));
}

/**
 * The call's tenant, or undefined when the header is missing, repeated or malformed. For code that
 * only needs to know (quotas, fair batching) on every call: no error is built, which would cost a
 * stack trace per call on the hot path.
 */
export function tenantIfValid(metadata: Metadata): string | undefined {
  const values = metadata.get(TENANT_METADATA_KEY);
  if (values.length !== 1) return undefined;
  const value = values[0];
  const text = typeof value === 'string' ? value : value!.toString('utf8');
  return isValidTenantId(text) ? text : undefined;
}

/** Metadata for an outgoing call on behalf of `tenant` (adds to `base` when given). */
export function tenantMetadata(tenant: string, base?: Metadata): Metadata {
  const metadata = base ? base.clone() : new Metadata();
  metadata.set(TENANT_METADATA_KEY, assertTenantId(tenant));
  return metadata;
}
