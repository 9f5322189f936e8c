import { esc, num } from './plot.js';
import { FRESHNESS_P99_GOAL_MS, type UpdatesRecord } from './updates-record.js';
import { BLUE, GREEN, GREY, MARGIN, ORANGE, PANEL_W, RED, ROW_H, WIDTH, cdfPoints, xyPanel } from './xy.js';

/**
 * Four panels: the freshness CDF with the goal, freshness over the window, feedback accepted per
 * second against the offered rate, and the updater's backlog from warm-up to drained.
 */
export function renderUpdatesSvg(r: UpdatesRecord, title: string): string {
  const top = 60;
  const height = top + 2 * ROW_H;
  const goalMs = FRESHNESS_P99_GOAL_MS;
  const fresh = r.freshness.series.map(([, ms]) => ms);
  const freshMax = Math.max(goalMs * 1.5, ...fresh);
  const freshMin = Math.max(1, Math.min(goalMs / 100, ...fresh));
  const left = MARGIN.left;
  const right = MARGIN.left + PANEL_W + MARGIN.right + MARGIN.left;
  const row = (i: number) => top + i * ROW_H + MARGIN.top;
  const perSecond = r.feedback.per_second.map((n, i) => [i + 0.5, n] as const);
  const pending = r.updater.pending_series;
  const pendingMax = Math.max(10, ...pending.map(([, n]) => n));
  const tMin = Math.min(0, ...pending.map(([t]) => t));
  const tMax = Math.max(r.duration_s, ...pending.map(([t]) => t));
  const p99 = r.freshness_p99_ms;
  const panels = [
    xyPanel({
      x0: left,
      y0: row(0),
      title: `freshness CDF (${r.freshness.samples} samples${p99 === null ? '' : `, p50 ${num(r.freshness_p50_ms ?? 0)} ms, p99 ${num(p99)} ms`})`,
      x: { label: 'Feedback returned → Predict shows the new version (ms, log)', min: freshMin, max: freshMax, log: true },
      y: { label: 'share of samples', min: 0, max: 1, log: false },
      series: [{ color: BLUE, points: cdfPoints(fresh), style: 'steps' }],
      vlines: [{ label: `goal p99 ≤ ${num(goalMs)} ms`, value: goalMs, color: RED }],
      hlines: [{ label: 'p99', value: 0.99, color: GREY }],
    }),
    xyPanel({
      x0: right,
      y0: row(0),
      title: 'freshness over the measured window',
      x: { label: 'seconds since the window opened (at Feedback return)', min: 0, max: r.duration_s, log: false },
      y: { label: 'freshness ms (log)', min: freshMin, max: freshMax, log: true },
      series: [{ color: BLUE, points: r.freshness.series, style: 'dots' }],
      hlines: [{ label: `goal ${num(goalMs)} ms`, value: goalMs, color: RED }],
    }),
    xyPanel({
      x0: left,
      y0: row(1),
      title: `feedback accepted per second (achieved ${num(r.achieved_feedback_per_s)}/s of ${num(r.offered_feedback_per_s)}/s)`,
      x: { label: 'seconds since the window opened', min: 0, max: r.duration_s, log: false },
      y: { label: 'events/s', min: 0, max: Math.max(r.offered_feedback_per_s * 1.2, ...r.feedback.per_second), log: false },
      series: [{ color: ORANGE, points: perSecond, style: 'line' }],
      hlines: [{ label: `offered ${num(r.offered_feedback_per_s)}/s`, value: r.offered_feedback_per_s, color: GREEN }],
    }),
    xyPanel({
      x0: right,
      y0: row(1),
      title: `updater pending events (lag at end ${r.lag_at_end}, ${r.updater.drained ? `drained in ${num(r.updater.drain_seconds)} s` : 'not drained'})`,
      x: { label: 'seconds since the window opened (warm-up before 0, drain after the end)', min: tMin, max: tMax, log: false },
      y: { label: 'pending events', min: 0, max: pendingMax, log: false },
      series: [{ color: BLUE, points: pending, style: 'line' }],
      vlines: [
        { label: 'window', value: 0, color: GREY },
        { label: 'end', value: r.duration_s, color: GREY },
      ],
    }),
  ];
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="DejaVu Sans, sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${WIDTH / 2}" y="28" text-anchor="middle" font-size="18" font-weight="bold">${esc(title)}</text>`,
    ...panels,
    '</svg>',
  ].join('\n');
}

function fmt(value: number | null | undefined, digits = 1): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '-';
  if (Math.abs(value) >= 1000) return Math.round(value).toLocaleString('en-US');
  return value.toFixed(digits);
}

function kinds(counts: Readonly<Record<string, number>>): string {
  const entries = Object.entries(counts);
  return entries.length === 0 ? '' : ` (${entries.map(([k, v]) => `${k} ${v}`).join(', ')})`;
}

/** The suite's figures as a text table: the issue's four fields with the goal, then the context. */
export function formatUpdatesTable(r: UpdatesRecord): string {
  const goal = r.goals.find((g) => g.figure === 'freshness_p99_ms');
  const verdict = goal === undefined ? '' : `goal ${goal.goal}: ${goal.met === null ? 'not measured' : goal.met ? 'met' : 'NOT MET'}`;
  const f = r.freshness;
  const fb = r.feedback;
  const p = r.predict;
  const u = r.updater;
  const rows: string[][] = [
    ['freshness_p50_ms', fmt(r.freshness_p50_ms), `${f.samples} samples from ${f.probe_users} probed users, Predict every ${f.poll_ms} ms`],
    ['freshness_p99_ms', fmt(r.freshness_p99_ms), verdict],
    ['events_per_s', fmt(r.events_per_s), `applied by the updater in the ${fmt(r.duration_s, 0)} s window (${u.applied_in_window} events)`],
    [
      'lag_at_end',
      String(r.lag_at_end),
      `updater pending events when the load stopped; ${u.drained ? `all applied ${fmt(u.drain_seconds, 2)} s after` : `${u.pending_after_drain} still pending after the drain wait`}` +
        `${Object.keys(u.training_state_errors).length > 0 ? `; failed readings${kinds(u.training_state_errors)}` : ''}`,
    ],
    [
      'feedback achieved / offered per s',
      `${fmt(r.achieved_feedback_per_s)} / ${fmt(r.offered_feedback_per_s)}`,
      `over ${r.users.toLocaleString('en-US')} users; Feedback p50 ${fmt(fb.feedback_call.p50_ms, 2)} ms, p99 ${fmt(fb.feedback_call.p99_ms, 2)} ms` +
        `${fb.errors > 0 ? `; ${fb.errors} errors${kinds(fb.error_kinds)}` : ''}${fb.not_sent.overload + fb.not_sent.no_user > 0 ? `; not sent: ${fb.not_sent.overload} (too many in flight), ${fb.not_sent.no_user} (no free user)` : ''}`,
    ],
    [
      'predict per s (all)',
      fmt(r.predict_per_s),
      `background ${fmt(p.background.per_s)}/s from ${p.clients} clients (p50 ${fmt(p.background.p50_ms, 2)} ms, p99 ${fmt(p.background.p99_ms, 2)} ms), before feedback ${fmt(p.before_feedback.per_s)}/s, ` +
        `probe polls ${fmt(p.polls.per_s)}/s${p.errors > 0 ? `; ${p.errors} errors${kinds(p.error_kinds)}` : ''}`,
    ],
    ['freshness p90 / max ms', `${fmt(f.p90_ms)} / ${fmt(f.max_ms)}`, `mean ${fmt(f.mean_ms)} ms, ${fmt(f.polls_per_sample_mean, 1)} Predicts per sample, ${f.first_model_samples} first models, ${f.timed_out} not reflected within ${fmt(f.timeout_ms / 1000, 0)} s`],
    ['bench event-loop delay p99 ms', fmt(r.bench_event_loop_delay_ms.p99, 2), `max ${fmt(r.bench_event_loop_delay_ms.max, 2)} ms (the client's own lag, part of every figure)`],
  ];
  const header = ['figure', 'value', 'notes'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => (i === 1 ? c.padStart(widths[i] as number) : c.padEnd(widths[i] as number))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}
