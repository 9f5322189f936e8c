import { esc, niceTicks, num } from './plot.js';

// Panels of x/y data (CDFs, time series) shared by the suites' SVG reports.

export const BLUE = '#1f77b4';
export const ORANGE = '#ff7f0e';
export const GREEN = '#2ca02c';
export const RED = '#d62728';
export const GREY = '#7f7f7f';

export const PANEL_W = 520;
export const PANEL_H = 250;
export const MARGIN = { left: 70, right: 20, top: 40, bottom: 45 };
export const ROW_H = PANEL_H + MARGIN.top + MARGIN.bottom + 10;
export const WIDTH = 2 * (PANEL_W + MARGIN.left + MARGIN.right);

export interface Axis {
  readonly label: string;
  readonly min: number;
  readonly max: number;
  readonly log: boolean;
}

export interface XySeries {
  readonly color: string;
  readonly points: readonly (readonly [number, number])[];
  readonly style: 'line' | 'dots' | 'steps';
}

export interface Marker {
  readonly label: string;
  readonly value: number;
  readonly color: string;
}

export interface XyPanel {
  readonly x0: number;
  readonly y0: number;
  readonly title: string;
  readonly x: Axis;
  readonly y: Axis;
  readonly series: readonly XySeries[];
  readonly hlines?: readonly Marker[];
  readonly vlines?: readonly Marker[];
}

function ticksOf(axis: Axis): number[] {
  if (!axis.log) return niceTicks(axis.max).filter((t) => t >= axis.min);
  const out: number[] = [];
  for (let e = Math.floor(Math.log10(axis.min)); e <= Math.ceil(Math.log10(axis.max)); e++) out.push(10 ** e);
  return out;
}

/** The axis's extent: a log axis spans whole decades, a linear one ends on a tick. */
function extentOf(axis: Axis): { lo: number; hi: number } {
  if (axis.log) return { lo: 10 ** Math.floor(Math.log10(axis.min)), hi: 10 ** Math.ceil(Math.log10(axis.max)) };
  const ticks = niceTicks(axis.max);
  return { lo: axis.min, hi: Math.max(axis.max, ticks[ticks.length - 1] as number) };
}

function scale(axis: Axis, from: number, length: number, flip: boolean): (v: number) => number {
  const { lo, hi } = extentOf(axis);
  const f = axis.log
    ? (v: number) => (Math.log10(Math.min(hi, Math.max(v, lo))) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo) || 1)
    : (v: number) => (Math.min(hi, Math.max(v, lo)) - lo) / (hi - lo || 1);
  return flip ? (v) => from + length - f(v) * length : (v) => from + f(v) * length;
}

export function xyPanel(p: XyPanel): string {
  const out: string[] = [];
  const xOf = scale(p.x, p.x0, PANEL_W, false);
  const yOf = scale(p.y, p.y0, PANEL_H, true);
  out.push(`<text x="${p.x0 + PANEL_W / 2}" y="${p.y0 - 14}" text-anchor="middle" font-size="14" font-weight="bold">${esc(p.title)}</text>`);
  out.push(`<rect x="${p.x0}" y="${p.y0}" width="${PANEL_W}" height="${PANEL_H}" fill="none" stroke="#333"/>`);
  for (const t of ticksOf(p.y)) {
    const y = yOf(t);
    out.push(`<line x1="${p.x0}" x2="${p.x0 + PANEL_W}" y1="${y}" y2="${y}" stroke="#ddd"/>`);
    out.push(`<text x="${p.x0 - 6}" y="${y + 4}" text-anchor="end" font-size="11">${num(t)}</text>`);
  }
  for (const t of ticksOf(p.x)) {
    const x = xOf(t);
    out.push(`<line x1="${x}" x2="${x}" y1="${p.y0}" y2="${p.y0 + PANEL_H}" stroke="#eee"/>`);
    out.push(`<text x="${x}" y="${p.y0 + PANEL_H + 16}" text-anchor="middle" font-size="11">${num(t)}</text>`);
  }
  out.push(`<text x="${p.x0 + PANEL_W / 2}" y="${p.y0 + PANEL_H + 34}" text-anchor="middle" font-size="12">${esc(p.x.label)}</text>`);
  out.push(`<text transform="translate(${p.x0 - 52} ${p.y0 + PANEL_H / 2}) rotate(-90)" text-anchor="middle" font-size="12">${esc(p.y.label)}</text>`);
  for (const h of p.hlines ?? []) {
    const y = yOf(h.value);
    out.push(`<line x1="${p.x0}" x2="${p.x0 + PANEL_W}" y1="${y}" y2="${y}" stroke="${h.color}" stroke-width="2" stroke-dasharray="6 4"/>`);
    out.push(`<text x="${p.x0 + PANEL_W - 6}" y="${y - 5}" text-anchor="end" font-size="11" fill="${h.color}">${esc(h.label)}</text>`);
  }
  for (const v of p.vlines ?? []) {
    const x = xOf(v.value);
    out.push(`<line x1="${x}" x2="${x}" y1="${p.y0}" y2="${p.y0 + PANEL_H}" stroke="${v.color}" stroke-width="2" stroke-dasharray="6 4"/>`);
    out.push(`<text x="${x + 4}" y="${p.y0 + 14}" font-size="11" fill="${v.color}">${esc(v.label)}</text>`);
  }
  for (const s of p.series) {
    const pts = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)).map(([x, y]) => [xOf(x), yOf(y)] as const);
    if (pts.length === 0) continue;
    if (s.style === 'dots') {
      for (const [x, y] of pts) out.push(`<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="2" fill="${s.color}" fill-opacity="0.6"/>`);
      continue;
    }
    const path: string[] = [];
    pts.forEach(([x, y], i) => {
      if (s.style === 'steps' && i > 0) path.push(`${x.toFixed(1)},${(pts[i - 1] as readonly [number, number])[1].toFixed(1)}`);
      path.push(`${x.toFixed(1)},${y.toFixed(1)}`);
    });
    out.push(`<polyline points="${path.join(' ')}" fill="none" stroke="${s.color}" stroke-width="2"/>`);
  }
  return out.join('\n');
}

/** Ascending samples as the points of their empirical CDF. */
export function cdfPoints(values: readonly number[]): [number, number][] {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.map((v, i) => [v, (i + 1) / sorted.length]);
}
