import { status as Status } from '@grpc/grpc-js';
import { v1 } from '@aimass/proto';
import { cancelledError } from './caller.js';
import { AiMassError, DeadlineExceededError } from './errors.js';

/** What a consent covers: `personalization` (predictions may use the personal model), `training` (feedback may be stored and learnt from). */
export type ConsentPurpose = 'personalization' | 'training';
export const CONSENT_PURPOSES: readonly ConsentPurpose[] = ['personalization', 'training'];

/** `denied`: never granted; `withdrawn`: an earlier grant taken back. */
export type ConsentState = 'granted' | 'denied' | 'withdrawn';
export const CONSENT_STATES: readonly ConsentState[] = ['granted', 'denied', 'withdrawn'];

/** Progress of an erasure, overall or for one service. `failed` is retried by the privacy service. */
export type ErasureStatus = 'pending' | 'completed' | 'failed';

const PURPOSE_CODE: Readonly<Record<ConsentPurpose, v1.Purpose>> = {
  personalization: v1.Purpose.PURPOSE_PERSONALIZATION,
  training: v1.Purpose.PURPOSE_TRAINING,
};

const STATE_CODE: Readonly<Record<ConsentState, v1.ConsentState>> = {
  granted: v1.ConsentState.CONSENT_STATE_GRANTED,
  denied: v1.ConsentState.CONSENT_STATE_DENIED,
  withdrawn: v1.ConsentState.CONSENT_STATE_WITHDRAWN,
};

const ERASURE_STATUS: Readonly<Record<number, ErasureStatus>> = {
  [v1.ErasureStatus.ERASURE_STATUS_PENDING]: 'pending',
  [v1.ErasureStatus.ERASURE_STATUS_COMPLETED]: 'completed',
  [v1.ErasureStatus.ERASURE_STATUS_FAILED]: 'failed',
};

/** Throws TypeError for a purpose this SDK does not know (a typo would otherwise reach the server as UNSPECIFIED). */
export function purposeCode(purpose: ConsentPurpose): v1.Purpose {
  const code = Object.hasOwn(PURPOSE_CODE, purpose) ? PURPOSE_CODE[purpose] : undefined;
  if (code === undefined) throw new TypeError(`unknown consent purpose "${String(purpose)}" (known: ${CONSENT_PURPOSES.join(', ')})`);
  return code;
}

export function consentStateCode(state: ConsentState): v1.ConsentState {
  const code = Object.hasOwn(STATE_CODE, state) ? STATE_CODE[state] : undefined;
  if (code === undefined) throw new TypeError(`unknown consent state "${String(state)}" (known: ${CONSENT_STATES.join(', ')})`);
  return code;
}

/** `unspecified` when the server left it unset or sent a value this SDK version does not know. */
export function purposeName(code: v1.Purpose): ConsentPurpose | 'unspecified' {
  return CONSENT_PURPOSES.find((p) => PURPOSE_CODE[p] === code) ?? 'unspecified';
}

export function consentStateName(code: v1.ConsentState): ConsentState | 'unspecified' {
  return CONSENT_STATES.find((s) => STATE_CODE[s] === code) ?? 'unspecified';
}

export function erasureStatusName(code: v1.ErasureStatus): ErasureStatus | 'unspecified' {
  return ERASURE_STATUS[code] ?? 'unspecified';
}

/** One entry of a user's append-only consent history (a hash chain the service verifies on every read). */
export interface ConsentRecord {
  /** Position in the user's history, from 1. */
  sequence: number;
  purpose: ConsentPurpose | 'unspecified';
  state: ConsentState | 'unspecified';
  /** The policy text version the user saw. */
  policyVersion: string;
  /** Where the decision was made, e.g. `web-settings`; empty when not given. */
  source: string;
  recordedAt: Date | undefined;
  /** Hash of the previous entry (hex); empty for the first. */
  prevHash: string;
  /** This entry's hash (hex). */
  hash: string;
  /** The service checked this entry's hash and its link to the previous one. */
  verified: boolean;
}

/** The current consent of a user for one purpose. */
export interface ConsentDecision {
  purpose: ConsentPurpose | 'unspecified';
  state: ConsentState | 'unspecified';
  /** No decision was recorded: the tenant's default applies (out of the box: denied). */
  isDefault: boolean;
  /** The latest record for the purpose; undefined when defaulted (or the user is erased). */
  record: ConsentRecord | undefined;
}

/** A consent decision to record. */
export interface SetConsentInput {
  /** Your id for the user; the service pseudonymizes it and never stores it. */
  userId: string;
  purpose: ConsentPurpose;
  state: ConsentState;
  /** The policy text version the user saw; the client's `policyVersion` when unset (one of them is required). */
  policyVersion?: string | undefined;
  /** Where the decision was made (`web-settings`, `support-ticket:4711`); the client's `source` when unset. */
  source?: string | undefined;
  /** When the user decided; the service's receive time when unset. */
  decidedAt?: Date | undefined;
  /**
   * Makes retries safe: the same key is recorded once. Generated when unset (and then returned);
   * pass your own to deduplicate across process restarts too.
   */
  idempotencyKey?: string | undefined;
}

export interface SetConsentResult {
  /** The appended record (or, for a repeat, the one recorded before). */
  record: ConsentRecord;
  /** The state differs from the purpose's previous one, and ConsentChanged was announced to the services that enforce it. */
  changed: boolean;
  /** The idempotency key had already been recorded (by an earlier attempt or call). */
  duplicate: boolean;
  /** The key used, generated or yours. */
  idempotencyKey: string;
}

export interface ConsentHistory {
  /** Oldest first. */
  records: ConsentRecord[];
  /** The whole chain up to the last record verified. (A history that fails verification is refused with FailedPreconditionError naming the record.) */
  chainVerified: boolean;
}

export interface EraseResult {
  /** Give it to `erasureReceipt` / `waitForErasure`. */
  erasureId: string;
  status: ErasureStatus | 'unspecified';
  /** The user already had an erasure: this is it (a user is erased once). */
  duplicate: boolean;
  /** The key used, generated or yours. */
  idempotencyKey: string;
}

/** One service's part of an erasure. */
export interface ErasureConfirmation {
  /** e.g. `personal-model`. */
  service: string;
  status: ErasureStatus | 'unspecified';
  /** Undefined while pending. */
  confirmedAt: Date | undefined;
  itemsDeleted: number;
  /** e.g. the reason of the last failure. */
  detail: string;
}

/** The record of an erasure: the proof that remains once the user's data is gone. */
export interface ErasureReceipt {
  erasureId: string;
  /** The erased user's pseudonym (the service does not keep the user id). */
  userPseudonym: string;
  /** `completed` once every expected service confirmed. */
  status: ErasureStatus | 'unspecified';
  requestedAt: Date | undefined;
  /** When the user's data key was destroyed, making encrypted copies (stream retention, backups) unreadable. */
  keyDestroyedAt: Date | undefined;
  /** When the last service confirmed. */
  completedAt: Date | undefined;
  /** One per service that holds user data, in the service's configured order. */
  confirmations: ErasureConfirmation[];
}

/** Everything held about a user, as the privacy service assembled it. */
export interface ExportResult {
  /** The export document (consents with their history, feedback, model versions and their metadata). */
  document: Record<string, unknown>;
  generatedAt: Date | undefined;
}

function internal(details: string, cause?: unknown): AiMassError {
  return new AiMassError(`INTERNAL: ${details}`, { grpcCode: Status.INTERNAL, details, cause });
}

export function toConsentRecord(r: v1.ConsentRecord): ConsentRecord {
  return {
    sequence: Number(r.sequence),
    purpose: purposeName(r.purpose),
    state: consentStateName(r.state),
    policyVersion: r.policyVersion,
    source: r.source,
    recordedAt: r.recordedAt,
    prevHash: r.prevHash,
    hash: r.hash,
    verified: r.verified,
  };
}

export function toConsentDecision(d: v1.ConsentDecision): ConsentDecision {
  return { purpose: purposeName(d.purpose), state: consentStateName(d.state), isDefault: d.isDefault, record: d.record ? toConsentRecord(d.record) : undefined };
}

export function toSetConsentResult(r: v1.SetConsentResponse, idempotencyKey: string): SetConsentResult {
  if (!r.record) throw internal('the server answered SetConsent without a record');
  return { record: toConsentRecord(r.record), changed: r.changed, duplicate: r.duplicate, idempotencyKey };
}

export function toErasureReceipt(r: v1.ErasureReceipt | undefined): ErasureReceipt {
  if (!r) throw internal('the server answered GetErasureReceipt without a receipt');
  return {
    erasureId: r.erasureId,
    userPseudonym: r.userPseudonym,
    status: erasureStatusName(r.status),
    requestedAt: r.requestedAt,
    keyDestroyedAt: r.keyDestroyedAt,
    completedAt: r.completedAt,
    confirmations: r.confirmations.map((c) => ({
      service: c.service,
      status: erasureStatusName(c.status),
      confirmedAt: c.confirmedAt,
      itemsDeleted: Number(c.itemsDeleted),
      detail: c.detail,
    })),
  };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The export document, whichever form the server answered in (JSON bytes or a Struct). */
export function toExportResult(r: v1.ExportResponse): ExportResult {
  const content = r.content;
  let document: unknown;
  if (content?.$case === 'json') {
    try {
      document = JSON.parse(Buffer.from(content.value).toString('utf8'));
    } catch (err) {
      throw internal(`the server answered Export with JSON that does not parse: ${(err as Error).message}`, err);
    }
  } else if (content?.$case === 'document') {
    document = content.value ?? {};
  } else {
    throw internal('the server answered Export without a document');
  }
  if (!isPlainObject(document)) throw internal('the server answered Export with a document that is not a JSON object');
  return { document, generatedAt: r.generatedAt };
}

/** The services an erasure still waits for: every one that has not confirmed completion (pending or failed). */
export function pendingServices(receipt: ErasureReceipt): string[] {
  return receipt.confirmations.filter((c) => c.status !== 'completed').map((c) => c.service);
}

function waitingFor(receipt: ErasureReceipt): string {
  const open = receipt.confirmations.filter((c) => c.status !== 'completed');
  if (open.length === 0) return `the receipt to complete (status ${receipt.status})`;
  return open.map((c) => (c.status === 'failed' ? `${c.service} (failed${c.detail ? `: ${c.detail}` : ''})` : `${c.service} (${c.status})`)).join(', ');
}

/**
 * `waitForErasure` ran out of time. The erasure goes on: the privacy service keeps asking the
 * services in `pendingServices` until they confirm; look again with `erasureReceipt(erasureId)`.
 */
export class ErasureTimeoutError extends DeadlineExceededError {
  readonly erasureId: string;
  /** The services that had not confirmed completion (pending, or failed and retried). */
  readonly pendingServices: string[];
  /** The last receipt read. */
  readonly receipt: ErasureReceipt;

  constructor(receipt: ErasureReceipt, waitedMs: number) {
    const details =
      `erasure ${receipt.erasureId} is not complete after ${(waitedMs / 1000).toFixed(1)} s, waiting for ${waitingFor(receipt)}; ` +
      'the privacy service keeps asking until every service confirms: read the receipt again later';
    super(`DEADLINE_EXCEEDED: ${details}`, { grpcCode: Status.DEADLINE_EXCEEDED, details });
    this.erasureId = receipt.erasureId;
    this.pendingServices = pendingServices(receipt);
    this.receipt = receipt;
  }
}

export interface WaitForErasureOptions {
  /** How long to wait for completion. Default 60000 ms. */
  timeoutMs?: number | undefined;
  /** Time between two reads of the receipt. Default 500 ms. */
  pollMs?: number | undefined;
  /** Aborting it stops waiting (CancelledError); the erasure goes on. */
  signal?: AbortSignal | undefined;
  /** Told about the first receipt read and each one whose status or confirmations changed. */
  onProgress?: ((receipt: ErasureReceipt) => void) | undefined;
  /** Extra metadata for each read. */
  metadata?: Readonly<Record<string, string>> | undefined;
}

export interface ReceiptPolling {
  timeoutMs: number;
  pollMs: number;
  /** Deadline of one read (the client's default deadline). */
  callDeadlineMs: number;
  signal?: AbortSignal | undefined;
  onProgress?: ((receipt: ErasureReceipt) => void) | undefined;
}

// A read made when the wait is (nearly) over still gets this long, so it can see a completion
// that came in the last poll interval instead of failing on a deadline already past.
const LAST_READ_MS = 1_000;

function progressKey(r: ErasureReceipt): string {
  return JSON.stringify([r.status, r.keyDestroyedAt?.getTime(), r.confirmations.map((c) => [c.service, c.status, c.detail])]);
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(cancelledError());
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(cancelledError());
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Reads the receipt until it is completed (resolves with it) or `timeoutMs` has passed (throws
 * ErasureTimeoutError with the last receipt). A failed read is thrown as it is, except a read that
 * ran into the end of the wait: that is the timeout.
 */
export async function pollErasureReceipt(
  read: (call: { deadline: number; signal: AbortSignal | undefined }) => Promise<ErasureReceipt>,
  o: ReceiptPolling,
): Promise<ErasureReceipt> {
  const started = Date.now();
  const end = started + o.timeoutMs;
  let last: ErasureReceipt | undefined;
  let lastKey = '';
  for (;;) {
    if (o.signal?.aborted) throw cancelledError();
    const now = Date.now();
    const deadline = now + Math.min(o.callDeadlineMs, Math.max(end - now, LAST_READ_MS));
    let receipt: ErasureReceipt;
    try {
      receipt = await read({ deadline, signal: o.signal });
    } catch (err) {
      if (err instanceof DeadlineExceededError && last !== undefined && Date.now() >= end) throw new ErasureTimeoutError(last, Date.now() - started);
      throw err;
    }
    const key = progressKey(receipt);
    if (key !== lastKey) o.onProgress?.(receipt);
    last = receipt;
    lastKey = key;
    if (receipt.status === 'completed') return receipt;
    const left = end - Date.now();
    if (left <= 0) throw new ErasureTimeoutError(receipt, Date.now() - started);
    await sleep(Math.min(o.pollMs, left), o.signal);
  }
}
