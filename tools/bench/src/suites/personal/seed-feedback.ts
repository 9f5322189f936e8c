import { performance } from 'node:perf_hooks';
import { callUnary, createClient, tenantMetadata } from '@aimass/platform';
import { v1 } from '@aimass/proto';
import { userIdOf } from '../../load/users.js';
import type { BenchMail } from './mails.js';
import { feedbackMails, labelFor, type SimUser } from './population.js';

export interface SeedResult {
  readonly feedbackCalls: number;
  readonly usersWithModel: number;
  readonly seconds: number;
  /** Feedback calls answered `duplicate: true` (a re-run on the same fusion store). */
  readonly duplicates: number;
}

export interface SeedOptions {
  readonly address: string;
  readonly tenant: string;
  readonly userPrefix: string;
  readonly users: readonly SimUser[];
  readonly mails: readonly BenchMail[];
  /** Users seeded at once (each user's feedback is sent in order, one call at a time). */
  readonly parallelUsers: number;
  readonly onProgress: (line: string) => void;
  readonly progressEveryMs?: number;
}

function clock(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/**
 * Gives each user's feedback through the public API: InferenceService.Feedback with the mail as
 * input, the user's label and an idempotency key, one call per example in order (as a person
 * labels mail one at a time). Fusion classifies each mail and trains the user's model on
 * personal-model: the models come out exactly as production makes them.
 */
export async function seedFeedback(options: SeedOptions): Promise<SeedResult> {
  const client = createClient(v1.InferenceServiceClient, { address: options.address });
  const queue = options.users.filter((u) => u.examples > 0);
  const total = queue.reduce((sum, u) => sum + u.examples, 0);
  const started = performance.now();
  let calls = 0;
  let duplicates = 0;
  let lastReport = started;
  const every = options.progressEveryMs ?? 5000;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < queue.length) {
      const user = queue[next++] as SimUser;
      const userId = userIdOf(options.userPrefix, user.rank);
      const mails = feedbackMails(user.rank, user.examples, options.mails);
      for (let k = 0; k < mails.length; k++) {
        const mail = mails[k] as BenchMail;
        const res = await callUnary(
          client.feedback.bind(client),
          {
            userId,
            target: { $case: 'input', value: mail.input },
            label: labelFor(user.taste, mail),
            idempotencyKey: `bench-seed-${user.rank}-${k}`,
            occurredAt: undefined,
          },
          { deadline: new Date(Date.now() + 30_000), metadata: tenantMetadata(options.tenant) },
        );
        if (!res.accepted) throw new Error(`fusion did not accept feedback ${k} of user ${user.rank}`);
        if (res.duplicate) duplicates++;
        calls++;
        const now = performance.now();
        if (now - lastReport >= every) {
          lastReport = now;
          const rate = calls / ((now - started) / 1000);
          options.onProgress(`feedback: ${calls.toLocaleString('en-US')} / ${total.toLocaleString('en-US')} calls, ${Math.round(rate)}/s, ETA ${clock((total - calls) / rate)}`);
        }
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, options.parallelUsers) }, worker));
  } finally {
    client.close();
  }
  return { feedbackCalls: calls, usersWithModel: queue.length, seconds: (performance.now() - started) / 1000, duplicates };
}
