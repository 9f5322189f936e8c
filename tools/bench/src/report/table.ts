import { goalRatioOf, type BenchRecord } from './record.js';

function fmt(value: number, digits = 1): string {
  if (!Number.isFinite(value)) return '-';
  if (Math.abs(value) >= 100) return Math.round(value).toLocaleString('en-US');
  return value.toFixed(digits);
}

/** A fixed-width text table of the records, one line per model. */
export function formatTable(records: readonly BenchRecord[]): string {
  const header = ['model', 'limit', 'limit rows/s', 'service rows/s', 'naive rows/s', 'svc/limit', 'svc/naive', 'p50 ms', 'p99 ms @50%', 'p99 bound', 'echo p99 @50%', 'goal', 'met'];
  const rows = records.map((r) => [
    r.model,
    r.limit_kind,
    fmt(r.limit_rows_per_s),
    fmt(r.service_rows_per_s),
    fmt(r.naive_rows_per_s),
    fmt(r.ratio_vs_limit, 2),
    fmt(r.ratio_vs_naive, 2),
    fmt(r.p50_ms, 2),
    fmt(r.p99_ms_half_load, 2),
    `${fmt(r.p99_bound_ms, 1)} ${r.p99_bound_met ? 'ok' : 'FAIL'}`,
    fmt(r.echo_p99_ms_half_load, 2),
    r.goal,
    r.goal_met ? 'yes' : 'NO',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] as string).length)));
  const line = (cells: readonly string[]): string =>
    cells.map((c, i) => (i === 0 || i === 1 || i === 11 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join('  ').trimEnd();
  const out = [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)];
  for (const r of records) {
    if (r.rounds.length < 2) continue;
    out.push(
      `rounds at ${r.headline_concurrency} clients, service/${r.goal_against}: ${r.model} ${r.rounds.map((x) => goalRatioOf(x, r.goal_against).toFixed(3)).join(' ')} (median: round ${r.median_round})`,
    );
  }
  return out.join('\n');
}
