/**
 * Throughput of Predict through fusion with request coalescing on and off, against general-only
 * Classify calls straight to the general model, at N concurrent in-flight calls (default 64).
 *
 * general-model (the trained default model, 2 workers), personal-model and two fusion instances
 * (coalescing on / off), with SQLite file stores, run in this process, as in the one-process mode; the load runs in a forked
 * child process (closed loop over a few HTTP/2 connections), so the two share the machine's cores
 * as they would in the benchmark. Not a test: run it with `node bench/run.mjs [options]`.
 *
 * Options: --concurrency 64 --connections 4 --warmup-ms 2000 --measure-ms 8000 --rounds 2
 *          --only general,off,on (contenders to run) --max-delay-ms 0 --max-items 256 (coalescing config)
 *          --repository DIR (default: bench-results/cache/repository, made by `npm run bench -- general`)
 */
import { fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InterceptingCall, Metadata, credentials, status, type Interceptor, type ServiceError } from '@grpc/grpc-js';
import { startFusion, type CoalescerStats, type RunningFusion } from '@aimass/fusion';
import { startGeneralModel } from '@aimass/general-model';
import { exportFastTextOnnx, trainTextModel, writeModelVersion } from '@aimass/ml';
import { TENANT_METADATA_KEY, createLogger } from '@aimass/platform';
import { startPersonalModel } from '@aimass/personal-model';
import { v1 } from '@aimass/proto';
import { openSqliteStore } from '@aimass/storage';
import { loadSpamAssassin } from '@aimass/train-general';

const TENANT = 'bench';
const USERS = 128;
const USERS_WITH_MODELS = 64;

interface LoadJob {
  readonly kind: 'general' | 'fusion';
  readonly address: string;
  readonly concurrency: number;
  readonly connections: number;
  readonly warmupMs: number;
  readonly measureMs: number;
  readonly mails: string[];
}

interface LoadResult {
  readonly completed: number;
  readonly errors: Record<string, number>;
  readonly seconds: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly clientCpuCores: number;
  /** CPU time of the services' process (all its threads) in the window, per completed request. */
  serverCpuMsPerRequest?: number;
}

const rawMail = (text: string): v1.InputPayload => ({ kind: { $case: 'raw', value: { contentType: 'message/rfc822', data: Buffer.from(text) } } });

// ---------------------------------------------------------------- load process (child)

async function runLoad(job: LoadJob): Promise<LoadResult> {
  const clientOptions = { 'grpc.use_local_subchannel_pool': 1 };
  const inputs = job.mails.map(rawMail);
  const metadata = new Metadata();
  metadata.set(TENANT_METADATA_KEY, TENANT);
  type Send = (i: number, done: (err: ServiceError | null, ok: boolean) => void) => void;
  const senders: Send[] = [];
  const closers: (() => void)[] = [];
  for (let c = 0; c < job.connections; c++) {
    if (job.kind === 'general') {
      const client = new v1.GeneralModelServiceClient(job.address, credentials.createInsecure(), clientOptions);
      closers.push(() => client.close());
      senders.push((i, done) =>
        client.classify(
          { model: undefined, inputs: [inputs[i % inputs.length]!], includeEmbedding: false, includeLogits: false },
          metadata,
          { deadline: Date.now() + 10_000 },
          (err, res) => done(err, !err && res.results.length === 1 && res.results[0]!.label !== ''),
        ),
      );
    } else {
      const client = new v1.InferenceServiceClient(job.address, credentials.createInsecure(), clientOptions);
      closers.push(() => client.close());
      senders.push((i, done) =>
        client.predict(
          { userId: `user-${i % USERS}`, input: inputs[i % inputs.length]!, options: undefined },
          metadata,
          { deadline: Date.now() + 10_000 },
          (err, res) => done(err, !err && res.prediction !== undefined && res.prediction.label !== ''),
        ),
      );
    }
  }
  const start = performance.now();
  const windowStart = start + job.warmupMs;
  const windowEnd = windowStart + job.measureMs;
  const latencies: number[] = [];
  const errors: Record<string, number> = {};
  let completed = 0;
  let next = 0;
  let cpuAtWindow: NodeJS.CpuUsage | undefined;
  const cpuTimer = setTimeout(() => {
    cpuAtWindow = process.cpuUsage();
    process.send!('window-start');
  }, job.warmupMs);
  const endTimer = setTimeout(() => process.send!('window-end'), job.warmupMs + job.measureMs);
  await Promise.all(
    Array.from(
      { length: job.concurrency },
      (_, w) =>
        new Promise<void>((done) => {
          const send = senders[w % senders.length]!;
          const loop = () => {
            const sent = performance.now();
            if (sent >= windowEnd) return done();
            send(next++, (err, ok) => {
              const now = performance.now();
              if (sent >= windowStart && now <= windowEnd) {
                if (ok) {
                  completed++;
                  latencies.push(now - sent);
                } else {
                  const code = err ? (status[err.code] ?? String(err.code)) : 'BAD_RESPONSE';
                  errors[code] = (errors[code] ?? 0) + 1;
                }
              }
              loop();
            });
          };
          loop();
        }),
    ),
  );
  clearTimeout(cpuTimer);
  clearTimeout(endTimer);
  const cpu = process.cpuUsage(cpuAtWindow);
  for (const close of closers) close();
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN;
  return {
    completed,
    errors,
    seconds: job.measureMs / 1000,
    p50Ms: pct(0.5),
    p99Ms: pct(0.99),
    clientCpuCores: (cpu.user + cpu.system) / 1000 / job.measureMs,
  };
}

// ---------------------------------------------------------------- services (parent)

function argValue(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 && process.argv[at + 1] !== undefined ? process.argv[at + 1]! : fallback;
}

function load(job: LoadJob): Promise<LoadResult> {
  return new Promise((resolvePromise, reject) => {
    const child = fork(fileURLToPath(import.meta.url), ['--load'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    // The window's CPU time of this process: general-model (main thread and workers), personal-model and fusion.
    let start: NodeJS.CpuUsage | undefined;
    let used: NodeJS.CpuUsage | undefined;
    child.on('message', (m) => {
      if (m === 'window-start') start = process.cpuUsage();
      else if (m === 'window-end') used = process.cpuUsage(start);
      else {
        const result = m as LoadResult;
        if (used && result.completed > 0) result.serverCpuMsPerRequest = (used.user + used.system) / 1000 / result.completed;
        resolvePromise(result);
      }
    });
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code !== 0) reject(new Error(`load process exited with ${code}`));
    });
    child.send(job);
  });
}

function countingInterceptor(counts: Map<string, number>): Interceptor {
  return (options, nextCall) => {
    const path = options.method_definition.path;
    counts.set(path, (counts.get(path) ?? 0) + 1);
    return new InterceptingCall(nextCall(options));
  };
}

async function toyRepository(dir: string): Promise<void> {
  const items = Array.from({ length: 96 }, (_, i) => ({ key: `k${i}`, text: i % 2 ? `free money offer ${i}` : `project meeting notes ${i}`, label: i % 2 ? 'spam' : 'ham' }));
  const result = await trainTextModel(items, { tokenizer: { bucketBits: 10, maxFeatures: 64, maxHeaderFeatures: 16 }, dim: 8, epochs: 5, seed: 7 });
  await writeModelVersion(dir, 'general', 1, exportFastTextOnnx(result.model, { tokenizer: result.tokenizer, modelName: 'general', modelVersion: 1 }), {
    metadata: { labels: ['ham', 'spam'] },
  });
}

async function main(): Promise<void> {
  const concurrency = Number(argValue('concurrency', '64'));
  const connections = Number(argValue('connections', '4'));
  const warmupMs = Number(argValue('warmup-ms', '2000'));
  const measureMs = Number(argValue('measure-ms', '8000'));
  const rounds = Number(argValue('rounds', '2'));
  let workspace = fileURLToPath(new URL('.', import.meta.url));
  while (!existsSync(join(workspace, 'package-lock.json')) && dirname(workspace) !== workspace) workspace = dirname(workspace);
  let repository = argValue('repository', join(workspace, 'bench-results/cache/repository'));
  const temp = await mkdtemp(join(tmpdir(), 'fusion-bench-'));
  if (!existsSync(join(repository, 'general'))) {
    console.error(`no model in ${repository} (run \`npm run bench -- general --quick\` once to train the default model): using a toy model`);
    repository = join(temp, 'models');
    await toyRepository(repository);
  }
  const mails = loadSpamAssassin({ limit: 400 })
    .items.map((i) => i.text)
    .filter((t) => Buffer.byteLength(t) < 64 * 1024)
    .slice(0, 256);

  const logger = createLogger({ service: 'bench', level: 'warn' });
  const grpc = { host: '127.0.0.1', port: 0, drainTimeoutMs: 2_000 };
  const general = await startGeneralModel({ grpc, generalModel: { repository, executionProviders: ['cpu'] } }, logger);
  // File stores, as the services use them (WAL; every Predict writes its prediction record).
  const personalStore = await openSqliteStore({ path: join(temp, 'personal.sqlite') });
  const personal = await startPersonalModel({ grpc, personalModel: {} }, logger, { store: personalStore });
  const counts = new Map<string, number>();
  const fusions: { name: string; fusion: RunningFusion; close: () => Promise<void> }[] = [];
  for (const enabled of [false, true]) {
    const store = await openSqliteStore({ path: join(temp, `fusion-${enabled ? 'on' : 'off'}.sqlite`) });
    const interceptors = [countingInterceptor(counts)];
    const fusion = await startFusion(
      {
        grpc,
        pseudonym: { secret: 'fusion-bench-secret-0123456789abcdef-0123456789' },
        fusion: {
          generalModel: { address: general.address },
          personalModel: { address: personal.address },
          coalescing: { enabled, maxDelayMs: Number(argValue('max-delay-ms', '0')), maxItems: Number(argValue('max-items', '256')) },
        },
      },
      logger,
      { store, interceptors: { generalModel: interceptors, personalModel: interceptors } },
    );
    fusions.push({ name: enabled ? 'fusion, coalescing on' : 'fusion, coalescing off', fusion, close: () => fusion.stop().then(() => store.close()) });
  }

  // Personal models for half the users, so Score does real work for them (the others get NO_MODEL).
  const seedClient = new v1.InferenceServiceClient(fusions[1]!.fusion.address, credentials.createInsecure());
  const md = new Metadata();
  md.set(TENANT_METADATA_KEY, TENANT);
  for (let u = 0; u < USERS_WITH_MODELS; u++) {
    for (let k = 0; k < 3; k++) {
      const mail = mails[(u * 3 + k) % mails.length]!;
      await new Promise<void>((done, fail) =>
        seedClient.feedback(
          { userId: `user-${u}`, target: { $case: 'input', value: rawMail(mail) }, label: k === 0 ? 'spam' : 'ham', idempotencyKey: '', occurredAt: undefined },
          md,
          { deadline: Date.now() + 10_000 },
          (err) => (err ? fail(err) : done()),
        ),
      );
    }
  }
  seedClient.close();

  const contenders: { name: string; kind: 'general' | 'fusion'; address: string; fusion?: RunningFusion }[] = [
    { name: 'general-only (Classify direct)', kind: 'general', address: general.address },
    ...fusions.map((f) => ({ name: f.name, kind: 'fusion' as const, address: f.fusion.address, fusion: f.fusion })),
  ];
  const only = argValue('only', '');
  if (only !== '') {
    const keep = new Set(only.split(','));
    contenders.splice(0, contenders.length, ...contenders.filter((c, i) => keep.has(['general', 'off', 'on'][i]!)));
  }
  const rates = new Map<string, number[]>();
  const cpuPerRequest = new Map<string, number[]>();
  const describe = (s: CoalescerStats | undefined, before: CoalescerStats | undefined) =>
    s && before ? `${s.calls - before.calls} calls, ${((s.members - before.members) / Math.max(1, s.calls - before.calls)).toFixed(1)} requests/call` : '-';
  console.error(`${concurrency} concurrent, ${connections} connections, ${warmupMs} ms warm-up + ${measureMs} ms, ${rounds} round(s), model ${repository}`);
  for (let round = 1; round <= rounds; round++) {
    for (const c of contenders) {
      const before = c.fusion?.coalescingStats();
      const countsBefore = new Map(counts);
      const r = await load({ kind: c.kind, address: c.address, concurrency, connections, warmupMs, measureMs, mails });
      const after = c.fusion?.coalescingStats();
      const delta = (path: string) => (counts.get(path) ?? 0) - (countsBefore.get(path) ?? 0);
      const rate = r.completed / r.seconds;
      rates.set(c.name, [...(rates.get(c.name) ?? []), rate]);
      if (r.serverCpuMsPerRequest !== undefined) cpuPerRequest.set(c.name, [...(cpuPerRequest.get(c.name) ?? []), r.serverCpuMsPerRequest]);
      const errors = Object.entries(r.errors).map(([k, v]) => `${k}=${v}`).join(' ') || 'none';
      console.log(
        `round ${round} | ${c.name.padEnd(30)} | ${rate.toFixed(0).padStart(6)} req/s | p50 ${r.p50Ms.toFixed(1)} ms p99 ${r.p99Ms.toFixed(1)} ms | CPU/request: services ${r.serverCpuMsPerRequest?.toFixed(2) ?? '?'} ms, client ${((r.clientCpuCores * r.seconds * 1000) / Math.max(1, r.completed)).toFixed(2)} ms | errors ${errors}` +
          (c.fusion
            ? ` | Classify ${delta('/aimass.v1.GeneralModelService/Classify')} (${describe(after?.generalModel, before?.generalModel)}), Score ${delta('/aimass.v1.PersonalModelService/Score')} (${describe(after?.personalModel, before?.personalModel)}), record writes (${describe(after?.records, before?.records)})`
            : ''),
      );
    }
  }
  // Rounds interleave the contenders, so per-round ratios cancel out slow drifts of the machine.
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
  const baseRates = rates.get('general-only (Classify direct)');
  const offRates = rates.get('fusion, coalescing off');
  const ratio = (xs: number[], to: number[] | undefined, label: string) =>
    to && to !== xs ? `, median ${median(xs.map((x, i) => x / to[i]!)).toFixed(2)} × ${label} (rounds: ${xs.map((x, i) => (x / to[i]!).toFixed(2)).join(' ')})` : '';
  for (const [name, xs] of rates) {
    const vsOff = name === 'fusion, coalescing on' ? ratio(xs, offRates, 'coalescing off') : '';
    console.log(`${name.padEnd(30)} median ${median(xs).toFixed(0).padStart(6)} req/s${ratio(xs, baseRates, 'general-only')}${vsOff}`);
  }
  // CPU per request is far less sensitive to other load on the machine than req/s; on a saturated
  // machine throughput is inversely proportional to it.
  const baseCpu = cpuPerRequest.get('general-only (Classify direct)');
  for (const [name, xs] of cpuPerRequest) {
    console.log(`${name.padEnd(30)} median ${median(xs).toFixed(2)} ms CPU/request in the services` + (baseCpu && xs !== baseCpu ? ` (general-only / this: ${(median(baseCpu) / median(xs)).toFixed(2)})` : ''));
  }

  for (const f of fusions) await f.close();
  await personal.stop();
  await personalStore.close();
  await general.stop();
  await rm(temp, { recursive: true, force: true });
}

if (process.argv.includes('--load')) {
  process.once('message', (job) => {
    void runLoad(job as LoadJob).then((result) => {
      process.send!(result, () => process.exit(0));
    });
  });
} else {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
