import { InvalidArgumentError } from '@aimass/platform';
import { v1 } from '@aimass/proto';

const { FusionStrategy } = v1;
type FusionStrategy = v1.FusionStrategy;

/** The strategies a tenant or a request may choose (UNSPECIFIED means "the default"). */
export const STRATEGIES: readonly FusionStrategy[] = [
  FusionStrategy.FUSION_STRATEGY_GENERAL_ONLY,
  FusionStrategy.FUSION_STRATEGY_PERSONAL_ONLY,
  FusionStrategy.FUSION_STRATEGY_INTERPOLATE,
  FusionStrategy.FUSION_STRATEGY_STACKING,
  FusionStrategy.FUSION_STRATEGY_OVERRIDE,
];

/** Short names used in configuration and messages. */
export const STRATEGY_NAMES: readonly string[] = ['general_only', 'personal_only', 'interpolate', 'stacking', 'override'];

/** `stacking` for FUSION_STRATEGY_STACKING. */
export function strategyName(strategy: FusionStrategy): string {
  const index = STRATEGIES.indexOf(strategy);
  return index >= 0 ? STRATEGY_NAMES[index]! : `unknown(${strategy})`;
}

/** Accepts `stacking`, `STACKING`, `personal-only`, `FUSION_STRATEGY_STACKING`; undefined when unknown. */
export function parseStrategyName(text: string): FusionStrategy | undefined {
  const key = text
    .trim()
    .toLowerCase()
    .replace(/-/g, '_')
    .replace(/^fusion_strategy_/, '');
  const index = STRATEGY_NAMES.indexOf(key);
  return index >= 0 ? STRATEGIES[index] : undefined;
}

export function isStrategy(value: number): value is FusionStrategy {
  return STRATEGIES.includes(value as FusionStrategy);
}

/** A strategy's parameters, resolved for one tenant. */
export interface FusionPolicy {
  readonly strategy: FusionStrategy;
  readonly interpolation: { readonly k: number; readonly maxWeight: number };
  readonly override: { readonly threshold: number; readonly minExamples: number };
}

export interface TenantPolicyOverrides {
  readonly strategy?: FusionStrategy | undefined;
  readonly interpolation?: { readonly k?: number | undefined; readonly maxWeight?: number | undefined } | undefined;
  readonly override?: { readonly threshold?: number | undefined; readonly minExamples?: number | undefined } | undefined;
}

function defined<T extends object>(o: T | undefined): Partial<T> {
  return Object.fromEntries(Object.entries(o ?? {}).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** The defaults with the tenant's entry laid over them key by key. */
export function resolvePolicy(defaults: FusionPolicy, overrides: TenantPolicyOverrides | undefined): FusionPolicy {
  if (!overrides) return defaults;
  return {
    strategy: overrides.strategy ?? defaults.strategy,
    interpolation: { ...defaults.interpolation, ...defined(overrides.interpolation) },
    override: { ...defaults.override, ...defined(overrides.override) },
  };
}

/**
 * The strategy a request asks for: its own choice, or the tenant's default when it leaves it
 * UNSPECIFIED. An unknown value is the caller's mistake, named with the accepted ones.
 */
export function requestedStrategy(requested: number | undefined, tenantDefault: FusionStrategy, field = 'options.strategy'): FusionStrategy {
  if (requested === undefined || requested === FusionStrategy.FUSION_STRATEGY_UNSPECIFIED) return tenantDefault;
  if (isStrategy(requested)) return requested;
  throw new InvalidArgumentError(
    `${field}: unknown strategy ${requested}; use one of ${STRATEGIES.map((s) => `${v1.fusionStrategyToJSON(s)} (${s})`).join(', ')}, or leave it unset for the tenant's default`,
    { field },
  );
}

/** Whether a strategy needs the personal model at all (GENERAL_ONLY does not consult it). */
export function needsPersonal(strategy: FusionStrategy): boolean {
  return strategy !== FusionStrategy.FUSION_STRATEGY_GENERAL_ONLY;
}
