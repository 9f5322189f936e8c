import { InterceptingCall, type Interceptor } from '@grpc/grpc-js';
import type { v1 } from '@aimass/proto';

export const SCORE = '/aimass.v1.PersonalModelService/Score';

/**
 * Records the Score calls fusion's personal-model client really sends (a client interceptor: the
 * real service answers them).
 */
export class ScoreLog {
  readonly requests: v1.ScoreRequest[] = [];

  readonly interceptor: Interceptor = (opts, nextCall) => {
    const isScore = opts.method_definition.path === SCORE;
    return new InterceptingCall(nextCall(opts), {
      sendMessage: (message, next) => {
        if (isScore) this.requests.push(message as v1.ScoreRequest);
        next(message);
      },
    });
  };

  get deps() {
    return { interceptors: { personalModel: [this.interceptor] } };
  }

  /** Score calls sent so far that carried an item of this user. */
  callsFor(pseudonym: string): number {
    return this.requests.filter((r) => r.items.some((i) => i.userPseudonym === pseudonym)).length;
  }

  /** Every user pseudonym in the Score calls sent after the first `mark` calls. */
  usersSince(mark: number): string[] {
    return this.requests.slice(mark).flatMap((r) => r.items.map((i) => i.userPseudonym));
  }
}
