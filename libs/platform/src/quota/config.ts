import { z } from 'zod';
import { isValidTenantId } from '../tenancy/tenant.js';

const nonNegative = (what: string) => {
  const error = `expected ${what} (a number >= 0; 0 means unlimited)`;
  return z.number({ error }).min(0, { error }).refine(Number.isFinite, { error });
};

const nonNegativeInt = (what: string, zero: string) => {
  const error = `expected ${what} (a whole number >= 0; 0 means ${zero})`;
  return z.number({ error }).int({ error }).min(0, { error });
};

/** One tenant's limits; 0 turns a limit off. */
const limitsShape = {
  /** Calls per second, refilled continuously (token bucket). 0: no rate limit. */
  ratePerSecond: nonNegative('a rate in calls per second'),
  /** Calls that may arrive at once after a quiet spell (the bucket's size). 0: one second's worth of `ratePerSecond`. */
  burst: nonNegativeInt('a number of calls', "one second's worth of the rate"),
  /** Calls of the tenant in progress at once. 0: no concurrency limit. */
  maxConcurrency: nonNegativeInt('a number of calls', 'unlimited'),
};

export const quotaLimitsSchema = z.strictObject({
  ratePerSecond: limitsShape.ratePerSecond.default(0),
  burst: limitsShape.burst.default(0),
  maxConcurrency: limitsShape.maxConcurrency.default(0),
});
export type QuotaLimitsConfig = z.output<typeof quotaLimitsSchema>;

/** A tenant's overrides, key by key; what is unset comes from `default`. */
const tenantLimitsSchema = z.strictObject({
  ratePerSecond: limitsShape.ratePerSecond.optional(),
  burst: limitsShape.burst.optional(),
  maxConcurrency: limitsShape.maxConcurrency.optional(),
});

/**
 * The `quotas` section of a public-facing service (env `AIMASS_QUOTAS__<KEY>`, e.g.
 * `AIMASS_QUOTAS__DEFAULT__RATE_PER_SECOND=200`, tenants as JSON:
 * `AIMASS_QUOTAS__TENANTS='{"acme":{"ratePerSecond":50}}'`). Everything unlimited by default.
 */
export const quotasConfigSchema = z.strictObject({
  /** Limits of every tenant without an entry in `tenants`. */
  default: quotaLimitsSchema.prefault({}),
  /** Per-tenant overrides of `default`, until the tenant registry owns them. */
  tenants: z
    .record(z.string(), tenantLimitsSchema)
    .superRefine((value, ctx) => {
      for (const key of Object.keys(value)) {
        if (!isValidTenantId(key)) ctx.addIssue({ code: 'custom', path: [key], message: 'invalid tenant id: use 1-63 lower-case letters, digits and dashes' });
      }
    })
    .default({}),
  /** Tenants whose counters are kept at most; idle ones beyond it are forgotten first. */
  maxTrackedTenants: z.number().int().positive().default(10_000),
  /**
   * A refused call is answered after this long (bounded by its deadline), with its retry hint
   * shortened by as much, so a client retrying in a tight loop is slowed down instead of costing
   * the server a core that the other tenants need. 0 answers refusals at once.
   */
  holdRefusalsMs: z.number().int().min(0).max(10_000).default(100),
  /** Refusals held at once per tenant; beyond them refusals are answered at once. */
  maxHeldPerTenant: z.number().int().positive().default(2048),
});
export type QuotasConfig = z.output<typeof quotasConfigSchema>;
export type QuotasConfigInput = z.input<typeof quotasConfigSchema>;

/** False when the configuration limits nobody: a service can then leave the quota interceptor out of its call path. */
export function quotasLimitAnything(config: QuotasConfig): boolean {
  const limits = (l: { ratePerSecond?: number | undefined; maxConcurrency?: number | undefined }) => (l.ratePerSecond ?? 0) > 0 || (l.maxConcurrency ?? 0) > 0;
  return limits(config.default) || Object.values(config.tenants).some(limits);
}
