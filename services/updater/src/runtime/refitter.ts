/**
 * Rebuilding one user's model from their history on a general model version: the stored inputs
 * are run through that version (Classify, batched), the stored sparse features reused, and
 * personal-model's Refit writes a fresh model paired with the version, as a compare-and-set on
 * the user's current version with an idempotency key of (user, version, last sequence).
 *
 * The refit's examples carry their stream sequences, so the new model's watermark covers the
 * whole history it read: an incremental Train racing with it either lost the compare-and-set
 * (and re-reads), or committed first (and the refit re-reads and includes its examples again).
 *
 * A refit learns from the user's feedback, so it needs the user's `training` consent (when the
 * privacy service is configured): read right before Refit, as the applier does before Train.
 * Without it the user is not refitted (`no-consent`); the model stays as it is.
 */
import type { PayloadSealer } from '@aimass/events';
import { ConflictError, InvalidArgumentError, type Logger } from '@aimass/platform';
import type { GeneralModelClient } from '../adapters/general-model-client.js';
import type { PersonalModelClient } from '../adapters/personal-model-client.js';
import { UserErasedError, type StoredEntry, type UpdaterStore } from '../adapters/updater-store.js';
import type { TrainingConsent } from '../domain/consent.js';
import { blamedExample, examplesWithin, trainingExample } from '../domain/examples.js';
import { PoisonEventError, openEntry, type OpenedEntry } from '../domain/feedback.js';
import { describeGeneral } from '../domain/general.js';
import { refitIdempotencyKey, type GeneralRef } from '../domain/ids.js';
import type { ErasureGuard } from './applier.js';

export interface RefitterOptions {
  readonly store: UpdaterStore;
  readonly personal: PersonalModelClient;
  readonly general: GeneralModelClient;
  readonly sealer: PayloadSealer;
  readonly logger: Logger;
  /** History entries a refit learns from at most (the most recent). */
  readonly maxExamples: number;
  /** Encoded examples per Refit request. */
  readonly maxRequestBytes: number;
  /** Compare-and-set conflicts retried before giving up. */
  readonly maxConflicts: number;
  readonly erasure: ErasureGuard;
  /** The user's training consent; undefined: not enforced. */
  readonly consent?: TrainingConsent | undefined;
}

export type RefitOutcome =
  | { readonly kind: 'refitted' | 'duplicate'; readonly version: number; readonly examples: number }
  | { readonly kind: 'no-history' }
  | { readonly kind: 'no-consent' };

/**
 * Opens entries; those that can no longer be opened (a destroyed key, say) are recorded as refused
 * and left out for good.
 */
export async function openOrRefuse(store: UpdaterStore, sealer: PayloadSealer, entries: readonly StoredEntry[]): Promise<OpenedEntry[]> {
  const opened: OpenedEntry[] = [];
  const refused = new Map<string, string>();
  for (const e of entries) {
    try {
      opened.push(await openEntry(e, sealer));
    } catch (err) {
      if (!(err instanceof PoisonEventError)) throw err;
      refused.set(e.eventId, err.message);
    }
  }
  if (refused.size > 0) await store.markApplied(entries.filter((e) => refused.has(e.eventId)), refused);
  return opened;
}

export class Refitter {
  readonly #o: RefitterOptions;

  constructor(options: RefitterOptions) {
    this.#o = options;
  }

  /**
   * Refits the user on `target`. The caller holds the user (no incremental update of theirs runs
   * in this process meanwhile); other replicas are kept apart by the compare-and-set.
   */
  async refit(tenant: string, pseudonym: string, target: GeneralRef, reason: string): Promise<RefitOutcome> {
    try {
      return await this.#refit(tenant, pseudonym, target, reason);
    } catch (err) {
      // Erased while the refit ran: nothing of the user is left to refit.
      if (err instanceof UserErasedError) return { kind: 'no-history' };
      throw err;
    }
  }

  async #refit(tenant: string, pseudonym: string, target: GeneralRef, reason: string): Promise<RefitOutcome> {
    const o = this.#o;
    // Also before any work: nothing is read or classified for a user without consent.
    if (!(await this.#consented(tenant, pseudonym, target, reason))) return { kind: 'no-consent' };
    for (let conflicts = 0; ; ) {
      const model = await o.personal.model(tenant, pseudonym);
      const entries = await o.store.history(tenant, pseudonym, o.maxExamples);
      if (entries.length === 0) return { kind: 'no-history' };
      const opened = await openOrRefuse(o.store, o.sealer, entries);
      if (opened.length < entries.length) continue;
      const { outputs } = await o.general.classify(
        tenant,
        target,
        opened.map((e) => e.input),
      );
      const all = opened.map((e, i) => trainingExample(e.entry, outputs[i]!, e.sparseFeatures));
      const fit = examplesWithin(all, o.maxRequestBytes, 'newest');
      const examples = all.slice(all.length - fit);
      const last = entries[entries.length - 1]!.sequence;
      // An erased user is not refitted; one erased while the refit ran is undone (runtime/erasure.ts).
      if (await o.erasure.erased(tenant, pseudonym)) return { kind: 'no-history' };
      if (!(await this.#consented(tenant, pseudonym, target, reason))) return { kind: 'no-consent' };
      try {
        const res = await o.personal.refit(tenant, {
          userPseudonym: pseudonym,
          generalModel: { name: target.name, version: target.version },
          examples,
          idempotencyKey: refitIdempotencyKey(pseudonym, target, last),
          expectedVersion: model.version,
        });
        if (await o.erasure.undoIfErased(tenant, pseudonym)) return { kind: 'no-history' };
        await o.store.markApplied(entries);
        const version = res.model?.version ?? 0;
        o.logger.info(
          { tenant, pseudonym, version, previousVersion: model.version, examples: examples.length, leftOut: all.length - examples.length, generalModel: describeGeneral(target), duplicate: res.duplicate, reason },
          'refitted personal model',
        );
        return { kind: res.duplicate ? 'duplicate' : 'refitted', version, examples: examples.length };
      } catch (err) {
        if (err instanceof ConflictError) {
          if (++conflicts > o.maxConflicts) throw err;
          continue;
        }
        const blamed = err instanceof InvalidArgumentError ? blamedExample(err.field) : undefined;
        if (blamed === undefined) throw err;
        const entry = entries[entries.length - fit + blamed]!;
        const reason = err instanceof Error ? err.message : String(err);
        o.logger.warn({ tenant, pseudonym, eventId: entry.eventId, sequence: entry.sequence, reason }, 'personal-model refused a feedback example: it is left out of the history');
        await o.store.markApplied([entry], new Map([[entry.eventId, reason]]));
      }
    }
  }

  async #consented(tenant: string, pseudonym: string, target: GeneralRef, reason: string): Promise<boolean> {
    const consent = this.#o.consent;
    if (!consent || (await consent(tenant, pseudonym))) return true;
    this.#o.logger.info({ tenant, pseudonym, generalModel: describeGeneral(target), reason }, 'refit skipped: the user has not granted training consent');
    return false;
  }
}
