import { performance } from 'node:perf_hooks';
import { PersonalModel } from '@aimass/ml';
import { v1 } from '@aimass/proto';
import { Pseudonymizer } from '@aimass/platform';
import type { PersonalModelsStats } from '@aimass/personal-model';
import { PersonalModelProcess } from '../../contenders/personal-model-process.js';
import type { LoadGenerator } from '../../load/load-generator.js';
import { SCORE_METHOD, type LoadResult, type WindowPhase } from '../../load/protocol.js';
import { userKeyOf, type UserKeySpec, type UserSelection } from '../../load/users.js';
import { hashUniform, ZipfDistribution } from '../../load/zipf.js';
import type { Progress } from '../../progress.js';
import type { CacheWindow, StoreFigures } from '../../report/personal-record.js';
import { freeTcpPort, round } from '../common.js';
import { personalModelEnvironment } from '../service-config.js';
import { BENCH_TENANT, figuresOf, latencyFigures, measure, PSEUDONYM_SECRET, USER_PREFIX } from './measure.js';
import type { ModelPool, TrainingMail } from './model-pool.js';
import { poolSlot } from './population.js';
import type { BuiltStore } from './store-builder.js';

/**
 * What personal-model's cache charges per entry besides the model (its runtime: the decoded
 * model's `memoryBytes` + 512). Only used to size the all-hits set, whose measured hit ratio
 * says whether the estimate held.
 */
const CACHE_ENTRY_OVERHEAD_BYTES = 512;
/** The all-hits set fills at most this share of the cache, so nothing of it is evicted. */
const HOT_SET_CACHE_SHARE = 0.45;

export interface StorePartOptions {
  readonly store: BuiltStore;
  readonly pool: ModelPool;
  readonly examplesS: number;
  readonly zipfS: number;
  /** Mails the Score requests carry (with their general outputs and sparse features). */
  readonly requestMails: readonly TrainingMail[];
  readonly clients: number;
  readonly connections: number;
  /** Zipf traffic before the first measured window, in rounds of fillRoundMs, until the cache is in its steady state or fillMaxMs have passed. */
  readonly fillRoundMs: number;
  readonly fillMaxMs: number;
  /** Most users of the all-hits set (besides fitting in the cache). */
  readonly hotSetMax: number;
  readonly warmupMs: number;
  readonly durationMs: number;
  readonly coldLoads: number;
  readonly load: LoadGenerator;
  readonly progress: Progress;
}

export function storePartPlanMs(o: Pick<StorePartOptions, 'fillRoundMs' | 'warmupMs' | 'durationMs' | 'coldLoads'>): number {
  return 3 * o.fillRoundMs + 2 * (o.warmupMs + o.durationMs) + o.coldLoads * 2 + 10_000;
}

export const STORE_KEY: Extract<UserKeySpec, { kind: 'pseudonym' }> = { kind: 'pseudonym', prefix: USER_PREFIX, rootSecret: PSEUDONYM_SECRET, tenant: BENCH_TENANT };

function cacheWindow(before: PersonalModelsStats, after: PersonalModelsStats): CacheWindow {
  const hits = after.cache.hits - before.cache.hits;
  const misses = after.cache.misses - before.cache.misses;
  return {
    cache_hit_ratio: round(hits + misses === 0 ? Number.NaN : hits / (hits + misses), 4),
    cache_hits: hits,
    cache_misses: misses,
    store_loads: after.loads - before.loads,
    revalidations: after.revalidations - before.revalidations,
    evictions: after.cache.evictions - before.cache.evictions,
    cache_entries_after: after.cache.entries,
    cache_bytes_after: after.cache.bytes,
  };
}

/**
 * Part B: personal-model (its own process, default cache) on the million-user store, Score
 * traffic from the load process: Zipf over every user, then a hot set that fits in the cache;
 * the service's cache counters over each measured window; then cold loads timed inside the
 * service process.
 */
export async function runStorePart(o: StorePartOptions): Promise<Omit<StoreFigures, 'store' | 'bytes_per_model'>> {
  const { progress, store } = o;
  progress.step(`store: starting personal-model on ${store.path}`, 5000);
  const port = await freeTcpPort();
  const service = await PersonalModelProcess.start(personalModelEnvironment({ port, storePath: store.path }), port);
  try {
    const { maxBytes, revalidateMs } = await service.stats();
    progress.note(`personal-model cache: ${(maxBytes / 2 ** 20).toFixed(0)} MiB (its default), revalidation after ${revalidateMs} ms`);
    const templates = o.requestMails.map((t) =>
      v1.ScoreItem.encode({
        itemId: '0',
        userPseudonym: '',
        general: { model: { ...t.general.model }, logits: t.general.logits, probabilities: t.general.probabilities, embedding: t.general.embedding },
        sparseFeatures: { dimension: t.sparse.dimension, indices: t.sparse.indices, values: t.sparse.values },
      }).finish(),
    );
    // ScoreRequest{items = 1: ScoreItem{user_pseudonym = 2, ...template}}.
    const users = (pick: UserSelection['pick']): UserSelection => ({ key: STORE_KEY, pick, field: 2, within: 1 });
    const zipfUsers = users({ kind: 'zipf', count: store.users, exponent: o.zipfS, seed: 4242 });
    const base = {
      address: service.address,
      method: SCORE_METHOD,
      payloads: templates,
      response: { kind: 'score', results: 1 } as const,
      connections: o.connections,
      mode: { kind: 'closed', concurrency: o.clients } as const,
    };

    // The hit ratio that matters is the steady state's: a cache still filling has evicted
    // nothing yet. Zipf traffic until it is full and half of it has turned over (or time is up).
    const fillStarted = performance.now();
    let fillRounds = 0;
    let steady = false;
    for (;;) {
      fillRounds++;
      await measure(o.load, progress, {
        ...base,
        label: `store: filling the cache with Zipf(s=${o.zipfS}) traffic over ${store.users.toLocaleString('en-US')} users (round ${fillRounds}, not measured)`,
        users: { ...zipfUsers, pick: { kind: 'zipf', count: store.users, exponent: o.zipfS, seed: 4242 + fillRounds } },
        warmupMs: 0,
        durationMs: o.fillRoundMs,
        plannedMs: fillRounds <= 3 ? o.fillRoundMs : 0,
      });
      const { stats } = await service.stats();
      progress.note(`cache: ${stats.cache.entries.toLocaleString('en-US')} models, ${(stats.cache.bytes / 2 ** 20).toFixed(0)} of ${(maxBytes / 2 ** 20).toFixed(0)} MiB, ${stats.cache.evictions.toLocaleString('en-US')} evicted so far`);
      steady = stats.cache.evictions >= stats.cache.entries / 2;
      if (steady || performance.now() - fillStarted + o.fillRoundMs > o.fillMaxMs) break;
    }
    const fillSeconds = (performance.now() - fillStarted) / 1000;
    if (!steady) progress.note(`the cache did not reach its steady state within ${(o.fillMaxMs / 1000).toFixed(0)} s of filling: the hit ratio below is that of a cache still filling`);

    const windowed = async (label: string, selection: UserSelection): Promise<{ result: LoadResult; window: CacheWindow }> => {
      const edges: Partial<Record<WindowPhase, Promise<PersonalModelsStats>>> = {};
      const result = await measure(o.load, progress, {
        ...base,
        label,
        users: selection,
        warmupMs: o.warmupMs,
        durationMs: o.durationMs,
        plannedMs: o.warmupMs + o.durationMs,
        onWindow: (phase) => {
          edges[phase] = service.stats().then((s) => s.stats);
        },
      });
      if (edges.start === undefined || edges.end === undefined) throw new Error('the load process did not report the measured window');
      const window = cacheWindow(await edges.start, await edges.end);
      progress.note(`cache hit ratio ${window.cache_hit_ratio}, ${window.store_loads} store loads, ${window.revalidations} revalidations, ${window.evictions} evictions`);
      return { result, window };
    };

    const zipf = await windowed(`store: Zipf(s=${o.zipfS}) Score traffic over ${store.users.toLocaleString('en-US')} users, ${o.clients} clients`, zipfUsers);

    // The hot set: the most active users whose models fill under half the cache (in memory, as
    // the cache counts them: decoded, not as stored).
    const examples = new ZipfDistribution(o.pool.examplesMax, o.examplesS);
    const cachedBytes = o.pool.models.map((row) => row.map((m) => PersonalModel.deserialize(m.stored.parameters).memoryBytes + CACHE_ENTRY_OVERHEAD_BYTES));
    let hotUsers = 0;
    let hotBytes = 0;
    for (let rank = 1; rank <= store.users; rank++) {
      const slot = poolSlot(rank, examples, o.pool.variants);
      const bytes = cachedBytes[slot.examples - 1]?.[slot.variant] ?? 0;
      if (hotBytes + bytes > HOT_SET_CACHE_SHARE * maxBytes || rank > o.hotSetMax) break;
      hotBytes += bytes;
      hotUsers = rank;
    }
    const pseudonymizer = new Pseudonymizer({ rootSecret: STORE_KEY.rootSecret });
    const hotSet = Array.from({ length: hotUsers }, (_, i) => userKeyOf(STORE_KEY, i + 1, pseudonymizer));
    progress.step(`store: loading the hot set (${hotUsers.toLocaleString('en-US')} users, ${(hotBytes / 2 ** 20).toFixed(0)} MiB) into the cache`, 0);
    const warmMs = await service.warm(BENCH_TENANT, hotSet);
    const warmed = (await service.stats()).stats.cache;
    progress.note(`loaded in ${(warmMs / 1000).toFixed(1)} s; the cache holds ${warmed.entries.toLocaleString('en-US')} models, ${(warmed.bytes / 2 ** 20).toFixed(0)} MiB (${Math.round(warmed.bytes / Math.max(1, warmed.entries)).toLocaleString('en-US')} bytes each on average)`);
    const allHits = await windowed(
      `store: all hits, Zipf(s=${o.zipfS}) over the hot set's ${hotUsers.toLocaleString('en-US')} users, ${o.clients} clients`,
      users({ kind: 'zipf', count: hotUsers, exponent: o.zipfS, seed: 777 }),
    );

    // Cold loads: users drawn uniformly outside the hot set, each evicted before it is loaded.
    progress.step(`store: ${o.coldLoads} cold loads inside personal-model (idle)`, o.coldLoads * 2);
    const coldUsers: string[] = [];
    for (let i = 0; i < o.coldLoads; i++) {
      const rank = hotUsers + 1 + Math.floor(hashUniform(i, 0xc01d) * (store.users - hotUsers));
      coldUsers.push(userKeyOf(STORE_KEY, Math.min(store.users, rank), pseudonymizer));
    }
    const cold = await service.coldLoads(BENCH_TENANT, coldUsers);
    const total = latencyFigures(cold.total);
    progress.note(`cold load p50 ${total.p50_ms} ms, p99 ${total.p99_ms} ms, max ${total.max_ms} ms`);
    const bytesMean = cold.bytes.reduce((a, b) => a + b, 0) / Math.max(1, cold.bytes.length);

    return {
      users: store.users,
      traffic_zipf_s: o.zipfS,
      concurrency: o.clients,
      cache: { max_bytes: maxBytes, revalidate_ms: revalidateMs, setting: 'personalModel.cache.maxBytes and .revalidateMs at the service defaults (nothing set)' },
      zipf: { ...figuresOf(o.clients, zipf.result), ...zipf.window, fill_seconds: round(fillSeconds, 1), steady_state: steady },
      all_hits: { ...figuresOf(o.clients, allHits.result), ...allHits.window, hot_set_users: hotUsers, hot_set_bytes: hotBytes },
      zipf_vs_all_hits_throughput: round(zipf.result.rowsPerS / allHits.result.rowsPerS, 3),
      cold_load: {
        ...total,
        where:
          'inside the personal-model process, idle: PersonalModels.current on users evicted first (pointer read, version read, PersonalModel.deserialize, cache insert), users uniform outside the hot set',
        parts: { pointer_read: latencyFigures(cold.pointer), version_read: latencyFigures(cold.version), deserialize: latencyFigures(cold.decode) },
        parameter_bytes_mean: round(bytesMean, 0),
      },
    };
  } finally {
    await service.close();
  }
}
