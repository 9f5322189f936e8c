import { parseArgs } from 'node:util';
import { API_KEY_SCOPES, STRATEGIES, TenantAdminClient, type ApiKey, type ApiKeyScope, type Page, type Strategy, type Tenant, type TenantSettings } from '@aimass/sdk';
import { UsageError } from '../args.js';
import { EXIT_OK } from '../exit-codes.js';
import type { CliIo } from '../io.js';
import { DEFAULT_ADDRESS } from '../usage.js';

type Env = Readonly<Record<string, string | undefined>>;

const ADMIN_CONNECTION = `Connection:
  --address HOST:PORT  fusion, which serves the tenant admin API (default: $AIMASS_ADDRESS or
                       ${DEFAULT_ADDRESS}, where \`aimass dev\` serves it)
  --api-key KEY        the operator token (every tenant) or an API key with the admin scope (its
                       own tenant only) (default: $AIMASS_OPERATOR_TOKEN, else $AIMASS_API_KEY)
  --deadline-ms N      deadline of each call, retries included (default: 5000)`;

const ADMIN_EXIT = `Exit codes: 0 done, 1 failed (refused: not found, no permission, bad credentials, …),
2 bad usage, 69 fusion could not be reached.`;

export const TENANTS_USAGE = `Usage: aimass tenants <create|list|show|update|suspend|resume|delete> [options]

Tenants and their settings (aimass.v1.TenantAdminService, served by fusion). Creating, listing,
suspending, resuming and deleting tenants is for the platform operator (--api-key with the
operator token); a tenant's admin key may show and update its own tenant.

Commands:
  tenants create ID [--name N] [settings]      a new tenant (ids: lower-case letters, digits, dashes)
  tenants list [--page-size N] [--page-token T]
  tenants show [ID]                            one tenant (an admin key's own when ID is omitted)
  tenants update ID [--revision N] [--name N] [settings]
                                               change what is given; --revision: compare-and-set
  tenants suspend ID [--reason R]              refuse its keys (PERMISSION_DENIED), keep its data
  tenants resume ID
  tenants delete ID --confirm ID               DELETING: every key refused, its data erased

Settings:
  --strategy S             default fusion strategy (${STRATEGIES.join(', ')})
  --rate N                 quota: requests per second (0: unlimited)
  --burst N                quota: requests in a burst above the rate
  --concurrency N          quota: requests in flight (0: unlimited)
  --general-model NAME     general model of its requests (empty: the platform default)

Options:
  --json                   print the result as JSON
  -h, --help               this text

${ADMIN_CONNECTION}

${ADMIN_EXIT}`;

export const KEYS_USAGE = `Usage: aimass keys <create|list|revoke|rotate> TENANT [options]

API keys of a tenant (aimass.v1.TenantAdminService, served by fusion). A key is sent as
"authorization: Bearer amk_…"; its secret is printed once, on creation or rotation, and only
its SHA-256 is stored. The key id (the part after amk_) is public and safe to log.

Commands:
  keys create TENANT --name N --scope S [--scope S…] [--expires-in D | --expires-at TIME]
                           scopes: ${API_KEY_SCOPES.join(', ')} (comma-separated or repeated)
  keys list TENANT [--all]  keys, newest first, without secrets (--all: revoked ones too)
  keys revoke TENANT KEY_ID
                           refused at once by the fusion replica that answers, within 5 s by the
                           others (their key cache)
  keys rotate TENANT KEY_ID [--revoke-old-after D] [--expires-in D | --expires-at TIME]
                           a new key with the same name and scopes; the old one keeps working
                           until revoked, or for D more with --revoke-old-after

Durations: 90s, 15m, 12h, 30d. Times: ISO 8601 (2026-12-31T00:00:00Z).

Options:
  --json                   print the result as JSON (the secret included, on create and rotate)
  -h, --help               this text

${ADMIN_CONNECTION}

${ADMIN_EXIT}`;

export interface AdminConnection {
  address: string;
  apiKey: string | undefined;
  deadlineMs: number;
}

export type AdminCommand =
  | { kind: 'tenants-create'; tenantId: string; name: string | undefined; settings: Partial<TenantSettings> | undefined }
  | { kind: 'tenants-list'; pageSize: number | undefined; pageToken: string | undefined }
  | { kind: 'tenants-show'; tenantId: string }
  | { kind: 'tenants-update'; tenantId: string; name: string | undefined; settings: Partial<TenantSettings> | undefined; mask: string[]; revision: number }
  | { kind: 'tenants-suspend'; tenantId: string; reason: string }
  | { kind: 'tenants-resume'; tenantId: string }
  | { kind: 'tenants-delete'; tenantId: string; confirm: string }
  | { kind: 'keys-create'; tenantId: string; name: string; scopes: ApiKeyScope[]; expiresAt: Date | undefined }
  | { kind: 'keys-list'; tenantId: string; includeRevoked: boolean }
  | { kind: 'keys-revoke'; tenantId: string; keyId: string }
  | { kind: 'keys-rotate'; tenantId: string; keyId: string; revokeOldAfterMs: number | undefined; expiresAt: Date | undefined };

export type ParsedAdmin = { kind: 'help'; text: string } | { kind: 'run'; command: AdminCommand; connection: AdminConnection; json: boolean };

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export function parseDuration(value: string, name: string, usage: string): number {
  const m = DURATION.exec(value.trim());
  if (!m) throw new UsageError(`${name} must be a duration such as 90s, 15m, 12h or 30d, got "${value}"`, usage);
  return Math.round(Number(m[1]) * UNIT_MS[m[2]!]!);
}

function time(value: string, name: string, usage: string): Date {
  const at = new Date(value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(at.getTime())) throw new UsageError(`${name} must be an ISO 8601 time such as 2026-12-31T00:00:00Z, got "${value}"`, usage);
  return at;
}

function wholeNumber(value: string, name: string, usage: string, max = 1_000_000_000): number {
  if (!/^\d+$/.test(value.trim()) || Number(value) > max) throw new UsageError(`${name} must be a whole number from 0 to ${max}, got "${value}"`, usage);
  return Number(value);
}

function tenantArg(value: string | undefined, usage: string, what = 'the tenant id'): string {
  if (value === undefined) throw new UsageError(`${what} is required`, usage);
  if (!/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(value)) throw new UsageError(`"${value}" is not a tenant id: use 1-63 lower-case letters, digits and dashes`, usage);
  return value;
}

function scopes(values: readonly string[], usage: string): ApiKeyScope[] {
  const out = new Set<ApiKeyScope>();
  for (const part of values.flatMap((v) => v.split(','))) {
    const s = part.trim().toLowerCase();
    if (!(API_KEY_SCOPES as readonly string[]).includes(s)) throw new UsageError(`--scope must be one of ${API_KEY_SCOPES.join(', ')}, got "${part}"`, usage);
    out.add(s as ApiKeyScope);
  }
  if (out.size === 0) throw new UsageError(`--scope is required: one or more of ${API_KEY_SCOPES.join(', ')}`, usage);
  return [...out];
}

const OPTIONS = {
  address: { type: 'string' },
  'api-key': { type: 'string' },
  'deadline-ms': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  json: { type: 'boolean' },
  name: { type: 'string' },
  strategy: { type: 'string' },
  rate: { type: 'string' },
  burst: { type: 'string' },
  concurrency: { type: 'string' },
  'general-model': { type: 'string' },
  revision: { type: 'string' },
  reason: { type: 'string' },
  confirm: { type: 'string' },
  'page-size': { type: 'string' },
  'page-token': { type: 'string' },
  scope: { type: 'string', multiple: true },
  'expires-in': { type: 'string' },
  'expires-at': { type: 'string' },
  'revoke-old-after': { type: 'string' },
  all: { type: 'boolean' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true; strict: true }>>['values'];

/** What each command accepts besides the connection, --json and --help. */
const ALLOWED: Record<string, readonly string[]> = {
  'tenants-create': ['name', 'strategy', 'rate', 'burst', 'concurrency', 'general-model'],
  'tenants-list': ['page-size', 'page-token'],
  'tenants-show': [],
  'tenants-update': ['name', 'strategy', 'rate', 'burst', 'concurrency', 'general-model', 'revision'],
  'tenants-suspend': ['reason'],
  'tenants-resume': [],
  'tenants-delete': ['confirm'],
  'keys-create': ['name', 'scope', 'expires-in', 'expires-at'],
  'keys-list': ['all'],
  'keys-revoke': [],
  'keys-rotate': ['revoke-old-after', 'expires-in', 'expires-at'],
};
const COMMON = new Set(['address', 'api-key', 'deadline-ms', 'help', 'json']);

/** Settings given on the command line, and the update mask paths they stand for. */
function settingsOf(values: Values, usage: string): { settings: Partial<TenantSettings> | undefined; mask: string[] } {
  const mask: string[] = [];
  const settings: Partial<TenantSettings> = {};
  const quota = { ratePerSecond: 0, burst: 0, maxConcurrency: 0 };
  if (values.strategy !== undefined) {
    if (!(STRATEGIES as readonly string[]).includes(values.strategy)) throw new UsageError(`--strategy must be one of ${STRATEGIES.join(', ')}, got "${values.strategy}"`, usage);
    settings.defaultStrategy = values.strategy as Strategy;
    mask.push('settings.default_strategy');
  }
  if (values.rate !== undefined) {
    const n = Number(values.rate);
    if (values.rate.trim() === '' || !Number.isFinite(n) || n < 0) throw new UsageError(`--rate must be a number >= 0, got "${values.rate}"`, usage);
    quota.ratePerSecond = n;
    mask.push('settings.quota.rate_per_second');
  }
  if (values.burst !== undefined) {
    quota.burst = wholeNumber(values.burst, '--burst', usage);
    mask.push('settings.quota.burst');
  }
  if (values.concurrency !== undefined) {
    quota.maxConcurrency = wholeNumber(values.concurrency, '--concurrency', usage);
    mask.push('settings.quota.max_concurrency');
  }
  if (values['general-model'] !== undefined) {
    settings.generalModelName = values['general-model'];
    mask.push('settings.general_model_name');
  }
  if (mask.length === 0) return { settings: undefined, mask };
  settings.quota = quota;
  return { settings, mask };
}

function expiry(values: Values, usage: string): Date | undefined {
  if (values['expires-in'] !== undefined && values['expires-at'] !== undefined) throw new UsageError('give one of --expires-in and --expires-at, not both', usage);
  if (values['expires-in'] !== undefined) return new Date(Date.now() + parseDuration(values['expires-in'], '--expires-in', usage));
  if (values['expires-at'] !== undefined) return time(values['expires-at'], '--expires-at', usage);
  return undefined;
}

/** Parses `aimass tenants …` or `aimass keys …` (argv after the group). Throws UsageError. */
export function parseAdminCommand(group: 'tenants' | 'keys', argv: readonly string[], env: Env): ParsedAdmin {
  const usage = group === 'tenants' ? TENANTS_USAGE : KEYS_USAGE;
  const [sub, ...rest] = argv;
  const subs = group === 'tenants' ? ['create', 'list', 'show', 'update', 'suspend', 'resume', 'delete'] : ['create', 'list', 'revoke', 'rotate'];
  if (sub === undefined || sub === '-h' || sub === '--help' || sub === 'help') {
    if (sub === undefined) throw new UsageError(`which ${group} command? (${subs.join(', ')})`, usage);
    return { kind: 'help', text: usage };
  }
  if (!subs.includes(sub)) throw new UsageError(`unknown ${group} command "${sub}" (${subs.join(', ')})`, usage);
  let parsed: { values: Values; positionals: string[] };
  try {
    parsed = parseArgs({ args: [...rest], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message.replace(/\. To specify a positional argument.*$/s, ''), usage);
  }
  const { values, positionals } = parsed;
  if (values.help) return { kind: 'help', text: usage };
  const kind = `${group}-${sub}` as AdminCommand['kind'];
  for (const key of Object.keys(values)) {
    if (!COMMON.has(key) && !ALLOWED[kind]!.includes(key)) throw new UsageError(`--${key} does not apply to \`aimass ${group} ${sub}\``, usage);
  }
  const maxPositionals = kind === 'keys-revoke' || kind === 'keys-rotate' ? 2 : kind === 'tenants-list' ? 0 : 1;
  if (positionals.length > maxPositionals) throw new UsageError(`unexpected argument "${positionals[maxPositionals]}"`, usage);
  const [first, second] = positionals;

  const address = values.address ?? (env.AIMASS_ADDRESS || DEFAULT_ADDRESS);
  const apiKey = values['api-key'] ?? (env.AIMASS_OPERATOR_TOKEN || env.AIMASS_API_KEY || undefined);
  if (apiKey !== undefined && apiKey.trim() === '') throw new UsageError('--api-key must not be empty', usage);
  const deadlineMs = values['deadline-ms'] === undefined ? 5_000 : Math.max(1, wholeNumber(values['deadline-ms'], '--deadline-ms', usage, 3_600_000));
  const connection = { address, apiKey, deadlineMs };
  const json = values.json === true;
  const run = (command: AdminCommand): ParsedAdmin => ({ kind: 'run', command, connection, json });

  switch (kind) {
    case 'tenants-create': {
      const { settings } = settingsOf(values, usage);
      return run({ kind, tenantId: tenantArg(first, usage), name: values.name, settings });
    }
    case 'tenants-list':
      return run({
        kind,
        pageSize: values['page-size'] === undefined ? undefined : wholeNumber(values['page-size'], '--page-size', usage, 1000),
        pageToken: values['page-token'],
      });
    case 'tenants-show':
      return run({ kind, tenantId: first === undefined ? '' : tenantArg(first, usage) });
    case 'tenants-update': {
      const { settings, mask } = settingsOf(values, usage);
      if (values.name !== undefined) mask.unshift('display_name');
      if (mask.length === 0) throw new UsageError('nothing to update: give --name or a setting (--strategy, --rate, --burst, --concurrency, --general-model)', usage);
      const revision = values.revision === undefined ? 0 : wholeNumber(values.revision, '--revision', usage, Number.MAX_SAFE_INTEGER);
      return run({ kind, tenantId: tenantArg(first, usage), name: values.name, settings, mask, revision });
    }
    case 'tenants-suspend':
      return run({ kind, tenantId: tenantArg(first, usage), reason: values.reason ?? '' });
    case 'tenants-resume':
      return run({ kind, tenantId: tenantArg(first, usage) });
    case 'tenants-delete': {
      const tenantId = tenantArg(first, usage);
      if (values.confirm !== tenantId) throw new UsageError(`--confirm ${tenantId} is required: deleting a tenant erases all of its data`, usage);
      return run({ kind, tenantId, confirm: values.confirm });
    }
    case 'keys-create': {
      const tenantId = tenantArg(first, usage);
      if (values.name === undefined || values.name.trim() === '') throw new UsageError('--name is required: say what the key is for', usage);
      return run({ kind, tenantId, name: values.name, scopes: scopes(values.scope ?? [], usage), expiresAt: expiry(values, usage) });
    }
    case 'keys-list':
      return run({ kind, tenantId: tenantArg(first, usage), includeRevoked: values.all === true });
    case 'keys-revoke':
    case 'keys-rotate': {
      const tenantId = tenantArg(first, usage);
      if (second === undefined) throw new UsageError('the key id is required (see `aimass keys list TENANT`)', usage);
      if (kind === 'keys-revoke') return run({ kind, tenantId, keyId: second });
      const after = values['revoke-old-after'];
      return run({ kind, tenantId, keyId: second, revokeOldAfterMs: after === undefined ? undefined : parseDuration(after, '--revoke-old-after', usage), expiresAt: expiry(values, usage) });
    }
  }
}

const date = (d: Date | undefined) => (d ? d.toISOString() : '-');

export function formatTenant(t: Tenant): string {
  const s = t.settings;
  const quota = s.quota.ratePerSecond > 0 || s.quota.maxConcurrency > 0 ? `${s.quota.ratePerSecond}/s burst ${s.quota.burst}, ${s.quota.maxConcurrency || 'unlimited'} in flight` : 'unlimited';
  return [
    `tenant ${t.tenantId} (${t.displayName}): ${t.state}, revision ${t.revision}`,
    `  strategy ${s.defaultStrategy ?? 'service default'}, quota ${quota}, general model ${s.generalModelName || 'platform default'}`,
    `  created ${date(t.createdAt)}, updated ${date(t.updatedAt)}`,
    ...(t.deletion ? formatDeletion(t.deletion) : []),
  ].join('\n');
}

/** The deletion receipt: every expected service, confirmed (when, how much) or still pending. */
function formatDeletion(d: NonNullable<Tenant['deletion']>): string[] {
  const confirmed = new Map(d.confirmations.map((c) => [c.service, c]));
  return [
    `  deletion requested ${date(d.requestedAt)}, ${d.completedAt ? `completed ${date(d.completedAt)}` : 'in progress'} (round ${d.rounds})`,
    ...d.services.map((service) => {
      const c = confirmed.get(service);
      return c ? `    ${service}: confirmed ${date(c.confirmedAt)}, ${c.itemsDeleted} items deleted` : `    ${service}: pending`;
    }),
  ];
}

export function formatKey(k: ApiKey): string {
  const status = k.revokedAt ? `revoked ${date(k.revokedAt)}` : k.expiresAt ? `expires ${date(k.expiresAt)}` : 'no expiry';
  return `${k.keyId}  ${k.name}  [${k.scopes.join(', ')}]  created ${date(k.createdAt)}, ${status}, ${k.lastUsedAt ? `last used ${date(k.lastUsedAt)}` : 'never used'}`;
}

function formatPage<T>(page: Page<T>, line: (item: T) => string, none: string): string {
  const lines = page.items.length === 0 ? [none] : page.items.map(line);
  if (page.nextPageToken) lines.push(`(more: --page-token ${page.nextPageToken})`);
  return lines.join('\n');
}

/** What `tenants` and `keys` call: TenantAdminClient, or a fake in tests. */
export interface AdminDependencies {
  connect: (c: AdminConnection) => TenantAdminClient;
}

const DEFAULTS: AdminDependencies = {
  connect: (c) => {
    if (c.apiKey === undefined) {
      throw new UsageError('credentials are required: --api-key (the operator token or an admin key), or set AIMASS_OPERATOR_TOKEN / AIMASS_API_KEY', TENANTS_USAGE);
    }
    return new TenantAdminClient({ address: c.address, apiKey: c.apiKey, defaultDeadlineMs: c.deadlineMs });
  },
};

/** Runs a parsed `tenants`/`keys` command; its result on stdout, a secret's "shown once" note on stderr. */
export async function adminCommand(parsed: Extract<ParsedAdmin, { kind: 'run' }>, io: CliIo, deps: Partial<AdminDependencies> = {}): Promise<number> {
  const admin = (deps.connect ?? DEFAULTS.connect)(parsed.connection);
  const out = (value: unknown, text: string) => io.stdout.write(`${parsed.json ? JSON.stringify(value, null, 2) : text}\n`);
  const secretNote = () => io.stderr.write('The secret is shown only now: store it (e.g. in your secret manager); only its hash is kept.\n');
  try {
    const c = parsed.command;
    switch (c.kind) {
      case 'tenants-create': {
        const t = await admin.createTenant(c.tenantId, { displayName: c.name, settings: c.settings });
        out(t, formatTenant(t));
        break;
      }
      case 'tenants-list': {
        const page = await admin.listTenants({ pageSize: c.pageSize, pageToken: c.pageToken });
        out(page, formatPage(page, (t) => `${t.tenantId}  ${t.state}  ${t.displayName}`, 'no tenants'));
        break;
      }
      case 'tenants-show': {
        const t = await admin.getTenant(c.tenantId);
        out(t, formatTenant(t));
        break;
      }
      case 'tenants-update': {
        const t = await admin.updateTenant(c.tenantId, { displayName: c.name, settings: c.settings, updateMask: c.mask, expectedRevision: c.revision });
        out(t, formatTenant(t));
        break;
      }
      case 'tenants-suspend': {
        const t = await admin.suspendTenant(c.tenantId, c.reason);
        out(t, formatTenant(t));
        break;
      }
      case 'tenants-resume': {
        const t = await admin.resumeTenant(c.tenantId);
        out(t, formatTenant(t));
        break;
      }
      case 'tenants-delete': {
        const t = await admin.deleteTenant(c.tenantId, c.confirm);
        out(t, formatTenant(t));
        break;
      }
      case 'keys-create': {
        const created = await admin.createApiKey(c.tenantId, { name: c.name, scopes: c.scopes, expiresAt: c.expiresAt });
        out(created, `${formatKey(created.key)}\n${created.secret}`);
        secretNote();
        break;
      }
      case 'keys-list': {
        const page = await admin.listApiKeys(c.tenantId, { includeRevoked: c.includeRevoked });
        out(page, formatPage(page, formatKey, 'no keys'));
        break;
      }
      case 'keys-revoke': {
        const k = await admin.revokeApiKey(c.tenantId, c.keyId);
        out(k, formatKey(k));
        break;
      }
      case 'keys-rotate': {
        const r = await admin.rotateApiKey(c.tenantId, c.keyId, { revokeOldAfterMs: c.revokeOldAfterMs, expiresAt: c.expiresAt });
        out(r, `${formatKey(r.key)}\n${r.secret}\nreplaces ${formatKey(r.oldKey)}`);
        secretNote();
        break;
      }
    }
    return EXIT_OK;
  } finally {
    admin.close();
  }
}
