/**
 * Version records of personal models and the rules over them: numbering, pairing with a general
 * model, retention. Pure: the store adapter persists what these describe.
 */

export type UpdateKindName = 'TRAIN' | 'REFIT' | 'ROLLBACK';

/** A general model version a personal model is paired with. */
export interface GeneralModelRef {
  name: string;
  version: string;
}

/** What is recorded about one stored version besides its parameters. */
export interface VersionInfo {
  /** Per-user sequence number, from 1. */
  version: number;
  /** The general model version its examples came from; it is only applied to that version's outputs. */
  generalModel: GeneralModelRef;
  /** The general model's labels, in its output order (the model's class order). */
  labels: string[];
  /** Examples learnt from in total. */
  exampleCount: number;
  kind: UpdateKindName;
  /** For rollbacks, the version whose parameters were restored; else 0. */
  restoredFromVersion: number;
  createdAt: Date;
  /** Highest feedback stream sequence learnt from (see watermark.ts); 0 when no example carried one. */
  lastAppliedSequence: number;
}

/** The user's current version and the oldest one still kept (versions in between all exist). */
export interface CurrentPointer {
  version: number;
  oldestVersion: number;
}

export function sameGeneralModel(a: GeneralModelRef, b: GeneralModelRef): boolean {
  return a.name === b.name && a.version === b.version;
}

export function describeGeneralModel(ref: GeneralModelRef): string {
  return `${ref.name || '(unnamed)'} version ${ref.version || '(none)'}`;
}

/**
 * Versions to delete when `newVersion` is written and `keep` are kept: the kept range becomes
 * [newVersion − keep + 1, newVersion], and everything from the old oldest below it goes.
 */
export function retention(pointer: CurrentPointer | undefined, newVersion: number, keep: number): { oldestVersion: number; remove: number[] } {
  if (!Number.isInteger(keep) || keep < 1) throw new RangeError(`versions kept must be >= 1, got ${keep}`);
  const oldestKept = Math.max(1, newVersion - keep + 1);
  const from = pointer ? pointer.oldestVersion : oldestKept;
  const remove: number[] = [];
  for (let v = from; v < oldestKept; v++) remove.push(v);
  return { oldestVersion: Math.max(from, oldestKept), remove };
}

/** Store id of a version document. Pseudonyms are [a-z2-7]{32}, so `:` cannot occur in them. */
export function versionDocumentId(pseudonym: string, version: number): string {
  return `${pseudonym}:${version}`;
}

/** Store id of an idempotency record. */
export function idempotencyDocumentId(pseudonym: string, key: string): string {
  return `${pseudonym}:${key}`;
}

/** Fixed bytes a cache entry costs besides its parameters (the entry, its info and labels). */
export const CACHE_ENTRY_OVERHEAD_BYTES = 512;
/** What a "this user has no model" entry costs. */
export const CACHE_NEGATIVE_ENTRY_BYTES = 128;

/**
 * Associated data of a version's sealed parameters: binds the ciphertext to its tenant, user and
 * version, so a blob copied into another user's or another version's document fails to open.
 * (Versions restart at 1 after an erasure, but the erasure destroyed the key that sealed the old ones.)
 */
export function parametersAssociatedData(tenant: string, pseudonym: string, version: number): string {
  return JSON.stringify(['aimass/personal-model/parameters/v1', tenant, pseudonym, version]);
}
