/**
 * Ids the updater derives rather than draws: the same inputs give the same id on every replica and
 * after every restart, which is what makes a repeated call or publish a no-op downstream.
 */
import { createHash } from 'node:crypto';
import { uuidv7, uuidv8FromDigest } from '@aimass/platform';

export interface GeneralRef {
  readonly name: string;
  readonly version: string;
}

function digest(...parts: string[]): Buffer {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest();
}

export { uuidv7 };

/** A version 8 UUID derived from `parts`: the shape of every event and job id, never equal to a random v7 one. */
export function derivedUuid(...parts: string[]): string {
  return uuidv8FromDigest(digest(...parts));
}

/**
 * The idempotency key of one incremental Train: the user and the stream sequences of the first
 * and last example. A retry of the same batch (a lost answer, a second replica that built the same
 * batch from the same watermark) answers `duplicate` instead of ABORTED. The watermark, not this
 * key, is what keeps an example from being applied twice: a batch that overlaps an applied one
 * under another key has its applied examples skipped by personal-model.
 */
export function trainIdempotencyKey(pseudonym: string, firstSequence: number, lastSequence: number): string {
  return `upd-train:${pseudonym}:${firstSequence}-${lastSequence}`;
}

/**
 * The idempotency key of one refit: the user, the target general model and the last history
 * sequence it covers. The general model's name is hashed so the key stays short whatever it is.
 */
export function refitIdempotencyKey(pseudonym: string, general: GeneralRef, lastSequence: number): string {
  const model = digest(general.name, general.version).toString('hex').slice(0, 16);
  return `upd-refit:${pseudonym}:${model}:${lastSequence}`;
}

/**
 * One observed change of the served general model version. `generation` is the store version of
 * the record the change replaces: every replica that notices the same change reads the same one,
 * and a later change back and forth gets another.
 */
export interface GeneralChange {
  readonly name: string;
  readonly from: string;
  readonly to: string;
  readonly generation: number;
}

const changeParts = (c: GeneralChange): string[] => [c.name, c.from, c.to, String(c.generation)];

/**
 * The event id of a GeneralModelVersionChanged for one tenant: every replica that notices the
 * same change publishes the same id, which the stream stores once.
 */
export function generalChangedEventId(tenant: string, change: GeneralChange): string {
  return derivedUuid('aimass.updater.general-changed', tenant, ...changeParts(change));
}

/**
 * The id of the RefitAll job a general model change starts in a tenant: replicas that notice the
 * change race to create it, and exactly one creation succeeds.
 */
export function generalChangeJobId(tenant: string, change: GeneralChange): string {
  return derivedUuid('aimass.updater.general-change-job', tenant, ...changeParts(change));
}
