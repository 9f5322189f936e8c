import { esc, num } from './plot.js';
import { NEIGHBOUR_P99_RATIO_GOAL, type TenancyRecord } from './tenancy-record.js';
import { BLUE, GREY, MARGIN, ORANGE, PANEL_W, RED, ROW_H, WIDTH, xyPanel } from './xy.js';

/**
 * Two panels: tenant B's latency percentiles alone and with A flooding (with the goal line at
 * 2 × p99 alone), and tenant A's calls per second, accepted and refused, against its quota.
 */
export function renderTenancySvg(r: TenancyRecord, title: string): string {
  const top = 60;
  const height = top + ROW_H;
  const y0 = top + MARGIN.top;
  const right = MARGIN.left + PANEL_W + MARGIN.right + MARGIN.left;
  const pcts = (f: TenancyRecord['tenant_b']['alone']): [number, number][] =>
    [
      [50, f.p50_ms],
      [90, f.p90_ms],
      [99, f.p99_ms],
    ];
  const lat = [r.tenant_b.alone, r.tenant_b.with_flood, r.tenant_b.alone_after].flatMap((f) => [f.p50_ms, f.p99_ms]).filter((v) => v > 0);
  const goal = NEIGHBOUR_P99_RATIO_GOAL * r.tenant_b.alone.p99_ms;
  const a = r.tenant_a;
  const rates = [a.quota_per_s, a.accepted_per_s, a.refused_per_s, r.tenant_b.alone.requests_per_s, r.tenant_b.with_flood.requests_per_s].filter((v) => v > 0);
  const panels = [
    xyPanel({
      x0: MARGIN.left,
      y0,
      title: `tenant B Predict latency (p99 ratio ${num(r.neighbour_p99_ratio)})`,
      x: { label: 'percentile', min: 50, max: 100, log: false },
      y: { label: 'ms (log)', min: Math.max(0.05, Math.min(...lat) / 2), max: Math.max(goal, ...lat) * 1.5, log: true },
      series: [
        { color: BLUE, points: pcts(r.tenant_b.alone), style: 'line' },
        { color: ORANGE, points: pcts(r.tenant_b.with_flood), style: 'line' },
        { color: GREY, points: pcts(r.tenant_b.alone_after), style: 'line' },
      ],
      hlines: [{ label: `goal: p99 ≤ ${NEIGHBOUR_P99_RATIO_GOAL} × alone`, value: goal, color: RED }],
    }),
    xyPanel({
      x0: right,
      y0,
      title: `calls/s: A accepted ${num(a.accepted_per_s)}, refused ${num(a.refused_per_s)}; B ${num(r.tenant_b.with_flood.requests_per_s)}`,
      x: { label: '1 = A accepted, 2 = A refused, 3 = B alone, 4 = B flooded', min: 0, max: 5, log: false },
      y: { label: 'calls/s (log)', min: Math.max(1, Math.min(...rates) / 2), max: Math.max(...rates) * 2, log: true },
      series: [
        {
          color: BLUE,
          points: [
            [1, Math.max(1, a.accepted_per_s)],
            [2, Math.max(1, a.refused_per_s)],
            [3, Math.max(1, r.tenant_b.alone.requests_per_s)],
            [4, Math.max(1, r.tenant_b.with_flood.requests_per_s)],
          ],
          style: 'dots',
        },
      ],
      hlines: [{ label: `A's quota ${num(a.quota_per_s)}/s`, value: a.quota_per_s, color: GREY }],
    }),
  ];
  const legend = [
    `<line x1="40" x2="66" y1="44" y2="44" stroke="${BLUE}" stroke-width="3"/><text x="72" y="48" font-size="12">B alone</text>`,
    `<line x1="160" x2="186" y1="44" y2="44" stroke="${ORANGE}" stroke-width="3"/><text x="192" y="48" font-size="12">B while A floods (${a.clients} clients)</text>`,
    `<line x1="420" x2="446" y1="44" y2="44" stroke="${GREY}" stroke-width="3"/><text x="452" y="48" font-size="12">B alone again (drift check)</text>`,
  ];
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${WIDTH / 2}" y="22" text-anchor="middle" font-size="16" font-weight="bold">${esc(title)}</text>`,
    ...legend,
    ...panels,
    '</svg>',
  ].join('\n');
}

export function formatTenancyTable(r: TenancyRecord): string {
  const { tenant_a: a, tenant_b: b } = r;
  const met = r.goals[0]?.met;
  const rows: Array<[string, string, string]> = [
    ['figure', 'value', 'goal'],
    ['neighbour p99 ratio (B flooded / B alone)', num(r.neighbour_p99_ratio), `<= ${NEIGHBOUR_P99_RATIO_GOAL} ${met === true ? '(met)' : met === false ? '(NOT met)' : ''}`],
    [`B p99 alone / flooded (${num(b.offered_per_s)}/s offered)`, `${num(b.alone.p99_ms)} / ${num(b.with_flood.p99_ms)} ms`, ''],
    ['B p50 alone / flooded', `${num(b.alone.p50_ms)} / ${num(b.with_flood.p50_ms)} ms`, ''],
    ['B p99 / p50 alone again (drift check)', `${num(b.alone_after.p99_ms)} / ${num(b.alone_after.p50_ms)} ms`, ''],
    ['B throughput alone / flooded', `${num(b.alone.requests_per_s)} / ${num(b.with_flood.requests_per_s)} calls/s`, ''],
    ['B errors alone / flooded', `${sum(b.alone.errors)} / ${sum(b.with_flood.errors)}`, ''],
    [`A accepted (quota ${num(a.quota_per_s)}/s)`, `${num(a.accepted_per_s)} calls/s`, ''],
    ['A refused (RESOURCE_EXHAUSTED)', `${num(a.refused_per_s)} calls/s (${num(a.refused_share * 100)} %)`, ''],
    ['A offered vs quota', `${num(a.offered_vs_quota)} ×`, ''],
    ['A other errors', String(sum(a.other_errors)), ''],
    ['load processes (cores) B / A', `${num(b.with_flood.client_cpu_cores)} / ${num(a.client_cpu_cores)}`, ''],
    ...Object.keys(b.with_flood.service_cpu_cores).map((name): [string, string, string] => [
      `  ${name} CPU alone / flooded`,
      `${num(b.alone.service_cpu_cores[name] ?? Number.NaN)} / ${num(b.with_flood.service_cpu_cores[name] ?? Number.NaN)} cores`,
      '',
    ]),
  ];
  const w = [0, 1, 2].map((i) => Math.max(...rows.map((row) => row[i]!.length)));
  return rows.map((row) => row.map((c, i) => c.padEnd(w[i]!)).join('  ').trimEnd()).join('\n');
}

function sum(errors: Readonly<Record<string, number>>): number {
  return Object.values(errors).reduce((s, v) => s + v, 0);
}
