/**
 * FeedbackRecorded events as the updater takes them in: what makes one a poison event (refused for
 * good, dead-lettered with the reason), and the history entry it becomes. The entry keeps the
 * sealed payloads exactly as they came: the updater opens them only in memory, to check them and
 * to build examples, so the history at rest is as unreadable as the stream once a user's key is
 * destroyed.
 */
import { DataKeyError } from '@aimass/crypto';
import { MalformedEventError, PLAINTEXT_ALGORITHM, PayloadUnreadableError, decodeEvent, feedbackSubject, type PayloadSealer, type SealScope } from '@aimass/events';
import { PSEUDONYM_PATTERN, isValidTenantId } from '@aimass/platform';
import { v1 } from '@aimass/proto';
import type { GeneralRef } from './ids.js';

export const FEEDBACK_RECORDED = 'aimass.v1.FeedbackRecorded';

/** Longest label accepted; personal-model checks the label against the general model's labels. */
export const MAX_LABEL_LENGTH = 256;

/**
 * An event that can never be applied, whatever is retried: malformed, not what its subject says,
 * sealed payloads that cannot be opened or decoded. The consumer lets the bus dead-letter it.
 */
export class PoisonEventError extends Error {
  override readonly name: string = 'PoisonEventError';
}

/**
 * A payload sealed with a data key that no longer exists: the key was destroyed at the user's
 * erasure (crypto-shredding). Nothing will ever read it again, so the event is dropped rather than
 * retried or dead-lettered (a dead letter would be one more copy of the user's data to erase).
 * A PoisonEventError still, so a stored entry in this state is refused like any unreadable one.
 */
export class KeyDestroyedError extends PoisonEventError {
  override readonly name = 'KeyDestroyedError';
}

/** The sealer's answer for a key that does not exist (destroyed, or never stored), as opposed to tampering or a misfiled payload. */
export function keyDestroyed(err: unknown): boolean {
  return err instanceof PayloadUnreadableError && err.cause instanceof DataKeyError && err.cause.code === 'not_found';
}

export interface SealedPayload {
  readonly keyId: string;
  readonly algorithm: string;
  readonly nonce: Uint8Array;
  readonly ciphertext: Uint8Array;
}

/** One piece of a user's feedback history. */
export interface HistoryEntry {
  readonly tenant: string;
  readonly pseudonym: string;
  /** The FeedbackRecorded event id: the history's dedupe key. */
  readonly eventId: string;
  /** Its stream sequence: the order of the user's examples and the personal model's watermark unit. */
  readonly sequence: number;
  readonly label: string;
  readonly occurredAt: Date;
  readonly predictionId: string;
  /** The general model that produced `generalOutput` (or was current); undefined when the event named none. */
  readonly generalModel: GeneralRef | undefined;
  readonly input: SealedPayload;
  readonly generalOutput: SealedPayload | undefined;
  readonly sparseFeatures: SealedPayload | undefined;
}

/** An entry's payloads, opened and decoded. */
export interface OpenedEntry {
  readonly entry: HistoryEntry;
  readonly input: v1.InputPayload;
  readonly generalOutput: v1.GeneralOutput | undefined;
  readonly sparseFeatures: v1.SparseVector | undefined;
}

function sealed(p: v1.EncryptedPayload | undefined): SealedPayload | undefined {
  if (!p) return undefined;
  return { keyId: p.keyId, algorithm: p.algorithm, nonce: new Uint8Array(p.nonce), ciphertext: new Uint8Array(p.ciphertext) };
}

function toProto(p: SealedPayload): v1.EncryptedPayload {
  return { keyId: p.keyId, algorithm: p.algorithm, nonce: Buffer.from(p.nonce), ciphertext: Buffer.from(p.ciphertext) };
}

/**
 * Decodes a delivered FeedbackRecorded and checks everything that does not need a key: the
 * envelope, the subject (it must be the one fusion derives from the envelope's tenant and
 * pseudonym, so an event cannot be filed under another user), the label, the input's presence.
 */
export function parseFeedback(delivery: { subject: string; data: Uint8Array; sequence: number; publishedAt: Date }): HistoryEntry {
  let event: v1.FeedbackRecorded & { envelope: v1.EventEnvelope };
  try {
    event = decodeEvent(FEEDBACK_RECORDED, delivery.data);
  } catch (err) {
    if (err instanceof MalformedEventError) throw new PoisonEventError(err.message, { cause: err });
    throw err;
  }
  const { envelope } = event;
  if (!isValidTenantId(envelope.tenant)) throw new PoisonEventError(`FeedbackRecorded with an invalid tenant id '${envelope.tenant.slice(0, 80)}'`);
  if (!PSEUDONYM_PATTERN.test(envelope.userPseudonym)) throw new PoisonEventError('FeedbackRecorded without a well-formed user pseudonym (32 characters a-z, 2-7)');
  const expected = feedbackSubject(envelope.tenant, envelope.userPseudonym);
  if (delivery.subject !== expected) {
    throw new PoisonEventError(`FeedbackRecorded on subject ${delivery.subject.slice(0, 200)}, but its envelope's tenant and pseudonym belong on ${expected}`);
  }
  if (event.label === '') throw new PoisonEventError('FeedbackRecorded without a label');
  if (event.label.length > MAX_LABEL_LENGTH) throw new PoisonEventError(`FeedbackRecorded label longer than ${MAX_LABEL_LENGTH} characters`);
  const input = sealed(event.input);
  if (!input) throw new PoisonEventError('FeedbackRecorded without its input (a refit needs it)');
  const generalModel = event.generalModel && event.generalModel.name !== '' ? { name: event.generalModel.name, version: event.generalModel.version } : undefined;
  if (generalModel && generalModel.version === '') throw new PoisonEventError('FeedbackRecorded general_model without a version');
  return {
    tenant: envelope.tenant,
    pseudonym: envelope.userPseudonym,
    eventId: envelope.eventId,
    sequence: delivery.sequence,
    label: event.label,
    occurredAt: envelope.occurredAt ?? delivery.publishedAt,
    predictionId: event.predictionId,
    generalModel,
    input,
    generalOutput: sealed(event.generalOutput),
    sparseFeatures: sealed(event.sparseFeatures),
  };
}

function checkFinite(values: readonly number[], what: string): void {
  if (!values.every(Number.isFinite)) throw new PoisonEventError(`${what} holds a non-finite number`);
}

/** The entry's payloads opened with the sealer (associated data: the event id) and decoded. */
export async function openEntry(entry: HistoryEntry, sealer: PayloadSealer): Promise<OpenedEntry> {
  const scope: SealScope = { tenant: entry.tenant, userPseudonym: entry.pseudonym };
  const open = async (p: SealedPayload, what: string): Promise<Uint8Array> => {
    try {
      return await sealer.open(scope, toProto(p), entry.eventId);
    } catch (err) {
      // Anything else (a key service that does not answer) may pass: the caller retries it.
      if (keyDestroyed(err)) throw new KeyDestroyedError(`${what} cannot be opened: ${(err as Error).message}`, { cause: err });
      if (err instanceof PayloadUnreadableError) throw new PoisonEventError(`${what} cannot be opened: ${err.message}`, { cause: err });
      throw err;
    }
  };
  const decode = <T>(codec: { decode(b: Uint8Array): T }, bytes: Uint8Array, what: string): T => {
    try {
      return codec.decode(bytes);
    } catch (err) {
      throw new PoisonEventError(`${what} is not a valid message: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  };

  const input = decode(v1.InputPayload, await open(entry.input, 'input'), 'input');
  if (!input.kind) throw new PoisonEventError('input is empty (no text, mail, features or raw)');

  let generalOutput: v1.GeneralOutput | undefined;
  if (entry.generalOutput) {
    generalOutput = decode(v1.GeneralOutput, await open(entry.generalOutput, 'general_output'), 'general_output');
    if (generalOutput.embedding.length === 0) throw new PoisonEventError('general_output has no embedding (personal models learn on it)');
    if (generalOutput.logits.length < 2) throw new PoisonEventError('general_output has fewer than two logits');
    checkFinite(generalOutput.embedding, 'general_output.embedding');
    checkFinite(generalOutput.logits, 'general_output.logits');
    const model = generalOutput.model;
    if (!model || model.name === '' || model.version === '') throw new PoisonEventError('general_output does not name the general model version that produced it');
    if (entry.generalModel && (entry.generalModel.name !== model.name || entry.generalModel.version !== model.version)) {
      throw new PoisonEventError(`general_output comes from ${model.name} version ${model.version} but the event says ${entry.generalModel.name} version ${entry.generalModel.version}`);
    }
  }

  let sparseFeatures: v1.SparseVector | undefined;
  if (entry.sparseFeatures) {
    sparseFeatures = decode(v1.SparseVector, await open(entry.sparseFeatures, 'sparse_features'), 'sparse_features');
    const s = sparseFeatures;
    if (s.indices.length !== s.values.length) throw new PoisonEventError(`sparse_features has ${s.indices.length} indices but ${s.values.length} values`);
    checkFinite(s.values, 'sparse_features.values');
    for (let i = 0; i < s.indices.length; i++) {
      if (s.indices[i]! >= s.dimension || (i > 0 && s.indices[i]! <= s.indices[i - 1]!)) {
        throw new PoisonEventError(`sparse_features indices must be strictly increasing and below the dimension ${s.dimension}`);
      }
    }
  }
  return { entry, input, generalOutput, sparseFeatures };
}

/** The general model an entry's example comes from: the event's, else its general output's. */
export function entryGeneral(opened: OpenedEntry): GeneralRef | undefined {
  if (opened.entry.generalModel) return opened.entry.generalModel;
  const m = opened.generalOutput?.model;
  return m ? { name: m.name, version: m.version } : undefined;
}

/** True when one of the entry's payloads is not encrypted (algorithm NONE). */
export function hasPlaintext(entry: HistoryEntry): boolean {
  return [entry.input, entry.generalOutput, entry.sparseFeatures].some((p) => p?.algorithm === PLAINTEXT_ALGORITHM);
}

/**
 * The entry with its plaintext payloads sealed by `sealer` (the user's key, the event id as
 * associated data), from their opened form: feedback published before keys were configured is
 * not stored in the clear. Encrypted payloads are kept as they came.
 */
export async function sealPlaintext(opened: OpenedEntry, sealer: PayloadSealer): Promise<HistoryEntry> {
  const { entry } = opened;
  const scope: SealScope = { tenant: entry.tenant, userPseudonym: entry.pseudonym };
  const reseal = async (p: SealedPayload | undefined, bytes: () => Uint8Array): Promise<SealedPayload | undefined> => {
    if (!p || p.algorithm !== PLAINTEXT_ALGORITHM) return p;
    return sealed(await sealer.seal(scope, bytes(), entry.eventId));
  };
  return {
    ...entry,
    input: (await reseal(entry.input, () => v1.InputPayload.encode(opened.input).finish()))!,
    generalOutput: await reseal(entry.generalOutput, () => v1.GeneralOutput.encode(opened.generalOutput!).finish()),
    sparseFeatures: await reseal(entry.sparseFeatures, () => v1.SparseVector.encode(opened.sparseFeatures!).finish()),
  };
}

/**
 * The stored input of an entry, opened for an export: undefined when it can never be read again
 * (its key destroyed, or the payload damaged). Other failures (the key service unreachable) reject.
 */
export async function openInput(entry: HistoryEntry, sealer: PayloadSealer): Promise<v1.InputPayload | undefined> {
  let bytes: Uint8Array;
  try {
    bytes = await sealer.open({ tenant: entry.tenant, userPseudonym: entry.pseudonym }, toProto(entry.input), entry.eventId);
  } catch (err) {
    if (err instanceof PayloadUnreadableError) return undefined;
    throw err;
  }
  try {
    const input = v1.InputPayload.decode(bytes);
    return input.kind ? input : undefined;
  } catch {
    return undefined;
  }
}
