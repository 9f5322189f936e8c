import { hashUniform, ZipfDistribution } from '../../load/zipf.js';
import type { BenchMail } from './mails.js';

// Salts of the per-user choices, so each is independent of the others and of the traffic.
const SALT_HAS_MODEL = 0x4d0d;
const SALT_EXAMPLES = 0xe7a3;
const SALT_TASTE = 0x7a57;
const SALT_MAIL = 0x3a11;
const SALT_VARIANT = 0x7a21;

/**
 * How much feedback users have given: `modelShare` of them have a personal model, and their
 * example counts follow Zipf's law over 1..max with exponent `s` (most users gave one or two
 * labels, a few gave hundreds).
 */
export interface FeedbackDistribution {
  readonly modelShare: number;
  readonly examplesMax: number;
  readonly examplesS: number;
}

/**
 * What a simulated user wants: `neutral` users agree with the corpus; `no-newsletters` users
 * also treat the commercial newsletters of the corpus (its hard-ham group) as unwanted.
 */
export type Taste = 'neutral' | 'no-newsletters';

export interface SimUser {
  /** Traffic rank: 1 is the user with the most requests. */
  readonly rank: number;
  /** Feedback examples given (0: no personal model). */
  readonly examples: number;
  readonly taste: Taste;
}

/** The label a user with `taste` gives `mail`. */
export function labelFor(taste: Taste, mail: Pick<BenchMail, 'group' | 'label'>): 'ham' | 'spam' {
  if (taste === 'no-newsletters' && mail.group.startsWith('hard-ham')) return 'spam';
  return mail.label;
}

/**
 * Users 1..count (by traffic rank) with their feedback. Whether a user has a model, how much
 * feedback and which taste are fixed per rank by hashes, independent of the rank itself: heavy
 * and light users are personalized alike, and every run sees the same population.
 */
export function population(count: number, feedback: FeedbackDistribution): SimUser[] {
  const examples = new ZipfDistribution(feedback.examplesMax, feedback.examplesS);
  const users: SimUser[] = [];
  for (let rank = 1; rank <= count; rank++) {
    const hasModel = hashUniform(rank, SALT_HAS_MODEL) < feedback.modelShare;
    users.push({
      rank,
      examples: hasModel ? examples.quantile(hashUniform(rank, SALT_EXAMPLES)) : 0,
      taste: hashUniform(rank, SALT_TASTE) < 0.3 ? 'no-newsletters' : 'neutral',
    });
  }
  return users;
}

/** The mails a user gave feedback on: `user.examples` of `mails`, chosen per user by hashes (repeats allowed, as people relabel). */
export function feedbackMails<M>(rank: number, examples: number, mails: readonly M[]): M[] {
  const out: M[] = [];
  for (let k = 0; k < examples; k++) out.push(mails[Math.floor(hashUniform(rank * 1024 + k, SALT_MAIL) * mails.length)] as M);
  return out;
}

/** Share of Zipf(`s`) traffic over `users` that lands on users with a model. */
export function trafficShareWithModel(users: readonly SimUser[], s: number): number {
  const zipf = new ZipfDistribution(users.length, s);
  let share = 0;
  for (const u of users) if (u.examples > 0) share += zipf.pmf(u.rank);
  return share;
}

/**
 * Which model of a pool (examples 1..max × `variants` each) stands for the user of `rank` in
 * the million-user store: its example count drawn from the same Zipf law, its variant uniform.
 */
export function poolSlot(rank: number, examples: ZipfDistribution, variants: number): { examples: number; variant: number } {
  return {
    examples: examples.quantile(hashUniform(rank, SALT_EXAMPLES)),
    variant: Math.min(variants - 1, Math.floor(hashUniform(rank, SALT_VARIANT) * variants)),
  };
}
