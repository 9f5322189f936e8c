import type { Logger } from '@aimass/platform';
import type { v1 } from '@aimass/proto';
import type { TenantRegistry } from './tenant-registry.js';

export interface TenantSettingsViewOptions {
  readonly registry: Pick<TenantRegistry, 'listTenants'>;
  readonly logger: Logger;
  /**
   * How often the registry is read again. Bounds how long a change made through another fusion
   * replica takes to apply here (a change through this replica applies at once: `refresh`).
   */
  readonly refreshMs?: number | undefined;
}

interface Held {
  readonly settings: v1.TenantSettings;
  readonly revision: number;
}

const PAGE = 500;

/**
 * The registry's tenant settings, held in memory so the hot path (Predict's policy, each call's
 * quota) reads them without a store query. The whole registry is small (one document per
 * tenant), so it is re-read in full on a timer rather than kept fresh by events: one mechanism,
 * and a missed event cannot leave a replica stale for longer than `refreshMs`.
 */
export class TenantSettingsView {
  readonly #o: TenantSettingsViewOptions;
  #held = new Map<string, Held>();
  #timer: NodeJS.Timeout | undefined;
  #refreshing: Promise<void> | undefined;
  #generation = 0;

  constructor(options: TenantSettingsViewOptions) {
    this.#o = options;
  }

  /** Reads the registry once, then again every `refreshMs`. */
  async start(): Promise<void> {
    await this.refresh();
    const every = this.#o.refreshMs ?? 5_000;
    this.#timer = setInterval(() => {
      this.refresh().catch((err: unknown) => this.#o.logger.warn({ err }, 'could not re-read the tenant registry: tenant settings stay as last read'));
    }, every);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Re-reads every tenant (concurrent callers share one read). */
  refresh(): Promise<void> {
    this.#refreshing ??= (async () => {
      try {
        const next = new Map<string, Held>();
        let cursor: string | undefined;
        do {
          const page = await this.#o.registry.listTenants(PAGE, cursor);
          for (const t of page.tenants) next.set(t.tenantId, { settings: t.settings, revision: t.revision });
          cursor = page.next;
        } while (cursor);
        const changed = next.size !== this.#held.size || [...next].some(([id, h]) => this.#held.get(id)?.revision !== h.revision);
        this.#held = next;
        if (changed) this.#generation++;
      } finally {
        this.#refreshing = undefined;
      }
    })();
    return this.#refreshing;
  }

  /** The tenant's stored settings; undefined for a tenant the registry does not hold (configuration alone applies). */
  settingsOf(tenant: string): v1.TenantSettings | undefined {
    return this.#held.get(tenant)?.settings;
  }

  /** Changes whenever a read found a different registry: derived caches compare it. */
  get generation(): number {
    return this.#generation;
  }
}
