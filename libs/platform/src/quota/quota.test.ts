import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { loadConfig } from '../config/load-config.js';
import { ConcurrencyLimiter } from './concurrency-limiter.js';
import { quotasConfigSchema, quotasLimitAnything } from './config.js';
import { TenantQuotas, limitsFromConfig, type Admission, type QuotaLimits } from './tenant-quotas.js';
import { TokenBucket } from './token-bucket.js';

function clock(start = 1_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

function granted(a: Admission): () => void {
  if (!a.ok) throw new Error(`expected admission, got ${a.message}`);
  return a.release;
}

describe('TokenBucket', () => {
  it('starts full, grants the burst, then one token per 1/rate seconds', () => {
    const b = new TokenBucket(10, 3, 0);
    expect([b.take(0), b.take(0), b.take(0)]).toEqual([0, 0, 0]);
    expect(b.take(0)).toBe(100);
    expect(b.take(60)).toBe(40);
    expect(b.take(100)).toBe(0);
    expect(b.take(100)).toBe(100);
  });

  it('never holds more than the burst however long it rests', () => {
    const b = new TokenBucket(100, 2, 0);
    b.take(0);
    b.take(0);
    expect(b.available(1_000_000)).toBe(2);
    expect(b.isFull(1_000_000)).toBe(true);
  });

  it('earns nothing when the clock steps back', () => {
    const b = new TokenBucket(1, 1, 5_000);
    expect(b.take(5_000)).toBe(0);
    expect(b.take(1_000)).toBe(1_000);
    expect(b.take(5_999)).toBe(1);
    expect(b.take(6_000)).toBe(0);
  });

  it('keeps earned tokens, capped, when reconfigured', () => {
    const b = new TokenBucket(10, 10, 0);
    b.reconfigure(1, 2, 0);
    expect(b.available(0)).toBe(2);
    expect(() => new TokenBucket(0, 1, 0)).toThrow(RangeError);
  });
});

describe('ConcurrencyLimiter', () => {
  it('grants at most max slots and a release given twice frees one slot', () => {
    const l = new ConcurrencyLimiter(2);
    const a = l.tryAcquire()!;
    const b = l.tryAcquire()!;
    expect(l.tryAcquire()).toBeUndefined();
    a();
    a();
    expect(l.inFlight).toBe(1);
    expect(l.tryAcquire()).toBeDefined();
    expect(l.tryAcquire()).toBeUndefined();
    b();
    expect(l.inFlight).toBe(1);
  });

  it('counts without limit at 0', () => {
    const l = new ConcurrencyLimiter(0);
    for (let i = 0; i < 100; i++) expect(l.tryAcquire()).toBeDefined();
    expect(l.inFlight).toBe(100);
  });
});

describe('quotas configuration', () => {
  it('says whether it limits anybody (a service leaves the interceptor out when not)', () => {
    expect(quotasLimitAnything(quotasConfigSchema.parse({}))).toBe(false);
    expect(quotasLimitAnything(quotasConfigSchema.parse({ default: { burst: 10 } }))).toBe(false);
    expect(quotasLimitAnything(quotasConfigSchema.parse({ default: { ratePerSecond: 5 } }))).toBe(true);
    expect(quotasLimitAnything(quotasConfigSchema.parse({ tenants: { acme: { maxConcurrency: 2 } } }))).toBe(true);
  });

  it('is unlimited by default and merges tenant entries over the default key by key', () => {
    const limits = limitsFromConfig({ default: { ratePerSecond: 100, maxConcurrency: 8 }, tenants: { acme: { ratePerSecond: 5 } } });
    expect(limits('acme')).toEqual({ ratePerSecond: 5, burst: 0, maxConcurrency: 8 });
    expect(limits('other')).toEqual({ ratePerSecond: 100, burst: 0, maxConcurrency: 8 });
    expect(limitsFromConfig({})('x')).toEqual({ ratePerSecond: 0, burst: 0, maxConcurrency: 0 });
  });

  it('reads AIMASS_QUOTAS__* variables, tenants as JSON', () => {
    const schema = z.strictObject({ quotas: quotasConfigSchema.prefault({}) });
    const config = loadConfig(schema, {
      env: {
        AIMASS_QUOTAS__DEFAULT__RATE_PER_SECOND: '200',
        AIMASS_QUOTAS__DEFAULT__MAX_CONCURRENCY: '16',
        AIMASS_QUOTAS__TENANTS: '{"acme":{"ratePerSecond":50,"burst":10}}',
      },
    });
    expect(config.quotas.default).toEqual({ ratePerSecond: 200, burst: 0, maxConcurrency: 16 });
    expect(limitsFromConfig(config.quotas)('acme')).toEqual({ ratePerSecond: 50, burst: 10, maxConcurrency: 16 });
  });

  it('refuses negative limits and invalid tenant ids', () => {
    expect(quotasConfigSchema.safeParse({ default: { ratePerSecond: -1 } }).success).toBe(false);
    expect(quotasConfigSchema.safeParse({ default: { maxConcurrency: 1.5 } }).success).toBe(false);
    const bad = quotasConfigSchema.safeParse({ tenants: { 'Not A Tenant': {} } });
    expect(bad.success).toBe(false);
    expect(JSON.stringify(bad.error?.issues)).toContain('invalid tenant id');
  });
});

describe('TenantQuotas', () => {
  const fixed = (byTenant: Record<string, QuotaLimits>) => (tenant: string) => byTenant[tenant] ?? { ratePerSecond: 0, burst: 0, maxConcurrency: 0 };

  it('refuses a tenant over its rate with the figures and a retry hint, while another tenant is admitted', () => {
    const c = clock();
    const q = new TenantQuotas({ limits: fixed({ a: { ratePerSecond: 50, burst: 2, maxConcurrency: 0 } }), now: c.now });
    granted(q.admit('a'))();
    granted(q.admit('a'))();
    const refused = q.admit('a');
    expect(refused).toMatchObject({ ok: false, limit: 'rate', retryAfterMs: 20 });
    expect(!refused.ok && refused.message).toBe('tenant "a" is over its rate quota of 50 calls/s (burst 2): retry in 20 ms');
    for (let i = 0; i < 100; i++) granted(q.admit('b'))();
    c.advance(20);
    granted(q.admit('a'))();
    expect(q.stats()).toMatchObject({ admitted: 103, refusedRate: 1, refusedConcurrency: 0, inFlight: 0 });
  });

  it('uses one second of the rate as the burst when none is set', () => {
    const c = clock();
    const q = new TenantQuotas({ limits: fixed({ a: { ratePerSecond: 3, burst: 0, maxConcurrency: 0 } }), now: c.now });
    const results = Array.from({ length: 4 }, () => q.admit('a').ok);
    expect(results).toEqual([true, true, true, false]);
  });

  it('holds a concurrency slot until release, and a refusal by rate takes no slot', () => {
    const c = clock();
    const q = new TenantQuotas({ limits: fixed({ a: { ratePerSecond: 1, burst: 1, maxConcurrency: 2 } }), now: c.now, concurrencyRetryAfterMs: 25 });
    const r1 = granted(q.admit('a'));
    expect(q.admit('a')).toMatchObject({ ok: false, limit: 'rate' });
    expect(q.inFlight('a')).toBe(1);
    c.advance(1_000);
    const r2 = granted(q.admit('a'));
    c.advance(1_000);
    const full = q.admit('a');
    expect(full).toMatchObject({ ok: false, limit: 'concurrency', retryAfterMs: 25 });
    expect(!full.ok && full.message).toContain('concurrency quota of 2 calls in progress');
    r1();
    r1();
    expect(q.inFlight('a')).toBe(1);
    granted(q.admit('a'));
    r2();
    expect(q.stats().inFlight).toBe(1);
  });

  it('does not track tenants without limits', () => {
    const q = new TenantQuotas({ limits: () => ({ ratePerSecond: 0, burst: 0, maxConcurrency: 0 }) });
    for (let i = 0; i < 1_000; i++) granted(q.admit(`t${i}`))();
    expect(q.stats()).toMatchObject({ tracked: 0, admitted: 1_000 });
  });

  it('forgets idle tenants: full buckets on the sweep, the least recently seen beyond the bound', () => {
    const c = clock();
    const q = new TenantQuotas({ limits: () => ({ ratePerSecond: 10, burst: 1, maxConcurrency: 4 }), now: c.now, maxTrackedTenants: 100, sweepIntervalMs: 1_000 });
    const busy = granted(q.admit('busy'));
    for (let i = 0; i < 500; i++) granted(q.admit(`t${i}`))();
    expect(q.stats().tracked).toBeLessThanOrEqual(100);
    // The tenant with a call in progress is kept however old: its slot must still be released.
    expect(q.inFlight('busy')).toBe(1);
    c.advance(1_000);
    granted(q.admit('new'))();
    // Every bucket refilled and nothing in progress but `busy`: only `busy` (and the newcomer) remain.
    expect(q.stats().tracked).toBe(2);
    busy();
    expect(q.stats().inFlight).toBe(0);
  });

  it('applies changed limits to a tenant already tracked', () => {
    const c = clock();
    let limits: QuotaLimits = { ratePerSecond: 1, burst: 1, maxConcurrency: 0 };
    const q = new TenantQuotas({ limits: () => limits, now: c.now });
    granted(q.admit('a'))();
    expect(q.admit('a').ok).toBe(false);
    limits = { ratePerSecond: 0, burst: 0, maxConcurrency: 1 };
    const r = granted(q.admit('a'));
    expect(q.admit('a')).toMatchObject({ ok: false, limit: 'concurrency' });
    r();
  });

  it('builds from the configuration section', () => {
    const q = TenantQuotas.fromConfig({ tenants: { a: { ratePerSecond: 1, burst: 1 } } }, { now: clock().now });
    expect(q.admit('a').ok).toBe(true);
    expect(q.admit('a').ok).toBe(false);
    expect(q.admit('b').ok).toBe(true);
  });
});
