/**
 * Watches the general model for a new served version. On a change from the version last recorded
 * in the store, for every tenant with feedback: a GeneralModelVersionChanged event (with an id
 * derived from the change, so replicas that notice the same change publish it once) and a refit
 * job of the tenant's stale users (with a derived id, so exactly one replica creates and runs it);
 * then the new version is recorded with a compare-and-set. A replica that stops halfway leaves the
 * old record, so the next check (here or elsewhere) repeats the steps, each idempotent.
 */
import { generalChangedSubject, newEnvelope, publishEvent, type EventBus } from '@aimass/events';
import type { Logger } from '@aimass/platform';
import type { GeneralModelClient } from '../adapters/general-model-client.js';
import type { UpdaterStore } from '../adapters/updater-store.js';
import { describeGeneral, sameGeneral } from '../domain/general.js';
import { generalChangeJobId, generalChangedEventId, type GeneralChange, type GeneralRef } from '../domain/ids.js';
import type { RefitJobs } from './refit-jobs.js';

export const UPDATER_PRODUCER = 'updater';

export interface GeneralWatchOptions {
  readonly store: UpdaterStore;
  readonly general: GeneralModelClient;
  readonly bus: EventBus;
  readonly jobs: RefitJobs;
  readonly logger: Logger;
  /** The general model followed; empty: the general model's default. */
  readonly model: string;
}

export class GeneralWatch {
  readonly #o: GeneralWatchOptions;
  #served: GeneralRef | undefined;
  #checking: Promise<void> | undefined;

  constructor(options: GeneralWatchOptions) {
    this.#o = options;
  }

  /** The version seen served at the last successful check. */
  served(): GeneralRef | undefined {
    return this.#served;
  }

  /** Asks for the served version now (and remembers it). */
  async resolve(): Promise<GeneralRef | undefined> {
    const served = await this.#o.general.served(this.#o.model);
    if (served) this.#served = served;
    return served;
  }

  /** One check; concurrent calls share it. */
  check(): Promise<void> {
    this.#checking ??= this.#check().finally(() => {
      this.#checking = undefined;
    });
    return this.#checking;
  }

  async #check(): Promise<void> {
    const o = this.#o;
    const served = await this.resolve();
    if (!served) return;
    const recorded = await o.store.servedRecord(o.model);
    if (!recorded) {
      await o.store.recordServed(o.model, served, 'absent');
      o.logger.info({ generalModel: describeGeneral(served) }, 'general model version recorded');
      return;
    }
    if (sameGeneral(recorded.general, served)) return;
    const change: GeneralChange = { name: served.name, from: recorded.general.version, to: served.version, generation: recorded.version };
    o.logger.info({ previous: describeGeneral(recorded.general), current: describeGeneral(served) }, 'general model version changed: refitting stale personal models');
    for (const tenant of await o.store.tenants()) {
      await publishEvent(o.bus, generalChangedSubject(tenant), 'aimass.v1.GeneralModelVersionChanged', {
        envelope: newEnvelope({ type: 'aimass.v1.GeneralModelVersionChanged', tenant, producer: UPDATER_PRODUCER, eventId: generalChangedEventId(tenant, change) }),
        previous: { name: recorded.general.name, version: recorded.general.version },
        current: { name: served.name, version: served.version },
        requiresRefit: true,
      });
      await o.jobs.create(tenant, { kind: 'all', onlyStale: true, target: served, jobId: generalChangeJobId(tenant, change) });
    }
    await o.store.recordServed(o.model, served, recorded.version);
  }
}
