import { expect } from 'vitest';
import type { v1 } from '@aimass/proto';
import { waitUntil } from '@aimass/testing';
import type { Stack } from './stack.js';

/** Waits until the user's current model has learnt from `examples` examples. */
export async function waitForExamples(stack: Stack, tenant: string, pseudonym: string, examples: number, timeoutMs = 15_000): Promise<v1.PersonalModelInfo> {
  let last: v1.PersonalModelInfo | undefined;
  await waitUntil(
    async () => {
      last = await stack.model(tenant, pseudonym);
      return (last?.exampleCount ?? 0) >= examples;
    },
    `${examples} examples applied (last seen: ${last?.exampleCount ?? 0})`,
    timeoutMs,
    25,
  );
  return last!;
}

/**
 * Exactly once in effect, as the versions show it: numbered 1..n without a gap, every version
 * learnt something new (example count and watermark strictly rising), and the last one has learnt
 * from exactly `distinctEvents` examples.
 */
export function expectExactlyOnce(versions: readonly v1.PersonalModelInfo[], distinctEvents: number): void {
  expect(versions.length).toBeGreaterThan(0);
  expect(versions.map((v) => v.version)).toEqual(versions.map((_, i) => i + 1));
  for (let i = 1; i < versions.length; i++) {
    expect(versions[i]!.exampleCount, `version ${i + 1} learnt nothing new`).toBeGreaterThan(versions[i - 1]!.exampleCount);
    expect(versions[i]!.lastAppliedSequence).toBeGreaterThan(versions[i - 1]!.lastAppliedSequence);
  }
  expect(versions.at(-1)!.exampleCount).toBe(distinctEvents);
}
