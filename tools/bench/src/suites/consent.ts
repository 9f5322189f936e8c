import { PrivacyClient } from '@aimass/sdk';
import type { Progress } from '../progress.js';

/**
 * Records consent for the benchmark's users the way an integration does when its users sign up:
 * both purposes granted through the privacy service's public API, before any of their traffic.
 * The benchmarks run with consent enforced; they never switch it off to go faster.
 */
export async function grantConsent(o: {
  readonly address: string;
  readonly tenant: string;
  readonly userIds: readonly string[];
  readonly progress: Progress;
  readonly concurrency?: number;
}): Promise<void> {
  const client = new PrivacyClient({ address: o.address, tenant: o.tenant, defaultDeadlineMs: 30_000 });
  let next = 0;
  let done = 0;
  const every = Math.max(1, Math.floor(o.userIds.length / 10));
  try {
    await Promise.all(
      Array.from({ length: Math.min(o.concurrency ?? 8, o.userIds.length) }, async () => {
        while (next < o.userIds.length) {
          const userId = o.userIds[next++] as string;
          await client.grant(userId, ['personalization', 'training'], { policyVersion: 'bench-v1', source: 'bench-signup' });
          if (++done % every === 0) o.progress.note(`consent recorded for ${done.toLocaleString('en-US')} of ${o.userIds.length.toLocaleString('en-US')} users`);
        }
      }),
    );
  } finally {
    client.close();
  }
}
