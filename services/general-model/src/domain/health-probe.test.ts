import { describe, expect, it } from 'vitest';
import { HealthProbe, zeroInputs } from './health-probe.js';

describe('zeroInputs', () => {
  it('gives one row of zeros per input, a variable dimension as 1, with the datatype\'s element size', () => {
    const inputs = zeroInputs({
      inputs: [
        { name: 'ids', datatype: 'INT64', dims: [-1, 3] },
        { name: 'mask', datatype: 'FP16', dims: [-1, -1] },
        { name: 'fixed', datatype: 'BOOL', dims: [2, 2] },
      ],
      outputs: [],
    });
    expect(inputs.map((t) => [t.name, t.datatype, t.dims, t.bytes.byteLength])).toEqual([
      ['ids', 'INT64', [1, 3], 24],
      ['mask', 'FP16', [1, 1], 2],
      ['fixed', 'BOOL', [2, 2], 4],
    ]);
    expect(inputs.every((t) => t.bytes.every((b) => b === 0))).toBe(true);
  });
});

describe('HealthProbe', () => {
  const clock = () => {
    let t = 0;
    return { now: () => t, advance: (ms: number) => (t += ms) };
  };

  it('is healthy when the run answers and unhealthy when it fails', async () => {
    await expect(new HealthProbe({ run: async () => 'ok', ttlMs: 0 }).healthy()).resolves.toBe(true);
    await expect(new HealthProbe({ run: () => Promise.reject(new Error('broken')), ttlMs: 0 }).healthy()).resolves.toBe(false);
  });

  it('shares one run between concurrent questions and reuses the answer until it is older than the ttl', async () => {
    const c = clock();
    let outcome: 'ok' | 'fail' = 'ok';
    let release!: () => void;
    const probe = new HealthProbe({
      run: () =>
        new Promise<void>((resolve, reject) => {
          release = () => (outcome === 'ok' ? resolve() : reject(new Error('broken')));
        }),
      ttlMs: 1000,
      now: c.now,
    });
    const both = Promise.all([probe.healthy(), probe.healthy()]);
    release();
    await expect(both).resolves.toEqual([true, true]);
    expect(probe.runs).toBe(1);

    outcome = 'fail';
    c.advance(999);
    await expect(probe.healthy()).resolves.toBe(true);
    expect(probe.runs).toBe(1);

    c.advance(1);
    const again = probe.healthy();
    release();
    await expect(again).resolves.toBe(false);
    expect(probe.runs).toBe(2);
  });
});
