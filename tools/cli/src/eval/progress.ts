import type { SimulatedUser } from './profiles.js';
import type { UserCheckpoint } from './prequential.js';
import { errorRate } from './metrics.js';
import { percent } from './table.js';

/** Elapsed time as m:ss, for progress lines. */
export function clock(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/**
 * Progress on stderr, one line per event so logs stay readable: elapsed time, checkpoints done
 * of all planned, and each user's errors as they are measured.
 */
export class EvalProgress {
  readonly #started: number;
  #done = 0;
  #planned = 0;

  constructor(
    private readonly write: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
    private readonly now: () => number = () => performance.now(),
  ) {
    this.#started = now();
  }

  /** Checkpoint measurements the run will make (users × (checkpoints + the one before feedback)). */
  plan(measurements: number): void {
    this.#planned += measurements;
  }

  note(text: string): void {
    this.write(`[eval ${clock(this.now() - this.#started)}] ${text}`);
  }

  checkpoint(user: SimulatedUser, c: UserCheckpoint): void {
    this.#done++;
    const m = c.measures;
    const err = (s: 'general' | 'personal' | 'fused') => percent(m[s] ? errorRate(m[s].wrong, m[s].measured) : null);
    this.write(
      `[eval ${clock(this.now() - this.#started)} | ${this.#done}/${this.#planned}] ${user.id} @${c.feedback} feedback ` +
        `(${c.streamMails} mails, ${c.mistakes} wrong${c.settleMs === undefined ? '' : `, applied after ${Math.round(c.settleMs)} ms`}): ` +
        `general ${err('general')} personal ${err('personal')} fused ${err('fused')}`,
    );
  }
}
