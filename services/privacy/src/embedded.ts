import { join } from 'node:path';
import type { AuthConfigInput } from '@aimass/auth';
import { dataKeysConfigSchema, ensureEmbeddedKeyDirectory, type DataKeysConfig, type DataKeysConfigInput } from '@aimass/crypto';
import type { EventBus } from '@aimass/events';
import {
  EMBEDDED_SECRET_FILE,
  embeddedConfig,
  embeddedSecretFile,
  pseudonymConfigSchema,
  type EmbeddedOptions,
  type EmbeddedRunning,
  type Logger,
} from '@aimass/platform';
import type { DocumentStore } from '@aimass/storage';
import { z } from 'zod';
import { privacyConfigSchema, type PrivacyConfigInput } from './config.js';
import { PRIVACY_GRPC_SERVICES, startPrivacy } from './service.js';

/** The parts of the runner's EmbeddedEnvironment this service uses (structurally compatible). */
export interface PrivacyEmbeddedEnvironment {
  readonly dataDir: string;
  readonly logger: Logger;
  readonly host: string;
  readonly port: number;
  /** The runner's in-process bus: ConsentChanged reaches the other services' consent caches on it. */
  readonly bus: EventBus;
  openStore(name: string): Promise<DocumentStore>;
  /**
   * host:port of a service of the run. Export asks it for personal-model and the updater at each
   * call (they start after privacy), unless AIMASS_PRIVACY__EXPORT__* names them.
   */
  addressOf?(name: string): string;
  /** The runner's `auth` section (tools/runner reads AIMASS_AUTH__* once for every service); absent: mode none. */
  readonly auth?: AuthConfigInput | undefined;
}

export type PrivacyEmbeddedRunning = EmbeddedRunning;

export type PrivacyEmbeddedOptions = EmbeddedOptions<PrivacyConfigInput> & {
  /** Tenant KEKs; by default (and with AIMASS_DATA_KEYS__KEK_SOURCE unset) a key generated once under `<dataDir>/keys`. */
  dataKeys?: DataKeysConfigInput | undefined;
};

const envSchema = z.strictObject({
  privacy: privacyConfigSchema.prefault({}),
  pseudonym: pseudonymConfigSchema.optional(),
  dataKeys: dataKeysConfigSchema.prefault({}),
});

/** Where the one-process mode keeps its generated default KEK (`<dataDir>/keys/_default/1.key`). */
export const EMBEDDED_KEY_DIRECTORY = 'keys';

/**
 * The KEKs of the one-process mode: what the options or AIMASS_DATA_KEYS__* say, else a default
 * KEK generated once in the data directory. Losing that file makes every sealed payload of the run
 * unreadable, as erasing everyone would.
 */
async function embeddedDataKeys(dataDir: string, fromOptions: DataKeysConfigInput | undefined, fromEnv: DataKeysConfig): Promise<DataKeysConfigInput> {
  if (fromOptions) return fromOptions;
  if (fromEnv.kekSource !== 'none') return fromEnv;
  return { ...fromEnv, kekSource: 'directory', kekDirectory: await ensureEmbeddedKeyDirectory(join(dataDir, EMBEDDED_KEY_DIRECTORY)) };
}

export const PRIVACY_SERVICE_NAME = 'privacy';

/** The one-process mode's pseudonym secret file, the one fusion and the updater use (same user id, same pseudonym). */
export const EMBEDDED_PSEUDONYM_SECRET_FILE = EMBEDDED_SECRET_FILE;

/**
 * The privacy service as a service of the one-process mode (tools/runner's EmbeddedService): it
 * keeps consent and users' data keys in the runner's `privacy` store (KEK: `<dataDir>/keys`
 * unless configured) and publishes ConsentChanged on the runner's in-process bus. The services that
 * enforce consent and seal data call it, so it starts before them; its Export calls personal-model
 * and the updater, found through `addressOf` when the call comes.
 */
export function createPrivacyEmbedded(options: PrivacyEmbeddedOptions = {}) {
  return {
    name: PRIVACY_SERVICE_NAME,
    async start(env: PrivacyEmbeddedEnvironment): Promise<PrivacyEmbeddedRunning> {
      const fromEnv = embeddedConfig(envSchema, options.env);
      const privacy = privacyConfigSchema.parse({
        ...fromEnv.privacy,
        ...options.config,
        consent: { ...fromEnv.privacy.consent, ...options.config?.consent },
      });
      const pseudonym = fromEnv.pseudonym ?? { secretFile: await embeddedSecretFile(env.dataDir, env.logger) };
      const dataKeys = await embeddedDataKeys(env.dataDir, options.dataKeys, fromEnv.dataKeys);
      const store = await env.openStore(PRIVACY_SERVICE_NAME);
      const addressOf = env.addressOf?.bind(env);
      const running = await startPrivacy({ grpc: { host: env.host, port: env.port }, pseudonym, dataKeys, privacy, auth: env.auth }, env.logger, {
        store,
        bus: env.bus,
        addressOf: addressOf
          ? (service) => {
              try {
                return addressOf(service);
              } catch {
                // Not part of this run (or not started): Export names the variable to set.
                return undefined;
              }
            }
          : undefined,
      });
      return { name: PRIVACY_SERVICE_NAME, address: running.address, grpcServices: PRIVACY_GRPC_SERVICES, stop: () => running.stop() };
    },
  };
}

/** The embedded privacy service with default options. */
export const privacyEmbedded = createPrivacyEmbedded();
