/**
 * Pending bookkeeping: one training-state record per user says "this user has feedback the
 * applier has not confirmed yet". Taking an event in appends it to the history and marks the
 * record in one atomic write; the applier clears the record with a compare-and-set on the
 * record's store version once nothing above the model's watermark is left. Every mark rewrites
 * the record (a new event always has a higher sequence), so its version moves on every mark and a
 * mark that lands while the applier works makes the clear fail: the applier looks again instead
 * of losing it. The record is never deleted, because a deleted and re-created document would
 * start at version 1 again and a stale clear could then succeed against the new mark.
 */

export interface TrainingState {
  /** Feedback taken in but not yet confirmed applied. */
  readonly pending: boolean;
  /** Highest stream sequence marked. */
  readonly markedSequence: number;
  /** History entries taken in for the user. */
  readonly events: number;
  readonly lastEventAt: Date;
  /** When the applier last confirmed everything applied. */
  readonly clearedAt: Date | undefined;
}

export function markPending(previous: TrainingState | undefined, sequence: number, at: Date): TrainingState {
  return {
    pending: true,
    markedSequence: Math.max(previous?.markedSequence ?? 0, sequence),
    events: (previous?.events ?? 0) + 1,
    lastEventAt: at,
    clearedAt: previous?.clearedAt,
  };
}

export function clearPending(state: TrainingState, at: Date): TrainingState {
  return { ...state, pending: false, clearedAt: at };
}

/** Entries split at the personal model's watermark: `fresh` are above it, `applied` at or below. */
export function splitAtWatermark<T extends { readonly sequence: number }>(entries: readonly T[], watermark: number): { fresh: T[]; applied: T[] } {
  const fresh: T[] = [];
  const applied: T[] = [];
  for (const e of entries) (e.sequence > watermark ? fresh : applied).push(e);
  return { fresh, applied };
}
