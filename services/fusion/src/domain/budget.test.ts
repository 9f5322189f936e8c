import { DeadlineExceededError } from '@aimass/platform';
import { describe, expect, it } from 'vitest';
import { admit, generalDeadline, minimumDeadlineMs, personalBudget, type BudgetConfig } from './budget.js';

const budget: BudgetConfig = { minGeneralMs: 5, reserveMs: 3, personalShare: 0.8, minPersonalMs: 2, maxPersonalMs: 1000 };

describe('deadline budget', () => {
  it('admits a request with time for the general model and the reserve', () => {
    expect(minimumDeadlineMs(budget)).toBe(8);
    expect(() => admit(8, budget)).not.toThrow();
    expect(() => admit(Infinity, budget)).not.toThrow();
  });

  it('refuses a deadline too short for any model, saying how much is needed', () => {
    expect(() => admit(7.6, budget)).toThrow(DeadlineExceededError);
    expect(() => admit(7.6, budget)).toThrow(/7 ms left when the request arrived, at least 8 ms are needed/);
    expect(() => admit(-5, budget)).toThrow(/0 ms left/);
  });

  it('keeps the reserve back from the general call', () => {
    expect(generalDeadline(10_000, budget)).toBe(9_997);
  });

  it("gives the personal model its share of what is left, capped, never the reserve", () => {
    expect(personalBudget(100, budget)).toEqual({ ok: true, ms: 80 });
    expect(personalBudget(10_000, budget)).toEqual({ ok: true, ms: 1000 });
    expect(personalBudget(Infinity, budget)).toEqual({ ok: true, ms: 1000 });
    // 6 ms left: the share would be 4.8, but only 3 ms are usable without the reserve.
    expect(personalBudget(6, budget)).toEqual({ ok: true, ms: 3 });
    expect(personalBudget(1000, { ...budget, personalShare: 1, reserveMs: 0 })).toEqual({ ok: true, ms: 1000 });
  });

  it('does not try the personal model when too little is left, and says what it would need', () => {
    const res = personalBudget(4, budget);
    expect(res.ok).toBe(false);
    expect(!res.ok && res.detail).toMatch(/4 ms of the deadline left after the general model; the personal model needs at least 5 ms/);
    const share = personalBudget(20, { ...budget, personalShare: 0.05, minPersonalMs: 2 });
    expect(!share.ok && share.detail).toMatch(/needs at least 40 ms/);
  });
});
