import { describe, expect, it } from 'vitest';
import { parseCli } from '../cli.js';
import { formatTenancyTable, renderTenancySvg } from '../report/tenancy-report.js';
import { tenancyGoalChecks, type TenancyRecord } from '../report/tenancy-record.js';
import { tenancySettings } from './tenancy.js';

describe('tenancy suite', () => {
  it('applies --quick and the defaults', () => {
    expect(tenancySettings({ quick: false, durationS: undefined, bRate: undefined })).toEqual({ windowMs: 10_000, warmupMs: 3_000, bRate: 100 });
    expect(tenancySettings({ quick: true, durationS: 5, bRate: 50 })).toEqual({ windowMs: 5_000, warmupMs: 1_000, bRate: 50 });
  });

  it('is a suite of the command line, with its own options only', () => {
    const parsed = parseCli(['tenancy', '--quick', '--flood-clients', '8', '--quota', '20', '--json', 'x.json']);
    expect(parsed).toMatchObject({ kind: 'run', options: { suite: 'tenancy', quick: true, floodClients: 8, quotaPerS: 20, bRate: undefined, json: 'x.json' } });
    expect(parseCli(['tenancy'])).toMatchObject({ options: { floodClients: 32, quotaPerS: 50 } });
    expect(parseCli(['tenancy', '--users', '5'])).toMatchObject({ kind: 'error', message: '--users is not an option of the tenancy suite' });
    expect(parseCli(['privacy', '--flood-clients', '5'])).toMatchObject({ kind: 'error', message: '--flood-clients is not an option of the privacy suite' });
    expect(parseCli(['tenancy', '--quota', '0'])).toMatchObject({ kind: 'error' });
  });

  it('checks the ratio goal, a missing figure being unknown rather than met', () => {
    expect(tenancyGoalChecks(1.9).map((g) => g.met)).toEqual([true]);
    expect(tenancyGoalChecks(2.1).map((g) => g.met)).toEqual([false]);
    expect(tenancyGoalChecks(Number.NaN)).toEqual([{ figure: 'neighbour_p99_ratio', goal: '<= 2', value: null, met: null }]);
  });

  it('renders the table and the plot from a record', () => {
    const load = (p99: number) => ({ requests_per_s: 200, p50_ms: 3, p90_ms: 5, p99_ms: p99, max_ms: 20, errors: {}, stage_means_ms: {}, client_cpu_cores: 0.1, service_cpu_cores: { fusion: p99 / 100 } });
    const record: TenancyRecord = {
      suite: 'tenancy',
      neighbour_p99_ratio: 1.5,
      goals: tenancyGoalChecks(1.5),
      tenant_b: { tenant: 'tenant-b', offered_per_s: 200, alone: load(8), with_flood: load(12), alone_after: load(9) },
      tenant_a: {
        tenant: 'tenant-a',
        quota_per_s: 50,
        quota_burst: 50,
        clients: 32,
        accepted_per_s: 50,
        refused_per_s: 4000,
        refused_share: 0.9877,
        offered_vs_quota: 81,
        other_errors: {},
        accepted_p99_ms: 9,
        client_cpu_cores: 0.9,
        load_process_niceness: 10,
      },
      window_s: 10,
      setup: {},
      environment: {},
    };
    expect(formatTenancyTable(record)).toMatch(/neighbour p99 ratio \(B flooded \/ B alone\)\s+1\.5\s+<= 2 \(met\)/);
    expect(formatTenancyTable(record)).toMatch(/fusion CPU alone \/ flooded\s+0\.08 \/ 0\.12 cores/);
    const svg = renderTenancySvg(record, 'noisy neighbour');
    expect(svg).toContain('<svg');
    expect(svg).toContain('p99 ratio 1.5');
  });
});
