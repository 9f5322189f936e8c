/**
 * The erasure saga's bookkeeping, as pure functions: the tombstone (the minimal proof of an
 * erasure: tenant, pseudonym, erasure id, times, and each service's confirmation), how a
 * confirmation changes it, the receipt it reads as, and when ErasureRequested is due again.
 */
import { InvalidArgumentError } from '@aimass/platform';
import type { v1 } from '@aimass/proto';
import { validateUserId, type RequestLimits } from './validation.js';

/** What the privacy service calls itself in receipts and confirmations. */
export const PRIVACY_SERVICE = 'privacy';

/** The services that hold user data today; fusion confirms once it joins the saga. */
export const DEFAULT_ERASURE_SERVICES: readonly string[] = Object.freeze([PRIVACY_SERVICE, 'personal-model', 'updater', 'fusion']);

export type ErasureState = 'pending' | 'completed' | 'failed';

/** One service's answer, as the tombstone keeps it. */
export interface Confirmation {
  readonly service: string;
  readonly status: Exclude<ErasureState, 'pending'>;
  /** When the service finished (its event's occurred_at). */
  readonly confirmedAt: Date;
  readonly itemsDeleted: number;
  readonly detail: string;
}

export interface Tombstone {
  readonly tenant: string;
  readonly pseudonym: string;
  readonly erasureId: string;
  readonly requestedAt: Date;
  /** The caller's reason, for the audit trail. */
  readonly reason: string;
  /** The services expected to confirm, fixed when the erasure was requested. */
  readonly services: readonly string[];
  /** Answers heard so far, in the order first heard. */
  readonly confirmations: readonly Confirmation[];
  /** The current round of ErasureRequested (0 first; each retry is a new event). */
  readonly round: number;
  /** The current round's event is stored in the stream. */
  readonly roundPublished: boolean;
  /** When the current round started. */
  readonly roundAt: Date;
  /** When the last expected service confirmed; absent until then. */
  readonly completedAt?: Date | undefined;
  /**
   * When the user's data key was destroyed (crypto-shredding): set once, before the first
   * ErasureRequested is published; absent for an erasure recorded before keys existed, until the
   * sweep or a repeated Erase destroys it.
   */
  readonly keyDestroyedAt?: Date | undefined;
}

export interface ReceiptLine {
  readonly service: string;
  readonly status: ErasureState;
  readonly confirmedAt?: Date | undefined;
  readonly itemsDeleted: number;
  readonly detail: string;
}

/** The services expected to confirm: privacy itself always, then the configured ones, each once. */
export function expectedServices(configured: readonly string[]): string[] {
  return [...new Set([PRIVACY_SERVICE, ...configured])];
}

export function newTombstone(init: { tenant: string; pseudonym: string; erasureId: string; reason: string; services: readonly string[]; now: Date }): Tombstone {
  return {
    tenant: init.tenant,
    pseudonym: init.pseudonym,
    erasureId: init.erasureId,
    requestedAt: init.now,
    reason: init.reason,
    services: expectedServices(init.services),
    confirmations: [],
    round: 0,
    roundPublished: false,
    roundAt: init.now,
  };
}

/** The tombstone with the key's destruction recorded; undefined when it already was (the first time stays). */
export function withKeyDestroyed(t: Tombstone, at: Date): Tombstone | undefined {
  return t.keyDestroyedAt ? undefined : { ...t, keyDestroyedAt: at };
}

export function confirmationOf(t: Tombstone, service: string): Confirmation | undefined {
  return t.confirmations.find((c) => c.service === service);
}

/**
 * The tombstone with a confirmation added; undefined when it changes nothing. A service's first
 * COMPLETED stays (a later round answers again with 0 items, or a late FAILED of an earlier
 * round arrives): it is when the data went. A FAILED is replaced by a later answer. Once every
 * expected service completed, `completedAt` is the latest of their times.
 */
export function withConfirmation(t: Tombstone, c: Confirmation): Tombstone | undefined {
  const held = confirmationOf(t, c.service);
  if (held?.status === 'completed') return undefined;
  if (held && c.status === 'failed' && held.detail === c.detail && c.confirmedAt.getTime() <= held.confirmedAt.getTime()) return undefined;
  const confirmations = held ? t.confirmations.map((x) => (x.service === c.service ? c : x)) : [...t.confirmations, c];
  const next: Tombstone = { ...t, confirmations };
  return t.completedAt ? next : { ...next, completedAt: completionTime(next) };
}

function completionTime(t: Tombstone): Date | undefined {
  let last = 0;
  for (const service of t.services) {
    const c = confirmationOf(t, service);
    if (c?.status !== 'completed') return undefined;
    last = Math.max(last, c.confirmedAt.getTime());
  }
  return new Date(last);
}

/** COMPLETED once every expected service completed; FAILED while one of them last answered FAILED; PENDING otherwise. */
export function overallStatus(t: Tombstone): ErasureState {
  if (t.completedAt) return 'completed';
  return t.services.some((s) => confirmationOf(t, s)?.status === 'failed') ? 'failed' : 'pending';
}

/** One line per expected service (pending ones included), then any other service that answered. */
export function receiptLines(t: Tombstone): ReceiptLine[] {
  const lines: ReceiptLine[] = t.services.map((service) => confirmationOf(t, service) ?? { service, status: 'pending', itemsDeleted: 0, detail: '' });
  for (const c of t.confirmations) if (!t.services.includes(c.service)) lines.push(c);
  return lines;
}

/** Services that have not completed yet. */
export function missingServices(t: Tombstone): string[] {
  return t.services.filter((s) => confirmationOf(t, s)?.status !== 'completed');
}

/**
 * What the sweep does with an open erasure now: publish the current round (its call failed on the
 * bus or crashed, and `graceMs` passed), start the next round (the current one was published
 * `retryIntervalMs` ago and some service has still not completed), or nothing.
 */
export function roundDue(t: Tombstone, now: Date, o: { graceMs: number; retryIntervalMs: number }): 'publish' | 'next-round' | undefined {
  if (t.completedAt) return undefined;
  const age = now.getTime() - t.roundAt.getTime();
  if (!t.roundPublished) return age >= o.graceMs ? 'publish' : undefined;
  return age >= o.retryIntervalMs && missingServices(t).some((s) => s !== PRIVACY_SERVICE) ? 'next-round' : undefined;
}

export interface EraseInput {
  readonly userId: string;
  readonly reason: string;
  readonly idempotencyKey: string;
}

export function validateErase(req: v1.EraseRequest, limits: RequestLimits & { readonly maxReasonBytes: number }): EraseInput {
  const userId = validateUserId(req.userId, limits);
  const reasonBytes = Buffer.byteLength(req.reason, 'utf8');
  if (reasonBytes > limits.maxReasonBytes) throw new InvalidArgumentError(`reason is ${reasonBytes} bytes, more than the limit of ${limits.maxReasonBytes}`, { field: 'reason' });
  const keyBytes = Buffer.byteLength(req.idempotencyKey, 'utf8');
  if (keyBytes > limits.maxKeyBytes) throw new InvalidArgumentError(`idempotency_key is ${keyBytes} bytes, more than the limit of ${limits.maxKeyBytes}`, { field: 'idempotency_key' });
  return { userId, reason: req.reason, idempotencyKey: req.idempotencyKey };
}

const ERASURE_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function validateErasureId(value: string): string {
  if (value === '') throw new InvalidArgumentError('erasure_id is required: the id Erase answered with (Erase again for the same user answers it too)', { field: 'erasure_id' });
  if (!ERASURE_ID.test(value)) throw new InvalidArgumentError('erasure_id is not an erasure id (a UUID, as Erase answers it)', { field: 'erasure_id' });
  return value;
}
