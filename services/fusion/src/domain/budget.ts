import { DeadlineExceededError } from '@aimass/platform';

/** How a request's deadline is shared between the stages (the `fusion.budget` config). */
export interface BudgetConfig {
  readonly minGeneralMs: number;
  readonly reserveMs: number;
  readonly personalShare: number;
  readonly minPersonalMs: number;
  readonly maxPersonalMs: number;
}

/** What the caller needs at least: the general model's minimum plus the reserve for fusion. */
export function minimumDeadlineMs(budget: BudgetConfig): number {
  return budget.minGeneralMs + budget.reserveMs;
}

/**
 * Admission: with less time left than the general model needs, no answer is possible and the
 * caller is told how much to allow instead of getting a late timeout.
 */
export function admit(remainingMs: number, budget: BudgetConfig): void {
  const needed = minimumDeadlineMs(budget);
  if (remainingMs < needed) {
    throw new DeadlineExceededError(
      `deadline too short: ${Math.max(0, Math.floor(remainingMs))} ms left when the request arrived, at least ${needed} ms are needed for the general model (set a longer deadline; 100 ms or more is comfortable)`,
    );
  }
}

/**
 * The deadline of the general model call: the caller's minus the reserve, so a general model that
 * uses all of it still leaves time to answer DEADLINE_EXCEEDED with a clear message.
 */
export function generalDeadline(deadline: number, budget: BudgetConfig): number {
  return deadline - budget.reserveMs;
}

export type PersonalBudget = { readonly ok: true; readonly ms: number } | { readonly ok: false; readonly detail: string };

/**
 * The personal stage's sub-deadline, from the time left after the general model: a share of it,
 * capped, never eating into the reserve. Below the minimum the personal model is not tried (the
 * answer falls back to general with PERSONAL_TIMEOUT), rather than a call that cannot finish.
 */
export function personalBudget(remainingMs: number, budget: BudgetConfig): PersonalBudget {
  const usable = remainingMs - budget.reserveMs;
  const ms = Math.floor(Math.min(budget.maxPersonalMs, remainingMs * budget.personalShare, usable));
  if (!Number.isFinite(remainingMs)) return { ok: true, ms: budget.maxPersonalMs };
  if (ms < budget.minPersonalMs) {
    const needed = Math.max(budget.minPersonalMs + budget.reserveMs, Math.ceil(budget.minPersonalMs / budget.personalShare));
    return {
      ok: false,
      detail: `${Math.max(0, Math.floor(remainingMs))} ms of the deadline left after the general model; the personal model needs at least ${needed} ms`,
    };
  }
  return { ok: true, ms };
}
