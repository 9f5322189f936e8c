import type { ConsentCache } from '@aimass/consent';
import type { StoredVersion } from '../adapters/model-store.js';
import { personalizationWithheld, trainingRefusal } from '../domain/consent.js';
import type { GeneralModelRef, VersionInfo } from '../domain/versions.js';
import type { ExampleInput, LoadedModel, PersonalModelAccess, WriteOptions, WriteResult } from './personal-models.js';

export interface ConsentEnforcementStats {
  /** Score loads answered as no model because the user has not granted `personalization`. */
  withheld: number;
  /** …because their consent could not be verified (the privacy service unreachable: fail closed). */
  withheldUnverifiable: number;
  /** Train and Refit calls refused for lack of `training` consent (or because it could not be verified). */
  refused: number;
}

/**
 * The users' models behind their consent (issue 6), on the same interface as `PersonalModels`, so
 * the gRPC handlers do not check anything themselves:
 *
 * - `current` (Score): without `personalization` the model is not loaded at all (no parameters
 *   read, nothing decrypted) and the user reads as having none: NO_MODEL, as a denied read must
 *   look like not-found.
 * - `train`, `refit`: without `training` nothing is learnt or written: FAILED_PRECONDITION
 *   (UNAVAILABLE when consent cannot be verified), checked before the idempotency record, so a
 *   retry after a withdrawal is refused too rather than answered as a duplicate.
 * - `version`, `listVersions` (GetModel, ListVersions): not checked. They are the data subject's
 *   access path (the privacy service's Export reads the versions), and an access request must be
 *   answered whatever the person decided about personalization or training.
 * - `rollback`: not checked: it learns nothing, it restores what the model already held.
 * - `deleteUser`: never checked.
 */
export class ConsentCheckingModels implements PersonalModelAccess {
  readonly #inner: PersonalModelAccess;
  readonly #consent: ConsentCache;
  readonly #stats: ConsentEnforcementStats = { withheld: 0, withheldUnverifiable: 0, refused: 0 };

  constructor(inner: PersonalModelAccess, consent: ConsentCache) {
    this.#inner = inner;
    this.#consent = consent;
  }

  stats(): ConsentEnforcementStats {
    return { ...this.#stats };
  }

  async current(tenant: string, user: string): Promise<LoadedModel | undefined> {
    const withheld = personalizationWithheld(await this.#consent.check(tenant, user, 'personalization'));
    if (withheld === undefined) return this.#inner.current(tenant, user);
    if (withheld === 'unverifiable') this.#stats.withheldUnverifiable++;
    else this.#stats.withheld++;
    return undefined;
  }

  async train(tenant: string, user: string, examples: ExampleInput[], opts: WriteOptions): Promise<WriteResult> {
    await this.#mayLearn(tenant, user, 'Train');
    return this.#inner.train(tenant, user, examples, opts);
  }

  async refit(tenant: string, user: string, generalModel: GeneralModelRef, examples: ExampleInput[], opts: WriteOptions): Promise<WriteResult> {
    await this.#mayLearn(tenant, user, 'Refit');
    return this.#inner.refit(tenant, user, generalModel, examples, opts);
  }

  rollback(tenant: string, user: string, toVersion: number, opts: Omit<WriteOptions, 'idempotencyKey'>): Promise<VersionInfo> {
    return this.#inner.rollback(tenant, user, toVersion, opts);
  }

  version(tenant: string, user: string, version: number): Promise<{ stored: StoredVersion; current: boolean }> {
    return this.#inner.version(tenant, user, version);
  }

  listVersions(tenant: string, user: string, page: { limit: number; cursor?: string | undefined }): Promise<{ items: VersionInfo[]; current: number; nextCursor?: string | undefined }> {
    return this.#inner.listVersions(tenant, user, page);
  }

  deleteUser(tenant: string, user: string, erasureId?: string): Promise<number> {
    return this.#inner.deleteUser(tenant, user, erasureId);
  }

  async #mayLearn(tenant: string, user: string, operation: 'Train' | 'Refit'): Promise<void> {
    const refusal = trainingRefusal(await this.#consent.check(tenant, user, 'training'), operation);
    if (refusal) {
      this.#stats.refused++;
      throw refusal;
    }
  }
}
