import { Metadata } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../errors/domain-errors.js';
import { TENANT_METADATA_KEY, isValidTenantId, tenantFromMetadata, tenantIfValid, tenantMetadata } from './tenant.js';

describe('tenant ids', () => {
  it.each(['acme', 'a', 'acme-2', '0day'])('accepts %s', (id) => expect(isValidTenantId(id)).toBe(true));
  it.each(['', 'Acme', 'acme.eu', 'acme-', '-acme', 'a*b', 'x'.repeat(64), 'acme>'])('rejects %j', (id) =>
    expect(isValidTenantId(id)).toBe(false),
  );
});

describe('tenantFromMetadata', () => {
  it('reads the header', () => {
    expect(tenantFromMetadata(tenantMetadata('acme'))).toBe('acme');
  });
  it('names the header when it is missing', () => {
    expect(() => tenantFromMetadata(new Metadata())).toThrow(InvalidArgumentError);
    expect(() => tenantFromMetadata(new Metadata())).toThrow(TENANT_METADATA_KEY);
  });
  it('rejects a malformed or repeated tenant', () => {
    const bad = new Metadata();
    bad.set(TENANT_METADATA_KEY, 'ACME.*');
    expect(() => tenantFromMetadata(bad)).toThrow(/invalid tenant id/);
    const twice = tenantMetadata('acme');
    twice.add(TENANT_METADATA_KEY, 'other');
    expect(() => tenantFromMetadata(twice)).toThrow(/exactly one/);
  });
  it('adds to existing metadata without changing it', () => {
    const base = new Metadata();
    base.set('x-other', '1');
    const out = tenantMetadata('acme', base);
    expect(out.get('x-other')).toEqual(['1']);
    expect(base.get(TENANT_METADATA_KEY)).toEqual([]);
  });
});

describe('tenantIfValid', () => {
  it('answers the tenant, or undefined for a missing, repeated or malformed header, without throwing', () => {
    const md = (...values: string[]) => {
      const m = new Metadata();
      for (const v of values) m.add(TENANT_METADATA_KEY, v);
      return m;
    };
    expect(tenantIfValid(md('acme'))).toBe('acme');
    expect(tenantIfValid(md())).toBeUndefined();
    expect(tenantIfValid(md('acme', 'other'))).toBeUndefined();
    expect(tenantIfValid(md('Not Valid'))).toBeUndefined();
  });
});
