import type { ConsentCache, ConsentCheck, ConsentPurpose } from '@aimass/consent';
import { CancelledError } from '@aimass/platform';
import { personalizationDecision, trainingRefusal } from '../domain/consent.js';
import { notRecorded, type FeedbackRecorder, type FeedbackToRecord } from './feedback-recorder.js';
import type { CallOptions } from './general-model-client.js';
import type { KeyWait } from './key-wait.js';
import type { ItemScore, PersonalScoreItem, PersonalScorer } from './personal-model-client.js';
import type { PredictionRecord, PredictionRecordStats, PredictionRecordStore, RecordsSaved } from './prediction-records.js';

/** `promise`'s value, or undefined once the call's deadline passes or it is cancelled. */
function withinCall<T>(promise: Promise<T>, options: CallOptions): Promise<T | undefined> {
  const { deadline, signal } = options;
  if (deadline === undefined && !signal) return promise;
  return new Promise<T | undefined>((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    const settle = (value: T | undefined) => {
      if (timer) clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      resolve(value);
    };
    const onAbort = () => settle(undefined);
    if (signal?.aborted) return settle(undefined);
    signal?.addEventListener('abort', onAbort, { once: true });
    if (deadline !== undefined) timer = setTimeout(() => settle(undefined), Math.max(0, deadline - Date.now()));
    // ConsentCache.check never rejects.
    void promise.then(settle);
  });
}

/**
 * Each user's answer for `purpose`: from memory when the cache holds the user (no promise, no
 * network hop: the hot path), else one lookup shared by the user's items, waited for only within
 * the call. A lookup that does not finish in time answers undefined here, and still fills the
 * cache for the next call.
 */
async function checkAll(consent: ConsentCache, tenant: string, pseudonyms: Iterable<string>, purpose: ConsentPurpose, options: CallOptions): Promise<Map<string, ConsentCheck | undefined>> {
  const checks = new Map<string, ConsentCheck | undefined>();
  const misses: string[] = [];
  for (const pseudonym of pseudonyms) {
    if (checks.has(pseudonym)) continue;
    const hit = consent.cached(tenant, pseudonym, purpose);
    checks.set(pseudonym, hit);
    if (!hit) misses.push(pseudonym);
  }
  if (misses.length > 0) {
    const looked = await withinCall(Promise.all(misses.map((p) => consent.check(tenant, p, purpose))), options);
    if (looked) misses.forEach((p, i) => checks.set(p, looked[i]));
  }
  return checks;
}

/**
 * The personal model behind the `personalization` consent of each item's user: an item whose
 * user has not granted it (or whose consent cannot be verified: fail closed) is answered
 * `withheld` without being sent, and without its features being computed; the others go to the
 * wrapped scorer. Predict then answers those items with the general model and a NO_CONSENT
 * fallback. A withheld item is not a NO_MODEL answer, so the known-no-model cache never holds a
 * user for lack of consent and a grant takes effect as soon as the consent cache sees it.
 */
export class ConsentCheckingPersonalModel implements PersonalScorer {
  readonly #inner: PersonalScorer;
  readonly #consent: ConsentCache;

  constructor(inner: PersonalScorer, consent: ConsentCache) {
    this.#inner = inner;
    this.#consent = consent;
  }

  async score(tenant: string, items: readonly PersonalScoreItem[], options: CallOptions): Promise<ItemScore[]> {
    if (items.length === 0) return [];
    const checks = await checkAll(
      this.#consent,
      tenant,
      items.map((i) => i.userPseudonym),
      'personalization',
      options,
    );
    const answers: (ItemScore | undefined)[] = new Array(items.length);
    const allowed: number[] = [];
    items.forEach((item, i) => {
      const decision = personalizationDecision(checks.get(item.userPseudonym));
      if (decision.allowed) allowed.push(i);
      else answers[i] = { kind: 'withheld', detail: decision.detail };
    });
    if (allowed.length === items.length) return this.#inner.score(tenant, items, options);
    if (allowed.length > 0) {
      const scored = await this.#inner.score(
        tenant,
        allowed.map((i) => items[i]!),
        options,
      );
      allowed.forEach((i, j) => (answers[i] = scored[j]));
    }
    return answers as ItemScore[];
  }
}

/**
 * A feedback recorder behind the user's `training` consent: without it, Feedback is refused
 * (FAILED_PRECONDITION; UNAVAILABLE when consent cannot be verified) before the wrapped recorder
 * sees anything, so nothing is published, stored or trained, and the refusal is marked
 * `notRecorded` so the handler releases the idempotency key.
 */
export class ConsentCheckingRecorder implements FeedbackRecorder {
  readonly #inner: FeedbackRecorder;
  readonly #consent: ConsentCache;

  constructor(inner: FeedbackRecorder, consent: ConsentCache) {
    this.#inner = inner;
    this.#consent = consent;
  }

  async record(feedback: FeedbackToRecord, options: CallOptions): Promise<{ duplicate: boolean }> {
    const checks = await checkAll(this.#consent, feedback.tenant, [feedback.userPseudonym], 'training', options);
    if (options.signal?.aborted) throw notRecorded(new CancelledError('feedback cancelled while its training consent was checked: nothing was recorded'));
    const refusal = trainingRefusal(checks.get(feedback.userPseudonym));
    if (refusal) throw notRecorded(refusal);
    return this.#inner.record(feedback, options);
  }
}

/**
 * Prediction records behind the user's `training` consent. A record exists only so that Feedback
 * can name the prediction, and Feedback needs `training`: a user without it gets no record (their
 * mail is not kept, nor a key created for them), and Feedback by a prediction id is refused
 * (FAILED_PRECONDITION; UNAVAILABLE when consent cannot be verified) before the record is looked
 * up, so the answer says why rather than "not found". A consent the cache does not hold is read
 * within the save's wait (it usually is held: Predict's personalization check read the user).
 */
export class ConsentCheckingRecords implements PredictionRecordStore {
  readonly #inner: PredictionRecordStore;
  readonly #consent: ConsentCache;
  #withoutConsent = 0;

  constructor(inner: PredictionRecordStore, consent: ConsentCache) {
    this.#inner = inner;
    this.#consent = consent;
  }

  warm(tenant: string, userPseudonyms: Iterable<string>): void {
    // Only users known to consent: a key is created on first use, and nobody else gets a record.
    const consenting = [...userPseudonyms].filter((p) => this.#consent.cached(tenant, p, 'training')?.allowed === true);
    if (consenting.length > 0) this.#inner.warm(tenant, consenting);
  }

  async save(tenant: string, records: readonly PredictionRecord[], wait: KeyWait & { readonly now?: Date | undefined } = {}): Promise<RecordsSaved> {
    if (records.length === 0) return this.#inner.save(tenant, records, wait);
    const checks = await checkAll(
      this.#consent,
      tenant,
      records.map((r) => r.userPseudonym),
      'training',
      { deadline: wait.deadline, signal: wait.signal ?? NEVER },
    );
    const allowed = records.filter((r) => checks.get(r.userPseudonym)?.allowed === true);
    const withoutConsent = records.length - allowed.length;
    this.#withoutConsent += withoutConsent;
    const saved = await this.#inner.save(tenant, allowed, wait);
    return { ...saved, withoutConsent: saved.withoutConsent + withoutConsent };
  }

  async find(tenant: string, predictionId: string, userPseudonym: string, wait: KeyWait & { readonly now?: Date | undefined } = {}): Promise<PredictionRecord | undefined> {
    const checks = await checkAll(this.#consent, tenant, [userPseudonym], 'training', { deadline: wait.deadline, signal: wait.signal ?? NEVER });
    if (wait.signal?.aborted) throw new CancelledError('feedback cancelled while its training consent was checked: nothing was recorded');
    const refusal = trainingRefusal(checks.get(userPseudonym));
    if (refusal) throw refusal;
    return this.#inner.find(tenant, predictionId, userPseudonym, wait);
  }

  stats(): PredictionRecordStats {
    return { ...this.#inner.stats(), withoutConsent: this.#withoutConsent };
  }
}

/** A signal that never aborts (a record write is not cancelled with its call). */
const NEVER = new AbortController().signal;
