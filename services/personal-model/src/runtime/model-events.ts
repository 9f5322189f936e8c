/**
 * PersonalModelUpdated on the event bus: this replica announces every write it makes, and drops
 * the cached models other replicas have replaced, so a Score anywhere sees a new version within
 * the bus's latency instead of after `cache.revalidateMs`.
 */
import { UnavailableError, type Logger } from '@aimass/platform';
import {
  ALL_MODEL_UPDATED,
  MODEL_EVENTS_STREAM,
  decodeEvent,
  modelUpdatedSubject,
  newEnvelope,
  publishEvent,
  type EventBus,
  type LiveEvent,
  type Subscription,
} from '@aimass/events';
import { v1 } from '@aimass/proto';
import type { UpdateKindName } from '../domain/versions.js';
import type { ModelChange, PersonalModels } from './personal-models.js';

export const PRODUCER = 'personal-model';

const KIND: Record<UpdateKindName, v1.UpdateKind> = {
  TRAIN: v1.UpdateKind.UPDATE_KIND_TRAIN,
  REFIT: v1.UpdateKind.UPDATE_KIND_REFIT,
  ROLLBACK: v1.UpdateKind.UPDATE_KIND_ROLLBACK,
};

/** Erasure ids that can be part of an event id as they are. */
const SAFE_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * The event id of a change: the same for every announcement of one write (a retry, a duplicate
 * answer), so the stream stores it once, and different for two writes that reuse a version number
 * (a user erased and trained again), which the creation time tells apart.
 */
export function modelEventId(change: ModelChange): string | undefined {
  const { tenant, user, info, erasureId } = change;
  if (info) return `model-${tenant}-${user}-v${info.version}-${info.createdAt.getTime()}`;
  return erasureId !== undefined && SAFE_ID.test(erasureId) ? `model-${tenant}-${user}-erased-${erasureId}` : undefined;
}

/** The event a change is announced with; version 0 (and no general model) means "no model any more". */
export function modelUpdatedEvent(change: ModelChange, now: Date): v1.PersonalModelUpdated {
  const { info } = change;
  return {
    envelope: newEnvelope({
      type: 'aimass.v1.PersonalModelUpdated',
      tenant: change.tenant,
      userPseudonym: change.user,
      producer: PRODUCER,
      eventId: modelEventId(change),
      occurredAt: info?.createdAt ?? now,
    }),
    version: info?.version ?? 0,
    previousVersion: change.previousVersion,
    generalModel: info ? { name: info.generalModel.name, version: info.generalModel.version } : undefined,
    exampleCount: info?.exampleCount ?? 0,
    kind: info ? KIND[info.kind] : v1.UpdateKind.UPDATE_KIND_UNSPECIFIED,
    lastAppliedSequence: info?.lastAppliedSequence ?? 0,
  };
}

export class ModelEvents {
  private subscription: Subscription | undefined;
  private received = 0;

  constructor(
    private readonly bus: EventBus,
    private readonly logger: Logger,
  ) {}

  /** Publishes a change durably; UNAVAILABLE when the bus cannot confirm it (the write itself is stored). */
  readonly announce = async (change: ModelChange): Promise<void> => {
    try {
      await publishEvent(this.bus, modelUpdatedSubject(change.tenant, change.user), 'aimass.v1.PersonalModelUpdated', modelUpdatedEvent(change, new Date()));
    } catch (err) {
      const what = change.info ? `version ${change.info.version} is stored` : 'the model is erased';
      throw new UnavailableError(
        `${what}, but the event announcing it to the other replicas could not be published (${err instanceof Error ? err.message : String(err)}): retry the call (with the same idempotency key for Train and Refit) to announce it again`,
        { cause: err, retryAfterMs: 1000 },
      );
    }
  };

  /** Declares the stream and starts dropping cached models other replicas replaced. */
  async start(models: PersonalModels): Promise<void> {
    await this.bus.ensureStream(MODEL_EVENTS_STREAM);
    this.subscription = await this.bus.subscribe(ALL_MODEL_UPDATED, (event) => this.apply(models, event), {
      onGap: () => {
        models.clearCache();
        this.logger.warn('model update events may have been missed (event bus reconnected): model cache cleared');
      },
      onError: (err) => this.logger.warn({ err }, 'model update event not applied'),
    });
  }

  private apply(models: PersonalModels, event: LiveEvent): void {
    const update = decodeEvent('aimass.v1.PersonalModelUpdated', event.data);
    this.received++;
    const user = update.envelope.userPseudonym;
    if (!user) return;
    // Our own announcement arrives for the version we already hold, and is skipped there.
    models.invalidate(update.envelope.tenant, user, update.version);
  }

  stats(): { received: number } {
    return { received: this.received };
  }

  async stop(): Promise<void> {
    await this.subscription?.close();
    this.subscription = undefined;
  }
}
