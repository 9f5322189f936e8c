import type { Interceptor } from '@grpc/grpc-js';
import { InternalError, callUnary, createClient, tenantMetadata } from '@aimass/platform';
import { v1 } from '@aimass/proto';
import type { ConsentDecisionView, ConsentLookup } from './cache.js';
import { consentStateFromProto, purposeFromProto } from './purposes.js';

/** Deadline of one GetConsent when the options set none. */
export const DEFAULT_LOOKUP_TIMEOUT_MS = 2_000;

export interface PrivacyConsentLookupOptions {
  /** Deadline of one GetConsent, retries included (a consent check on a miss waits for it). */
  readonly callTimeoutMs?: number | undefined;
  /** Client interceptors, e.g. the calling service's token (`@aimass/auth` serviceTokenInterceptor). */
  readonly interceptors?: readonly Interceptor[] | undefined;
}

/**
 * The privacy service's GetConsent as a `ConsentLookup`, for the `ConsentCache` of a service that
 * enforces consent. Users are named by pseudonym (`user_pseudonym`), which is all the services
 * behind the edge know. GetConsent is read-only, so it is retried on UNAVAILABLE within the call's
 * deadline.
 */
export class PrivacyConsentLookup {
  readonly #client: v1.PrivacyServiceClient;
  readonly #timeoutMs: number;

  constructor(address: string, options: PrivacyConsentLookupOptions = {}) {
    this.#timeoutMs = options.callTimeoutMs ?? DEFAULT_LOOKUP_TIMEOUT_MS;
    this.#client = createClient(v1.PrivacyServiceClient, {
      address,
      idempotentMethods: ['GetConsent'],
      defaultDeadlineMs: this.#timeoutMs,
      retry: { maxAttempts: 3, initialBackoffMs: 50, maxBackoffMs: 500 },
      interceptors: options.interceptors,
    });
  }

  readonly lookup: ConsentLookup = async (tenant, userPseudonym) => {
    const res = await callUnary(
      this.#client.getConsent.bind(this.#client),
      { userId: '', userPseudonym, purposes: [] },
      { deadline: Date.now() + this.#timeoutMs, metadata: tenantMetadata(tenant) },
    );
    return res.decisions.map((d): ConsentDecisionView => {
      const purpose = purposeFromProto(d.purpose);
      const state = consentStateFromProto(d.state);
      if (!purpose || !state) throw new InternalError(`GetConsent answered a decision this build cannot read (purpose ${d.purpose}, state ${d.state})`);
      return { purpose, state, sequence: d.record?.sequence ?? 0, isDefault: d.isDefault };
    });
  };

  close(): void {
    this.#client.close();
  }
}
