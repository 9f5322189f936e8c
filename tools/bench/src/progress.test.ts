import { describe, expect, it } from 'vitest';
import { Progress } from './progress.js';

describe('Progress', () => {
  it('prints each step with elapsed time and an ETA from the plan', () => {
    const lines: string[] = [];
    const progress = new Progress((line) => lines.push(line));
    progress.plan(120_000);
    progress.step('medium: service, 64 clients', 60_000);
    progress.note('1000 rows/s');
    expect(lines[0]).toMatch(/^\[bench 0:00 \| ETA 2:00\] medium: service, 64 clients$/);
    expect(lines[1]).toMatch(/^\[bench 0:00\] {3}1000 rows\/s$/);
  });

  it('leaves unplanned steps out of the estimate', () => {
    const lines: string[] = [];
    const progress = new Progress((line) => lines.push(line));
    progress.plan(10_000);
    progress.step('training', 0);
    progress.step('measuring', 10_000);
    expect(lines[1]).toContain('ETA 0:10');
  });
});
