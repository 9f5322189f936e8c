/**
 * Tenant deletion, fusion's side (the user erasure saga one level up; privacy's ErasureService is
 * the model):
 *
 * 1. DeleteTenant marks the tenant DELETING and revokes its keys (grpc/tenant-admin-service.ts),
 *    then `run`: the receipt is created (expected services from `tenantDeletion.services`),
 *    TenantDeleted is published (round 0), fusion deletes its own records of the tenant and
 *    confirms itself in the receipt;
 * 2. every participant (personal-model, the updater, privacy) deletes its share and publishes
 *    TenantDeletionCompleted; the consumer group `tenantDeletion.consumer` records each in the
 *    receipt (the first confirmation of a service is kept);
 * 3. once every expected service confirmed, the tenant turns DELETED (`completedAt` set);
 * 4. while one has not, the sweep publishes a new round every `retryIntervalMs` (a new event id,
 *    so the participants' groups receive it again).
 *
 * Each step is a compare-and-set on the tenant document, so replicas and retries cannot lose a
 * confirmation or run a round twice.
 */
import {
  ALL_TENANT_DELETION_COMPLETED,
  DEAD_LETTER_STREAM,
  ERASURE_SERVICE_PATTERN,
  MalformedEventError,
  TENANT_STREAM,
  deadLetterSubject,
  decodeEvent,
  erasureConsumerConfigSchema,
  tenantDeletionCompletedSubject,
  type ConsumerHandle,
  type DeliveredEvent,
  type ErasureConsumerConfigInput,
  type EventBus,
} from '@aimass/events';
import { NotFoundError, type Logger } from '@aimass/platform';
import type { TenantRegistry } from '../adapters/tenant-registry.js';
import { publishTenantDeleted } from '../adapters/tenant-events.js';
import { missingConfirmations, newDeletion, withDeletionConfirmation, type DeletionConfirmation } from '../domain/tenants.js';

/** The name fusion confirms its own part under. */
export const FUSION_TENANT_DELETION_SERVICE = 'fusion';

export interface TenantDeletionsOptions {
  readonly registry: TenantRegistry;
  /** Without a bus no other service hears of the deletion: only fusion's own part is done. */
  readonly bus: EventBus | undefined;
  readonly logger: Logger;
  readonly services: readonly string[];
  readonly retryIntervalMs: number;
  readonly sweepIntervalMs: number;
  readonly consumer?: ErasureConsumerConfigInput | undefined;
  /** Deletes fusion's own data of the tenant; returns the items deleted. */
  readonly deleteOwn: (tenant: string) => Promise<number>;
  readonly now?: (() => Date) | undefined;
}

export class TenantDeletions {
  readonly #o: TenantDeletionsOptions;
  readonly #now: () => Date;
  #consumer: ConsumerHandle | undefined;
  #timer: NodeJS.Timeout | undefined;
  #sweeping: Promise<unknown> | undefined;

  constructor(options: TenantDeletionsOptions) {
    this.#o = options;
    this.#now = options.now ?? (() => new Date());
  }

  /** Starts consuming confirmations and the sweep (with a bus). */
  async start(): Promise<void> {
    const { bus } = this.#o;
    if (!bus) return;
    const cfg = erasureConsumerConfigSchema('fusion-tenant-deletions').parse(this.#o.consumer ?? {});
    for (const stream of [TENANT_STREAM, DEAD_LETTER_STREAM]) await bus.ensureStream(stream);
    this.#consumer = await bus.consume(
      {
        durable: cfg.durable,
        stream: TENANT_STREAM.name,
        filterSubject: ALL_TENANT_DELETION_COMPLETED,
        maxDeliver: cfg.maxDeliver,
        backoffMs: cfg.backoffMs,
        ackWaitMs: cfg.ackWaitMs,
        leaseTtlMs: cfg.leaseTtlMs,
        deadLetterSubject: deadLetterSubject(cfg.durable),
        onError: (err, event) => this.#o.logger.warn({ err, subject: event?.subject }, 'TenantDeletionCompleted not recorded; it is redelivered'),
      },
      this.handleCompleted,
    );
    if (this.#o.sweepIntervalMs > 0) {
      this.#timer = setInterval(() => {
        this.#sweeping ??= this.sweep()
          .catch((err: unknown) => this.#o.logger.warn({ err }, 'tenant deletion sweep failed; retrying at the next interval'))
          .finally(() => {
            this.#sweeping = undefined;
          });
      }, this.#o.sweepIntervalMs);
      this.#timer.unref();
    }
  }

  /**
   * DeleteTenant's work once the tenant is DELETING: the receipt, TenantDeleted (the current
   * round), fusion's own deletion and confirmation. Idempotent: a repeat publishes the same round
   * (stored once) and finds nothing left to delete.
   */
  async run(tenant: string, reason: string): Promise<void> {
    const t = await this.#o.registry.updateTenant(tenant, 0, (cur) => (cur.deletion ? undefined : { deletion: newDeletion([FUSION_TENANT_DELETION_SERVICE, ...this.#o.services], this.#now()) }));
    if (this.#o.bus) await publishTenantDeleted(this.#o.bus, tenant, reason, t.deletion!.rounds - 1);
    const itemsDeleted = await this.#o.deleteOwn(tenant);
    await this.confirm(tenant, { service: FUSION_TENANT_DELETION_SERVICE, confirmedAt: this.#now(), itemsDeleted });
  }

  /** Records one service's confirmation; the tenant turns DELETED with the last expected one. */
  async confirm(tenant: string, c: DeletionConfirmation): Promise<'recorded' | 'unchanged' | 'unknown'> {
    // Set by the last (successful) attempt of the compare-and-set loop.
    const seen: { outcome: 'recorded' | 'unchanged' | 'unknown'; completes: boolean } = { outcome: 'unknown', completes: false };
    try {
      await this.#o.registry.updateTenant(tenant, 0, (cur) => {
        seen.completes = false;
        if (!cur.deletion || (cur.state !== 'deleting' && cur.state !== 'deleted')) {
          seen.outcome = 'unknown';
          return undefined;
        }
        const next = withDeletionConfirmation(cur.deletion, c);
        if (!next) {
          seen.outcome = 'unchanged';
          return undefined;
        }
        seen.outcome = 'recorded';
        seen.completes = next.completedAt !== undefined && cur.state !== 'deleted';
        return seen.completes ? { deletion: next, state: 'deleted' } : { deletion: next };
      });
    } catch (err) {
      if (err instanceof NotFoundError) return 'unknown';
      throw err;
    }
    if (seen.outcome === 'recorded') this.#o.logger.info({ tenant, service: c.service, itemsDeleted: c.itemsDeleted }, 'tenant deletion confirmation recorded');
    if (seen.completes) this.#o.logger.info({ tenant }, 'tenant deleted: every expected service confirmed');
    return seen.outcome;
  }

  /** The consumer's handler. */
  readonly handleCompleted = async (event: DeliveredEvent): Promise<void> => {
    const message = decodeEvent('aimass.v1.TenantDeletionCompleted', event.data);
    const { tenant } = message.envelope;
    const { service } = message;
    if (!ERASURE_SERVICE_PATTERN.test(service) || event.subject !== tenantDeletionCompletedSubject(tenant, service)) {
      throw new MalformedEventError(`TenantDeletionCompleted on ${event.subject.slice(0, 200)} names another tenant or service in its envelope`);
    }
    const outcome = await this.confirm(tenant, { service, confirmedAt: message.envelope.occurredAt ?? event.publishedAt, itemsDeleted: message.itemsDeleted });
    if (outcome === 'unknown') this.#o.logger.warn({ tenant, service }, 'TenantDeletionCompleted for a tenant that is not being deleted: dropped');
  };

  /**
   * Publishes a new round of TenantDeleted for every DELETING tenant whose current round is older
   * than `retryIntervalMs` and still lacks confirmations. Returns the rounds published.
   */
  async sweep(): Promise<number> {
    const { bus, registry } = this.#o;
    if (!bus) return 0;
    let published = 0;
    let cursor: string | undefined;
    do {
      const page = await registry.listTenants(500, cursor);
      for (const t of page.tenants) {
        const d = t.deletion;
        if (t.state !== 'deleting' || !d || missingConfirmations(d).length === 0) continue;
        const now = this.#now();
        if (now.getTime() - d.roundAt.getTime() < this.#o.retryIntervalMs) continue;
        const next = await registry.updateTenant(t.tenantId, 0, (cur) =>
          cur.deletion && cur.deletion.rounds === d.rounds && cur.state === 'deleting' ? { deletion: { ...cur.deletion, rounds: d.rounds + 1, roundAt: now } } : undefined,
        );
        // Another replica started the round (or the deletion completed) meanwhile.
        if (next.deletion?.rounds !== d.rounds + 1 || next.deletion.roundAt.getTime() !== now.getTime()) continue;
        await publishTenantDeleted(bus, t.tenantId, 'tenant deleted by the operator (asked again)', d.rounds);
        this.#o.logger.info({ tenant: t.tenantId, round: d.rounds, missing: missingConfirmations(d) }, 'tenant deletion not confirmed by every service yet: asking again');
        published++;
      }
      cursor = page.next;
    } while (cursor);
    return published;
  }

  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    await this.#sweeping;
    await this.#consumer?.close();
  }
}
