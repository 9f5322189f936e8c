import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, extname } from 'node:path';
import { renderPng, renderSvg } from './plot.js';
import type { BenchRecord } from './record.js';

export interface WrittenReport {
  /** Undefined when the JSON was not asked for. */
  readonly json: string | undefined;
  readonly svg: string;
  readonly png: string;
}

/** The plot's paths beside the JSON file: results/general.json → results/general.svg and .png. */
export function plotPaths(jsonPath: string): { svg: string; png: string } {
  const stem = extname(jsonPath) === '.json' ? jsonPath.slice(0, -'.json'.length) : jsonPath;
  return { svg: `${stem}.svg`, png: `${stem}.png` };
}

/** Writes `figures` as JSON (unless `json` is false), and the plot as SVG and PNG beside it. */
export async function writeFigures(jsonPath: string, figures: unknown, svgText: string, options: { json?: boolean } = {}): Promise<WrittenReport> {
  await mkdir(dirname(jsonPath), { recursive: true });
  const { svg, png } = plotPaths(jsonPath);
  const json = options.json ?? true;
  if (json) await writeFile(jsonPath, `${JSON.stringify(figures, null, 2)}\n`);
  await writeFile(svg, svgText);
  await writeFile(png, renderPng(svgText));
  return { json: json ? jsonPath : undefined, svg, png };
}

/** Writes the records as a JSON array (unless `json` is false), and the plot as SVG and PNG beside it. */
export async function writeReport(jsonPath: string, records: readonly BenchRecord[], title: string, options: { json?: boolean } = {}): Promise<WrittenReport> {
  return writeFigures(jsonPath, records, renderSvg(records, title), options);
}
