import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir, type TempDir } from '@aimass/testing';
import { goalChecks, PERSONAL_REQUIRED_FIELDS, type ContenderFigures, type PersonalRecord } from '../src/report/personal-record.js';
import { formatPersonalTable, renderPersonalSvg } from '../src/report/personal-report.js';
import type { SweepPoint } from '../src/report/record.js';
import { writeFigures } from '../src/report/write.js';

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

// Synthetic figures: this tests the shaping and writing of a record, not a measurement.
function contender(rows: number, p99: number): ContenderFigures {
  return { concurrency: 64, rows_per_s: rows, p50_ms: p99 / 3, p99_ms: p99, errors: 0, error_kinds: {}, client_cpu_cores: 0.4, outcomes: { 'applied:STACKING': 40, 'fallback:NO_PERSONAL_MODEL': 60 }, stage_mean_ms: {} };
}

function sweep(scale: number): SweepPoint[] {
  return [1, 4, 16, 64].map((c, i) => ({ concurrency: c, rows_per_s: scale * (i + 1), p50_ms: 1 + i, p99_ms: 2 + 3 * i, errors: 0, client_cpu_cores: 0.3 }));
}

const cacheWindow = { cache_hit_ratio: 0.8123, cache_hits: 8123, cache_misses: 1877, store_loads: 1877, revalidations: 300, evictions: 1500, cache_entries_after: 50_000, cache_bytes_after: 250_000_000 };
const latency = { samples: 2000, p50_ms: 0.3, p99_ms: 1.2, max_ms: 4 };

function record(withStore: boolean): PersonalRecord {
  const ratio = 0.75;
  const fused = { ...contender(1500, 80), stage_mean_ms: { GENERAL_MODEL: 30, TOTAL: 80 } };
  const cold = withStore ? 1.2 : null;
  return {
    suite: 'personal',
    fused_vs_general_throughput: ratio,
    cache_hit_ratio: withStore ? 0.8123 : null,
    cold_load_p99_ms: cold,
    bytes_per_model: withStore ? 4100 : null,
    goals: goalChecks(ratio, cold),
    fusion: {
      headline_concurrency: 64,
      general_only: contender(2000, 60),
      fused,
      fusion_strategy_general_only: contender(1700, 70),
      rounds: [
        { round: 1, general_only_rows_per_s: 2000, fused_rows_per_s: 1500, ratio: 0.75 },
        { round: 2, general_only_rows_per_s: 2400, fused_rows_per_s: 1560, ratio: 0.65 },
        { round: 3, general_only_rows_per_s: 1800, fused_rows_per_s: 1440, ratio: 0.8 },
      ],
      median_round: 1,
      sweep: { general_only: sweep(500), fused: sweep(375) },
      users: {
        count: 2000,
        traffic_zipf_s: 1,
        with_model: 600,
        model_share: 0.3,
        examples: { min: 1, max: 200, zipf_s: 1.5, mean: 10.9 },
        traffic_share_with_model_expected: 0.41,
        traffic_share_with_model_measured: 0.4,
        feedback_calls: 6500,
        seeding_seconds: 40,
      },
      request: 'test mails',
    },
    store: withStore
      ? {
          users: 1_000_000,
          traffic_zipf_s: 1,
          concurrency: 64,
          store: {
            path: '/tmp/x.sqlite',
            cached: true,
            key: 'abc',
            file_bytes: 4.5e9,
            build_seconds: 400,
            build_users_per_s: 2500,
            pool_models: 600,
            pool_train_seconds: 12,
            examples: { min: 1, max: 200, zipf_s: 1.5, mean: 10.9, histogram: { '1': 400_000 } },
            how: 'copies of pool models',
          },
          bytes_per_model: { parameters_mean: 3900, document_mean: 4100, file_per_user: 4500 },
          cache: { max_bytes: 256 * 2 ** 20, revalidate_ms: 5000, setting: 'defaults' },
          zipf: { ...contender(2500, 90), ...cacheWindow, fill_seconds: 60, steady_state: true },
          all_hits: { ...contender(3000, 70), ...cacheWindow, cache_hit_ratio: 1, hot_set_users: 20_000, hot_set_bytes: 100_000_000 },
          zipf_vs_all_hits_throughput: 0.833,
          cold_load: { ...latency, where: 'in process', parts: { pointer_read: latency, version_read: latency, deserialize: latency }, parameter_bytes_mean: 3900 },
        }
      : null,
    setup: {},
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

describe('personal suite report', () => {
  it('checks the goals of the issue', () => {
    expect(goalChecks(0.69, 5.1).map((g) => g.met)).toEqual([false, false]);
    expect(goalChecks(0.7, 5).map((g) => g.met)).toEqual([true, true]);
    expect(goalChecks(null, null).map((g) => g.met)).toEqual([null, null]);
  });

  it('writes one JSON object with the four fields as numbers, and a plot of fused vs general-only', async () => {
    const r = record(true);
    const written = await writeFigures(join(dir.path, 'out', 'personal.json'), r, renderPersonalSvg(r, 'personal <test>'));
    const json = JSON.parse(await readFile(written.json as string, 'utf8')) as Record<string, unknown>;
    expect(Array.isArray(json)).toBe(false);
    for (const field of PERSONAL_REQUIRED_FIELDS) expect(typeof json[field], field).toBe('number');
    expect((json.fusion as { sweep: { fused: unknown[] } }).sweep.fused).toHaveLength(4);
    const svg = await readFile(written.svg, 'utf8');
    expect(svg).toContain('fused vs general-only: throughput');
    expect(svg).toContain('personal &lt;test&gt;');
    expect((await readFile(written.png)).subarray(0, 8).equals(PNG_SIGNATURE)).toBe(true);
  });

  it('prints the four fields with their goals, then the raw figures', () => {
    const lines = formatPersonalTable(record(true)).split('\n');
    expect(lines[2]).toMatch(/^fused_vs_general_throughput\s+0\.750\s+goal >= 0\.7: met$/);
    expect(lines[3]).toMatch(/^cache_hit_ratio\s+0\.8123\s+Zipf s=1 over 1,000,000 users, cache 256 MiB$/);
    expect(lines[4]).toMatch(/^cold_load_p99_ms\s+1\.200\s+goal <= 5: met$/);
    expect(lines[5]).toMatch(/^bytes_per_model\s+4,100\s+version document; parameters 3,900, SQLite file \/ users 4,500$/);
    expect(lines.some((l) => /^fused rows\/s @64\s+1,500\s+p50 26\.67 ms, p99 80\.00 ms$/.test(l))).toBe(true);
    expect(lines.some((l) => /^store Zipf \/ all-hits throughput\s+0\.833/.test(l))).toBe(true);
    expect(lines.some((l) => /^fused: fusion's stage times, mean ms\s+80\.00\s+general_model 30\.00, total 80\.00$/.test(l))).toBe(true);
    expect(lines.some((l) => /^fused \/ general-only per round\s+0\.750 0\.650 0\.800\s+median: round 1 \(the two lines above\); rows\/s 1,500\/2,000, 1,560\/2,400, 1,440\/1,800$/.test(l))).toBe(true);
  });

  it('shows a part that did not run as not measured', () => {
    const table = formatPersonalTable(record(false));
    expect(table).toMatch(/cold_load_p99_ms\s+-\s+goal <= 5: not measured/);
    expect(table).not.toContain('store, Zipf');
  });
});
