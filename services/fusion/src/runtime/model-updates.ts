/**
 * Keeps the known-no-model cache honest with an event bus: personal-model announces every write
 * (PersonalModelUpdated, a first model included) on `aimass.<tenant>.model.updated.<pseudonym>`
 * before its call answers, so a user's entry is dropped within the event's delivery time.
 */
import type { Logger } from '@aimass/platform';
import { ALL_MODEL_UPDATED, decodeEvent, type EventBus, type LiveEvent, type Subscription } from '@aimass/events';
import type { NoModelCache } from '../domain/no-model-cache.js';

export interface ModelUpdateStats {
  /** PersonalModelUpdated events applied. */
  readonly events: number;
  /** Events that could not be read (ignored). */
  readonly undecodable: number;
  /** Reconnects after which events may have been missed (each cleared the cache). */
  readonly gaps: number;
}

export class ModelUpdateListener {
  readonly #cache: NoModelCache;
  readonly #logger: Logger;
  #subscription: Subscription | undefined;
  #stats = { events: 0, undecodable: 0, gaps: 0 };

  private constructor(cache: NoModelCache, logger: Logger) {
    this.#cache = cache;
    this.#logger = logger;
  }

  /** Subscribes to every tenant's PersonalModelUpdated; resolves once the subscription is in place. */
  static async start(bus: EventBus, cache: NoModelCache, logger: Logger): Promise<ModelUpdateListener> {
    const listener = new ModelUpdateListener(cache, logger);
    listener.#subscription = await bus.subscribe(ALL_MODEL_UPDATED, (event) => listener.#apply(event), {
      onGap: () => {
        // Live delivery skips what was published while the connection was down: any held entry may be stale.
        cache.clear();
        listener.#stats.gaps++;
        logger.warn('model update events may have been missed (event bus reconnected): known-no-model cache cleared');
      },
      onError: (err) => logger.warn({ err }, 'model update event not applied'),
    });
    return listener;
  }

  #apply(event: LiveEvent): void {
    let tenant: string;
    let user: string;
    try {
      const update = decodeEvent('aimass.v1.PersonalModelUpdated', event.data);
      tenant = update.envelope.tenant;
      user = update.envelope.userPseudonym;
      if (!user) throw new Error('PersonalModelUpdated without a user pseudonym');
    } catch (err) {
      // One bad event must not stop the others; the entry it was about lives out its TTL at worst.
      this.#stats.undecodable++;
      this.#logger.warn({ err, subject: event.subject, dedupeId: event.dedupeId }, 'model update event ignored: it cannot be read');
      return;
    }
    this.#stats.events++;
    // Any version, 0 (erased) included: the next Score says what is true now.
    this.#cache.forget(tenant, user);
  }

  stats(): ModelUpdateStats {
    return { ...this.#stats };
  }

  async close(): Promise<void> {
    const subscription = this.#subscription;
    this.#subscription = undefined;
    await subscription?.close();
  }
}
