import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir, type TempDir } from '@aimass/testing';
import { EXIT_OK } from '../src/cli.js';
import { PERSONAL_REQUIRED_FIELDS, type PersonalRecord } from '../src/report/personal-record.js';

// The built CLI as `npm run bench -- personal --quick` runs it: three services in their own
// processes, the load process, a 20,000-user store. About a minute on two quiet cores (more
// the first time, when the default model is trained into bench-results/cache).
const main = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));

let dir: TempDir;
let run: { code: number | null; stdout: string; stderr: string };
let record: PersonalRecord;

beforeAll(async () => {
  dir = await tempDir();
  const jsonPath = join(dir.path, 'personal.json');
  run = await new Promise((resolve, reject) => {
    // INIT_CWD: where results and the cache go, as when typed at the workspace root.
    const child = spawn(process.execPath, [main, 'personal', '--quick', '--json', jsonPath], { env: { ...process.env, NODE_OPTIONS: '', INIT_CWD: repoRoot } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
  if (run.code !== EXIT_OK) throw new Error(`bench personal --quick exited ${run.code}\n${run.stderr}`);
  record = JSON.parse(await readFile(jsonPath, 'utf8')) as PersonalRecord;
}, 240_000);

afterAll(async () => {
  await dir?.remove();
});

describe('npm run bench -- personal --quick (end to end)', () => {
  it('prints progress with an ETA, the table, and writes the JSON and the plot', async () => {
    expect(run.stderr).toMatch(/\[bench \d+:\d\d \| ETA \d+:\d\d\] fused: fused \(Predict on fusion\), 64 clients/);
    expect(run.stderr).toMatch(/store: 20,000 users' models in SQLite/);
    expect(run.stderr).toMatch(/built in \d+ s \(\d+ users\/s\)/);
    expect(run.stdout).toMatch(/^fused_vs_general_throughput\s+\d/m);
    expect(existsSync(join(dir.path, 'personal.png'))).toBe(true);
    expect(existsSync(join(dir.path, 'personal.svg'))).toBe(true);
  });

  it('reports the four fields of the issue as measured numbers', () => {
    for (const field of PERSONAL_REQUIRED_FIELDS) {
      expect(typeof record[field], field).toBe('number');
      expect(record[field] as number, field).toBeGreaterThan(0);
    }
    expect(record.cache_hit_ratio).toBeLessThanOrEqual(1);
    expect(record.goals.map((g) => g.figure)).toEqual(['fused_vs_general_throughput', 'cold_load_p99_ms']);
  });

  it('measured both contenders over the sweep without errors, with users with and without models', () => {
    const f = record.fusion!;
    expect(f.sweep.general_only.map((p) => p.concurrency)).toEqual([1, 4, 16, 64]);
    expect(f.sweep.fused.map((p) => p.concurrency)).toEqual([1, 4, 16, 64]);
    for (const p of [...f.sweep.general_only, ...f.sweep.fused]) {
      expect(p.errors).toBe(0);
      expect(p.rows_per_s).toBeGreaterThan(0);
    }
    expect(record.fused_vs_general_throughput).toBeCloseTo(f.fused.rows_per_s / f.general_only.rows_per_s, 2);
    // Seeded through Feedback: some answers used a personal model, others fell back for lack of one.
    const personalized = Object.entries(f.fused.outcomes).filter(([k]) => k.startsWith('applied:') && k !== 'applied:GENERAL_ONLY');
    expect(personalized.reduce((a, [, v]) => a + v, 0)).toBeGreaterThan(0);
    expect(f.fused.outcomes['fallback:NO_PERSONAL_MODEL']).toBeGreaterThan(0);
    expect(f.users.feedback_calls).toBeGreaterThan(0);
    expect(f.fusion_strategy_general_only?.outcomes['applied:GENERAL_ONLY']).toBeGreaterThan(0);
  });

  it('scored every store user it asked for, from the cache counters of the service', () => {
    const s = record.store!;
    expect(s.users).toBe(20_000);
    expect(s.zipf.errors).toBe(0);
    expect(s.zipf.outcomes['status:OK']).toBeGreaterThan(0);
    expect(s.zipf.outcomes['status:NO_MODEL']).toBeUndefined();
    expect(s.zipf.cache_hits + s.zipf.cache_misses).toBeGreaterThan(0);
    expect(s.all_hits.cache_hit_ratio).toBe(1);
    expect(s.all_hits.store_loads).toBe(0);
    expect(s.cold_load.samples).toBe(300);
    expect(s.cold_load.p99_ms).toBeGreaterThanOrEqual(s.cold_load.p50_ms);
    expect(s.bytes_per_model.parameters_mean).toBeGreaterThan(0);
    expect(s.bytes_per_model.document_mean).toBeGreaterThan(s.bytes_per_model.parameters_mean);
    expect(s.bytes_per_model.file_per_user).toBeGreaterThan(s.bytes_per_model.parameters_mean);
  });
});
