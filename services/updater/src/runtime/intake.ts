/**
 * The consumer's handler: a FeedbackRecorded event becomes an entry of its user's history and a
 * pending mark, in one atomic write; then the handler resolves, which acknowledges the event.
 * Applying it to the model happens afterwards (the applier), so the ack never waits for
 * personal-model and a slow model cannot hold a partition.
 *
 * Feedback of an erased user (it was in flight during the erasure, or published after it) is
 * dropped: acknowledged without effect and logged by pseudonym. The user's tombstone is checked
 * first, and the write itself carries a check that it is absent, so no entry can be added once
 * the erasure has begun.
 *
 * With the privacy service configured, the user's `training` consent is checked next: feedback
 * of a user who has not granted it is dropped the same way (acknowledged, nothing stored, counted
 * in `noConsent`). The applier checks again before training (consent can be withdrawn while the
 * event waits). A payload whose data key was destroyed (the user was erased: crypto-shredding) is
 * dropped too (`keyDestroyed`): no retry can read it, and a dead letter would be one more copy.
 *
 * What the handler throws decides what the bus does: a PoisonEventError is thrown at once, so the
 * event is dead-lettered with its reason after `maxDeliver` quick attempts; a store, or a privacy
 * service (consent, keys), that does not answer is waited for here (with back-off, until the
 * service stops), because a good event must not be dead-lettered or dropped for an outage.
 */
import { DataKeyError, TenantKeyError } from '@aimass/crypto';
import type { DeliveredEvent, PayloadSealer } from '@aimass/events';
import { DeadlineExceededError, UnavailableError, type Logger } from '@aimass/platform';
import { StoreUnavailableError } from '@aimass/storage';
import type { TrainingConsent } from '../domain/consent.js';
import { KeyDestroyedError, PoisonEventError, hasPlaintext, openEntry, parseFeedback, sealPlaintext, type HistoryEntry } from '../domain/feedback.js';
import { retryDelay } from '../domain/scheduler.js';
import type { UpdaterStore } from '../adapters/updater-store.js';

export interface IntakeOptions {
  readonly store: UpdaterStore;
  readonly sealer: PayloadSealer;
  /**
   * True when `sealer` encrypts with users' keys: payloads that came in plaintext (allowed while
   * migrating) are sealed before they are stored.
   */
  readonly encrypting?: boolean | undefined;
  /** The user's training consent; undefined: not enforced (no privacy service configured). */
  readonly consent?: TrainingConsent | undefined;
  readonly logger: Logger;
  /** Called once an event is in the history and its user marked: schedule the user's update. */
  readonly onAppended: (tenant: string, pseudonym: string) => void;
  /** Aborted when the service stops: a handler waiting for the store gives up (the event is redelivered later). */
  readonly signal: AbortSignal;
  readonly now?: (() => Date) | undefined;
  /**
   * Deletes what the feedback stream still holds on an erased user's subject. Called (batched,
   * after the dropped event's ack) when a late event of an erased user is dropped: the erasure's
   * own purge ran before that event was stored, and although its payload is unreadable (the key is
   * destroyed), the stream should not keep it until retention ends.
   */
  readonly purgeSubject?: ((subject: string) => Promise<unknown>) | undefined;
  /** How long dropped subjects are collected before they are purged (default 1000 ms). */
  readonly purgeDelayMs?: number | undefined;
}

export interface IntakeStats {
  readonly appended: number;
  readonly duplicates: number;
  readonly poison: number;
  readonly storeRetries: number;
  /** Waits for the privacy service (consent or keys) that did not answer. */
  readonly privacyRetries: number;
  /** Events of erased users, dropped. */
  readonly erased: number;
  /** Events of users without training consent, dropped. */
  readonly noConsent: number;
  /** Events whose data key was destroyed (the user was erased), dropped. */
  readonly keyDestroyed: number;
  /** Erased users' subjects purged from the stream after a late event of theirs was dropped. */
  readonly purgedSubjects: number;
  readonly purgeFailures: number;
}

const STORE_RETRY_INITIAL_MS = 100;
const STORE_RETRY_MAX_MS = 5_000;

function storeDown(err: unknown): boolean {
  return err instanceof StoreUnavailableError;
}

/**
 * The privacy service (consent, keys) not answering, or a key that cannot be unwrapped or a KEK
 * that is missing: faults an operator or time fixes, never the event's. (A destroyed key is
 * PayloadUnreadableError, handled as KeyDestroyedError.)
 */
function privacyDown(err: unknown): boolean {
  return err instanceof UnavailableError || err instanceof DeadlineExceededError || err instanceof DataKeyError || err instanceof TenantKeyError;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

export class Intake {
  readonly #o: IntakeOptions;
  readonly #now: () => Date;
  #stats = { appended: 0, duplicates: 0, poison: 0, storeRetries: 0, privacyRetries: 0, erased: 0, noConsent: 0, keyDestroyed: 0, purgedSubjects: 0, purgeFailures: 0 };
  readonly #toPurge = new Set<string>();
  #purgeTimer: NodeJS.Timeout | undefined;
  #purging: Promise<void> = Promise.resolve();

  constructor(options: IntakeOptions) {
    this.#o = options;
    this.#now = options.now ?? (() => new Date());
  }

  stats(): IntakeStats {
    return { ...this.#stats };
  }

  /** The EventHandler of the feedback consumer. */
  readonly handle = async (event: DeliveredEvent): Promise<void> => {
    try {
      await this.#take(event);
    } catch (err) {
      if (err instanceof KeyDestroyedError) return this.#dropKeyDestroyed(event, err);
      if (err instanceof PoisonEventError) {
        this.#stats.poison++;
        this.#o.logger.warn(
          { subject: event.subject, sequence: event.sequence, deliveryCount: event.deliveryCount, reason: err.message },
          'feedback event refused: it goes to the dead-letter subject after its last attempt',
        );
      }
      throw err;
    }
  };

  async #take(event: DeliveredEvent): Promise<void> {
    const entry = parseFeedback(event);
    // Before opening: an erased user's payloads may be unreadable by now (their key destroyed).
    if (await this.#retrying(() => this.#o.store.tombstone(entry.tenant, entry.pseudonym))) return this.#dropErased(entry, event);
    // Before the payloads are opened: no key is fetched for a user who has not consented.
    const consent = this.#o.consent;
    if (consent && !(await this.#retrying(() => consent(entry.tenant, entry.pseudonym)))) return this.#dropNoConsent(entry, event);
    // Opened only to refuse what can never be learnt from; what is stored stays sealed.
    const opened = await this.#retrying(() => openEntry(entry, this.#o.sealer));
    const stored: HistoryEntry = this.#o.encrypting && hasPlaintext(entry) ? await this.#retrying(() => sealPlaintext(opened, this.#o.sealer)) : entry;
    // The tenant first: once the entry exists, the sweep must be able to find its tenant.
    await this.#retrying(() => this.#o.store.rememberTenant(entry.tenant));
    const outcome = await this.#retrying(() => this.#o.store.append(stored, this.#now()));
    if (outcome === 'other-user') throw new PoisonEventError(`event id ${entry.eventId} is already in another user's history`);
    if (outcome === 'erased') return this.#dropErased(entry, event);
    if (outcome === 'duplicate') {
      this.#stats.duplicates++;
      this.#o.logger.debug({ tenant: entry.tenant, pseudonym: entry.pseudonym, eventId: entry.eventId, sequence: entry.sequence }, 'feedback event already in the history');
      return;
    }
    this.#stats.appended++;
    this.#o.onAppended(entry.tenant, entry.pseudonym);
  }

  #dropNoConsent(entry: HistoryEntry, event: DeliveredEvent): void {
    this.#stats.noConsent++;
    this.#o.logger.info(
      { tenant: entry.tenant, pseudonym: entry.pseudonym, eventId: entry.eventId, sequence: event.sequence },
      'feedback dropped: the user has not granted training consent (nothing stored)',
    );
  }

  #dropKeyDestroyed(event: DeliveredEvent, err: KeyDestroyedError): void {
    this.#stats.keyDestroyed++;
    this.#schedulePurge(event.subject);
    // The subject names tenant and pseudonym; the reason names the key id, never content.
    this.#o.logger.info({ subject: event.subject, sequence: event.sequence, reason: err.message }, "feedback dropped: its data key was destroyed at the user's erasure, nothing can read it");
  }

  #dropErased(entry: { tenant: string; pseudonym: string; eventId: string }, event: DeliveredEvent): void {
    this.#stats.erased++;
    this.#schedulePurge(event.subject);
    this.#o.logger.info(
      { tenant: entry.tenant, pseudonym: entry.pseudonym, eventId: entry.eventId, sequence: event.sequence },
      'feedback of an erased user dropped: it cannot bring back what the erasure deleted',
    );
  }

  /**
   * Deferred so the purge never races the dropped event's own ack, and batched so a burst of late
   * events of one user costs one purge.
   */
  #schedulePurge(subject: string): void {
    if (!this.#o.purgeSubject || this.#o.signal.aborted) return;
    this.#toPurge.add(subject);
    this.#purgeTimer ??= setTimeout(() => {
      this.#purgeTimer = undefined;
      this.#purging = this.#purging.then(() => this.#purgeNow());
    }, this.#o.purgeDelayMs ?? 1_000);
    this.#purgeTimer.unref();
  }

  async #purgeNow(): Promise<void> {
    const subjects = [...this.#toPurge];
    this.#toPurge.clear();
    for (const subject of subjects) {
      try {
        await this.#o.purgeSubject!(subject);
        this.#stats.purgedSubjects++;
      } catch (err) {
        // Harmless to leave: the payloads are sealed with a destroyed key; retention ends them.
        this.#stats.purgeFailures++;
        this.#o.logger.warn({ subject, err }, "could not purge an erased user's late feedback from the stream (its payload stays unreadable)");
      }
    }
  }

  /** Purges what is scheduled now instead of waiting (tests, shutdown). */
  async flushPurges(): Promise<void> {
    if (this.#purgeTimer) {
      clearTimeout(this.#purgeTimer);
      this.#purgeTimer = undefined;
      this.#purging = this.#purging.then(() => this.#purgeNow());
    }
    await this.#purging;
  }

  async #retrying<T>(fn: () => Promise<T>): Promise<T> {
    for (let failures = 1; ; failures++) {
      try {
        return await fn();
      } catch (err) {
        const store = storeDown(err);
        if ((!store && !privacyDown(err)) || this.#o.signal.aborted) throw err;
        if (store) this.#stats.storeRetries++;
        else this.#stats.privacyRetries++;
        const delay = retryDelay(failures, STORE_RETRY_INITIAL_MS, STORE_RETRY_MAX_MS);
        if (failures === 1 || failures % 10 === 0) {
          this.#o.logger.warn({ err, failures, retryInMs: delay }, store ? 'feedback intake waits for the store' : 'feedback intake waits for the privacy service (consent or data keys)');
        }
        await sleep(delay, this.#o.signal);
      }
    }
  }
}
