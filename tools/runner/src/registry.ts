import type { EmbeddedService } from './embedded.js';

/**
 * The services the one-process mode starts, in dependency order (a service may call those before
 * it). Each service issue adds its entry here: general-model, personal-model, fusion, updater,
 * privacy.
 */
export const EMBEDDED_SERVICES: readonly EmbeddedService[] = [];
