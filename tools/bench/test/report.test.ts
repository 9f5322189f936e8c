import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir, type TempDir } from '@aimass/testing';
import { REQUIRED_FIELDS, type BenchRecord, type SweepPoint } from '../src/report/record.js';
import { formatTable } from '../src/report/table.js';
import { writeReport } from '../src/report/write.js';

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function points(scale: number): SweepPoint[] {
  return [1, 4, 16, 64].map((c, i) => ({ concurrency: c, rows_per_s: scale * (i + 1), p50_ms: 1 + i, p99_ms: 2 + 3 * i, errors: 0, client_cpu_cores: 0.5 }));
}

// Synthetic figures: this tests the writer, not a measurement.
function record(model: BenchRecord['model'], limitKind: BenchRecord['limit_kind']): BenchRecord {
  return {
    model,
    limit_kind: limitKind,
    limit_rows_per_s: 1000,
    service_rows_per_s: 800,
    naive_rows_per_s: 200,
    ratio_vs_limit: 0.8,
    ratio_vs_naive: 4,
    p50_ms: 1.5,
    p99_ms_half_load: 4.2,
    goal: 'service >= 0.7 x echo',
    goal_against: 'limit',
    goal_met: true,
    p99_bound_ms: 6,
    p99_bound_met: true,
    queue_delay_ms: 2,
    max_batch_size: 64,
    batch_run_ms: 2,
    half_load_rows_per_s: 400,
    half_load_errors: 0,
    echo_p50_ms_half_load: 1,
    echo_p99_ms_half_load: 3,
    service_peak_rows_per_s: 800,
    headline_concurrency: 64,
    flops_per_row: null,
    request: 'test rows',
    setup: {},
    sweep: { service: points(200), naive: points(50), ...(limitKind === 'echo' ? { echo: points(250) } : {}) },
    rounds:
      limitKind === 'echo'
        ? [
            { round: 1, limit_rows_per_s: 1000, service_rows_per_s: 800, naive_rows_per_s: 200, ratio_vs_limit: 0.8, ratio_vs_naive: 4 },
            { round: 2, limit_rows_per_s: 1250, service_rows_per_s: 750, naive_rows_per_s: 190, ratio_vs_limit: 0.6, ratio_vs_naive: 3.947 },
            { round: 3, limit_rows_per_s: 900, service_rows_per_s: 810, naive_rows_per_s: 210, ratio_vs_limit: 0.9, ratio_vs_naive: 3.857 },
          ]
        : [{ round: 1, limit_rows_per_s: 1000, service_rows_per_s: 800, naive_rows_per_s: 200, ratio_vs_limit: 0.8, ratio_vs_naive: 4 }],
    median_round: 1,
    raw_batches: [],
    environment: {},
  };
}

let dir: TempDir;
beforeAll(async () => {
  dir = await tempDir();
});
afterAll(async () => {
  await dir?.remove();
});

describe('report writer', () => {
  it('writes a JSON list with the required fields, and an SVG and PNG plot beside it', async () => {
    const records = [record('default', 'echo'), record('medium', 'onnxruntime'), record('heavy', 'onnxruntime')];
    const written = await writeReport(join(dir.path, 'out', 'general.json'), records, 'test <plot> & co');
    expect(written.png).toBe(join(dir.path, 'out', 'general.png'));

    const json = JSON.parse(await readFile(join(dir.path, 'out', 'general.json'), 'utf8')) as Record<string, unknown>[];
    expect(Array.isArray(json)).toBe(true);
    expect(json.map((r) => r.model)).toEqual(['default', 'medium', 'heavy']);
    for (const r of json) {
      for (const field of REQUIRED_FIELDS) expect(r, field).toHaveProperty(field);
      for (const field of REQUIRED_FIELDS.filter((f) => f !== 'model' && f !== 'limit_kind')) expect(typeof r[field], field).toBe('number');
      expect(['echo', 'onnxruntime']).toContain(r.limit_kind);
    }

    const png = await readFile(written.png);
    expect(png.subarray(0, 8).equals(PNG_SIGNATURE)).toBe(true);
    expect(png.length).toBeGreaterThan(5000);
    const svg = await readFile(written.svg, 'utf8');
    expect(svg).toContain('test &lt;plot&gt; &amp; co');
    expect(svg).toContain('heavy: throughput');
  });

  it('writes only the plot when no JSON was asked for', async () => {
    const written = await writeReport(join(dir.path, 'plot-only', 'general.json'), [record('medium', 'onnxruntime')], 'plot only', { json: false });
    expect(written.json).toBeUndefined();
    await expect(readFile(join(dir.path, 'plot-only', 'general.json'))).rejects.toThrow(/ENOENT/);
    expect((await readFile(written.png)).subarray(0, 8).equals(PNG_SIGNATURE)).toBe(true);
  });

  it('prints one table line per model with the ratios', () => {
    const table = formatTable([record('default', 'echo'), record('medium', 'onnxruntime')]);
    const lines = table.split('\n');
    expect(lines).toHaveLength(5);
    expect(lines[0]).toContain('svc/limit');
    expect(lines[2]).toMatch(/^default\s+echo\s+1,000\s+800\s+200\s+0\.80\s+4\.00/);
    // Only a model measured in more than one round gets its rounds listed, by its goal's ratio.
    expect(lines[4]).toBe('rounds at 64 clients, service/limit: default 0.800 0.600 0.900 (median: round 1)');
  });
});
