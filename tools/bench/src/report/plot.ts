import { Resvg } from '@resvg/resvg-js';
import type { BenchRecord, SweepPoint } from './record.js';

const COLORS = { service: '#1f77b4', naive: '#d62728', echo: '#7f7f7f', limit: '#2ca02c', bound: '#9467bd' } as const;
const PANEL_W = 520;
const PANEL_H = 250;
const MARGIN = { left: 70, right: 20, top: 40, bottom: 45 };
const ROW_H = PANEL_H + MARGIN.top + MARGIN.bottom + 10;
const WIDTH = 2 * (PANEL_W + MARGIN.left + MARGIN.right);

export function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

export function num(value: number): string {
  if (value >= 1000) return `${Math.round(value / 10) / 100}k`;
  if (value >= 10) return String(Math.round(value));
  return String(Math.round(value * 100) / 100);
}

export interface Series {
  readonly label: string;
  readonly color: string;
  readonly points: readonly SweepPoint[];
}

interface Panel {
  readonly x0: number;
  readonly y0: number;
  readonly title: string;
  readonly yLabel: string;
  readonly series: readonly Series[];
  readonly value: (p: SweepPoint) => number;
  readonly logY: boolean;
  readonly hlines: readonly HLine[];
}

/** Linear axis ticks from 0 with a 1, 2 or 5 × 10^k step, about five of them, covering `max`. */
export function niceTicks(max: number): number[] {
  if (!(max > 0)) return [0, 1];
  const raw = max / 5;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 2.5, 5, 10].find((m) => m * p >= raw) ?? 10) * p;
  const ticks: number[] = [];
  for (let t = 0; t < max + step * 0.999; t += step) ticks.push(t);
  return ticks;
}

function panel(p: Panel): string {
  const out: string[] = [];
  const concurrencies = [...new Set(p.series.flatMap((s) => s.points.map((pt) => pt.concurrency)))].sort((a, b) => a - b);
  const values = [...p.series.flatMap((s) => s.points.map(p.value)), ...p.hlines.map((h) => h.value)].filter((v) => Number.isFinite(v) && v > 0);
  const cMin = Math.log2(concurrencies[0] ?? 1);
  const cMax = Math.log2(concurrencies[concurrencies.length - 1] ?? 2);
  const xOf = (c: number): number => p.x0 + (cMax === cMin ? PANEL_W / 2 : ((Math.log2(c) - cMin) / (cMax - cMin)) * PANEL_W);
  let yOf: (v: number) => number;
  let ticks: number[];
  if (p.logY) {
    const lo = Math.floor(Math.log10(Math.min(...values, 1)));
    const hi = Math.ceil(Math.log10(Math.max(...values, 10)));
    yOf = (v) => p.y0 + PANEL_H - ((Math.log10(Math.max(v, 10 ** lo)) - lo) / (hi - lo || 1)) * PANEL_H;
    ticks = [];
    for (let e = lo; e <= hi; e++) ticks.push(10 ** e);
  } else {
    ticks = niceTicks(Math.max(...values, 0) * 1.05);
    const max = ticks[ticks.length - 1] as number;
    yOf = (v) => p.y0 + PANEL_H - (v / max) * PANEL_H;
  }
  out.push(`<text x="${p.x0 + PANEL_W / 2}" y="${p.y0 - 14}" text-anchor="middle" font-size="14" font-weight="bold">${esc(p.title)}</text>`);
  out.push(`<rect x="${p.x0}" y="${p.y0}" width="${PANEL_W}" height="${PANEL_H}" fill="none" stroke="#333"/>`);
  for (const t of ticks) {
    const y = yOf(t);
    out.push(`<line x1="${p.x0}" x2="${p.x0 + PANEL_W}" y1="${y}" y2="${y}" stroke="#ddd"/>`);
    out.push(`<text x="${p.x0 - 6}" y="${y + 4}" text-anchor="end" font-size="11">${num(t)}</text>`);
  }
  for (const c of concurrencies) {
    const x = xOf(c);
    out.push(`<line x1="${x}" x2="${x}" y1="${p.y0}" y2="${p.y0 + PANEL_H}" stroke="#eee"/>`);
    out.push(`<text x="${x}" y="${p.y0 + PANEL_H + 16}" text-anchor="middle" font-size="11">${c}</text>`);
  }
  out.push(`<text x="${p.x0 + PANEL_W / 2}" y="${p.y0 + PANEL_H + 34}" text-anchor="middle" font-size="12">concurrent clients</text>`);
  out.push(`<text transform="translate(${p.x0 - 52} ${p.y0 + PANEL_H / 2}) rotate(-90)" text-anchor="middle" font-size="12">${esc(p.yLabel)}</text>`);
  for (const h of p.hlines) {
    if (!(Number.isFinite(h.value) && h.value > 0)) continue;
    const y = yOf(h.value);
    out.push(`<line x1="${p.x0}" x2="${p.x0 + PANEL_W}" y1="${y}" y2="${y}" stroke="${h.color}" stroke-width="2" stroke-dasharray="6 4"/>`);
    out.push(`<text x="${p.x0 + PANEL_W - 6}" y="${y - 5}" text-anchor="end" font-size="11" fill="${h.color}">${esc(h.label)} ${num(h.value)}</text>`);
  }
  for (const s of p.series) {
    const pts = s.points.filter((pt) => Number.isFinite(p.value(pt)) && p.value(pt) > 0).map((pt) => [xOf(pt.concurrency), yOf(p.value(pt))] as const);
    if (pts.length === 0) continue;
    out.push(`<polyline points="${pts.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' ')}" fill="none" stroke="${s.color}" stroke-width="2.5"/>`);
    for (const [x, y] of pts) out.push(`<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="3.5" fill="${s.color}"/>`);
  }
  return out.join('\n');
}

/** One line of the legend. */
export interface LegendItem {
  readonly label: string;
  readonly color: string;
  readonly dashed: boolean;
}

const GENERAL_LEGEND: readonly LegendItem[] = [
  { label: 'service (gRPC, batching)', color: COLORS.service, dashed: false },
  { label: 'naive grpc-js server', color: COLORS.naive, dashed: false },
  { label: 'echo server (transport limit)', color: COLORS.echo, dashed: false },
  { label: 'onnxruntime in-process, best batch', color: COLORS.limit, dashed: true },
  { label: 'half-load p99 bound', color: COLORS.bound, dashed: true },
];

function legend(items: readonly LegendItem[]): string {
  const out: string[] = [];
  let x = 40;
  for (const item of items) {
    out.push(`<line x1="${x}" x2="${x + 26}" y1="52" y2="52" stroke="${item.color}" stroke-width="3"${item.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
    out.push(`<text x="${x + 32}" y="56" font-size="12">${esc(item.label)}</text>`);
    x += 48 + item.label.length * 6.6;
  }
  return out.join('\n');
}

/** One row of the plot: throughput and p99 against concurrency for the same series. */
export interface PlotRow {
  readonly name: string;
  readonly series: readonly Series[];
  readonly throughputLines?: readonly HLine[];
  /** Title of the latency panel (default `<name>: p99 latency`). */
  readonly latencyTitle?: string;
  readonly latencyLines?: readonly HLine[];
}

export interface HLine {
  readonly label: string;
  readonly value: number;
  readonly color: string;
}

/** Rows of two panels (throughput, p99 on a log scale) against concurrency, with a legend on top. */
export function renderSweepSvg(title: string, legendItems: readonly LegendItem[], rows: readonly PlotRow[]): string {
  const top = 80;
  const height = top + rows.length * ROW_H;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="DejaVu Sans, sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${WIDTH / 2}" y="28" text-anchor="middle" font-size="18" font-weight="bold">${esc(title)}</text>`,
    legend(legendItems),
  ];
  rows.forEach((row, i) => {
    const y0 = top + i * ROW_H + MARGIN.top;
    parts.push(
      panel({ x0: MARGIN.left, y0, title: `${row.name}: throughput`, yLabel: 'rows/s', series: row.series, value: (p) => p.rows_per_s, logY: false, hlines: row.throughputLines ?? [] }),
      panel({
        x0: MARGIN.left + PANEL_W + MARGIN.right + MARGIN.left,
        y0,
        title: row.latencyTitle ?? `${row.name}: p99 latency`,
        yLabel: 'p99 ms (log)',
        series: row.series,
        value: (p) => p.p99_ms,
        logY: true,
        hlines: row.latencyLines ?? [],
      }),
    );
  });
  parts.push('</svg>');
  return parts.join('\n');
}

/** Throughput and p99 against concurrency, one row of two panels per model. */
export function renderSvg(records: readonly BenchRecord[], title: string): string {
  const rows = records.map((r): PlotRow => {
    const series: Series[] = [
      { label: 'service', color: COLORS.service, points: r.sweep.service },
      { label: 'naive server', color: COLORS.naive, points: r.sweep.naive },
    ];
    if (r.sweep.echo) series.push({ label: 'echo (limit)', color: COLORS.echo, points: r.sweep.echo });
    return {
      name: r.model,
      series,
      throughputLines: r.limit_kind === 'onnxruntime' ? [{ label: 'onnxruntime best batch:', value: r.limit_rows_per_s, color: COLORS.limit }] : [],
      latencyTitle: `${r.model}: p99 latency (half load: service ${num(r.p99_ms_half_load)} ms, echo ${num(r.echo_p99_ms_half_load)} ms)`,
      latencyLines: [{ label: 'half-load p99 bound (ms):', value: r.p99_bound_ms, color: COLORS.bound }],
    };
  });
  return renderSweepSvg(title, GENERAL_LEGEND, rows);
}

export function renderPng(svg: string): Buffer {
  return new Resvg(svg, { background: 'white', font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' } }).render().asPng();
}
