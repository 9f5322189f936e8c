import type { PredictionResult } from '@aimass/sdk';

/**
 * What one Predict says about the user's personal model: the version it used, no model at all
 * (fallback `no_personal_model`: version 0), or nothing to go by (the personal stage timed out,
 * failed or was skipped, so the answer cannot show whether a new version exists).
 */
export type VersionSeen = { readonly kind: 'model'; readonly version: number } | { readonly kind: 'none' } | { readonly kind: 'unknown'; readonly reason: string };

export function versionSeen(p: Pick<PredictionResult, 'provenance'>): VersionSeen {
  const personal = p.provenance.models.find((m) => m.role === 'personal');
  if (personal !== undefined) {
    const version = Number(personal.version);
    if (Number.isSafeInteger(version) && version > 0) return { kind: 'model', version };
    return { kind: 'unknown', reason: `personal model version "${personal.version}"` };
  }
  const fallback = p.provenance.fallbacks.find((f) => f.role === 'personal') ?? p.provenance.fallbacks[0];
  if (fallback?.reason === 'no_personal_model') return { kind: 'none' };
  return { kind: 'unknown', reason: fallback?.reason ?? 'no personal model in the provenance' };
}

/** The version number a Predict shows (0: no model), or undefined when it cannot tell. */
export function versionNumber(seen: VersionSeen): number | undefined {
  if (seen.kind === 'model') return seen.version;
  return seen.kind === 'none' ? 0 : undefined;
}

/**
 * Whether a Predict made after feedback reflects it: its personal model version is above the
 * version the user had before the feedback (0: no model). Only sound while the user has no other
 * feedback in flight, which the probe guarantees.
 */
export function reflects(seen: VersionSeen, baseline: number): boolean {
  return seen.kind === 'model' && seen.version > baseline;
}

/** How a Predict answered, for the tallies: `applied:<strategy>` or `fallback:<first reason>`. */
export function outcomeOf(p: Pick<PredictionResult, 'provenance'>): string {
  const first = p.provenance.fallbacks[0];
  return first === undefined ? `applied:${p.provenance.appliedStrategy}` : `fallback:${first.reason}`;
}

/**
 * Who gets the next feedback event: users 1..count uniformly, except a probed user whose last
 * event is not yet reflected (its next event would confound the measurement) and users taken
 * out of the run. A draw that lands on one of those is drawn again, so the offered rate holds.
 */
export class UserPicker {
  readonly #busy = new Set<number>();
  readonly #retired = new Set<number>();

  constructor(
    private readonly count: number,
    private readonly random: () => number,
    private readonly maxDraws = 64,
  ) {}

  /** A user for the next event, or undefined when the draws found none available. */
  pick(): number | undefined {
    for (let i = 0; i < this.maxDraws; i++) {
      const rank = 1 + Math.floor(this.random() * this.count);
      if (!this.#busy.has(rank) && !this.#retired.has(rank)) return rank;
    }
    return undefined;
  }

  /** The user gets no further event until `release`. */
  hold(rank: number): void {
    this.#busy.add(rank);
  }

  release(rank: number): void {
    this.#busy.delete(rank);
  }

  /** The user gets no further event in this run (its state is no longer known for sure). */
  retire(rank: number): void {
    this.#retired.add(rank);
    this.#busy.delete(rank);
  }

  get retiredCount(): number {
    return this.#retired.size;
  }
}

/** The bench's count of accepted feedback and the updater's pending events, read at one moment. */
export interface Tally {
  readonly accepted: number;
  readonly pending: number;
}

/**
 * Events the updater applied between two readings: what had been accepted and was no longer
 * pending at the end, minus the same at the start. Feedback calls in flight at a reading (stored
 * in the stream, not yet answered) shift it by at most their number.
 */
export function appliedBetween(start: Tally, end: Tally): number {
  return end.accepted - end.pending - (start.accepted - start.pending);
}

/** Counts of `times` (ms) per whole second from `startMs`, over `seconds` seconds. */
export function perSecond(times: readonly number[], startMs: number, seconds: number): number[] {
  const out = new Array<number>(Math.max(0, Math.ceil(seconds))).fill(0);
  for (const t of times) {
    const i = Math.floor((t - startMs) / 1000);
    if (i >= 0 && i < out.length) out[i] = (out[i] as number) + 1;
  }
  return out;
}
