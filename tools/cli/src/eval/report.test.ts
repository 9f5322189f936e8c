import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '@aimass/testing';
import type { EvalMail } from './corpus.js';
import { niceTicks, renderPng, renderSvg, writePlot } from './plot.js';
import type { Profile, SimulatedUser } from './profiles.js';
import type { StrategyMeasure, UserRun } from './prequential.js';
import { buildReport } from './report.js';
import { formatReportTable } from './table.js';

const divergent: Profile = { name: 'list-muter', kind: 'divergent', description: 'd', slice: 'the list', inSlice: (m) => m.listId === 'l.example' };
const neutral: Profile = { name: 'neutral', kind: 'neutral', description: 'n', slice: 'none', inSlice: () => false };
const mails: EvalMail[] = [
  { key: 'a/1', group: 'a', corpusLabel: 'ham', raw: '', fromDomain: undefined, listId: 'l.example', generalHeldOut: true },
  { key: 'a/2', group: 'a', corpusLabel: 'ham', raw: '', fromDomain: undefined, listId: 'l.example', generalHeldOut: false },
  { key: 'a/3', group: 'a', corpusLabel: 'spam', raw: '', fromDomain: undefined, listId: undefined, generalHeldOut: false },
];
const m = (wrong: number, measured: number): StrategyMeasure => ({ wrong, measured, rejected: 0, fallbacks: {}, applied: {} });

function run(id: string, profile: Profile, errors: [number, number, number][]): UserRun {
  const feedback = [0, 10, 50];
  return {
    user: { id, profile, index: 1, stream: [], heldOut: [], sliceInStream: 30, sliceInHeldOut: 8, label: () => 'ham' } as SimulatedUser,
    checkpoints: errors.map(([g, p, f], i) => ({
      feedback: feedback[i]!,
      reached: true,
      streamMails: i * 100,
      mistakes: i * 3,
      measures: { general: m(g, 100), personal: m(p, 100), fused: m(f, 100) },
      settleMs: i === 0 ? undefined : 150.4,
    })),
    streamMails: 200,
    feedback: 50,
    mistakes: 6,
    rejected: 0,
    settleMs: 300,
    elapsedMs: 1234,
  };
}

function report() {
  return buildReport({
    runs: [run('r-list-muter-1', divergent, [[10, 10, 10], [10, 6, 7], [10, 2, 3]]), run('r-neutral-1', neutral, [[1, 1, 1], [1, 3, 1], [1, 2, 1]])],
    mails,
    corpusSource: 'test-corpus',
    settings: { seed: 1, users_per_profile: 1, stream_length: 300, held_out: 100, feedback_share: 0.1, checkpoints: [10, 50], fused_strategy: 'default', input: 'mail', quick: false },
    platform: { address: '127.0.0.1:1', started_by_eval: false, updater: '127.0.0.1:2' },
    tenant: 'default',
    runId: 'r',
    elapsedMs: 5_000,
    profiles: [divergent, neutral],
    now: new Date('2025-01-02T03:04:05Z'),
  });
}

describe('buildReport', () => {
  it('has per profile and checkpoint the three errors and the counts, and judges the goals', () => {
    const r = report();
    expect(r.profiles.map((p) => [p.profile, p.slice.mails, p.slice.general_held_out])).toEqual([
      ['list-muter', 2, 1],
      ['neutral', 0, 0],
    ]);
    const at50 = r.profiles[0]!.checkpoints.find((c) => c.feedback === 50)!;
    expect([at50.error_general, at50.error_personal, at50.error_fused]).toEqual([0.1, 0.02, 0.03]);
    expect(r.profiles[0]!.goal.met).toBe(true);
    expect(r.profiles[1]!.goal.met).toBe(true);
    expect(r.goals_met).toBe(true);
    expect(r.users[0]).toMatchObject({ user_id: 'r-list-muter-1', feedback: 50, elapsed_s: 1.2 });
    expect(r.users[0]!.checkpoints[2]).toMatchObject({ feedback: 50, error_general: 0.1, error_fused: 0.03, held_out: 100 });
    expect(r.corpus).toEqual({ source: 'test-corpus', mails: 3, general_held_out: 1 });
  });

  it('reports the time spent waiting for feedback to be applied, per checkpoint, user and run', () => {
    const r = report();
    expect(r.platform.updater).toBe('127.0.0.1:2');
    expect(r.users[0]!.checkpoints.map((c) => c.settle_ms)).toEqual([null, 150, 150]);
    expect(r.users.map((u) => u.settle_ms)).toEqual([300, 300]);
    expect(r.settle_ms).toBe(600);
  });

  it('prints a table with every checkpoint and the goals', () => {
    const text = formatReportTable(report());
    expect(text).toContain('list-muter');
    expect(text).toMatch(/50\s+100\s+200\s+10\.00%\s+2\.00%\s+3\.00%/);
    expect(text).toContain('Goals (all goals met):');
    expect(text).toContain('fused 3.00% vs bound 5.00% (general 10.00%)');
  });
});

describe('plot', () => {
  it('draws one panel per profile with the three series and the goal', () => {
    const svg = renderSvg(report(), 'test plot');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('list-muter (1 users): goal met');
    expect(svg).toContain('neutral (1 users): goal met');
    expect(svg.match(/<polyline/g)).toHaveLength(2 * 4);
    expect(svg).toContain('stroke-dasharray');
  });

  it('renders a PNG and writes both files', async () => {
    const png = renderPng(renderSvg(report(), 'test plot'));
    expect([...png.subarray(0, 4)]).toEqual([0x89, 0x50, 0x4e, 0x47]);
    const dir = await tempDir('aimass-plot-');
    try {
      const written = await writePlot(join(dir.path, 'out', 'p.svg'), report(), 'test');
      expect(written.png).toBe(join(dir.path, 'out', 'p.png'));
      expect((await readFile(written.svg, 'utf8')).startsWith('<svg')).toBe(true);
    } finally {
      await dir.remove();
    }
  });

  it('picks round axis ticks', () => {
    expect(niceTicks(10.8)).toEqual([0, 2.5, 5, 7.5, 10, 12.5]);
    expect(niceTicks(0)).toEqual([0, 1]);
  });
});
