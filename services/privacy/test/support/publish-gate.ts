import { EventBusUnavailableError, type EventBus } from '@aimass/events';

/** A publish held before it reaches the bus. */
export interface HeldPublish {
  /** Resolves once the publish arrived and is held: everything its caller did before it is done. */
  readonly reached: Promise<void>;
  /** Lets it go on to the bus. */
  release(): void;
}

interface Hold {
  readonly match: (subject: string) => boolean;
  readonly arrived: () => void;
  readonly released: Promise<void>;
  /** Fail the publish as an unreachable bus does instead of passing it on. */
  readonly fails?: boolean;
}

/**
 * Holds chosen publishes of a real EventBus before they reach it, so a test can run something else
 * (a tenant deletion, end to end) between a caller's commit and its event being stored. Everything
 * else, other publishes, consumers and purges, goes straight to the real bus, and so does a held
 * publish once released.
 */
export class PublishGate {
  readonly #holds: Hold[] = [];

  /** Holds the next publish whose subject `match`es. */
  hold(match: (subject: string) => boolean): HeldPublish {
    let arrived!: () => void;
    let release!: () => void;
    const reached = new Promise<void>((resolve) => (arrived = resolve));
    const released = new Promise<void>((resolve) => (release = resolve));
    this.#holds.push({ match, arrived, released });
    return { reached, release };
  }

  /**
   * Fails the next publish whose subject `match`es as an unreachable bus does, without it reaching
   * the bus: the caller's change stays unannounced for its outbox sweep.
   */
  fail(match: (subject: string) => boolean): void {
    this.#holds.push({ match, arrived: () => undefined, released: Promise.resolve(), fails: true });
  }

  /** The bus a service is given: `bus` with the holds applied. */
  readonly wrap = (bus: EventBus): EventBus => ({
    ensureStream: (spec) => bus.ensureStream(spec),
    publish: async (subject, data, options) => {
      const i = this.#holds.findIndex((h) => h.match(subject));
      if (i >= 0) {
        const [hold] = this.#holds.splice(i, 1);
        hold!.arrived();
        await hold!.released;
        if (hold!.fails) throw new EventBusUnavailableError(`publish on ${subject} failed by the test's gate`);
      }
      return bus.publish(subject, data, options);
    },
    consume: (options, handler) => bus.consume(options, handler),
    subscribe: (subject, handler, options) => bus.subscribe(subject, handler, options),
    purge: (stream, subject) => bus.purge(stream, subject),
    purgeMatching: (stream, filter) => bus.purgeMatching(stream, filter),
    close: () => bus.close(),
  });
}
