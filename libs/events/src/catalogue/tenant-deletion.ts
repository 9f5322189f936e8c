/**
 * Tenant deletion, the shared parts: event ids, the TenantDeleted reader and the participant
 * every service that holds tenant data runs (personal-model, the updater, privacy). It mirrors
 * the user erasure saga (erasure.ts), one level up:
 *
 * fusion ──TenantDeleted──▶ AIMASS_TENANTS ──(consumer group `<service>-tenant-deletion`)──▶ participant
 *                                                                                               │ deleteTenant(request)
 * fusion ◀──TenantDeletionCompleted (aimass.<tenant>.tenant.deletion.completed.<service>)──────┘
 */
import type { v1 } from '@aimass/proto';
import type { ConsumerHandle, DeliveredEvent, EventBus } from '../types.js';
import { MalformedEventError, decodeEvent, newEnvelope, publishEvent } from './codec.js';
import { ERASURE_SERVICE_PATTERN, derivedEventId, erasureConsumerConfigSchema, type ErasureConsumerConfigInput, type ErasureLogger } from './erasure.js';
import { ALL_TENANT_DELETED, DEAD_LETTER_STREAM, TENANT_STREAM, deadLetterSubject, tenantDeletedSubject, tenantDeletionCompletedSubject } from './subjects.js';

/**
 * The event id of one round of a tenant's TenantDeleted. A repeated DeleteTenant publishes the
 * same round (stored once); a new round (fusion asking again for missing confirmations) is a new
 * event, so the participants' consumer groups receive it although they acknowledged the first.
 */
export function tenantDeletedEventId(tenant: string, round: number): string {
  return derivedEventId('aimass/tenant-deleted/v1', tenant, String(round));
}

/** The event id of a participant's answer to one TenantDeleted (a redelivery answers with the same, stored once). */
export function tenantDeletionCompletedEventId(service: string, requestEventId: string): string {
  return derivedEventId('aimass/tenant-deletion-completed/v1', service, requestEventId);
}

/**
 * A consumer group of the tenant stream as a configuration section (`<service>.tenantDeletion`):
 * the same keys and defaults as the erasure groups, default durable `<service>-tenant-deletion`.
 */
export const tenantDeletionConsumerConfigSchema = erasureConsumerConfigSchema;

/** What a participant is asked to delete. */
export interface TenantDeletionRequest {
  readonly tenant: string;
  /** The TenantDeleted's event id (one per round). */
  readonly requestEventId: string;
  readonly reason: string;
}

export interface TenantDeletionOutcome {
  /** Documents, events or keys deleted; 0 when nothing was left, which is success. */
  readonly itemsDeleted: number;
}

/** Reads a TenantDeleted and checks that it says what its subject says (a poison event otherwise). */
export function parseTenantDeleted(event: DeliveredEvent): TenantDeletionRequest {
  const message = decodeEvent('aimass.v1.TenantDeleted', event.data);
  const { tenant, eventId } = message.envelope;
  if (event.subject !== tenantDeletedSubject(tenant)) {
    throw new MalformedEventError(`TenantDeleted on ${event.subject.slice(0, 200)} names another tenant in its envelope`);
  }
  return { tenant, requestEventId: eventId, reason: message.reason.slice(0, 500) };
}

/** The TenantDeletionCompleted a participant publishes. */
export function tenantDeletionCompletedEvent(request: TenantDeletionRequest, service: string, itemsDeleted: number, occurredAt: Date = new Date()): v1.TenantDeletionCompleted {
  return {
    envelope: newEnvelope({
      type: 'aimass.v1.TenantDeletionCompleted',
      tenant: request.tenant,
      producer: service,
      eventId: tenantDeletionCompletedEventId(service, request.requestEventId),
      occurredAt,
    }),
    service,
    itemsDeleted,
  };
}

export interface TenantDeletionParticipantOptions {
  readonly bus: EventBus;
  /** The confirming service's name (`personal-model`), as fusion's `tenantDeletion.services` lists it. */
  readonly service: string;
  /**
   * Deletes everything the service holds for the tenant, writing its tenant tombstone first (so
   * what arrives later for the tenant is dropped). Must be idempotent: a redelivery or a new round
   * calls it again for a tenant already deleted, and it then succeeds with 0 items.
   */
  readonly deleteTenant: (request: TenantDeletionRequest) => Promise<TenantDeletionOutcome>;
  /** The consumer group's settings (defaults: `tenantDeletionConsumerConfigSchema('<service>-tenant-deletion')`). */
  readonly consumer?: ErasureConsumerConfigInput | undefined;
  readonly logger?: ErasureLogger | undefined;
}

export interface TenantDeletionParticipant {
  readonly consumer: ConsumerHandle;
  /** Deletions done and confirmed, and attempts that failed (each retried). */
  stats(): { readonly completed: number; readonly failures: number };
  /** Stops consuming (waits for a deletion in progress); the bus stays open. */
  close(): Promise<void>;
}

/**
 * Runs a service's part of every tenant deletion: consumes TenantDeleted (a durable group shared
 * by the replicas), calls `deleteTenant`, and publishes TenantDeletionCompleted. A failing
 * deletion is retried with the group's back-off and dead-lettered after `maxDeliver` attempts;
 * fusion publishes TenantDeleted again at its retry interval while a service has not confirmed.
 */
export async function startTenantDeletionParticipant(o: TenantDeletionParticipantOptions): Promise<TenantDeletionParticipant> {
  if (!ERASURE_SERVICE_PATTERN.test(o.service)) throw new TypeError(`tenant deletion participant: '${o.service}' is not a service name (${ERASURE_SERVICE_PATTERN.source})`);
  const cfg = tenantDeletionConsumerConfigSchema(`${o.service}-tenant-deletion`).parse(o.consumer ?? {});
  for (const stream of [TENANT_STREAM, DEAD_LETTER_STREAM]) await o.bus.ensureStream(stream);
  const counters = { completed: 0, failures: 0 };

  const handle = async (event: DeliveredEvent): Promise<void> => {
    const request = parseTenantDeleted(event);
    const log = { tenant: request.tenant, attempt: event.deliveryCount };
    let outcome: TenantDeletionOutcome;
    try {
      outcome = await o.deleteTenant(request);
    } catch (err) {
      counters.failures++;
      o.logger?.warn({ ...log, err }, 'tenant deletion failed; it is retried');
      throw err;
    }
    // A failed publish throws: the request comes back, the deletion runs again (finding nothing)
    // and the confirmation is published then.
    const completed = tenantDeletionCompletedEvent(request, o.service, outcome.itemsDeleted);
    await publishEvent(o.bus, tenantDeletionCompletedSubject(request.tenant, o.service), 'aimass.v1.TenantDeletionCompleted', completed);
    counters.completed++;
    o.logger?.info({ ...log, itemsDeleted: outcome.itemsDeleted }, 'tenant data deleted and confirmed');
  };

  const consumer = await o.bus.consume(
    {
      durable: cfg.durable,
      stream: TENANT_STREAM.name,
      filterSubject: ALL_TENANT_DELETED,
      maxDeliver: cfg.maxDeliver,
      backoffMs: cfg.backoffMs,
      ackWaitMs: cfg.ackWaitMs,
      leaseTtlMs: cfg.leaseTtlMs,
      deadLetterSubject: deadLetterSubject(cfg.durable),
    },
    handle,
  );
  return { consumer, stats: () => ({ ...counters }), close: () => consumer.close() };
}
