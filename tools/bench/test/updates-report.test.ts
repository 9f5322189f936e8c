import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir, type TempDir } from '@aimass/testing';
import { formatUpdatesTable, renderUpdatesSvg } from '../src/report/updates-report.js';
import { UPDATES_REQUIRED_FIELDS, updatesGoalChecks, type UpdatesRecord } from '../src/report/updates-record.js';
import { writeFigures } from '../src/report/write.js';

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

const calls = (perS: number) => ({ calls: perS * 60, per_s: perS, p50_ms: 9.5, p99_ms: 41.2 });

// Synthetic figures: this tests the shaping and writing of a record, not a measurement.
function record(p99: number | null): UpdatesRecord {
  const samples = p99 === null ? 0 : 1200;
  const series = Array.from({ length: samples }, (_, i) => [(i / samples) * 60, 40 + (i % 100) * (p99! / 100)] as const);
  return {
    suite: 'updates',
    freshness_p50_ms: p99 === null ? null : 95,
    freshness_p99_ms: p99,
    events_per_s: 198.7,
    lag_at_end: 3,
    offered_feedback_per_s: 200,
    achieved_feedback_per_s: 199.2,
    users: 1000,
    predict_per_s: 910.4,
    freshness_samples: samples,
    duration_s: 60,
    warmup_s: 10,
    goals: updatesGoalChecks(p99),
    freshness: {
      samples,
      mean_ms: 110,
      p50_ms: 95,
      p90_ms: 300,
      p99_ms: p99 ?? Number.NaN,
      max_ms: 1800,
      first_model_samples: 4,
      timed_out: 0,
      timeout_ms: 30_000,
      probe_users: 100,
      poll_ms: 15,
      polls_per_sample_mean: 5.2,
      polls_without_version: 0,
      definition: 'test',
      series,
    },
    feedback: {
      offered_per_s: 200,
      achieved_per_s: 199.2,
      accepted_in_window: 11_952,
      accepted_total: 13_950,
      duplicates: 0,
      not_sent: { overload: 0, no_user: 2 },
      errors: 1,
      error_kinds: { 'feedback:UNAVAILABLE': 1 },
      feedback_call: calls(199.2),
      users: 1000,
      users_retired: 1,
      how: 'test',
      per_second: Array.from({ length: 60 }, (_, i) => 195 + (i % 9)),
    },
    predict: { clients: 4, background: calls(500), before_feedback: calls(200), polls: calls(210), all_per_s: 910.4, errors: 0, error_kinds: {}, outcomes: { 'applied:stacking': 29_000, 'fallback:no_personal_model': 1000 } },
    updater: {
      events_per_s: 198.7,
      applied_in_window: 11_922,
      pending_at_window_start: 5,
      lag_at_end: 3,
      drained: true,
      drain_seconds: 0.4,
      pending_after_drain: 0,
      training_state_errors: {},
      how: 'test',
      pending_series: Array.from({ length: 72 }, (_, i) => [i - 10, i % 7] as const),
    },
    bench_event_loop_delay_ms: { p50: 0.2, p99: 4.1, max: 12 },
    setup: {},
    environment: { quick: false },
  };
}

describe('updates report', () => {
  let dir: TempDir;
  beforeAll(async () => {
    dir = await tempDir();
  });
  afterAll(async () => {
    await dir.remove();
  });

  it('checks the freshness goal', () => {
    expect(updatesGoalChecks(640)).toEqual([{ figure: 'freshness_p99_ms', goal: '<= 1000', value: 640, met: true }]);
    expect(updatesGoalChecks(1000.1)[0]?.met).toBe(false);
    expect(updatesGoalChecks(null)[0]?.met).toBeNull();
  });

  it('tabulates the four fields of the issue with the goal, then the context', () => {
    const table = formatUpdatesTable(record(640));
    const lines = table.split('\n');
    expect(lines[0]).toMatch(/^figure\s+value\s+notes$/);
    expect(lines.slice(2, 6).map((l) => l.split(/\s+/)[0])).toEqual([...UPDATES_REQUIRED_FIELDS]);
    expect(table).toMatch(/^freshness_p99_ms\s+640\.0\s+goal <= 1000: met$/m);
    expect(table).toMatch(/^events_per_s\s+198\.7\s/m);
    expect(table).toMatch(/^lag_at_end\s+3\s+.*all applied 0\.40 s after/m);
    expect(table).toMatch(/feedback achieved \/ offered per s\s+199\.2 \/ 200\.0\s+over 1,000 users.*feedback:UNAVAILABLE 1/);
    expect(formatUpdatesTable(record(1500))).toMatch(/^freshness_p99_ms\s+1,500\s+goal <= 1000: NOT MET$/m);
  });

  it('says "not measured" without samples', () => {
    const table = formatUpdatesTable(record(null));
    expect(table).toMatch(/^freshness_p50_ms\s+-\s+0 samples/m);
    expect(table).toMatch(/^freshness_p99_ms\s+-\s+goal <= 1000: not measured$/m);
  });

  it('writes the JSON with the issue\'s fields first and the plot as SVG and PNG', async () => {
    const r = record(640);
    const svg = renderUpdatesSvg(r, 'updates <test>');
    expect(svg).toContain('updates &lt;test&gt;');
    expect(svg).toContain('freshness CDF (1200 samples, p50 95 ms, p99 640 ms)');
    expect(svg).toContain('goal p99 ≤ 1k ms');
    const written = await writeFigures(join(dir.path, 'out', 'updates.json'), r, svg);
    const json = JSON.parse(await readFile(written.json!, 'utf8')) as Record<string, unknown>;
    expect(Object.keys(json).slice(1, 5)).toEqual([...UPDATES_REQUIRED_FIELDS]);
    expect(json.freshness_p99_ms).toBe(640);
    expect((await readFile(written.png)).subarray(0, 8)).toEqual(PNG_SIGNATURE);
    // Without samples the plot still renders (empty panels), and null figures stay null in the JSON.
    const empty = await writeFigures(join(dir.path, 'empty.json'), record(null), renderUpdatesSvg(record(null), 'empty'));
    expect(JSON.parse(await readFile(empty.json!, 'utf8')).freshness_p99_ms).toBeNull();
    expect((await readFile(empty.png)).subarray(0, 8)).toEqual(PNG_SIGNATURE);
  });
});
