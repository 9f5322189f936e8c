import { renderSweepSvg, type LegendItem } from './plot.js';
import type { ContenderFigures, PersonalRecord } from './personal-record.js';

const FUSED = '#ff7f0e';
const GENERAL = '#1f77b4';

const LEGEND: readonly LegendItem[] = [
  { label: 'general-only: Classify on general-model', color: GENERAL, dashed: false },
  { label: 'fused: Predict on fusion (general + personal + fusion)', color: FUSED, dashed: false },
];

/** Throughput and p99 against concurrency, fused vs general-only (one row; none without the fusion part). */
export function renderPersonalSvg(record: PersonalRecord, title: string): string {
  const f = record.fusion;
  const rows =
    f === null
      ? []
      : [
          {
            name: 'fused vs general-only',
            series: [
              { label: 'general-only', color: GENERAL, points: f.sweep.general_only },
              { label: 'fused', color: FUSED, points: f.sweep.fused },
            ],
            latencyTitle: `p99 latency (at ${f.headline_concurrency}: fused ${f.fused.p99_ms.toFixed(1)} ms, general-only ${f.general_only.p99_ms.toFixed(1)} ms)`,
          },
        ];
  return renderSweepSvg(title, LEGEND, rows);
}

function fmt(value: number | null | undefined, digits = 1): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '-';
  if (Math.abs(value) >= 1000) return Math.round(value).toLocaleString('en-US');
  return value.toFixed(digits);
}

function throughputLine(name: string, c: ContenderFigures): string[] {
  return [`${name} rows/s @${c.concurrency}`, fmt(c.rows_per_s), `p50 ${fmt(c.p50_ms, 2)} ms, p99 ${fmt(c.p99_ms, 2)} ms${c.errors > 0 ? `, ${c.errors} errors` : ''}`];
}

/** The suite's figures as a text table: the issue's four fields with their goals, then the raw figures. */
export function formatPersonalTable(r: PersonalRecord): string {
  const goalOf = (figure: string) => r.goals.find((g) => g.figure === figure);
  const verdict = (figure: string): string => {
    const g = goalOf(figure);
    if (g === undefined) return '';
    return `goal ${g.goal}: ${g.met === null ? 'not measured' : g.met ? 'met' : 'NOT MET'}`;
  };
  const rows: string[][] = [
    ['fused_vs_general_throughput', fmt(r.fused_vs_general_throughput, 3), verdict('fused_vs_general_throughput')],
    ['cache_hit_ratio', fmt(r.cache_hit_ratio, 4), r.store ? `Zipf s=${r.store.traffic_zipf_s} over ${r.store.users.toLocaleString('en-US')} users, cache ${(r.store.cache.max_bytes / 2 ** 20).toFixed(0)} MiB` : ''],
    ['cold_load_p99_ms', fmt(r.cold_load_p99_ms, 3), verdict('cold_load_p99_ms')],
    ['bytes_per_model', fmt(r.bytes_per_model, 0), r.store ? `version document; parameters ${fmt(r.store.bytes_per_model.parameters_mean, 0)}, SQLite file / users ${fmt(r.store.bytes_per_model.file_per_user, 0)}` : ''],
  ];
  if (r.fusion) {
    const f = r.fusion;
    rows.push(throughputLine('general-only', f.general_only), throughputLine('fused', f.fused));
    if (f.rounds.length > 1) {
      rows.push([
        'fused / general-only per round',
        f.rounds.map((x) => fmt(x.ratio, 3)).join(' '),
        `median: round ${f.median_round} (the two lines above); rows/s ${f.rounds.map((x) => `${fmt(x.fused_rows_per_s, 0)}/${fmt(x.general_only_rows_per_s, 0)}`).join(', ')}`,
      ]);
    }
    if (f.fusion_strategy_general_only) rows.push(throughputLine('fusion, strategy GENERAL_ONLY', f.fusion_strategy_general_only));
    const stages = Object.entries(f.fused.stage_mean_ms);
    if (stages.length > 0) rows.push(['fused: fusion\'s stage times, mean ms', fmt(f.fused.stage_mean_ms.TOTAL, 2), stages.map(([k, v]) => `${k.toLowerCase()} ${fmt(v, 2)}`).join(', ')]);
    rows.push([
      'fused answers with a personal model',
      fmt(f.users.traffic_share_with_model_measured, 3),
      `expected ${fmt(f.users.traffic_share_with_model_expected, 3)}: ${f.users.with_model} of ${f.users.count} users have one (${f.users.feedback_calls} feedback calls)`,
    ]);
  }
  if (r.store) {
    const s = r.store;
    rows.push(
      throughputLine('store, Zipf', s.zipf),
      throughputLine('store, all hits', s.all_hits),
      ['store Zipf / all-hits throughput', fmt(s.zipf_vs_all_hits_throughput, 3), `all-hits hit ratio ${fmt(s.all_hits.cache_hit_ratio, 4)} over ${s.all_hits.hot_set_users.toLocaleString('en-US')} users`],
      ['cold load p50 / max ms', `${fmt(s.cold_load.p50_ms, 3)} / ${fmt(s.cold_load.max_ms, 3)}`, `parts p99: pointer ${fmt(s.cold_load.parts.pointer_read.p99_ms, 3)}, version ${fmt(s.cold_load.parts.version_read.p99_ms, 3)}, deserialize ${fmt(s.cold_load.parts.deserialize.p99_ms, 3)} ms`],
      ['store file GB', fmt(s.store.file_bytes / 1e9, 2), `${s.store.cached ? 'reused' : `built in ${fmt(s.store.build_seconds, 0)} s`}, examples mean ${fmt(s.store.examples.mean, 1)}`],
    );
  }
  const header = ['figure', 'value', 'notes'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => (i === 1 ? c.padStart(widths[i] as number) : c.padEnd(widths[i] as number))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}
