import { describe, expect, it } from 'vitest';
import { chooseExecutionProviders, resolveExecutionProviders } from './index.js';

const backends = [
  { name: 'cpu', bundled: true },
  { name: 'cuda', bundled: false },
];

describe('chooseExecutionProviders', () => {
  it('keeps cuda first when its libraries are installed', () => {
    const choice = chooseExecutionProviders(['cuda', 'cpu'], backends, () => true);
    expect(choice.providers).toEqual(['cuda', 'cpu']);
    expect(choice.skipped).toEqual([]);
  });

  it('falls back to cpu with a reason when cuda libraries are absent', () => {
    const choice = chooseExecutionProviders(['CUDA'], backends, () => false);
    expect(choice.providers).toEqual(['cpu']);
    expect(choice.skipped).toHaveLength(1);
    expect(choice.skipped[0]?.name).toBe('cuda');
    expect(choice.skipped[0]?.reason).toMatch(/ONNXRUNTIME_NODE_INSTALL/);
  });

  it('names providers the runtime does not know', () => {
    const choice = chooseExecutionProviders(['rocm', 'cpu', 'cpu'], backends, () => true);
    expect(choice.providers).toEqual(['cpu']);
    expect(choice.skipped[0]?.reason).toMatch(/not supported.*cpu, cuda/);
  });
});

describe('resolveExecutionProviders (the onnxruntime-node installed here)', () => {
  it('always yields cpu, and skips cuda on a machine installed without the CUDA download', () => {
    const choice = resolveExecutionProviders(['cuda', 'cpu']);
    expect(choice.providers.at(-1)).toBe('cpu');
    if (!choice.providers.includes('cuda')) {
      expect(choice.skipped.map((s) => s.name)).toContain('cuda');
    }
  });
});
