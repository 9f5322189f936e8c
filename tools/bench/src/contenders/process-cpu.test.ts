import { describe, expect, it } from 'vitest';
import { sweepPoint } from '../suites/common.js';
import { processCpuSeconds } from './service-process.js';

describe('processCpuSeconds', () => {
  it.runIf(process.platform === 'linux')('reads a process CPU time from /proc, and it grows with work', () => {
    const before = processCpuSeconds(process.pid);
    const until = performance.now() + 120;
    while (performance.now() < until) {
      // Busy on purpose: CPU time to measure.
    }
    const after = processCpuSeconds(process.pid);
    expect(before).toBeGreaterThan(0);
    expect(after - before).toBeGreaterThanOrEqual(0.05);
  });

  it('is NaN for a process that is not there', () => {
    expect(processCpuSeconds(undefined)).toBeNaN();
    expect(processCpuSeconds(2 ** 30)).toBeNaN();
  });
});

describe('sweepPoint', () => {
  const load = { rowsPerS: 2000, latencyMs: { p50: 1, p99: 2 }, errorCount: 0, clientCpuCores: 0.5 } as Parameters<typeof sweepPoint>[1];

  it('adds the server CPU per row when it was measured', () => {
    expect(sweepPoint(64, load, 0.7)).toMatchObject({ server_cpu_cores: 0.7, server_cpu_us_per_row: 350 });
  });

  it('leaves the server fields out when they were not', () => {
    expect(sweepPoint(64, load)).not.toHaveProperty('server_cpu_cores');
    expect(sweepPoint(64, load, Number.NaN)).not.toHaveProperty('server_cpu_us_per_row');
  });
});
