import { esc, num } from './plot.js';
import { CONSENT_OVERHEAD_P50_GOAL_MS, ERASURE_P99_GOAL_MS, type PrivacyRecord } from './privacy-record.js';
import { BLUE, GREY, MARGIN, ORANGE, PANEL_W, RED, ROW_H, WIDTH, cdfPoints, xyPanel } from './xy.js';

/** Two panels: Predict latency CDFs with enforcement on and off, and the erasure completion CDF with its goal. */
export function renderPrivacySvg(r: PrivacyRecord, title: string): string {
  const top = 60;
  const height = top + ROW_H;
  const left = MARGIN.left;
  const right = MARGIN.left + PANEL_W + MARGIN.right + MARGIN.left;
  const y0 = top + MARGIN.top;
  const lat = [...r.predict.cdf_on, ...r.predict.cdf_off].filter((v) => v > 0);
  const latMin = Math.max(0.1, Math.min(...lat));
  const latMax = Math.max(...lat, 1);
  const quantilePoints = (q: readonly number[]) => q.map((v, i) => [v, (i + 0.5) / q.length] as [number, number]);
  const erasures = r.erasure.samples.filter((v) => v > 0);
  const eMax = Math.max(ERASURE_P99_GOAL_MS * 1.2, ...erasures);
  const eMin = Math.max(1, Math.min(ERASURE_P99_GOAL_MS / 1000, ...erasures));
  const panels = [
    xyPanel({
      x0: left,
      y0,
      title: `Predict latency (p50 on ${num(r.predict.on.p50_ms)} ms, off ${num(r.predict.off.p50_ms)} ms: +${num(r.consent_overhead_p50_ms)} ms)`,
      x: { label: 'ms (log)', min: latMin, max: latMax, log: true },
      y: { label: 'share of calls', min: 0, max: 1, log: false },
      series: [
        { color: BLUE, points: quantilePoints(r.predict.cdf_on), style: 'line' },
        { color: ORANGE, points: quantilePoints(r.predict.cdf_off), style: 'line' },
      ],
      hlines: [{ label: 'p50', value: 0.5, color: GREY }],
    }),
    xyPanel({
      x0: right,
      y0,
      title: `Erase → complete receipt (${r.erasure.erased} users, p99 ${num(r.erasure_p99_ms)} ms)`,
      x: { label: 'ms (log)', min: eMin, max: eMax, log: true },
      y: { label: 'share of erasures', min: 0, max: 1, log: false },
      series: [{ color: BLUE, points: cdfPoints(erasures), style: 'steps' }],
      vlines: [{ label: `goal p99 ≤ ${num(ERASURE_P99_GOAL_MS)} ms`, value: ERASURE_P99_GOAL_MS, color: RED }],
      hlines: [{ label: 'p99', value: 0.99, color: GREY }],
    }),
  ];
  const legend = [
    `<line x1="40" x2="66" y1="44" y2="44" stroke="${BLUE}" stroke-width="3"/><text x="72" y="48" font-size="12">consent enforced, data sealed (on)</text>`,
    `<line x1="300" x2="326" y1="44" y2="44" stroke="${ORANGE}" stroke-width="3"/><text x="332" y="48" font-size="12">no privacy service (off)</text>`,
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

export function formatPrivacyTable(r: PrivacyRecord): string {
  const rows: Array<[string, string, string]> = [
    ['figure', 'value', 'goal'],
    ['erasure completion p99', `${num(r.erasure_p99_ms)} ms`, `<= ${ERASURE_P99_GOAL_MS} ms ${mark(r.goals[0]?.met)}`],
    ['erasure completion p50', `${num(r.erasure.completion_ms.p50)} ms`, ''],
    ['Erase call p50', `${num(r.erasure.erase_call_ms.p50)} ms`, ''],
    ['erasures failed', String(r.erasure.failures), ''],
    ['consent overhead p50', `${num(r.consent_overhead_p50_ms)} ms`, `<= ${CONSENT_OVERHEAD_P50_GOAL_MS} ms ${mark(r.goals[1]?.met)}`],
    ['Predict p50 on / off', `${num(r.predict.on.p50_ms)} / ${num(r.predict.off.p50_ms)} ms`, ''],
    ['Predict p99 on / off', `${num(r.predict.on.p99_ms)} / ${num(r.predict.off.p99_ms)} ms`, ''],
    ['Predict clients (overhead)', String(r.predict.clients), ''],
    ['Predict calls on / off', `${r.predict.on.calls} / ${r.predict.off.calls} (errors ${r.predict.on.errors} / ${r.predict.off.errors})`, ''],
    ...Object.keys(r.predict.stage_p50_ms.on).map((stage): [string, string, string] => [
      `  stage ${stage} p50 on / off`,
      `${num(r.predict.stage_p50_ms.on[stage] ?? Number.NaN)} / ${num(r.predict.stage_p50_ms.off[stage] ?? Number.NaN)} ms`,
      '',
    ]),
    ['Predict p99 during erasures', `${num(r.erasure.predict_under_erasure.p99_ms)} ms`, ''],
  ];
  const w = [0, 1, 2].map((i) => Math.max(...rows.map((row) => row[i]!.length)));
  return rows.map((row) => row.map((c, i) => c.padEnd(w[i]!)).join('  ').trimEnd()).join('\n');
}

function mark(met: boolean | null | undefined): string {
  return met === true ? '(met)' : met === false ? '(NOT met)' : '';
}
