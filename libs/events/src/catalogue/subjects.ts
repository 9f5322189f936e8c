import { keyedSubject } from '../subjects.js';
import type { StreamSpec } from '../types.js';

const DAY_MS = 86_400_000;

/**
 * Partitions of the feedback subjects. Part of the layout: fusion (publisher) and the updater
 * (consumer group) must agree, and changing it is a migration (see the README).
 */
export const FEEDBACK_PARTITIONS = 16;

/** `aimass.<tenant>.feedback`: the keyed prefix of one tenant's feedback. */
export function feedbackPrefix(tenant: string): string {
  return `aimass.${tenant}.feedback`;
}

/** Every tenant's feedback, as a consumer group's keyed prefix. */
export const ALL_FEEDBACK_PREFIX = 'aimass.*.feedback';

/** `aimass.<tenant>.feedback.<partition>.<pseudonym>`: one user's events share a partition, hence an order. */
export function feedbackSubject(tenant: string, userPseudonym: string): string {
  return keyedSubject(feedbackPrefix(tenant), userPseudonym, FEEDBACK_PARTITIONS);
}

/** `aimass.<tenant>.model.updated.<pseudonym>`. */
export function modelUpdatedSubject(tenant: string, userPseudonym: string): string {
  return `aimass.${tenant}.model.updated.${userPseudonym}`;
}

/** Every PersonalModelUpdated event, for cache invalidation. */
export const ALL_MODEL_UPDATED = 'aimass.*.model.updated.*';

/** `aimass.<tenant>.general.changed`. */
export function generalChangedSubject(tenant: string): string {
  return `aimass.${tenant}.general.changed`;
}

/** Every GeneralModelVersionChanged event. */
export const ALL_GENERAL_CHANGED = 'aimass.*.general.changed';

/** `aimass.<tenant>.consent.changed.<pseudonym>`: ConsentChanged, published by the privacy service. */
export function consentChangedSubject(tenant: string, userPseudonym: string): string {
  return `aimass.${tenant}.consent.changed.${userPseudonym}`;
}

/** Every ConsentChanged event, for the consent caches of the services that enforce consent. */
export const ALL_CONSENT_CHANGED = 'aimass.*.consent.changed.*';

/**
 * `aimass.<tenant>.erasure.requested.<pseudonym>`: ErasureRequested, published by the privacy
 * service once the user's tombstone is written (and again while services have not confirmed).
 */
export function erasureRequestedSubject(tenant: string, userPseudonym: string): string {
  return `aimass.${tenant}.erasure.requested.${userPseudonym}`;
}

/** Every ErasureRequested, for the consumer groups of the services that hold user data. */
export const ALL_ERASURE_REQUESTED = 'aimass.*.erasure.requested.*';

/**
 * `aimass.<tenant>.erasure.completed.<service>.<pseudonym>`: ErasureCompleted, one service's
 * confirmation that it deleted what it held about the user.
 */
export function erasureCompletedSubject(tenant: string, service: string, userPseudonym: string): string {
  return `aimass.${tenant}.erasure.completed.${service}.${userPseudonym}`;
}

/** Every ErasureCompleted, for the privacy service's receipts. */
export const ALL_ERASURE_COMPLETED = 'aimass.*.erasure.completed.*.*';

/**
 * Where a consumer group's exhausted events go: `aimass-deadletter.<consumer>`. Not per tenant
 * (as events.proto first sketched) because one group consumes every tenant and the bus takes one
 * dead-letter subject per group; the original subject, with its tenant, travels in the
 * `aimass-dlq-subject` header. Outside `aimass.` on purpose: JetStream refuses streams whose
 * subject patterns overlap, and `aimass.deadletter.>` would overlap `aimass.*.feedback.>`.
 */
export function deadLetterSubject(consumer: string): string {
  return `aimass-deadletter.${consumer}`;
}

/** Feedback, kept a week: a consumer down for days still finds every acknowledged event. */
export const FEEDBACK_STREAM: StreamSpec = {
  name: 'AIMASS_FEEDBACK',
  subjects: ['aimass.*.feedback.>'],
  maxAgeMs: 7 * DAY_MS,
  // A retried Feedback (same idempotency key, hence same event id) within this window is stored once.
  duplicateWindowMs: 10 * 60_000,
};

/** Model lifecycle events: PersonalModelUpdated and GeneralModelVersionChanged. */
export const MODEL_EVENTS_STREAM: StreamSpec = {
  name: 'AIMASS_MODELS',
  subjects: ['aimass.*.model.updated.*', 'aimass.*.general.changed'],
  maxAgeMs: DAY_MS,
  duplicateWindowMs: 10 * 60_000,
};

/**
 * Consent changes. Nobody replays them today (caches subscribe live and read GetConsent on a
 * miss), but each event carries its consent record's hash, so the stream is a witness of the
 * history outside the privacy service's store for as long as it keeps them.
 */
export const CONSENT_STREAM: StreamSpec = {
  name: 'AIMASS_CONSENT',
  // `consent` as the third token keeps it apart from every other `aimass.*.` stream (JetStream
  // refuses overlapping subjects).
  subjects: ['aimass.*.consent.changed.*'],
  maxAgeMs: 30 * DAY_MS,
  // A SetConsent retried (same record, hence same event id) within this window is stored once.
  duplicateWindowMs: 10 * 60_000,
};

/**
 * The erasure saga: requests and confirmations. Kept 30 days, like the consent stream: a
 * participant that was down for days still finds the requests it must act on (privacy also
 * publishes them again until every service confirmed), and the confirmations are a witness of
 * the receipts outside the privacy service's store. The events carry pseudonyms and erasure ids,
 * no personal data.
 */
export const ERASURE_STREAM: StreamSpec = {
  name: 'AIMASS_ERASURE',
  // `erasure` as the third token keeps it apart from every other `aimass.*.` stream.
  subjects: ['aimass.*.erasure.>'],
  maxAgeMs: 30 * DAY_MS,
  // An Erase retried (same erasure and round, hence same event id) within this window is stored once.
  duplicateWindowMs: 10 * 60_000,
};

/** `aimass.<tenant>.tenant.deleted`: TenantDeleted, published by fusion's DeleteTenant (again while services have not confirmed). */
export function tenantDeletedSubject(tenant: string): string {
  return `aimass.${tenant}.tenant.deleted`;
}

/** Every TenantDeleted, for the consumer groups of the services that hold tenant data. */
export const ALL_TENANT_DELETED = 'aimass.*.tenant.deleted';

/**
 * `aimass.<tenant>.tenant.deletion.completed.<service>`: TenantDeletionCompleted, one service's
 * confirmation that it deleted everything it held for the tenant.
 */
export function tenantDeletionCompletedSubject(tenant: string, service: string): string {
  return `aimass.${tenant}.tenant.deletion.completed.${service}`;
}

/** Every TenantDeletionCompleted, for fusion's deletion receipts. */
export const ALL_TENANT_DELETION_COMPLETED = 'aimass.*.tenant.deletion.completed.*';

/**
 * Tenant deletions: requests and confirmations, kept 30 days like the erasure stream, so a service
 * down for days still finds the deletions it must act on (fusion also asks again until every
 * service confirmed). The events carry tenant ids and counts, no personal data.
 */
export const TENANT_STREAM: StreamSpec = {
  name: 'AIMASS_TENANTS',
  // `tenant` as the third token keeps it apart from every other `aimass.*.` stream.
  subjects: ['aimass.*.tenant.>'],
  maxAgeMs: 30 * DAY_MS,
  // A repeated DeleteTenant (same round, hence same event id) within this window is stored once.
  duplicateWindowMs: 10 * 60_000,
};

/** Dead letters of every consumer group, kept a month for inspection and replay. */
export const DEAD_LETTER_STREAM: StreamSpec = {
  name: 'AIMASS_DEADLETTER',
  subjects: ['aimass-deadletter.>'],
  maxAgeMs: 30 * DAY_MS,
  duplicateWindowMs: 2 * 60_000,
};

/** The streams of the platform's event catalogue, for `ensureStream` at start-up. */
export const PLATFORM_STREAMS: readonly StreamSpec[] = [FEEDBACK_STREAM, MODEL_EVENTS_STREAM, CONSENT_STREAM, ERASURE_STREAM, TENANT_STREAM, DEAD_LETTER_STREAM];
