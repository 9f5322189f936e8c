import { pendingServices, type ConsentDecision, type ConsentHistory, type EraseResult, type ErasureReceipt, type SetConsentResult } from '@aimass/sdk';

function time(t: Date | undefined): string {
  return t === undefined ? '-' : t.toISOString();
}

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

function rows(pairs: readonly (readonly [string, string])[]): string {
  return pairs.map(([k, v]) => `${k.padEnd(11)} ${v}`.trimEnd()).join('\n');
}

/** What became of each decision `consent grant|deny|withdraw` recorded. */
export function formatConsentResults(results: readonly SetConsentResult[]): string {
  return table(
    ['purpose', 'state', 'record', 'policy', 'source', 'recorded', 'outcome'],
    results.map((r) => [
      r.record.purpose,
      r.record.state,
      String(r.record.sequence),
      r.record.policyVersion,
      r.record.source || '-',
      time(r.record.recordedAt),
      // changed: announced to the enforcing services; otherwise the state was already this one.
      r.duplicate ? 'already recorded (same idempotency key)' : r.changed ? 'changed' : 'state unchanged',
    ]),
  );
}

/** `consent show`: one line per purpose, the tenant's default marked as such. */
export function formatConsentDecisions(decisions: readonly ConsentDecision[]): string {
  if (decisions.length === 0) return 'no purposes';
  const body = table(
    ['purpose', 'state', 'since', 'policy', 'source', 'record'],
    decisions.map((d) => {
      const state = d.isDefault ? `${d.state} (default)` : d.state;
      const r = d.record;
      return r === undefined ? [d.purpose, state, '-', '-', '-', '-'] : [d.purpose, state, time(r.recordedAt), r.policyVersion, r.source || '-', String(r.sequence)];
    }),
  );
  return decisions.some((d) => d.isDefault) ? `${body}\n\n(default): never decided, the tenant's default applies` : body;
}

/** `consent history`: every record, oldest first, then what the verification says. */
export function formatConsentHistory(history: ConsentHistory): string {
  const n = history.records.length;
  if (n === 0) return 'no consent recorded (chain verified: yes, empty)';
  const body = table(
    ['seq', 'purpose', 'state', 'recorded', 'policy', 'source', 'hash', 'verified'],
    history.records.map((r) => [
      String(r.sequence),
      r.purpose,
      r.state,
      time(r.recordedAt),
      r.policyVersion,
      r.source || '-',
      `${r.hash.slice(0, 12)}…`,
      r.verified ? 'yes' : 'NO',
    ]),
  );
  const verdict = history.chainVerified ? 'yes' : 'NO: do not rely on this history';
  return `${body}\n\nchain verified: ${verdict} (${n} ${n === 1 ? 'record' : 'records'})`;
}

/** `erase` without --wait: the erasure id and how to follow it. */
export function formatEraseResult(r: EraseResult): string {
  const status = r.duplicate ? `${r.status} (the user already had this erasure)` : r.status;
  return rows([
    ['erasure', r.erasureId],
    ['status', status],
    ['follow', `aimass receipt ${r.erasureId}`],
  ]);
}

function confirmationLine(c: ErasureReceipt['confirmations'][number], width: number): string {
  const items = c.status === 'pending' ? '' : `  ${c.itemsDeleted} ${c.itemsDeleted === 1 ? 'item' : 'items'} deleted`;
  const detail = c.detail ? `  (${c.detail})` : '';
  return `  ${c.service.padEnd(width)}  ${c.status.padEnd(9)}  ${time(c.confirmedAt).padEnd(24)}${items}${detail}`.trimEnd();
}

/** An erasure's receipt: the overall state, then one line per service. */
export function formatReceipt(r: ErasureReceipt): string {
  const pending = pendingServices(r);
  const status = r.status === 'completed' ? 'completed' : `${r.status}: waiting for ${pending.length > 0 ? pending.join(', ') : 'the receipt to complete'}`;
  const head = rows([
    ['erasure', r.erasureId],
    ['user', `pseudonym ${r.userPseudonym}`],
    ['status', status],
    ['requested', time(r.requestedAt)],
    ['key', r.keyDestroyedAt === undefined ? 'not destroyed' : `destroyed ${time(r.keyDestroyedAt)}`],
    ['completed', time(r.completedAt)],
    ['services', r.confirmations.length === 0 ? 'none' : ''],
  ]);
  const width = Math.max(0, ...r.confirmations.map((c) => c.service.length));
  return [head, ...r.confirmations.map((c) => confirmationLine(c, width))].join('\n');
}

/** One progress line of `erase --wait`: every service's status. */
export function formatErasureProgress(r: ErasureReceipt): string {
  const services = r.confirmations.map((c) => `${c.service} ${c.status}`).join(' · ');
  return `erasure ${r.erasureId} ${r.status}: ${services}`;
}

/** A privacy result as JSON: the SDK's typed result (times as ISO strings). */
export function privacyJson(value: unknown): string {
  return JSON.stringify(value, null, 2);
}
