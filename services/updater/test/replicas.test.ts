import { waitUntil } from '@aimass/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningUpdater } from '../src/service.js';
import { expectExactlyOnce, waitForExamples } from './support/checks.js';
import { SlowProxy } from '@aimass/testing';
import { pseudonymizer, startStack, type Stack } from './support/stack.js';

/**
 * Two updater replicas in one consumer group, on one store (as two pods on one MongoDB). Both
 * sweep the user while the other is applying, and personal-model sits behind a slow link, so
 * both build batches for the same user from the same model version and race to write them.
 */
describe('updater replicas racing on one user', () => {
  let stack: Stack;
  let proxy: SlowProxy;
  let a: RunningUpdater;
  let b: RunningUpdater;

  beforeAll(async () => {
    stack = await startStack();
    proxy = await SlowProxy.start(stack.personal.address);
    proxy.delayMs = 25;
    const config = { apply: { batchWindowMs: 50 }, personalModel: { address: proxy.address } };
    [a, b] = await Promise.all([stack.startUpdater(config), stack.startUpdater(config)]);
    await waitUntil(
      () => a.consumer.assignedPartitions().length > 0 && b.consumer.assignedPartitions().length > 0 && a.consumer.assignedPartitions().length + b.consumer.assignedPartitions().length === 16,
      'both replicas to hold partitions',
      10_000,
    );
  });
  afterAll(async () => {
    await stack?.stop();
    await proxy?.close();
  });

  it('apply every event exactly once in effect', async () => {
    const tenant = 'race';
    const pseudonym = pseudonymizer.pseudonymize(tenant, 'rita');
    let sent = 0;
    for (let round = 0; round < 4; round++) {
      await Promise.all(Array.from({ length: 8 }, (_, i) => stack.feedback({ tenant, user: 'rita', text: round * 8 + i })));
      sent += 8;
      // Both replicas pick the user up, whichever took the events in and whatever it is doing.
      for (let i = 0; i < 3; i++) {
        await Promise.all([a.sweep({ graceMs: 0 }), b.sweep({ graceMs: 0 })]);
        await new Promise((r) => setTimeout(r, 40));
      }
    }
    await waitForExamples(stack, tenant, pseudonym, sent);
    await Promise.all([a.whenIdle(), b.whenIdle()]);
    expectExactlyOnce(await stack.versions(tenant, pseudonym), sent);

    // They did race: a write lost its compare-and-set, or found its examples already learnt.
    const [sa, sb] = [a.stats().applier, b.stats().applier];
    expect(sa.conflicts + sb.conflicts + sa.examplesSkipped + sb.examplesSkipped, JSON.stringify({ sa, sb })).toBeGreaterThan(0);
    expect(sa.examplesApplied + sb.examplesApplied).toBe(sent);
  });
});
