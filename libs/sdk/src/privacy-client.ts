import { randomUUID } from 'node:crypto';
import { credentials as grpcCredentials } from '@grpc/grpc-js';
import { v1 } from '@aimass/proto';
import { UnaryCaller, channelOptionsOf, positiveMs, type CallOptions, type ConnectionOptions } from './caller.js';
import {
  consentStateCode,
  pollErasureReceipt,
  purposeCode,
  toConsentDecision,
  toConsentRecord,
  toErasureReceipt,
  toExportResult,
  toSetConsentResult,
  type ConsentDecision,
  type ConsentHistory,
  type ConsentPurpose,
  type ConsentRecord,
  type EraseResult,
  type ErasureReceipt,
  type ExportResult,
  type SetConsentInput,
  type SetConsentResult,
  type WaitForErasureOptions,
  erasureStatusName,
} from './privacy.js';

/**
 * Options of the privacy client. `address` is the privacy service's (127.0.0.1:50055 in
 * `aimass dev`).
 */
export interface PrivacyClientOptions extends ConnectionOptions {
  /** The policy text version recorded with a consent decision that names none (e.g. the version your consent screen shows). */
  policyVersion?: string | undefined;
  /** Where decisions are made when a call names no source (e.g. `web-settings`). */
  source?: string | undefined;
}

/** Options of `grant`: what `setConsent` takes besides the user, purpose and state. */
export interface GrantOptions extends CallOptions {
  policyVersion?: string | undefined;
  source?: string | undefined;
  decidedAt?: Date | undefined;
  /** One key for the whole grant: each purpose's record is keyed `<key>/<purpose>`. Generated when unset. */
  idempotencyKey?: string | undefined;
}

export interface ConsentHistoryOptions extends CallOptions {
  /** Only this purpose's records. */
  purpose?: ConsentPurpose | undefined;
  /** Records per call (the service's default 100, at most 1000); every page is read either way. */
  pageSize?: number | undefined;
}

export interface EraseOptions extends CallOptions {
  /** Why, for the audit trail (e.g. `gdpr-art17`); keep personal data out of it. */
  reason?: string | undefined;
  /** Generated when unset (and returned). A user is erased once, so any repeat answers the same erasure. */
  idempotencyKey?: string | undefined;
}

function keyOf(given: string | undefined): string {
  if (given === undefined) return randomUUID();
  if (given === '') throw new TypeError('idempotencyKey must not be empty (leave it unset to have one generated)');
  return given;
}

/**
 * The data subject's rights (aimass.v1.PrivacyService): consent per purpose with its verified
 * history, erasure with a receipt, export. Users are named by your id; the service pseudonymizes
 * it at once and never stores it.
 *
 * Every call is retried on UNAVAILABLE within its deadline: reads change nothing, and every write
 * (SetConsent, Erase) carries an idempotency key — yours, or one generated per call and reused
 * by each attempt — so a repeat is recorded once.
 */
export class PrivacyClient {
  readonly #client: v1.PrivacyServiceClient;
  readonly #caller: UnaryCaller;
  readonly #policyVersion: string | undefined;
  readonly #source: string | undefined;

  constructor(options: PrivacyClientOptions) {
    this.#caller = new UnaryCaller(options);
    this.#policyVersion = options.policyVersion;
    this.#source = options.source;
    this.#client = new v1.PrivacyServiceClient(options.address, options.credentials ?? grpcCredentials.createInsecure(), channelOptionsOf(options));
  }

  /**
   * Records one consent decision (appended to the user's tamper-evident history). Answers once
   * the change is announced to the services that enforce consent.
   */
  async setConsent(input: SetConsentInput, options: CallOptions = {}): Promise<SetConsentResult> {
    const policyVersion = input.policyVersion ?? this.#policyVersion;
    if (policyVersion === undefined || policyVersion === '') {
      throw new TypeError('setConsent: policyVersion is required (the version of the policy text the user saw): pass it, or set it on the client');
    }
    const idempotencyKey = keyOf(input.idempotencyKey);
    const request: v1.SetConsentRequest = {
      userId: input.userId,
      purpose: purposeCode(input.purpose),
      state: consentStateCode(input.state),
      policyVersion,
      source: input.source ?? this.#source ?? '',
      decidedAt: input.decidedAt,
      idempotencyKey,
    };
    const response = await this.#caller.unary(this.#client, 'SetConsent', this.#client.setConsent, request, options);
    return toSetConsentResult(response, idempotencyKey);
  }

  /** Records `granted` for each purpose, one after the other; the results come in the purposes' order. */
  async grant(userId: string, purposes: readonly ConsentPurpose[], options: GrantOptions = {}): Promise<SetConsentResult[]> {
    const unique = [...new Set(purposes)];
    if (unique.length === 0) throw new TypeError('grant: name at least one purpose');
    for (const p of unique) purposeCode(p);
    const key = options.idempotencyKey === undefined ? undefined : keyOf(options.idempotencyKey);
    const { policyVersion, source, decidedAt, idempotencyKey: _key, ...call } = options;
    const results: SetConsentResult[] = [];
    for (const purpose of unique) {
      const idempotencyKey = key === undefined ? undefined : `${key}/${purpose}`;
      results.push(await this.setConsent({ userId, purpose, state: 'granted', policyVersion, source, decidedAt, idempotencyKey }, call));
    }
    return results;
  }

  /** The user's current decision for each purpose (all when none named); the tenant's default where none was recorded. */
  async getConsent(userId: string, purposes: readonly ConsentPurpose[] = [], options: CallOptions = {}): Promise<ConsentDecision[]> {
    const request: v1.GetConsentRequest = { userId, userPseudonym: '', purposes: purposes.map(purposeCode) };
    const response = await this.#caller.unary(this.#client, 'GetConsent', this.#client.getConsent, request, options);
    return response.decisions.map(toConsentDecision);
  }

  /**
   * The user's whole consent history, oldest first, verified by the service (every page is read
   * within the one deadline). A history altered outside the service is refused with
   * FailedPreconditionError naming the first bad record.
   */
  async consentHistory(userId: string, options: ConsentHistoryOptions = {}): Promise<ConsentHistory> {
    const { purpose, pageSize, ...rest } = options;
    const call: CallOptions = { ...rest, deadline: this.#caller.deadlineOf(rest) };
    const purposeValue = purpose === undefined ? v1.Purpose.PURPOSE_UNSPECIFIED : purposeCode(purpose);
    if (pageSize !== undefined && !(Number.isInteger(pageSize) && pageSize > 0)) throw new RangeError(`pageSize must be a positive whole number, got ${pageSize}`);
    const records: ConsentRecord[] = [];
    let chainVerified = true;
    let pageToken = '';
    do {
      const request: v1.GetConsentHistoryRequest = { userId, purpose: purposeValue, page: { pageSize: pageSize ?? 0, pageToken } };
      const response = await this.#caller.unary(this.#client, 'GetConsentHistory', this.#client.getConsentHistory, request, call);
      records.push(...response.records.map(toConsentRecord));
      chainVerified &&= response.chainVerified;
      pageToken = response.nextPageToken;
    } while (pageToken !== '');
    return { records, chainVerified };
  }

  /**
   * Starts erasing everything held about the user. Answers once the tombstone is written (late
   * events for the user are dropped from then on); the services then delete and confirm, which
   * `waitForErasure` follows. A user is erased once: a repeat answers the same erasure.
   */
  async erase(userId: string, options: EraseOptions = {}): Promise<EraseResult> {
    const { reason, idempotencyKey: given, ...call } = options;
    const idempotencyKey = keyOf(given);
    const request: v1.EraseRequest = { userId, reason: reason ?? '', idempotencyKey };
    const response = await this.#caller.unary(this.#client, 'Erase', this.#client.erase, request, call);
    return { erasureId: response.erasureId, status: erasureStatusName(response.status), duplicate: response.duplicate, idempotencyKey };
  }

  /** The erasure's receipt: its status and each service's confirmation. NotFoundError: no such erasure in the tenant. */
  async erasureReceipt(erasureId: string, options: CallOptions = {}): Promise<ErasureReceipt> {
    const response = await this.#caller.unary(this.#client, 'GetErasureReceipt', this.#client.getErasureReceipt, { erasureId }, options);
    return toErasureReceipt(response.receipt);
  }

  /**
   * Reads the receipt every `pollMs` until the erasure is completed and resolves with it. After
   * `timeoutMs` it throws ErasureTimeoutError (a DeadlineExceededError) naming the services still
   * pending, with the last receipt; the erasure itself goes on.
   */
  async waitForErasure(erasureId: string, options: WaitForErasureOptions = {}): Promise<ErasureReceipt> {
    const timeoutMs = positiveMs('timeoutMs', options.timeoutMs, 60_000);
    const pollMs = positiveMs('pollMs', options.pollMs, 500);
    return pollErasureReceipt((call) => this.erasureReceipt(erasureId, { ...call, metadata: options.metadata }), {
      timeoutMs,
      pollMs,
      callDeadlineMs: this.#caller.defaultDeadlineMs,
      signal: options.signal,
      onProgress: options.onProgress,
    });
  }

  /** Everything held about the user, as one JSON document (consents with history, feedback, model versions). */
  async export(userId: string, options: CallOptions = {}): Promise<ExportResult> {
    const request: v1.ExportRequest = { userId, format: v1.ExportFormat.EXPORT_FORMAT_JSON };
    const response = await this.#caller.unary(this.#client, 'Export', this.#client.export, request, options);
    return toExportResult(response);
  }

  /** Closes the channel. */
  close(): void {
    this.#client.close();
  }
}
