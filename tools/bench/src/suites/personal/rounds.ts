import type { FusionRound } from '../../report/personal-record.js';
import { lowerMedianBy, round } from '../common.js';

/**
 * The pairs' ratios and the pair whose ratio is the median (the lower middle of an even count,
 * so two pairs never report more than the worse one shows). A pair whose general-only run
 * answered nothing has ratio 0: a broken contender must not pass as a fast one.
 */
export function medianRound(pairs: readonly { readonly generalRowsPerS: number; readonly fusedRowsPerS: number }[]): { rounds: FusionRound[]; median: FusionRound } {
  const rounds = pairs.map((p, i) => ({
    round: i + 1,
    general_only_rows_per_s: round(p.generalRowsPerS, 1),
    fused_rows_per_s: round(p.fusedRowsPerS, 1),
    ratio: p.generalRowsPerS > 0 ? round(p.fusedRowsPerS / p.generalRowsPerS, 3) : 0,
  }));
  return { rounds, median: lowerMedianBy(rounds, (r) => r.ratio) };
}
