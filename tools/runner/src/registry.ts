import { createFusionEmbedded } from '@aimass/fusion';
import { createGeneralModelEmbedded } from '@aimass/general-model';
import { createPersonalModelEmbedded } from '@aimass/personal-model';
import { createPrivacyEmbedded } from '@aimass/privacy';
import { progressPrinter, trainGeneral } from '@aimass/train-general';
import { createUpdaterEmbedded } from '@aimass/updater';
import type { RunnerConfig } from './config.js';
import type { EmbeddedService } from './embedded.js';

/**
 * The services the one-process mode starts, in dependency order (a service may call those before
 * it), each on a fixed port offset from `servicePortBase` (50051 by default): general-model +0,
 * personal-model +1, fusion +2, updater +3, privacy +4.
 */
export function embeddedServices(config: RunnerConfig): EmbeddedService[] {
  return [
    // First: the others ask it for consent and for users' data keys.
    { ...createPrivacyEmbedded(), portOffset: 4 },
    {
      portOffset: 0,
      ...createGeneralModelEmbedded({
      // A fresh machine has no model: the first start trains the default one from the corpus that
      // ships in npm (about half a minute on two cores), with progress on stderr.
      ensureModel: config.runner.trainDefaultModel
        ? async ({ repository, modelName }) => {
            await trainGeneral({ repository, model: modelName, version: 1, minAccuracy: 0.99, onProgress: progressPrinter(process.stderr) });
          }
        : undefined,
      }),
    },
    { ...createPersonalModelEmbedded(), portOffset: 1 },
    // The public API; it calls the services above, so it starts after them.
    { ...createFusionEmbedded(), portOffset: 2 },
    // Learns from the feedback fusion publishes on the runner's bus; calls general-model and personal-model.
    { ...createUpdaterEmbedded(), portOffset: 3 },
  ];
}
