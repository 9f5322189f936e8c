import { status as Status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { toAiMassError, type TrainingState } from '@aimass/sdk';
import { exitCodeOf, PlatformUnavailableError, TrainingWaitError } from '../format.js';
import { EXIT_FAILURE, EXIT_UNAVAILABLE } from '../exit-codes.js';
import { waitForTraining } from './settle.js';

type Answer = TrainingState | Error;

function state(tenantPending: number, userPending: number | undefined): TrainingState {
  return {
    pendingEvents: tenantPending,
    user:
      userPending === undefined
        ? undefined
        : { userPseudonym: 'PSEUDO', currentVersion: 1, generalModel: undefined, pendingEvents: userPending, lastAppliedSequence: 7, lastTrainedAt: undefined, refitPending: false },
    jobs: [],
  };
}

/** An updater that gives the scripted answers in turn, then keeps giving the last. */
function updater(...answers: Answer[]) {
  const asked: (string | undefined)[] = [];
  return {
    asked,
    async trainingState(userId?: string): Promise<TrainingState> {
      asked.push(userId);
      const answer = answers[Math.min(asked.length - 1, answers.length - 1)]!;
      if (answer instanceof Error) throw answer;
      return answer;
    },
  };
}

const fast = { updater: '127.0.0.1:50054', pollMs: 1, maxPollMs: 2 };

describe('waitForTraining', () => {
  it("polls the user's state until the tenant's lag and the user's pending events are both 0", async () => {
    const admin = updater(state(3, 2), state(1, 2), state(0, 1), state(0, 0));
    await waitForTraining(admin, 'u1', fast);
    expect(admin.asked).toEqual(['u1', 'u1', 'u1', 'u1']);
  });

  it("counts a lag of 0 seen once: other users' feedback keeping the lag up does not starve the wait", async () => {
    // After the lag was 0, every event of the (paused) user had reached the updater.
    const admin = updater(state(0, 2), state(4, 1), state(5, 0));
    await waitForTraining(admin, 'u1', fast);
    expect(admin.asked).toHaveLength(3);
  });

  it('does not take a user without pending events as settled while their events may still be on the way', async () => {
    const admin = updater(state(2, 0));
    const err = await waitForTraining(admin, 'u1', { ...fast, timeoutMs: 30 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TrainingWaitError);
    expect(exitCodeOf(err)).toBe(EXIT_FAILURE);
    expect((err as Error).message).toMatch(
      /^the updater at 127\.0\.0\.1:50054 did not apply the feedback of u1 within 30 ms \(tenant: 2 events not yet received by the updater; user: 0 events received, not yet applied\): is it consuming feedback events\?/,
    );
  });

  it('keeps waiting while the updater does not know the user yet', async () => {
    const notFound = toAiMassError({ code: Status.NOT_FOUND, details: 'no training state for this user' });
    const admin = updater(notFound, notFound, state(0, 0));
    await waitForTraining(admin, 'u1', fast);
    expect(admin.asked).toHaveLength(3);
    const err = await waitForTraining(updater(notFound), 'u1', { ...fast, timeoutMs: 20 }).catch((e: unknown) => e);
    expect((err as Error).message).toContain('the updater does not know the user yet (NOT_FOUND)');
  });

  it('fails at once with exit 69 naming the updater when it cannot be reached or is something else', async () => {
    for (const code of [Status.UNAVAILABLE, Status.UNIMPLEMENTED]) {
      const err = await waitForTraining(updater(toAiMassError({ code, details: 'no' })), 'u1', fast).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PlatformUnavailableError);
      expect(exitCodeOf(err)).toBe(EXIT_UNAVAILABLE);
      expect((err as Error).message).toMatch(/^the updater at 127\.0\.0\.1:50054 (could not be reached|does not serve the updater admin API)/);
      expect((err as Error).message).toContain('--updater-address none for a platform whose Feedback trains directly');
    }
  });

  it('stops when its signal aborts', async () => {
    const controller = new AbortController();
    const admin = updater(state(1, 1));
    const waiting = waitForTraining(admin, 'u1', { ...fast, pollMs: 50, maxPollMs: 50, signal: controller.signal });
    controller.abort(new Error('interrupted'));
    await expect(waiting).rejects.toThrow();
    expect(admin.asked.length).toBeLessThanOrEqual(2);
  });
});
