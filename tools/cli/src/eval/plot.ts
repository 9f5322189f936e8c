import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Resvg } from '@resvg/resvg-js';
import { DIVERGENT_GOAL_FEEDBACK, DIVERGENT_GOAL_RATIO, NEUTRAL_GOAL_MARGIN } from './metrics.js';
import type { PersonalizationReport, ProfileReport } from './report.js';

// Same drawing approach as tools/bench's report/plot.ts (hand-written SVG, PNG through resvg),
// with panels of error against feedback count instead of throughput against concurrency.
// Personal is drawn wide under fused, so it shows as an outline where the two coincide.
const SERIES = [
  { key: 'error_general', label: 'general only', color: '#7f7f7f', width: 2.5 },
  { key: 'error_personal', label: 'personal only', color: '#ff7f0e', width: 4.5 },
  { key: 'error_fused', label: 'fused', color: '#1f77b4', width: 2.5 },
] as const;
const GOAL_COLOR = '#2ca02c';
const PANEL_W = 420;
const PANEL_H = 220;
const MARGIN = { left: 70, right: 30, top: 44, bottom: 50 };
const CELL_W = MARGIN.left + PANEL_W + MARGIN.right;
const CELL_H = MARGIN.top + PANEL_H + MARGIN.bottom;
const COLUMNS = 2;
const TOP = 84;

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Ticks from 0 with a 1, 2, 2.5 or 5 × 10^k step, about five, covering `max`. */
export function niceTicks(max: number): number[] {
  if (!(max > 0)) return [0, 1];
  const raw = max / 5;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 2.5, 5, 10].find((m) => m * p >= raw) ?? 10) * p;
  const ticks: number[] = [];
  for (let t = 0; t < max + step * 0.999; t += step) ticks.push(Math.round(t * 1e9) / 1e9);
  return ticks;
}

function label(value: number): string {
  return `${Number(value.toFixed(2))}%`;
}


/** The goal as a dashed line in percent: a level for divergent profiles, general + margin for neutral ones. */
function goalPoints(p: ProfileReport): { feedback: number; value: number }[] {
  if (p.kind === 'divergent') {
    const at = p.checkpoints.find((c) => c.feedback === DIVERGENT_GOAL_FEEDBACK);
    if (!at || at.error_general === null) return [];
    return [{ feedback: DIVERGENT_GOAL_FEEDBACK, value: DIVERGENT_GOAL_RATIO * at.error_general * 100 }];
  }
  return p.checkpoints.filter((c) => c.feedback > 0 && c.error_general !== null).map((c) => ({ feedback: c.feedback, value: (c.error_general! + NEUTRAL_GOAL_MARGIN) * 100 }));
}

function panel(p: ProfileReport, x0: number, y0: number): string {
  const out: string[] = [];
  const xs = p.checkpoints.map((c) => c.feedback);
  // Checkpoints are few and spread over orders of magnitude (0, 10, 50, 200): equal spacing reads best.
  const xOf = (i: number) => x0 + (xs.length <= 1 ? PANEL_W / 2 : (i / (xs.length - 1)) * PANEL_W);
  const goal = goalPoints(p);
  const values = [...p.checkpoints.flatMap((c) => SERIES.map((s) => c[s.key])).filter((v): v is number => v !== null).map((v) => v * 100), ...goal.map((g) => g.value)];
  const ticks = niceTicks(Math.max(...values, 0.5) * 1.08);
  const max = ticks[ticks.length - 1]!;
  const yOf = (v: number) => y0 + PANEL_H - (v / max) * PANEL_H;

  const verdict = p.goal.met === null ? 'goal not measured' : p.goal.met ? 'goal met' : 'goal NOT met';
  out.push(`<text x="${x0 + PANEL_W / 2}" y="${y0 - 24}" text-anchor="middle" font-size="14" font-weight="bold">${esc(`${p.profile} (${p.users.length} users): ${verdict}`)}</text>`);
  out.push(`<text x="${x0 + PANEL_W / 2}" y="${y0 - 8}" text-anchor="middle" font-size="10" fill="#555">${esc(p.goal.goal)}</text>`);
  out.push(`<rect x="${x0}" y="${y0}" width="${PANEL_W}" height="${PANEL_H}" fill="none" stroke="#333"/>`);
  for (const t of ticks) {
    const y = yOf(t);
    out.push(`<line x1="${x0}" x2="${x0 + PANEL_W}" y1="${y}" y2="${y}" stroke="#ddd"/>`);
    out.push(`<text x="${x0 - 6}" y="${y + 4}" text-anchor="end" font-size="11">${label(t)}</text>`);
  }
  xs.forEach((f, i) => {
    out.push(`<line x1="${xOf(i)}" x2="${xOf(i)}" y1="${y0}" y2="${y0 + PANEL_H}" stroke="#eee"/>`);
    out.push(`<text x="${xOf(i)}" y="${y0 + PANEL_H + 16}" text-anchor="middle" font-size="11">${f}</text>`);
  });
  out.push(`<text x="${x0 + PANEL_W / 2}" y="${y0 + PANEL_H + 36}" text-anchor="middle" font-size="12">feedback events</text>`);
  out.push(`<text transform="translate(${x0 - 52} ${y0 + PANEL_H / 2}) rotate(-90)" text-anchor="middle" font-size="12">held-out error</text>`);
  if (goal.length > 0) {
    const pts = goal.map((g) => [xOf(xs.indexOf(g.feedback)), yOf(g.value)] as const);
    // A single goal level is drawn across the panel; per-checkpoint goals as a line through them.
    const line = pts.length === 1 ? [[x0, pts[0]![1]] as const, [x0 + PANEL_W, pts[0]![1]] as const] : pts;
    out.push(`<polyline points="${line.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' ')}" fill="none" stroke="${GOAL_COLOR}" stroke-width="2" stroke-dasharray="6 4"/>`);
    if (pts.length === 1) {
      const text = `goal at ${goal[0]!.feedback}: <= ${label(goal[0]!.value)}`;
      out.push(`<text x="${x0 + PANEL_W - 6}" y="${(pts[0]![1] - 5).toFixed(1)}" text-anchor="end" font-size="11" fill="${GOAL_COLOR}">${esc(text)}</text>`);
    }
  }
  for (const s of SERIES) {
    const pts = p.checkpoints.map((c, i) => (c[s.key] === null ? undefined : ([xOf(i), yOf(c[s.key]! * 100)] as const))).filter((v) => v !== undefined);
    if (pts.length === 0) continue;
    out.push(`<polyline points="${pts.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' ')}" fill="none" stroke="${s.color}" stroke-width="${s.width}"/>`);
    for (const [x, y] of pts) out.push(`<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="${s.width / 2 + 2}" fill="${s.color}"/>`);
  }
  return out.join('\n');
}

function legend(): string {
  const items = [...SERIES.map((s) => ({ label: s.label, color: s.color, dashed: false })), { label: 'goal', color: GOAL_COLOR, dashed: true }];
  const out: string[] = [];
  let x = 40;
  for (const item of items) {
    out.push(`<line x1="${x}" x2="${x + 26}" y1="56" y2="56" stroke="${item.color}" stroke-width="3"${item.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
    out.push(`<text x="${x + 32}" y="60" font-size="12">${esc(item.label)}</text>`);
    x += 56 + item.label.length * 7;
  }
  return out.join('\n');
}

/** Error against feedback count, one panel per profile, two per row. */
export function renderSvg(report: PersonalizationReport, title: string): string {
  const rows = Math.ceil(report.profiles.length / COLUMNS);
  const width = COLUMNS * CELL_W;
  const height = TOP + rows * CELL_H;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="28" text-anchor="middle" font-size="18" font-weight="bold">${esc(title)}</text>`,
    legend(),
  ];
  report.profiles.forEach((p, i) => {
    const col = i % COLUMNS;
    const row = Math.floor(i / COLUMNS);
    parts.push(panel(p, col * CELL_W + MARGIN.left, TOP + row * CELL_H + MARGIN.top));
  });
  parts.push('</svg>');
  return parts.join('\n');
}

export function renderPng(svg: string): Buffer {
  return new Resvg(svg, { background: 'white', font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' } }).render().asPng();
}

/** Writes `svgPath` and the PNG beside it (same name, .png); returns both paths. */
export async function writePlot(svgPath: string, report: PersonalizationReport, title: string): Promise<{ svg: string; png: string }> {
  const png = svgPath.endsWith('.svg') ? `${svgPath.slice(0, -4)}.png` : `${svgPath}.png`;
  const svg = renderSvg(report, title);
  await mkdir(dirname(svgPath), { recursive: true });
  await writeFile(svgPath, svg);
  await writeFile(png, renderPng(svg));
  return { svg: svgPath, png };
}
