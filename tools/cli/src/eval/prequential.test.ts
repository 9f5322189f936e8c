import { describe, expect, it } from 'vitest';
import type { EvalMail, Label } from './corpus.js';
import { userLabel, type Profile, type SimulatedUser } from './profiles.js';
import { TooManyRejectionsError, runUser, runUsers, type EvalTarget, type MeasuredStrategy } from './prequential.js';

// A user who wants the mail of promo.example that the corpus calls spam.
const PROFILE: Profile = {
  name: 'promo-fan',
  kind: 'divergent',
  description: 'test profile',
  slice: 'spam from promo.example',
  inSlice: (m) => m.corpusLabel === 'spam' && m.fromDomain === 'promo.example',
};

function mail(i: number, corpusLabel: Label, fromDomain: string): EvalMail {
  return { key: `g/${i}`, group: 'g', corpusLabel, raw: '', fromDomain, listId: undefined, generalHeldOut: false };
}

/** Every 4th mail from promo.example (spam by the corpus), the rest alternating ham and other spam. */
function mails(n: number, offset = 0): EvalMail[] {
  return Array.from({ length: n }, (_, k) => {
    const i = k + offset;
    return i % 4 === 0 ? mail(i, 'spam', 'promo.example') : i % 2 === 0 ? mail(i, 'spam', `junk${i}.example`) : mail(i, 'ham', 'friend.example');
  });
}

function user(stream: EvalMail[], heldOut: EvalMail[]): SimulatedUser {
  return {
    id: 'run-promo-fan-1',
    profile: PROFILE,
    index: 1,
    stream,
    heldOut,
    sliceInStream: stream.filter(PROFILE.inSlice).length,
    sliceInHeldOut: heldOut.filter(PROFILE.inSlice).length,
    label: (m) => userLabel(PROFILE, m),
  };
}

/**
 * A target whose behaviour the test defines in full: the "general model" answers the corpus label;
 * the "personal model" remembers the label a user last gave a sender domain. Fused and personal
 * answers use the memory when it knows the sender. It exists to check the loop's bookkeeping.
 */
class RememberingTarget implements EvalTarget {
  readonly memory = new Map<string, string>();
  readonly feedbackKeys: string[] = [];
  readonly predictions = new Map<string, EvalMail>();
  readonly calls: string[] = [];
  rejectKeys = new Set<string>();

  private answer(m: EvalMail, strategy: MeasuredStrategy): string {
    const learned = this.memory.get(m.fromDomain ?? '');
    return strategy !== 'general' && learned !== undefined ? learned : m.corpusLabel;
  }

  async predict(userId: string, m: EvalMail) {
    this.calls.push(`predict ${userId}`);
    if (this.rejectKeys.has(m.key)) return { rejected: `INVALID_ARGUMENT: ${m.key} is too large` };
    const id = `p${this.predictions.size}`;
    this.predictions.set(id, m);
    return { predictionId: id, label: this.answer(m, 'fused') };
  }

  async predictMany(_userId: string, ms: readonly EvalMail[], strategy: MeasuredStrategy) {
    return ms.map((m) => ({ label: this.answer(m, strategy), fallbacks: strategy !== 'general' && this.memory.size === 0 ? ['no_personal_model'] : [] }));
  }

  async feedback(_userId: string, predictionId: string, label: Label, key: string) {
    this.feedbackKeys.push(key);
    const m = this.predictions.get(predictionId);
    if (!m) throw new Error(`unknown prediction ${predictionId}`);
    this.memory.set(m.fromDomain ?? '', label);
  }
}

/**
 * Feedback applied later, as by an updater: it is queued, and applied only when the loop asks the
 * target to settle (after a short wait, so the time spent is visible).
 */
class LaggingTarget extends RememberingTarget {
  readonly queued: { predictionId: string; label: Label }[] = [];
  readonly settled: string[] = [];
  readonly signals: (AbortSignal | undefined)[] = [];

  override async feedback(_userId: string, predictionId: string, label: Label, key: string) {
    this.feedbackKeys.push(key);
    this.queued.push({ predictionId, label });
  }

  async settle(userId: string, signal?: AbortSignal) {
    this.settled.push(`${userId} after ${this.feedbackKeys.length} feedback`);
    this.signals.push(signal);
    await new Promise((r) => setTimeout(r, 5));
    for (const { predictionId, label } of this.queued.splice(0)) this.memory.set(this.predictions.get(predictionId)!.fromDomain ?? '', label);
  }
}

describe('runUser', () => {
  it('gives feedback on every mistake, measures at each checkpoint and stops at the last', async () => {
    const target = new RememberingTarget();
    const u = user(mails(400), mails(40, 1000));
    const run = await runUser(u, target, { checkpoints: [1, 5], feedbackShare: 0, seed: 1 });

    // Only the first promo mail is a mistake (remembered after); the other feedback comes from
    // the confirmations of correct answers, which are off here — so checkpoint 5 is never reached.
    expect(run.feedback).toBe(1);
    expect(run.mistakes).toBe(1);
    expect(run.checkpoints.map((c) => [c.feedback, c.reached])).toEqual([
      [0, true],
      [1, true],
      [5, false],
    ]);
    const [before, after] = run.checkpoints;
    expect(before!.measures.general).toEqual({ measured: 40, wrong: 10, rejected: 0, fallbacks: {}, applied: {} });
    expect(before!.measures.fused).toEqual({ measured: 40, wrong: 10, rejected: 0, fallbacks: { no_personal_model: 40 }, applied: {} });
    expect(after!.measures.fused?.wrong).toBe(0);
    expect(after!.measures.general?.wrong).toBe(10);
    expect(after!.streamMails).toBe(1);
    expect(run.streamMails).toBe(400);
  });

  it('with every answer confirmed, reaches checkpoint N after exactly N mails and stops there', async () => {
    const target = new RememberingTarget();
    const run = await runUser(user(mails(100), mails(8, 1000)), target, { checkpoints: [10, 20], feedbackShare: 1, seed: 1 });
    expect(run.checkpoints.map((c) => [c.feedback, c.streamMails])).toEqual([
      [0, 0],
      [10, 10],
      [20, 20],
    ]);
    expect(run.streamMails).toBe(20);
    expect(target.feedbackKeys).toEqual(mails(20).map((m) => `run-promo-fan-1/${m.key}`));
  });

  it('confirms about the given share of correct answers, the same way for the same seed', async () => {
    const settings = { checkpoints: [100_000], feedbackShare: 0.1, seed: 3 };
    const a = await runUser(user(mails(4000), []), new RememberingTarget(), settings);
    const b = await runUser(user(mails(4000), []), new RememberingTarget(), settings);
    const confirmations = a.feedback - a.mistakes;
    expect(confirmations / (a.streamMails - a.mistakes)).toBeGreaterThan(0.08);
    expect(confirmations / (a.streamMails - a.mistakes)).toBeLessThan(0.12);
    expect(b.feedback).toBe(a.feedback);
  });

  it('calls the user hook first (the consent seam)', async () => {
    const target = new RememberingTarget();
    await runUser(user(mails(3), []), target, { checkpoints: [1], feedbackShare: 1, seed: 1 }, {
      prepareUser: async (u) => {
        target.calls.push(`prepare ${u.id}`);
      },
    });
    expect(target.calls[0]).toBe('prepare run-promo-fan-1');
  });

  it('settles the target before each checkpoint after feedback, not after every feedback', async () => {
    const target = new LaggingTarget();
    const controller = new AbortController();
    const heldOut = mails(40, 1000);
    const run = await runUser(user(mails(100), heldOut), target, { checkpoints: [10, 20], feedbackShare: 1, seed: 1, signal: controller.signal });

    expect(target.settled).toEqual(['run-promo-fan-1 after 10 feedback', 'run-promo-fan-1 after 20 feedback']);
    expect(target.signals).toEqual([controller.signal, controller.signal]);
    // Measured on the settled model: the promo mails (every 4th) are ham to this user from checkpoint 10 on.
    const [at0, at10, at20] = run.checkpoints;
    expect(at0!.measures.fused?.wrong).toBe(10);
    expect(at10!.measures.fused?.wrong).toBe(0);
    expect(at20!.measures.fused?.wrong).toBe(0);
    // The wait is timed per checkpoint (none before any feedback) and summed.
    expect(at0!.settleMs).toBeUndefined();
    expect(at10!.settleMs).toBeGreaterThan(0);
    expect(at20!.settleMs).toBeGreaterThan(0);
    expect(run.settleMs).toBeCloseTo(at10!.settleMs! + at20!.settleMs!, 6);
  });

  it('measures at once against a target without settle (Feedback trains before it returns)', async () => {
    const run = await runUser(user(mails(100), mails(8, 1000)), new RememberingTarget(), { checkpoints: [10], feedbackShare: 1, seed: 1 });
    expect(run.checkpoints.map((c) => c.settleMs)).toEqual([undefined, undefined]);
    expect(run.settleMs).toBe(0);
  });

  it('does not settle for a checkpoint the stream never reaches', async () => {
    const target = new LaggingTarget();
    const run = await runUser(user(mails(5), mails(4, 1000)), target, { checkpoints: [3, 50], feedbackShare: 1, seed: 1 });
    expect(run.checkpoints.map((c) => [c.feedback, c.reached])).toEqual([
      [0, true],
      [3, true],
      [50, false],
    ]);
    expect(target.settled).toEqual(['run-promo-fan-1 after 3 feedback']);
  });

  it('skips a mail the platform refuses, but stops when it refuses many', async () => {
    const target = new RememberingTarget();
    const stream = mails(50);
    target.rejectKeys = new Set([stream[1]!.key]);
    const run = await runUser(user(stream, []), target, { checkpoints: [100], feedbackShare: 0, seed: 1 });
    expect(run.rejected).toBe(1);
    expect(run.streamMails).toBe(49);

    const refusing = new RememberingTarget();
    refusing.rejectKeys = new Set(stream.slice(0, 20).map((m) => m.key));
    await expect(runUser(user(stream, []), refusing, { checkpoints: [100], feedbackShare: 0, seed: 1 })).rejects.toThrow(TooManyRejectionsError);
  });

  it('stops between calls when its signal aborts', async () => {
    const controller = new AbortController();
    controller.abort(new Error('interrupted'));
    await expect(runUser(user(mails(10), mails(2)), new RememberingTarget(), { checkpoints: [5], feedbackShare: 1, seed: 1, signal: controller.signal })).rejects.toThrow('interrupted');
  });
});

describe('runUsers', () => {
  it('runs at most `concurrency` users at a time and keeps their order', async () => {
    let running = 0;
    let peak = 0;
    const users = ['a', 'b', 'c', 'd', 'e'].map((id) => ({ ...user([], []), id }));
    const runs = await runUsers(
      users,
      async (u) => {
        running++;
        peak = Math.max(peak, running);
        await new Promise((r) => setTimeout(r, 5));
        running--;
        return { user: u, checkpoints: [], streamMails: 0, feedback: 0, mistakes: 0, rejected: 0, settleMs: 0, elapsedMs: 0 };
      },
      2,
    );
    expect(peak).toBe(2);
    expect(runs.map((r) => r.user.id)).toEqual(['a', 'b', 'c', 'd', 'e']);
  });
});
