import { setTimeout as sleep } from 'node:timers/promises';
import { AiMassError, NotFoundError, UnavailableError, type TrainingAdminClient, type TrainingState } from '@aimass/sdk';
import { PlatformUnavailableError, TrainingWaitError } from '../format.js';

export interface SettleOptions {
  /** The updater's address, for messages. */
  updater: string;
  /** How long one user's wait may take. Default 30 s. */
  timeoutMs?: number | undefined;
  /** First pause between two looks; it doubles up to `maxPollMs`. Default 20 ms. */
  pollMs?: number | undefined;
  /** Default 250 ms. */
  maxPollMs?: number | undefined;
  signal?: AbortSignal | undefined;
}

/** An updater that cannot be asked means the evaluation is pointed at the wrong place: say which. */
function unreachable(updater: string, err: AiMassError): PlatformUnavailableError {
  const what = err.code === 'UNIMPLEMENTED' ? 'does not serve the updater admin API (aimass.v1.UpdaterAdminService)' : 'could not be reached';
  return new PlatformUnavailableError(
    `the updater at ${updater} ${what} (${err.message.replace(/\s*\n\s*/g, ' ')}), so the evaluation cannot wait for feedback to be applied before measuring: ` +
      'pass --updater-address HOST:PORT, or --updater-address none for a platform whose Feedback trains directly',
    { cause: err },
  );
}

/** One look at the training state; an unreachable updater becomes PlatformUnavailableError. */
export async function askUpdater(
  admin: Pick<TrainingAdminClient, 'trainingState'>,
  userId: string | undefined,
  updater: string,
  options: { deadlineMs?: number | undefined; signal?: AbortSignal | undefined } = {},
): Promise<TrainingState> {
  try {
    return await admin.trainingState(userId, options);
  } catch (err) {
    if (err instanceof UnavailableError || (err instanceof AiMassError && err.code === 'UNIMPLEMENTED')) throw unreachable(updater, err);
    throw err;
  }
}

/**
 * Resolves once the updater has applied every feedback event of `userId` sent before the call,
 * polling its training state. Two facts are needed: the tenant's stream had no event left that the
 * updater had not received (its lag was 0), and then the user had none received but not applied.
 * The first is latched once seen: other users keep sending feedback during the wait, so the lag
 * may rarely stay at 0, but a 0 seen after this user's last Feedback returned already covers
 * every event of theirs (the user sends nothing while waiting).
 */
export async function waitForTraining(admin: Pick<TrainingAdminClient, 'trainingState'>, userId: string, options: SettleOptions): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const maxPollMs = options.maxPollMs ?? 250;
  const deadline = Date.now() + timeoutMs;
  let pause = options.pollMs ?? 20;
  let received = false;
  let last = 'no answer yet';
  for (;;) {
    options.signal?.throwIfAborted();
    let state: TrainingState | undefined;
    try {
      state = await askUpdater(admin, userId, options.updater, { deadlineMs: Math.max(1_000, deadline - Date.now()), signal: options.signal });
    } catch (err) {
      // The updater may not know a user before their first event reaches it.
      if (!(err instanceof NotFoundError)) throw err;
      last = 'the updater does not know the user yet (NOT_FOUND)';
    }
    if (state !== undefined) {
      received ||= state.pendingEvents === 0;
      if (received && state.user?.pendingEvents === 0) return;
      last =
        `tenant: ${state.pendingEvents} events not yet received by the updater; ` +
        `user: ${state.user === undefined ? 'unknown to the updater' : `${state.user.pendingEvents} events received, not yet applied`}`;
    }
    if (Date.now() + pause > deadline) {
      throw new TrainingWaitError(
        `the updater at ${options.updater} did not apply the feedback of ${userId} within ${timeoutMs >= 1_000 ? `${Math.round(timeoutMs / 1_000)} s` : `${timeoutMs} ms`} (${last}): ` +
          `is it consuming feedback events? See its log and \`aimass models state --address ${options.updater} --user ${userId}\``,
      );
    }
    await sleep(pause, undefined, { signal: options.signal });
    pause = Math.min(pause * 2, maxPollMs);
  }
}
