import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { AiMassClient, AiMassError, TrainingAdminClient, type PredictionResult } from '@aimass/sdk';
import { SampleBuffer, summarizeLatencies } from '../../load/stats.js';
import { userIdOf } from '../../load/users.js';
import { seededUniform, ZipfDistribution } from '../../load/zipf.js';
import type { Progress } from '../../progress.js';
import type { CallFigures, FeedbackFigures, FreshnessFigures, PredictFigures, UpdaterFigures } from '../../report/updates-record.js';
import { round } from '../common.js';
import type { BenchMail } from '../personal/mails.js';
import { labelFor, type Taste } from '../personal/population.js';
import { appliedBetween, outcomeOf, perSecond, reflects, UserPicker, versionNumber, versionSeen, type Tally, type VersionSeen } from './freshness.js';

export interface UpdatesLoadOptions {
  readonly fusionAddress: string;
  readonly updaterAddress: string;
  readonly tenant: string;
  readonly userPrefix: string;
  /** Users 1..users get the feedback, uniformly. */
  readonly users: number;
  /** Users whose every event is timed (one at a time each). */
  readonly isProbeUser: (rank: number) => boolean;
  readonly probeUsers: number;
  readonly tasteOf: (rank: number) => Taste;
  /** Mails feedback is given on (each event draws one). */
  readonly feedbackMails: readonly BenchMail[];
  /** Mails of the background Predicts. */
  readonly requestMails: readonly BenchMail[];
  /** Feedback events offered per second, evenly spaced, from the start of the warm-up to the end of the window. */
  readonly ratePerS: number;
  readonly predictClients: number;
  /** Zipf exponent of the background Predicts over the users. */
  readonly trafficZipfS: number;
  readonly warmupMs: number;
  readonly durationMs: number;
  readonly pollMs: number;
  readonly probeTimeoutMs: number;
  /** Feedback events (Predict + Feedback) in flight at most; an event due beyond it is not sent (and counted). */
  readonly maxInFlight: number;
  readonly drainTimeoutMs: number;
  readonly callDeadlineMs: number;
  readonly seed: number;
  readonly progress: Progress;
  /** Called when the warm-up ends and the measured window opens. */
  readonly onWindowOpen?: () => void;
}

export interface UpdatesMeasured {
  readonly freshness: FreshnessFigures;
  readonly feedback: FeedbackFigures;
  readonly predict: PredictFigures;
  readonly updater: UpdaterFigures;
  readonly eventLoopDelayMs: { readonly p50: number; readonly p99: number; readonly max: number };
}

const FRESHNESS_DEFINITION =
  'time from a Feedback call returning (accepted) to the return of the first Predict for that user, on the same mail, whose provenance names a personal model version ' +
  'above the one the user had before the feedback (no model counts as version 0); Predicts are sent one after another, each starting poll_ms after the previous one started, ' +
  'the first right after Feedback returned; a probed user gets no other feedback until then';

/** Sampling period of the event-loop delay histogram; its values include this period. */
const LOOP_DELAY_RESOLUTION_MS = 10;

/** Latencies of the calls of one kind that ended inside the window. */
class CallLog {
  readonly #latencies = new SampleBuffer();

  constructor(private readonly window: { readonly start: number; readonly end: number }) {}

  add(started: number, ended: number): void {
    if (ended >= this.window.start && ended < this.window.end) this.#latencies.push(ended - started);
  }

  get count(): number {
    return this.#latencies.length;
  }

  figures(): CallFigures {
    const s = summarizeLatencies(this.#latencies.values());
    const seconds = (this.window.end - this.window.start) / 1000;
    return { calls: s.count, per_s: round(s.count / seconds, 1), p50_ms: round(s.p50, 2), p99_ms: round(s.p99, 2) };
  }
}

function errorKind(what: string, error: unknown): string {
  return `${what}:${error instanceof AiMassError ? error.code : error instanceof Error ? error.name : 'unknown'}`;
}

function increment(counts: Record<string, number>, key: string): void {
  counts[key] = (counts[key] ?? 0) + 1;
}

function sum(counts: Readonly<Record<string, number>>): number {
  return Object.values(counts).reduce((a, b) => a + b, 0);
}

/**
 * The run: feedback at a fixed rate over the users (each event a Predict, then Feedback naming its
 * prediction, as a person corrects what they were shown), Predict load throughout, and for the
 * probed users the wait for the first Predict that shows the new personal model version. Then the
 * updater's backlog is watched until it is empty.
 */
export async function runUpdatesLoad(o: UpdatesLoadOptions): Promise<UpdatesMeasured> {
  const { progress } = o;
  const connect = () => new AiMassClient({ address: o.fusionAddress, tenant: o.tenant, retry: false, defaultDeadlineMs: o.callDeadlineMs });
  // One channel each, so the probes' polls do not queue behind the background load on one connection.
  const backgroundClient = connect();
  const feedbackClient = connect();
  const probeClient = connect();
  const admin = new TrainingAdminClient({ address: o.updaterAddress, tenant: o.tenant, retry: false, defaultDeadlineMs: 10_000 });
  const loopDelay = monitorEventLoopDelay({ resolution: LOOP_DELAY_RESOLUTION_MS });
  loopDelay.enable();

  const runStart = performance.now();
  const window = { start: runStart + o.warmupMs, end: runStart + o.warmupMs + o.durationMs };
  const inWindow = (t: number): boolean => t >= window.start && t < window.end;
  const sinceWindow = (t: number): number => round((t - window.start) / 1000, 3);

  const random = seededUniform(o.seed);
  const picker = new UserPicker(o.users, random);
  const errors: Record<string, number> = {};
  const outcomes: Record<string, number> = {};
  const background = new CallLog(window);
  const beforeFeedback = new CallLog(window);
  const polls = new CallLog(window);
  const feedbackCalls = new CallLog(window);
  const acceptedAt: number[] = [];
  let duplicates = 0;
  const notSent = { overload: 0, no_user: 0 };
  const known = new Map<number, number>();
  const samples: { t0: number; ms: number; firstModel: boolean; polls: number; timedOut: boolean }[] = [];
  let pollsWithoutVersion = 0;
  const pendingSeries: [number, number][] = [];
  let lastPending: number | undefined;

  const tally = async (): Promise<Tally> => {
    const state = await admin.trainingState(undefined, { deadlineMs: 10_000 });
    lastPending = state.pendingEvents;
    return { accepted: acceptedAt.length, pending: state.pendingEvents };
  };

  // The updater's backlog about once a second, for the plot and the progress lines.
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const at = performance.now();
      try {
        const state = await admin.trainingState(undefined, { deadlineMs: 5_000 });
        lastPending = state.pendingEvents;
        pendingSeries.push([sinceWindow(performance.now()), state.pendingEvents]);
      } catch (error) {
        increment(errors, errorKind('training_state', error));
      }
      await sleep(Math.max(0, at + 1000 - performance.now()));
    }
  })();

  // Background Predicts: closed loop, users Zipf over the same users (most traffic on a few).
  let predicting = true;
  const zipf = new ZipfDistribution(o.users, o.trafficZipfS);
  const predictWorker = async (worker: number): Promise<void> => {
    const draw = seededUniform(o.seed * 31 + worker + 1);
    while (predicting) {
      const rank = zipf.sample(draw);
      const mail = o.requestMails[Math.floor(draw() * o.requestMails.length)] as BenchMail;
      const started = performance.now();
      try {
        const p = await backgroundClient.predict(userIdOf(o.userPrefix, rank), mail.input);
        background.add(started, performance.now());
        increment(outcomes, outcomeOf(p));
      } catch (error) {
        increment(errors, errorKind('predict', error));
        await sleep(50);
      }
    }
  };
  const predictWorkers = Array.from({ length: o.predictClients }, (_, i) => predictWorker(i));

  type Sent = { readonly kind: 'sent'; readonly before: PredictionResult; readonly t0: number } | { readonly kind: 'not-sent' } | { readonly kind: 'unknown' };

  /** One feedback event: the Predict a person saw, then Feedback naming it. */
  const giveFeedback = async (rank: number, mail: BenchMail, key: string): Promise<Sent> => {
    const userId = userIdOf(o.userPrefix, rank);
    let before: PredictionResult;
    const s1 = performance.now();
    try {
      before = await feedbackClient.predict(userId, mail.input);
      beforeFeedback.add(s1, performance.now());
    } catch (error) {
      increment(errors, errorKind('predict', error));
      return { kind: 'not-sent' };
    }
    const s2 = performance.now();
    try {
      const result = await feedbackClient.feedback({ userId, predictionId: before.predictionId, label: labelFor(o.tasteOf(rank), mail), idempotencyKey: key });
      const t0 = performance.now();
      if (!result.accepted) {
        increment(errors, 'feedback:NOT_ACCEPTED');
        return { kind: 'not-sent' };
      }
      feedbackCalls.add(s2, t0);
      acceptedAt.push(t0);
      if (result.duplicate) duplicates++;
      return { kind: 'sent', before, t0 };
    } catch (error) {
      increment(errors, errorKind('feedback', error));
      // A failed Feedback may still have been stored (a deadline, a lost answer).
      return { kind: 'unknown' };
    }
  };

  /** A probed user's event: feedback, then Predicts until one shows a newer version. */
  const probe = async (rank: number, mail: BenchMail, key: string): Promise<void> => {
    let retire = false;
    try {
      const sent = await giveFeedback(rank, mail, key);
      if (sent.kind !== 'sent') {
        retire = sent.kind === 'unknown';
        return;
      }
      const baseline = Math.max(known.get(rank) ?? 0, versionNumber(versionSeen(sent.before)) ?? 0);
      const userId = userIdOf(o.userPrefix, rank);
      let count = 0;
      for (;;) {
        const started = performance.now();
        let seen: VersionSeen | undefined;
        try {
          const p = await probeClient.predict(userId, mail.input, { deadlineMs: Math.min(o.callDeadlineMs, o.probeTimeoutMs) });
          polls.add(started, performance.now());
          seen = versionSeen(p);
        } catch (error) {
          increment(errors, errorKind('predict', error));
        }
        count++;
        const now = performance.now();
        if (seen?.kind === 'model' && reflects(seen, baseline)) {
          known.set(rank, seen.version);
          if (inWindow(sent.t0)) samples.push({ t0: sent.t0, ms: now - sent.t0, firstModel: baseline === 0, polls: count, timedOut: false });
          return;
        }
        if (seen === undefined || seen.kind === 'unknown') pollsWithoutVersion++;
        if (now - sent.t0 >= o.probeTimeoutMs) {
          // Still unapplied: a later event of this user could no longer be told apart from it.
          if (inWindow(sent.t0)) samples.push({ t0: sent.t0, ms: now - sent.t0, firstModel: baseline === 0, polls: count, timedOut: true });
          retire = true;
          return;
        }
        await sleep(Math.max(0, started + o.pollMs - performance.now()));
      }
    } finally {
      if (retire) picker.retire(rank);
      else picker.release(rank);
    }
  };

  const plain = async (rank: number, mail: BenchMail, key: string): Promise<void> => {
    await giveFeedback(rank, mail, key);
  };

  const inFlight = new Set<Promise<void>>();
  const report = setInterval(() => {
    const now = performance.now();
    const last5 = acceptedAt.filter((t) => t >= now - 5000).length / 5;
    const fresh = summarizeLatencies(samples.map((s) => s.ms));
    const phase = now < window.start ? 'warm-up' : 'measuring';
    progress.note(
      `${phase}: feedback ${last5.toFixed(0)}/s (offered ${o.ratePerS}/s), in flight ${inFlight.size}; ` +
        `freshness ${fresh.count} samples${fresh.count > 0 ? `, p50 ${fresh.p50.toFixed(0)} ms, p99 ${fresh.p99.toFixed(0)} ms` : ''}; ` +
        `updater pending ${lastPending ?? '?'}; errors ${sum(errors)}`,
    );
  }, 5000);
  const stopLoad = async (): Promise<void> => {
    clearInterval(report);
    predicting = false;
    await Promise.allSettled(predictWorkers);
  };

  let startTally: Tally | undefined;
  let endTally: Tally;
  let pendingAfter: number;
  let drained: boolean;
  let drainedAt = window.end;
  try {
    try {
      let startTallyError: unknown;
      const startTallyDone = sleep(Math.max(0, window.start - performance.now())).then(async () => {
        o.onWindowOpen?.();
        try {
          startTally = await tally();
        } catch (error) {
          startTallyError = error;
        }
      });
      // Feedback: events evenly spaced in time (open loop: a slow answer does not delay the next event).
      const interval = 1000 / o.ratePerS;
      let next = 0;
      let sequence = 0;
      const runId = Date.now().toString(36);
      for (;;) {
        const now = performance.now();
        while (runStart + next * interval <= now && runStart + next * interval < window.end) {
          next++;
          if (inFlight.size >= o.maxInFlight) {
            notSent.overload++;
            continue;
          }
          const rank = picker.pick();
          if (rank === undefined) {
            notSent.no_user++;
            continue;
          }
          const mail = o.feedbackMails[Math.floor(random() * o.feedbackMails.length)] as BenchMail;
          const key = `bench-updates-${runId}-${sequence++}`;
          let task: Promise<void>;
          if (o.isProbeUser(rank)) {
            picker.hold(rank);
            task = probe(rank, mail, key);
          } else task = plain(rank, mail, key);
          const tracked = task.finally(() => inFlight.delete(tracked));
          inFlight.add(tracked);
        }
        const due = runStart + next * interval;
        if (due >= window.end) break;
        await sleep(Math.max(1, due - performance.now()));
      }
      await sleep(Math.max(0, window.end - performance.now()));
      endTally = await tally();
      await startTallyDone;
      if (startTally === undefined) {
        throw new Error(`reading the updater's training state when the window opened failed: ${(startTallyError as Error | undefined)?.message}`, { cause: startTallyError });
      }
      progress.step(`waiting for the ${inFlight.size} feedback events and probes in flight (the Predict load goes on meanwhile)`, 0);
      await Promise.allSettled([...inFlight]);
    } finally {
      await stopLoad();
    }

    // Drain: the load has stopped; how long until every accepted event is applied.
    progress.step(`draining: waiting until the updater has applied every accepted event (pending ${lastPending ?? '?'}; at most ${o.drainTimeoutMs / 1000} s)`, 0);
    pendingAfter = endTally.pending;
    drained = pendingAfter === 0;
    let noted = performance.now();
    while (!drained && performance.now() - window.end < o.drainTimeoutMs) {
      await sleep(250);
      try {
        pendingAfter = (await tally()).pending;
        drained = pendingAfter === 0;
        drainedAt = performance.now();
        pendingSeries.push([sinceWindow(drainedAt), pendingAfter]);
      } catch (error) {
        increment(errors, errorKind('training_state', error));
      }
      if (performance.now() - noted >= 5000) {
        noted = performance.now();
        progress.note(`updater pending ${pendingAfter}`);
      }
    }
  } finally {
    await stopLoad();
    sampling = false;
    await sampler;
    loopDelay.disable();
    backgroundClient.close();
    feedbackClient.close();
    probeClient.close();
    admin.close();
  }

  const seconds = o.durationMs / 1000;
  const fresh = summarizeLatencies(samples.map((s) => s.ms));
  const applied = appliedBetween(startTally, endTally);
  const acceptedInWindow = acceptedAt.filter(inWindow).length;
  const predictErrors = Object.fromEntries(Object.entries(errors).filter(([k]) => k.startsWith('predict:')));
  const feedbackErrors = Object.fromEntries(Object.entries(errors).filter(([k]) => k.startsWith('feedback:')));
  const stateErrors = Object.fromEntries(Object.entries(errors).filter(([k]) => k.startsWith('training_state:')));
  const delayMs = (ns: number) => round(Math.max(0, ns / 1e6 - LOOP_DELAY_RESOLUTION_MS), 2);
  return {
    freshness: {
      samples: fresh.count,
      mean_ms: round(fresh.mean, 1),
      p50_ms: round(fresh.p50, 1),
      p90_ms: round(fresh.p90, 1),
      p99_ms: round(fresh.p99, 1),
      max_ms: round(fresh.max, 1),
      first_model_samples: samples.filter((s) => s.firstModel).length,
      timed_out: samples.filter((s) => s.timedOut).length,
      timeout_ms: o.probeTimeoutMs,
      probe_users: o.probeUsers,
      poll_ms: o.pollMs,
      polls_per_sample_mean: round(samples.reduce((a, s) => a + s.polls, 0) / Math.max(1, samples.length), 2),
      polls_without_version: pollsWithoutVersion,
      definition: FRESHNESS_DEFINITION,
      series: samples.map((s) => [sinceWindow(s.t0), round(s.ms, 1)] as const),
    },
    feedback: {
      offered_per_s: o.ratePerS,
      achieved_per_s: round(acceptedInWindow / seconds, 1),
      accepted_in_window: acceptedInWindow,
      accepted_total: acceptedAt.length,
      duplicates,
      not_sent: notSent,
      errors: sum(feedbackErrors),
      error_kinds: feedbackErrors,
      feedback_call: feedbackCalls.figures(),
      users: o.users,
      users_retired: picker.retiredCount,
      how:
        `each event: Predict for the user on a corpus mail (the answer a person saw), then Feedback naming its prediction_id with the user's label and a fresh idempotency key; ` +
        `events evenly spaced at ${o.ratePerS}/s (open loop), each to a user drawn uniformly from ${o.users}`,
      per_second: perSecond(acceptedAt, window.start, seconds),
    },
    predict: {
      clients: o.predictClients,
      background: background.figures(),
      before_feedback: beforeFeedback.figures(),
      polls: polls.figures(),
      all_per_s: round((background.count + beforeFeedback.count + polls.count) / seconds, 1),
      errors: sum(predictErrors),
      error_kinds: predictErrors,
      outcomes,
    },
    updater: {
      events_per_s: round(applied / seconds, 1),
      applied_in_window: applied,
      pending_at_window_start: startTally.pending,
      lag_at_end: endTally.pending,
      drained,
      drain_seconds: round((drainedAt - window.end) / 1000, 2),
      pending_after_drain: pendingAfter,
      training_state_errors: stateErrors,
      how:
        "applied = (accepted − pending) at the window's end − the same at its start; accepted is counted by the bench, pending is the updater's GetTrainingState pending_events " +
        '(events received but not yet applied, plus events in the stream not yet received)',
      pending_series: pendingSeries.sort((a, b) => a[0] - b[0]),
    },
    eventLoopDelayMs: { p50: delayMs(loopDelay.percentile(50)), p99: delayMs(loopDelay.percentile(99)), max: delayMs(loopDelay.max) },
  };
}
