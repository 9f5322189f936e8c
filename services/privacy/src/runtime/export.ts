/**
 * Export: everything held about one person, assembled from privacy's own records and what
 * personal-model and the updater answer. All or nothing: a peer that is not configured, not
 * reachable or too slow fails the export (naming it), never a document with a part missing.
 */
import { CONSENT_PURPOSES } from '@aimass/consent';
import { FailedPreconditionError, UnavailableError } from '@aimass/platform';
import type { ErasureStore } from '../adapters/erasure-store.js';
import type { PeerBounds, PersonalModelExportSource, UpdaterExportSource } from '../adapters/export-peers.js';
import type { ChainOwner } from '../domain/chain.js';
import { erasedExportDocument, exportDocument, peerDeadline, type ExportDocument } from '../domain/export.js';
import type { ConsentService } from './consent.js';

export interface ExportServiceOptions {
  readonly consent: ConsentService;
  readonly erasure: Pick<ErasureStore, 'get'>;
  readonly personalModel: Pick<PersonalModelExportSource, 'address' | 'versions'>;
  readonly updater: Pick<UpdaterExportSource, 'address' | 'feedback'>;
  readonly now?: (() => Date) | undefined;
}

export interface ExportBounds {
  /** The caller's deadline (epoch ms); undefined only outside a gRPC call. */
  readonly deadline?: number | undefined;
  readonly signal?: AbortSignal | undefined;
}

/** One error for every failed part: the configuration first, then the rest, each named. */
function combined(errors: readonly Error[]): Error {
  if (errors.length === 1) return errors[0]!;
  const message = errors.map((e) => e.message).join('; ');
  if (errors.some((e) => e instanceof FailedPreconditionError)) return new FailedPreconditionError(message, { cause: errors[0] });
  if (errors.every((e) => e instanceof UnavailableError)) return new UnavailableError(message, { cause: errors[0], retryAfterMs: 1000 });
  // A fault of privacy itself (a store error, a bug) is answered as it is.
  return errors.find((e) => !(e instanceof UnavailableError)) ?? errors[0]!;
}

export class ExportService {
  readonly #o: ExportServiceOptions;
  readonly #now: () => Date;

  constructor(options: ExportServiceOptions) {
    this.#o = options;
    this.#now = options.now ?? (() => new Date());
  }

  async export(owner: ChainOwner, bounds: ExportBounds = {}): Promise<ExportDocument> {
    const { consent, erasure, personalModel, updater } = this.#o;
    const erased = await erasure.get(owner.tenant, owner.userPseudonym);
    if (erased) return erasedExportDocument(owner.userPseudonym, this.#now(), erased.tombstone);

    // Both addresses before any call: a missing one is a deployment fault, named at once.
    const missing: Error[] = [];
    for (const source of [personalModel, updater]) {
      try {
        source.address();
      } catch (err) {
        missing.push(err as Error);
      }
    }
    if (missing.length > 0) throw combined(missing);

    const peer: PeerBounds = { deadline: peerDeadline(bounds.deadline, Date.now()), signal: bounds.signal };
    const [decisions, history, models, feedback] = await Promise.allSettled([
      consent.current(owner, CONSENT_PURPOSES),
      consent.history(owner),
      personalModel.versions(owner, peer),
      updater.feedback(owner, peer),
    ]);
    const failed = [decisions, history, models, feedback].filter((r) => r.status === 'rejected').map((r) => asError(r.reason));
    if (failed.length > 0) throw combined(failed);

    // An erasure that ran meanwhile wins: what was read may be half deleted, and the person is erased.
    const erasedMeanwhile = await erasure.get(owner.tenant, owner.userPseudonym);
    if (erasedMeanwhile) return erasedExportDocument(owner.userPseudonym, this.#now(), erasedMeanwhile.tombstone);

    return exportDocument(owner.userPseudonym, this.#now(), {
      decisions: value(decisions),
      history: value(history),
      models: value(models),
      feedback: value(feedback).entries,
      feedbackOmitted: value(feedback).omitted,
    });
  }
}

function value<T>(r: PromiseSettledResult<T>): T {
  if (r.status === 'rejected') throw asError(r.reason);
  return r.value;
}

function asError(reason: unknown): Error {
  return reason instanceof Error ? reason : new Error(String(reason));
}
