import { CancelledError, DeadlineExceededError } from '@aimass/platform';

/** How long a sealing or opening may wait for the user's key. Both optional: a write has no signal. */
export interface KeyWait {
  /** Absolute deadline (ms since epoch). */
  readonly deadline?: number | undefined;
  readonly signal?: AbortSignal | undefined;
}

/**
 * `promise` (a seal or an open, which may have to fetch the user's key from the privacy service),
 * or a rejection once the deadline passes (`DeadlineExceededError`) or the call is cancelled
 * (`CancelledError`). The fetch itself goes on and fills the key cache for the next call; its
 * late rejection is swallowed here.
 */
export function keyWithin<T>(promise: Promise<T>, wait: KeyWait, what: string): Promise<T> {
  const { deadline, signal } = wait;
  if (deadline === undefined && !signal) return promise;
  promise.catch(() => undefined);
  return new Promise<T>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const settle = () => {
      if (timer) clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    const onAbort = () => {
      settle();
      reject(new CancelledError(`cancelled while ${what}`));
    };
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    if (deadline !== undefined) {
      timer = setTimeout(() => {
        settle();
        reject(new DeadlineExceededError(`the user's data key did not arrive in time while ${what}`));
      }, Math.max(0, deadline - Date.now()));
    }
    promise.then(
      (value) => {
        settle();
        resolve(value);
      },
      (err: unknown) => {
        settle();
        reject(err);
      },
    );
  });
}
