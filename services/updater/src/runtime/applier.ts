/**
 * Incremental updates of one user's model.
 *
 * Exactly once in effect. Delivery is at least once (redeliveries, republished events, a replica
 * that crashed after the ack, two replicas on one user during a partition hand-over), so nothing
 * here relies on seeing an event once. What holds instead:
 *
 * 1. The history has one entry per event id (created with `absent`), so a repeated event adds
 *    nothing to learn from.
 * 2. Every example carries its event's stream sequence, and personal-model keeps, with each
 *    version, the highest sequence it has learnt from (its watermark). Train skips examples at or
 *    below the watermark and writes the version as a compare-and-set on the version it was built
 *    on, checking the watermark in the same write. So of two replicas that built the same batch
 *    from the same version, exactly one commits; the other gets ABORTED, reads the new version
 *    and finds those examples below the watermark. A batch replayed after a crash (the model was
 *    written, the answer or the `applied` hint was lost) is skipped the same way.
 * 3. The idempotency key (user, first..last sequence) turns a retried call whose answer was lost
 *    into `duplicate` rather than ABORTED: a convenience, not the guarantee.
 *
 * The pending mark is cleared only with a compare-and-set on the mark's store version once no
 * entry above the watermark is left (see domain/pending.ts), so an event taken in while the
 * update ran is never forgotten; and the sweep finds marks a stopped replica left behind.
 *
 * When the user's model is paired with another general model version than the new feedback,
 * examples are not mixed across versions: the user is refitted on the served version instead.
 *
 * An erased user's model is never written: the tombstone is read before each Train (nothing is
 * sent once it exists) and after it (a Train that raced with the erasure is undone), see
 * runtime/erasure.ts.
 *
 * With the privacy service configured, the user's `training` consent is read again (from the
 * consent cache) before the entries are opened and right before each Train: it may have been
 * withdrawn since the intake took the feedback in. Without it, the entries not yet applied are
 * removed from the history (not kept as refused: nothing of them is needed, and the user asked
 * that they not be learnt from) and nothing is trained. Entries learnt before the withdrawal
 * stay in the history (an erasure removes them); refits are refused while consent is withdrawn.
 */
import type { PayloadSealer } from '@aimass/events';
import { ConflictError, InvalidArgumentError, UnavailableError, type Logger } from '@aimass/platform';
import type { v1 } from '@aimass/proto';
import type { GeneralModelClient } from '../adapters/general-model-client.js';
import type { PersonalModelClient } from '../adapters/personal-model-client.js';
import { UserErasedError, type StoredEntry, type UpdaterStore } from '../adapters/updater-store.js';
import type { TrainingConsent } from '../domain/consent.js';
import { blamedExample, examplesWithin, planApply, trainingExample } from '../domain/examples.js';
import { entryGeneral } from '../domain/feedback.js';
import { describeGeneral } from '../domain/general.js';
import { trainIdempotencyKey, type GeneralRef } from '../domain/ids.js';
import { clearPending, splitAtWatermark } from '../domain/pending.js';
import type { UpdaterErasure } from './erasure.js';
import { openOrRefuse, type Refitter } from './refitter.js';

/** What the applier and the refitter ask about erasures (UpdaterErasure). */
export type ErasureGuard = Pick<UpdaterErasure, 'erased' | 'undoIfErased'>;

export interface ApplierOptions {
  readonly store: UpdaterStore;
  readonly personal: PersonalModelClient;
  readonly general: GeneralModelClient;
  readonly refitter: Refitter;
  readonly sealer: PayloadSealer;
  readonly logger: Logger;
  /** Examples per Train call. */
  readonly maxBatch: number;
  /** Encoded examples per Train request. */
  readonly maxRequestBytes: number;
  /** Compare-and-set conflicts retried within one run before it backs off. */
  readonly maxConflicts: number;
  /** The general model version last seen served (the watch's); undefined when not known. */
  readonly served: () => GeneralRef | undefined;
  /** Asks the general model for its served version now (the target of a refit). */
  readonly resolveServed: () => Promise<GeneralRef>;
  readonly erasure: ErasureGuard;
  /** The user's training consent; undefined: not enforced. Rejects with UnavailableError when it cannot be verified (the update is retried). */
  readonly consent?: TrainingConsent | undefined;
  readonly now?: (() => Date) | undefined;
}

export interface ApplierStats {
  readonly versionsWritten: number;
  readonly examplesApplied: number;
  readonly examplesSkipped: number;
  readonly conflicts: number;
  readonly refits: number;
  readonly refused: number;
  /** History entries removed untrained because the user's training consent was withdrawn. */
  readonly consentWithdrawn: number;
}

/** Passes of one run; each applies a batch, repairs hints or clears the mark, so this only stops a runaway. */
const MAX_PASSES = 10_000;

export class Applier {
  readonly #o: ApplierOptions;
  readonly #now: () => Date;
  #stats = { versionsWritten: 0, examplesApplied: 0, examplesSkipped: 0, conflicts: 0, refits: 0, refused: 0, consentWithdrawn: 0 };

  constructor(options: ApplierOptions) {
    this.#o = options;
    this.#now = options.now ?? (() => new Date());
  }

  stats(): ApplierStats {
    return { ...this.#stats };
  }

  /**
   * Applies everything of the user's history above the model's watermark, in order and in
   * batches, then clears the user's pending mark. Throws when it cannot finish now (personal-model
   * or the store unreachable, too many conflicts); the scheduler retries, and the mark stays.
   */
  async apply(tenant: string, pseudonym: string): Promise<void> {
    try {
      await this.#apply(tenant, pseudonym);
    } catch (err) {
      // The erasure began while this update ran (its writes are refused from then on): nothing
      // of the user is left to update, and the erasure deletes what is there.
      if (err instanceof UserErasedError) return;
      throw err;
    }
  }

  async #apply(tenant: string, pseudonym: string): Promise<void> {
    const o = this.#o;
    // A retry after a failed undo (see the check after Train) comes here: undo again, then stop.
    if (await o.erasure.erased(tenant, pseudonym)) {
      await o.erasure.undoIfErased(tenant, pseudonym);
      return;
    }
    let conflicts = 0;
    for (let pass = 0; pass < MAX_PASSES; pass++) {
      const record = await o.store.state(tenant, pseudonym);
      if (!record || !record.state.pending) return;
      const model = await o.personal.model(tenant, pseudonym);
      const { entries, complete } = await o.store.unappliedBatch(tenant, pseudonym, o.maxBatch);
      const { fresh, applied } = splitAtWatermark(entries, model.watermark);
      if (fresh.length === 0) {
        // Nothing to train. Hints lost in a crash between the model write and the hint write are
        // repaired, and the mark cleared in the same write when they were all that was unapplied.
        if (!complete) {
          await o.store.markApplied(applied);
          continue;
        }
        if (await o.store.markAppliedAndClear(applied, tenant, pseudonym, clearPending(record.state, this.#now()), record.version)) return;
        continue;
      }
      // Hints lost in a crash between the model write and the hint write.
      if (applied.length > 0) await o.store.markApplied(applied);

      if (!(await this.#consented(fresh))) continue;
      const opened = await openOrRefuse(o.store, o.sealer, fresh);
      if (opened.length < fresh.length) {
        this.#stats.refused += fresh.length - opened.length;
        continue;
      }
      const plan = planApply(model, opened.map(entryGeneral), o.served());
      if (plan.kind === 'refit') {
        // Asked afresh: the watch's last answer may predate the change this feedback comes from.
        const target = await o.resolveServed();
        this.#stats.refits++;
        o.logger.info({ tenant, pseudonym, pairedWith: describeGeneral(model.general), target: describeGeneral(target), reason: plan.reason }, 'refitting instead of training across general model versions');
        const outcome = await o.refitter.refit(tenant, pseudonym, target, plan.reason);
        if (outcome.kind === 'no-history') return;
        // 'no-consent': consent was withdrawn since this pass read it; the next pass removes the entries.
        continue;
      }

      const missing = opened.filter((e) => !e.generalOutput);
      const computed = new Map<string, v1.GeneralOutput>();
      if (missing.length > 0) {
        const { outputs } = await o.general.classify(
          tenant,
          plan.general,
          missing.map((e) => e.input),
        );
        missing.forEach((e, i) => computed.set(e.entry.eventId, outputs[i]!));
      }
      const all = opened.map((e) => trainingExample(e.entry, e.generalOutput ?? computed.get(e.entry.eventId)!, e.sparseFeatures));
      const examples = all.slice(0, examplesWithin(all, o.maxRequestBytes, 'oldest'));
      const batch = fresh.slice(0, examples.length);
      const first = batch[0]!.sequence;
      const last = batch[batch.length - 1]!.sequence;
      let res: v1.TrainResponse;
      // Right before the write: the erasure may have begun, or consent been withdrawn, while the batch was built.
      if (await o.erasure.erased(tenant, pseudonym)) return;
      if (!(await this.#consented(fresh))) continue;
      try {
        res = await o.personal.train(tenant, { userPseudonym: pseudonym, examples, idempotencyKey: trainIdempotencyKey(pseudonym, first, last), expectedVersion: model.version });
      } catch (err) {
        if (err instanceof ConflictError) {
          this.#stats.conflicts++;
          if (++conflicts > o.maxConflicts) throw new UnavailableError(`gave up after ${conflicts - 1} concurrent updates of the user's model: retrying later`, { cause: err });
          continue;
        }
        const blamed = err instanceof InvalidArgumentError ? blamedExample(err.field) : undefined;
        if (blamed === undefined || !batch[blamed]) throw err;
        await this.#refuse(batch[blamed]!, err);
        continue;
      }
      if (await o.erasure.undoIfErased(tenant, pseudonym)) return;
      // Applied now or before (duplicate key, or skipped below the watermark): either way these
      // entries are settled, and a later pass must not send them again. When they are the last of
      // what was unapplied as read after the mark, the mark is cleared in the same write, with the
      // compare-and-set a later pass would use: any event taken in since moved the mark's version.
      let cleared = false;
      if (complete && batch.length === fresh.length) cleared = await o.store.markAppliedAndClear(batch, tenant, pseudonym, clearPending(record.state, this.#now()), record.version);
      else await o.store.markApplied(batch);
      if (!res.duplicate) this.#stats.versionsWritten++;
      this.#stats.examplesApplied += res.examplesApplied;
      this.#stats.examplesSkipped += res.examplesSkipped;
      o.logger.debug(
        { tenant, pseudonym, version: res.model?.version, previousVersion: model.version, first, last, applied: res.examplesApplied, skipped: res.examplesSkipped, duplicate: res.duplicate },
        'applied feedback to personal model',
      );
      if (cleared) return;
    }
    throw new UnavailableError(`the update of one user did not settle within ${MAX_PASSES} passes: retrying later`);
  }

  /**
   * True when the user's consent allows training on `entries` (or consent is not enforced);
   * otherwise the entries are removed from the history, and the caller's next pass finds what is
   * left (and clears the mark when nothing is).
   */
  async #consented(entries: readonly StoredEntry[]): Promise<boolean> {
    const consent = this.#o.consent;
    const first = entries[0];
    if (!consent || !first) return true;
    if (await consent(first.tenant, first.pseudonym)) return true;
    const removed = await this.#o.store.removeUnapplied(entries);
    this.#stats.consentWithdrawn += removed;
    this.#o.logger.info(
      { tenant: first.tenant, pseudonym: first.pseudonym, entries: removed, first: first.sequence, last: entries[entries.length - 1]!.sequence },
      'training consent withdrawn: feedback not yet applied removed from the history, not trained on',
    );
    return false;
  }

  async #refuse(entry: StoredEntry, err: unknown): Promise<void> {
    this.#stats.refused++;
    const reason = err instanceof Error ? err.message : String(err);
    this.#o.logger.warn({ tenant: entry.tenant, pseudonym: entry.pseudonym, eventId: entry.eventId, sequence: entry.sequence, reason }, 'personal-model refused a feedback example: it is left out of the history');
    await this.#o.store.markApplied([entry], new Map([[entry.eventId, reason]]));
  }
}
