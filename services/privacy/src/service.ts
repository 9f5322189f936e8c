import type { z } from 'zod';
import { CONSENT_STREAM, type EventBus } from '@aimass/events';
import { Pseudonymizer, createGrpcServer, grpcConfigSchema, pseudonymConfigSchema, type GrpcServer, type Logger } from '@aimass/platform';
import { SERVICE_NAMES, loadDescriptorSet, v1 } from '@aimass/proto';
import type { DocumentStore } from '@aimass/storage';
import { ConsentEvents } from './adapters/consent-events.js';
import { ConsentStore } from './adapters/consent-store.js';
import { privacyConfigSchema, type PrivacyConfig, type PrivacyConfigInput } from './config.js';
import type { ConsentDefaults } from './domain/decisions.js';
import { createPrivacyService } from './grpc/privacy-service.js';
import { ConsentService } from './runtime/consent.js';

/** The gRPC services this process serves (for health checks). */
export const PRIVACY_GRPC_SERVICES: readonly string[] = [SERVICE_NAMES.privacy];

export interface PrivacyDependencies {
  /** Consent histories (the caller opens and closes it). */
  readonly store: DocumentStore;
  /** Where ConsentChanged is published (the caller opens and closes it). */
  readonly bus: EventBus;
}

export interface PrivacyStartConfig {
  grpc: z.input<typeof grpcConfigSchema>;
  pseudonym: z.input<typeof pseudonymConfigSchema>;
  privacy?: PrivacyConfigInput | undefined;
}

export interface RunningPrivacy {
  /** host:port of the gRPC server (aimass.v1.PrivacyService). */
  readonly address: string;
  readonly port: number;
  readonly server: GrpcServer;
  readonly config: PrivacyConfig;
  /** Announces changes recorded but not announced yet (also at start and every `outbox.sweepIntervalMs`); returns the events published. */
  sweep(options?: { graceMs?: number }): Promise<number>;
  /** Stops the sweep (after the server has drained); the store and the bus stay open. */
  close(): Promise<void>;
  /** Drains the server, then closes. */
  stop(): Promise<void>;
}

export function consentDefaults(cfg: PrivacyConfig): ConsentDefaults {
  return { base: cfg.consent.defaults, tenants: cfg.consent.tenants };
}

/**
 * Starts the privacy service: its collections, the consent stream, the gRPC server with
 * aimass.v1.PrivacyService (consent today; erasure, receipts and export come later) and the sweep
 * that announces changes a failed call left unannounced.
 */
export async function startPrivacy(config: PrivacyStartConfig, logger: Logger, deps: PrivacyDependencies): Promise<RunningPrivacy> {
  const grpc = grpcConfigSchema.parse(config.grpc);
  const cfg = privacyConfigSchema.parse(config.privacy ?? {});
  const pseudonymizer = Pseudonymizer.fromConfig(pseudonymConfigSchema.parse(config.pseudonym));

  const store = await ConsentStore.open(deps.store);
  await deps.bus.ensureStream(CONSENT_STREAM);
  const consent = new ConsentService({
    store,
    events: new ConsentEvents(deps.bus, logger),
    defaults: consentDefaults(cfg),
    maxAppendAttempts: cfg.consent.maxAppendAttempts,
    logger,
  });

  const server = createGrpcServer({
    config: grpc,
    logger,
    descriptorSet: loadDescriptorSet(),
    services: [
      {
        definition: v1.PrivacyServiceService,
        implementation: createPrivacyService({ consent, pseudonymizer, limits: cfg.limits, history: cfg.history }),
      },
    ],
  });
  const bound = await server.start();
  for (const name of PRIVACY_GRPC_SERVICES) server.setServingStatus(name, 'SERVING');

  // Stops a sweep waiting on an unreachable bus when the service closes.
  const stopping = new AbortController();
  const sweep = async (options: { graceMs?: number } = {}): Promise<number> => {
    const published = await consent.sweep(options.graceMs ?? cfg.outbox.graceMs, { signal: stopping.signal });
    if (published > 0) logger.info({ published }, 'announced consent changes a failed call had left unannounced');
    return published;
  };
  // One background sweep at a time (a sweep waiting on the bus must not pile up behind the timer);
  // a failed one is logged and tried again at the next interval.
  let sweeping: Promise<void> | undefined;
  const track = (graceMs?: number) => {
    sweeping ??= sweep(graceMs === undefined ? {} : { graceMs })
      .then(
        () => undefined,
        (err: unknown) => {
          if (!stopping.signal.aborted) logger.warn({ err }, 'consent outbox sweep failed; retrying at the next interval');
        },
      )
      .finally(() => {
        sweeping = undefined;
      });
  };
  track(0);
  const timer = cfg.outbox.sweepIntervalMs > 0 ? setInterval(() => track(), cfg.outbox.sweepIntervalMs) : undefined;
  timer?.unref();

  logger.info(
    { address: bound.address, store: deps.store.kind, defaults: cfg.consent.defaults, tenantsWithOwnDefaults: Object.keys(cfg.consent.tenants).length },
    'privacy serving',
  );

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      if (timer) clearInterval(timer);
      stopping.abort();
      await sweeping;
    })();
    return closing;
  };

  return {
    address: bound.address,
    port: bound.port,
    server,
    config: cfg,
    sweep,
    close,
    async stop() {
      await server.drain();
      await close();
    },
  };
}
