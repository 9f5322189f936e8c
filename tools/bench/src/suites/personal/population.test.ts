import { describe, expect, it } from 'vitest';
import { ZipfDistribution } from '../../load/zipf.js';
import { feedbackMails, labelFor, poolSlot, population, trafficShareWithModel } from './population.js';

const FEEDBACK = { modelShare: 0.3, examplesMax: 200, examplesS: 1.5 };

describe('simulated users', () => {
  it('gives a fixed share of users a model, with Zipf example counts in 1..max', () => {
    const users = population(20_000, FEEDBACK);
    expect(population(20_000, FEEDBACK)).toEqual(users);
    const withModel = users.filter((u) => u.examples > 0);
    expect(withModel.length / users.length).toBeCloseTo(0.3, 1);
    const counts = withModel.map((u) => u.examples);
    expect(Math.min(...counts)).toBe(1);
    expect(Math.max(...counts)).toBeLessThanOrEqual(200);
    const examples = new ZipfDistribution(200, 1.5);
    expect(counts.filter((n) => n === 1).length / counts.length).toBeCloseTo(examples.pmf(1), 1);
    const mean = counts.reduce((a, b) => a + b, 0) / counts.length;
    expect(mean).toBeGreaterThan(0.8 * examples.mean());
    expect(mean).toBeLessThan(1.2 * examples.mean());
  });

  it('computes the share of Zipf traffic that reaches users with a model', () => {
    const users = population(2000, FEEDBACK);
    const zipf = new ZipfDistribution(2000, 1);
    const expected = users.filter((u) => u.examples > 0).reduce((sum, u) => sum + zipf.pmf(u.rank), 0);
    expect(trafficShareWithModel(users, 1)).toBeCloseTo(expected, 12);
    expect(trafficShareWithModel(population(100, { ...FEEDBACK, modelShare: 1 }), 1)).toBeCloseTo(1, 12);
    expect(trafficShareWithModel(population(100, { ...FEEDBACK, modelShare: 0 }), 1)).toBe(0);
  });

  it('labels by taste and picks each user its own mails', () => {
    const newsletter = { group: 'hard-ham-1', label: 'ham' as const };
    expect(labelFor('neutral', newsletter)).toBe('ham');
    expect(labelFor('no-newsletters', newsletter)).toBe('spam');
    expect(labelFor('no-newsletters', { group: 'spam-2', label: 'spam' })).toBe('spam');
    const mails = Array.from({ length: 100 }, (_, i) => i);
    expect(feedbackMails(7, 20, mails)).toHaveLength(20);
    expect(feedbackMails(7, 20, mails)).toEqual(feedbackMails(7, 20, mails));
    expect(feedbackMails(7, 20, mails)).not.toEqual(feedbackMails(8, 20, mails));
  });

  it('assigns store users pool slots with the Zipf example counts', () => {
    const examples = new ZipfDistribution(200, 1.5);
    const slots = Array.from({ length: 50_000 }, (_, i) => poolSlot(i + 1, examples, 3));
    expect(slots.filter((s) => s.examples === 1).length / slots.length).toBeCloseTo(examples.pmf(1), 2);
    for (const v of [0, 1, 2]) expect(slots.filter((s) => s.variant === v).length / slots.length).toBeCloseTo(1 / 3, 1);
    expect(Math.max(...slots.map((s) => s.variant))).toBe(2);
  });
});
