import type { Interceptor } from '@grpc/grpc-js';
import { consentStateFromProto, purposeFromProto } from '@aimass/consent';
import { UnavailableError, callUnary, createClient, type Logger } from '@aimass/platform';
import { v1 } from '@aimass/proto';
import { purposeDefaultsFromSettings, withStoredDefaults, type ConsentDefaults, type PurposeDefaults } from '../domain/decisions.js';

/** One page of every tenant's settings (fusion's CredentialService.ListTenantSettings). */
export interface TenantSettingsSource {
  /** Where it reads from, for messages. */
  readonly describe: string;
  /** Undefined when there is no registry to read (the one-process mode before fusion started, or without it). */
  page(pageToken: string | undefined): Promise<{ tenants: v1.TenantSettingsEntry[]; next: string | undefined } | undefined>;
  close(): void;
}

export interface RemoteTenantSettingsOptions {
  /** fusion's address; a function because the one-process mode knows it only once fusion started (undefined until then). */
  readonly address: () => string | undefined;
  /** Send privacy's service token (ListTenantSettings accepts service tokens only). */
  readonly interceptors: readonly Interceptor[];
  readonly callTimeoutMs: number;
}

/** The tenant registry as fusion, which owns it, serves it to the platform's services. */
export class RemoteTenantSettings implements TenantSettingsSource {
  readonly #o: RemoteTenantSettingsOptions;
  #client: v1.CredentialServiceClient | undefined;

  constructor(options: RemoteTenantSettingsOptions) {
    this.#o = options;
  }

  get describe(): string {
    return `fusion's CredentialService at ${this.#o.address() ?? '(not running yet)'}`;
  }

  async page(pageToken: string | undefined): Promise<{ tenants: v1.TenantSettingsEntry[]; next: string | undefined } | undefined> {
    const address = this.#o.address();
    if (address === undefined) return undefined;
    this.#client ??= createClient(v1.CredentialServiceClient, {
      address,
      idempotentMethods: ['ListTenantSettings'],
      defaultDeadlineMs: this.#o.callTimeoutMs,
      retry: { maxAttempts: 2, initialBackoffMs: 50, maxBackoffMs: 200 },
      interceptors: [...this.#o.interceptors],
    });
    const client = this.#client;
    const res = await callUnary(client.listTenantSettings.bind(client), { page: { pageSize: 500, pageToken: pageToken ?? '' } }, { deadline: Date.now() + this.#o.callTimeoutMs });
    return { tenants: res.tenants, next: res.nextPageToken || undefined };
  }

  close(): void {
    this.#client?.close();
    this.#client = undefined;
  }
}

export interface TenantConsentDefaultsOptions {
  /** The configured defaults (`privacy.consent`): what applies to a tenant that stored none. */
  readonly configured: ConsentDefaults;
  /** Undefined: no tenant registry is configured, the configuration alone applies. */
  readonly source?: TenantSettingsSource | undefined;
  /** How often the registry is read again: bounds how late a change of a tenant's defaults applies here. */
  readonly refreshMs: number;
  /** Before the first successful read, how soon a failed one is tried again. */
  readonly retryMs?: number | undefined;
  readonly logger: Logger;
}

/**
 * The consent defaults in force: the configured ones with each tenant's stored defaults (the
 * tenant admin API, owned by fusion) laid over them, re-read in full on a timer as fusion's own
 * settings view is. Until a first read succeeds the stored defaults are unknown, and guessing
 * from the configuration could grant what a tenant denied by default, so `current` refuses
 * (UNAVAILABLE, retryable) instead. After that, a failed read keeps the last one (logged).
 */
export class TenantConsentDefaults {
  readonly #o: TenantConsentDefaultsOptions;
  #current: ConsentDefaults | undefined;
  #timer: NodeJS.Timeout | undefined;
  #refreshing: Promise<void> | undefined;
  #lastError: unknown;
  #closed = false;
  #loaded: () => void = () => undefined;
  readonly #whenLoaded = new Promise<void>((resolve) => {
    this.#loaded = resolve;
  });

  constructor(options: TenantConsentDefaultsOptions) {
    this.#o = options;
    if (!options.source) this.#setCurrent(options.configured);
  }

  #setCurrent(defaults: ConsentDefaults): void {
    this.#current = defaults;
    this.#loaded();
  }

  /** Whether consent reads can be answered (the stored defaults were read once, or there are none to read). */
  get loaded(): boolean {
    return this.#current !== undefined;
  }

  /** Resolves once `loaded` (never, if the registry is never reached). */
  whenLoaded(): Promise<void> {
    return this.#whenLoaded;
  }

  /** First read now (a failure is retried, not thrown: fusion may start after privacy), then on a timer. */
  async start(): Promise<void> {
    if (!this.#o.source) return;
    await this.refresh().catch(() => undefined);
    this.#schedule();
  }

  #schedule(): void {
    if (this.#closed) return;
    const delay = this.#current ? this.#o.refreshMs : Math.min(this.#o.retryMs ?? 500, this.#o.refreshMs);
    this.#timer = setTimeout(() => {
      this.refresh()
        .catch(() => undefined)
        .finally(() => this.#schedule());
    }, delay);
    this.#timer.unref();
  }

  /** Reads every tenant's settings again (concurrent callers share one read). */
  refresh(): Promise<void> {
    const source = this.#o.source;
    if (!source) return Promise.resolve();
    this.#refreshing ??= (async () => {
      try {
        const stored = new Map<string, PurposeDefaults>();
        let token: string | undefined;
        do {
          const page = await source.page(token);
          // No registry in this run (yet): nothing is stored anywhere, the configuration is all there is.
          if (!page) break;
          for (const t of page.tenants) {
            const own = purposeDefaultsFromSettings(
              (t.settings?.consentDefaults ?? []).map((d) => ({ purpose: purposeFromProto(d.purpose), state: consentStateFromProto(d.state) })),
            );
            if (own) stored.set(t.tenantId, own);
          }
          token = page.next;
        } while (token);
        if (this.#current === undefined || this.#lastError !== undefined) this.#o.logger.info({ tenantsWithStoredDefaults: stored.size }, "tenants' stored consent defaults read");
        this.#setCurrent(withStoredDefaults(this.#o.configured, stored));
        this.#lastError = undefined;
      } catch (err) {
        // Once per outage at warn (the first read is retried every 500 ms), the repeats at debug.
        const repeat = this.#lastError !== undefined;
        this.#lastError = err;
        const message = this.#current
          ? "could not re-read the tenants' consent defaults: the last ones read stay in force"
          : "could not read the tenants' consent defaults yet: consent reads are refused until it succeeds";
        if (repeat) this.#o.logger.debug({ err, from: source.describe }, message);
        else this.#o.logger.warn({ err, from: source.describe }, message);
        throw err;
      } finally {
        this.#refreshing = undefined;
      }
    })();
    return this.#refreshing;
  }

  /** The defaults in force; UNAVAILABLE before the tenants' stored ones were ever read. */
  current(): ConsentDefaults {
    if (this.#current) return this.#current;
    const why = this.#lastError instanceof Error ? `: ${this.#lastError.message.slice(0, 200)}` : '';
    throw new UnavailableError(`the tenants' consent defaults have not been read from ${this.#o.source!.describe} yet${why}; retry shortly`);
  }

  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#o.source?.close();
  }
}
