import { createFusionEmbedded } from '@aimass/fusion';
import { createGeneralModelEmbedded } from '@aimass/general-model';
import { createPersonalModelEmbedded } from '@aimass/personal-model';
import { progressPrinter, trainGeneral } from '@aimass/train-general';
import { createUpdaterEmbedded } from '@aimass/updater';
import type { RunnerConfig } from './config.js';
import type { EmbeddedService } from './embedded.js';

/**
 * The services the one-process mode starts, in dependency order (a service may call those before
 * it). Each service issue adds its entry here: general-model, then personal-model, fusion, updater
 * and privacy.
 */
export function embeddedServices(config: RunnerConfig): EmbeddedService[] {
  return [
    createGeneralModelEmbedded({
      // A fresh machine has no model: the first start trains the default one from the corpus that
      // ships in npm (about half a minute on two cores), with progress on stderr.
      ensureModel: config.runner.trainDefaultModel
        ? async ({ repository, modelName }) => {
            await trainGeneral({ repository, model: modelName, version: 1, minAccuracy: 0.99, onProgress: progressPrinter(process.stderr) });
          }
        : undefined,
    }),
    createPersonalModelEmbedded(),
    // The public API; it calls the two above, so it starts after them.
    createFusionEmbedded(),
    // Learns from the feedback fusion publishes on the runner's bus; calls general-model and personal-model.
    createUpdaterEmbedded(),
  ];
}
