import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { setPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { SERVICE_NAMES, v1 } from '@aimass/proto';
import { loadSpamAssassin } from '@aimass/train-general';
import { packageMainPath, startServiceProcess, type ServiceProcess } from '../contenders/service-process.js';
import { LoadGenerator } from '../load/load-generator.js';
import { PREDICT_METHOD, type LoadResult, type LoadSpec } from '../load/protocol.js';
import type { UserSelection } from '../load/users.js';
import type { Progress } from '../progress.js';
import { tenancyGoalChecks, type TenancyRecord, type TenantLoadFigures } from '../report/tenancy-record.js';
import { environment, freeTcpPort, loadAverages, round, warnIfBusy } from './common.js';
import { DEFAULT_SERVED_NAME, prepareDefaultRepository } from './default-model.js';
import { sampleMails } from './personal/mails.js';
import { CALL_DEADLINE_MS, PSEUDONYM_SECRET, USER_PREFIX } from './personal/measure.js';
import { fusionEnvironment, personalModelEnvironment, serviceEnvironment, writeBatchingConfig } from './service-config.js';

export interface TenancySuiteOptions {
  readonly quick: boolean;
  /** Seconds of each measured window (B alone, B with the flood): default 10, quick 2. */
  readonly durationS: number | undefined;
  /** Tenant B's Predicts per second, an open loop (default 100). */
  readonly bRate: number | undefined;
  /** Tenant A's closed-loop clients (default 32). */
  readonly floodClients: number;
  /** Tenant A's rate quota on fusion, calls per second (default 50). */
  readonly quotaPerS: number;
  readonly workers: number;
  readonly intraOp: number;
  readonly cacheDir: string;
  readonly progress: Progress;
  /** The load process that drives tenant B; tenant A gets a second one. */
  readonly load: () => Promise<LoadGenerator>;
}

export const TENANT_A = 'tenant-a';
export const TENANT_B = 'tenant-b';
const SAMPLE_MAILS = 256;
const MAX_MAIL_BYTES = 64 * 1024;
const USERS = 1_000;
/** Calls of B's open loop in flight beyond this are not sent and count as CLIENT_OVERLOAD. */
const B_MAX_OUTSTANDING = 256;
/** HTTP/2 connections of A's flood clients (a flood from many clients of one backend). */
const FLOOD_CONNECTIONS = 4;
/**
 * Niceness of A's load process. In a deployment the flooding backend runs on its own machines;
 * here its client shares two cores with the services, and at equal priority its own CPU (not the
 * services' work for it) would be what slows B down. It still floods as fast as it can.
 */
const FLOOD_NICENESS = 10;

export function tenancySettings(o: Pick<TenancySuiteOptions, 'quick' | 'durationS' | 'bRate'>) {
  return {
    windowMs: (o.durationS ?? (o.quick ? 2 : 10)) * 1000,
    warmupMs: o.quick ? 1_000 : 3_000,
    bRate: o.bRate ?? 100,
  };
}

/** CPU seconds a process has used (user + system, every thread), from /proc; undefined where there is none. */
function processCpuSeconds(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_S;
  } catch {
    return undefined;
  }
}

/** Linux's USER_HZ, the unit of /proc/<pid>/stat times, on every architecture Node runs on. */
const CLOCK_TICKS_PER_S = 100;

/**
 * CPU cores each service used during a load run's measured window: read when the window starts
 * and when it ends, or when the run returns if the end was not reported (an open loop may finish
 * its last calls before the end timer fires).
 */
function serviceCpuMeter(services: readonly { name: string; pid: number | undefined }[]) {
  let start: Array<number | undefined> | undefined;
  let startedAt = 0;
  let cores: Record<string, number> | undefined;
  const end = () => {
    if (start === undefined || cores !== undefined) return;
    const seconds = (performance.now() - startedAt) / 1000;
    const measured: Record<string, number> = {};
    services.forEach((svc, i) => {
      const before = start?.[i];
      const after = processCpuSeconds(svc.pid);
      if (before !== undefined && after !== undefined && seconds > 0) measured[svc.name] = round((after - before) / seconds, 2);
    });
    cores = measured;
  };
  return {
    onWindow: (phase: 'start' | 'end') => {
      if (phase === 'end') return end();
      start = services.map((svc) => processCpuSeconds(svc.pid));
      startedAt = performance.now();
    },
    cores: (): Readonly<Record<string, number>> => {
      end();
      return cores ?? {};
    },
  };
}

function figuresOf(r: LoadResult, serviceCores: Readonly<Record<string, number>>): TenantLoadFigures {
  return {
    requests_per_s: round(r.requestsPerS, 1),
    p50_ms: round(r.latencyMs.p50, 3),
    p90_ms: round(r.latencyMs.p90, 3),
    p99_ms: round(r.latencyMs.p99, 3),
    max_ms: round(r.latencyMs.max, 3),
    errors: r.errors,
    stage_means_ms: Object.fromEntries(Object.entries(r.stageMeansMs).map(([k, v]) => [k, round(v, 3)])),
    client_cpu_cores: round(r.clientCpuCores, 2),
    service_cpu_cores: serviceCores,
  };
}

/**
 * The `tenancy` suite, the issue's noisy-neighbour benchmark: general-model, personal-model and
 * fusion as separate processes, fusion configured with a rate quota for tenant A
 * (`AIMASS_QUOTAS__TENANTS`) and none for tenant B. Tenant B runs an open loop of Predicts at a
 * fixed rate, first alone, then while tenant A floods Predict from many closed-loop clients (a
 * second load process) far above its quota. The result is p99(B with the flood) / p99(B alone),
 * with B's throughput both ways and A's accepted and refused rates. Tenants are sent as
 * `x-aimass-tenant` metadata, which fusion trusts when authentication is off.
 */
export async function runTenancySuite(options: TenancySuiteOptions): Promise<TenancyRecord> {
  const { progress } = options;
  const s = tenancySettings(options);
  progress.plan(30_000 + 3 * (s.warmupMs + s.windowMs));
  warnIfBusy(progress);
  const loadBefore = loadAverages();
  const work = await mkdtemp(join(tmpdir(), 'aimass-bench-tenancy-'));
  const started: { name: string; proc: ServiceProcess }[] = [];
  let flood: LoadGenerator | undefined;
  try {
    progress.step('preparing the general model and the mails', 0);
    const corpus = loadSpamAssassin();
    const repository = join(work, 'repository');
    await prepareDefaultRepository(repository, options.cacheDir, progress, corpus);
    await writeBatchingConfig(join(repository, DEFAULT_SERVED_NAME, 'config.json'), { maxBatch: 64, queueDelayMs: 0 });
    const mails = sampleMails(corpus, SAMPLE_MAILS, MAX_MAIL_BYTES);

    progress.step(`starting general-model, personal-model and fusion (tenant ${TENANT_A}: ${options.quotaPerS} calls/s)`, 20_000);
    const start = async (pkg: Parameters<typeof packageMainPath>[0], service: string, env: (port: number) => Record<string, string>, ready?: { kind: 'model'; model: string }) => {
      const port = await freeTcpPort();
      const proc = await startServiceProcess({ mainPath: packageMainPath(pkg), port, env: env(port), ready: ready ?? { kind: 'health', service }, startTimeoutMs: 120_000 });
      started.push({ name: pkg, proc });
      return proc;
    };
    const general = await start('@aimass/general-model', SERVICE_NAMES.inference, (port) => serviceEnvironment({ repository, model: DEFAULT_SERVED_NAME, port, workers: options.workers, intraOp: options.intraOp }), {
      kind: 'model',
      model: DEFAULT_SERVED_NAME,
    });
    const personal = await start('@aimass/personal-model', SERVICE_NAMES.personalModel, (port) => personalModelEnvironment({ port, storePath: join(work, 'personal.sqlite') }));
    const quotas = { [TENANT_A]: { ratePerSecond: options.quotaPerS } };
    const fusion = await start('@aimass/fusion', SERVICE_NAMES.predict, (port) => ({
      ...fusionEnvironment({ port, storePath: join(work, 'fusion.sqlite'), pseudonymSecret: PSEUDONYM_SECRET, generalModel: general.address, personalModel: personal.address }),
      AIMASS_QUOTAS__TENANTS: JSON.stringify(quotas),
    }));

    const payloads = mails.map((m) => v1.PredictRequest.encode({ userId: '', input: m.input, options: undefined }).finish());
    const users = (seed: number): UserSelection => ({ key: { kind: 'user-id', prefix: USER_PREFIX }, pick: { kind: 'zipf', count: USERS, exponent: 1, seed }, field: 1 });
    const spec = (tenant: string, mode: LoadSpec['mode'], connections: number, seed: number): LoadSpec => ({
      address: fusion.address,
      method: PREDICT_METHOD,
      payloads,
      rowsPerRequest: 1,
      expectedOutputs: 0,
      response: { kind: 'predict' },
      metadata: { 'x-aimass-tenant': tenant },
      users: users(seed),
      connections,
      deadlineMs: CALL_DEADLINE_MS,
      warmupMs: s.warmupMs,
      durationMs: s.windowMs,
      mode,
    });
    const bSpec = (seed: number) => spec(TENANT_B, { kind: 'open', ratePerS: s.bRate, maxOutstanding: B_MAX_OUTSTANDING }, 1, seed);
    const note = (who: string, r: LoadResult) =>
      progress.note(
        `${who}: ${Math.round(r.requestsPerS)} OK calls/s, p50 ${r.latencyMs.p50.toFixed(2)} ms, p99 ${r.latencyMs.p99.toFixed(2)} ms, load process ${r.clientCpuCores.toFixed(2)} cores${r.errorCount > 0 ? `, errors ${JSON.stringify(r.errors)}` : ''}; server stages (mean ms): ${Object.entries(r.stageMeansMs)
          .map(([k, v]) => `${k.toLowerCase()} ${v.toFixed(2)}`)
          .join(', ')}`,
      );

    const meter = () =>
      serviceCpuMeter([
        { name: 'fusion', pid: fusion.pid },
        { name: 'general-model', pid: general.pid },
        { name: 'personal-model', pid: personal.pid },
      ]);
    const loadB = await options.load();
    progress.step(`tenant B alone: Predict at ${s.bRate}/s (open loop)`, s.warmupMs + s.windowMs);
    const aloneCpu = meter();
    const alone = await loadB.run(bSpec(1), aloneCpu.onWindow);
    const aloneCores = aloneCpu.cores();
    note('B alone', alone);

    flood = await LoadGenerator.start();
    let niced = false;
    try {
      if (flood.pid !== undefined) {
        setPriority(flood.pid, FLOOD_NICENESS);
        niced = true;
      }
    } catch (err) {
      progress.note(`could not lower the flood process's priority (${(err as Error).message}): its own CPU counts against tenant B`);
    }
    progress.step(`tenant B at ${s.bRate}/s while tenant A floods from ${options.floodClients} clients (closed loop, quota ${options.quotaPerS}/s)`, s.warmupMs + s.windowMs);
    const floodCpu = meter();
    const [flooded, a] = await Promise.all([
      loadB.run(bSpec(2), floodCpu.onWindow).finally(() => floodCpu.cores()),
      flood.run(spec(TENANT_A, { kind: 'closed', concurrency: options.floodClients }, Math.min(FLOOD_CONNECTIONS, options.floodClients), 3)),
    ]);
    note('B with the flood', flooded);
    progress.note(`service CPU (cores) alone ${JSON.stringify(aloneCores)}, with the flood ${JSON.stringify(floodCpu.cores())}`);
    note('A flooding', a);

    // The same window again without the flood: when it differs much from the first, something
    // else on the machine moved the figures and the ratio is not to be trusted.
    progress.step(`tenant B alone again (drift check)`, s.warmupMs + s.windowMs);
    const afterCpu = meter();
    const after = await loadB.run(bSpec(4), afterCpu.onWindow);
    const afterCores = afterCpu.cores();
    note('B alone again', after);

    const refused = a.errors['RESOURCE_EXHAUSTED'] ?? 0;
    const otherErrors = Object.fromEntries(Object.entries(a.errors).filter(([code]) => code !== 'RESOURCE_EXHAUSTED'));
    const aCalls = a.requests + a.errorCount;
    const ratio = flooded.latencyMs.p99 / alone.latencyMs.p99;
    return {
      suite: 'tenancy',
      neighbour_p99_ratio: round(ratio, 3),
      goals: tenancyGoalChecks(ratio),
      tenant_b: { tenant: TENANT_B, offered_per_s: s.bRate, alone: figuresOf(alone, aloneCores), with_flood: figuresOf(flooded, floodCpu.cores()), alone_after: figuresOf(after, afterCores) },
      tenant_a: {
        tenant: TENANT_A,
        quota_per_s: options.quotaPerS,
        quota_burst: Math.max(1, Math.ceil(options.quotaPerS)),
        clients: options.floodClients,
        accepted_per_s: round(a.requestsPerS, 1),
        refused_per_s: round(refused / a.durationS, 1),
        refused_share: aCalls === 0 ? 0 : round(refused / aCalls, 4),
        offered_vs_quota: round(aCalls / a.durationS / options.quotaPerS, 1),
        other_errors: otherErrors,
        accepted_p99_ms: round(a.latencyMs.p99, 3),
        client_cpu_cores: round(a.clientCpuCores, 2),
        load_process_niceness: niced ? FLOOD_NICENESS : 0,
      },
      window_s: round(s.windowMs / 1000, 1),
      setup: {
        services: 'general-model (default model, batching 64, no queue delay), personal-model (SQLite), fusion (SQLite, no event bus): each its own process, AIMASS_* variables',
        quotas: `fusion AIMASS_QUOTAS__TENANTS=${JSON.stringify(quotas)} (burst: one second of the rate); tenant B unlimited (the default)`,
        tenants: 'sent as x-aimass-tenant metadata (authentication off)',
        tenant_b_load: `open loop at ${s.bRate} Predicts/s from its own load process, latency from when each call was due; ${USERS} users, Zipf s=1`,
        tenant_a_load: `${options.floodClients} closed-loop clients on ${Math.min(FLOOD_CONNECTIONS, options.floodClients)} connections in a second load process (nice ${FLOOD_NICENESS}: the flooding backend's own CPU would be elsewhere in a deployment), no back-off on RESOURCE_EXHAUSTED`,
        windows: `warm-up ${s.warmupMs / 1000} s + ${s.windowMs / 1000} s measured, each: B alone, then B and A together, then B alone again (drift check)`,
      },
      environment: { ...environment(options.quick), load_average_before: loadBefore, load_average_after: loadAverages() },
    };
  } catch (error) {
    const logs = started
      .map((p) => ({ name: p.name, tail: p.proc.logTail().trim() }))
      .filter((p) => p.tail !== '')
      .map((p) => `--- ${p.name} ---\n${p.tail}`)
      .join('\n');
    throw new Error(`${(error as Error).message}${logs === '' ? '' : `\n${logs}`}`, { cause: error });
  } finally {
    await flood?.close();
    for (const p of started.reverse()) await p.proc.close();
    await rm(work, { recursive: true, force: true });
  }
}
