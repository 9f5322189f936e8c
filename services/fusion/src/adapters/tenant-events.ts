import { TENANT_STREAM, newEnvelope, publishEvent, tenantDeletedEventId, tenantDeletedSubject, type EventBus, type StreamSpec } from '@aimass/events';
import { FUSION_PRODUCER } from './event-feedback-recorder.js';

export { tenantDeletedSubject };

/**
 * TenantDeleted and TenantDeletionCompleted (the events catalogue's `AIMASS_TENANTS`, 30 days):
 * a service down for days still finds the deletions it must act on.
 */
export const TENANT_EVENTS_STREAM: StreamSpec = TENANT_STREAM;

/**
 * Publishes one round of a tenant's TenantDeleted, idempotently: a DeleteTenant repeated after a
 * failure publishes the same round (stored once); a later round is a new event, so services that
 * missed or failed the first one are asked again.
 */
export async function publishTenantDeleted(bus: EventBus, tenant: string, reason: string, round = 0): Promise<void> {
  await publishEvent(bus, tenantDeletedSubject(tenant), 'aimass.v1.TenantDeleted', {
    envelope: newEnvelope({ type: 'aimass.v1.TenantDeleted', tenant, producer: FUSION_PRODUCER, eventId: tenantDeletedEventId(tenant, round) }),
    reason,
  });
}
