import type { PersonalizationReport } from './report.js';
import type { SimulatedUser } from './profiles.js';

export function percent(x: number | null): string {
  return x === null ? '-' : `${(x * 100).toFixed(2)}%`;
}

function table(header: readonly string[], rows: readonly (readonly string[])[], leftColumns: number): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (i < leftColumns ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** Errors per profile and checkpoint, then each goal with its verdict. */
export function formatReportTable(report: PersonalizationReport): string {
  const rows: string[][] = [];
  for (const p of report.profiles) {
    p.checkpoints.forEach((c, i) => {
      rows.push([
        i === 0 ? p.profile : '',
        i === 0 ? String(p.users.length) : '',
        String(c.feedback),
        c.users_reached === 0 ? 'not reached' : c.users_reached === c.users ? String(c.held_out) : `${c.held_out} (${c.users_reached}/${c.users} users)`,
        String(c.stream_mails),
        percent(c.error_general),
        percent(c.error_personal),
        percent(c.error_fused),
      ]);
    });
  }
  const errors = table(['profile', 'users', 'feedback', 'held-out', 'stream', 'general', 'personal', 'fused'], rows, 1);
  const verdict = (met: boolean | null) => (met === null ? 'not measured' : met ? 'met' : 'NOT MET');
  const goals = report.profiles.map((p) => `  ${p.profile.padEnd(18)} ${verdict(p.goal.met).padEnd(12)} ${p.goal.goal}: ${p.goal.detail}`);
  const overall = report.goals_met === null ? 'some goals could not be measured' : report.goals_met ? 'all goals met' : 'some goals NOT met';
  return `${errors}\n\nGoals (${overall}):\n${goals.join('\n')}`;
}

/** `--dry-run`: who the simulated users are and which mails they get. */
export function formatUsersTable(users: readonly SimulatedUser[]): string {
  const rows = users.map((u) => [
    u.id,
    u.profile.kind,
    String(u.stream.length),
    String(u.sliceInStream),
    `${((u.sliceInStream / Math.max(1, u.stream.length)) * 100).toFixed(1)}%`,
    String(u.heldOut.length),
    String(u.sliceInHeldOut),
  ]);
  const slices = [...new Map(users.map((u) => [u.profile.name, u.profile])).values()].map((p) => `  ${p.name}: ${p.slice}`);
  return `${table(['user', 'kind', 'stream', 'slice', 'share', 'held-out', 'slice held-out'], rows, 2)}\n\nSlices:\n${slices.join('\n')}`;
}
