import { exportFastTextOnnx, trainTextModel, writeModelVersion, type LabeledText } from '@aimass/ml';
import { startGeneralModel, type RunningGeneralModel } from '@aimass/general-model';
import type { Logger } from '@aimass/platform';

const SPAM = ['win free money now', 'cheap pills free offer', 'click here to claim your prize', 'free money click now', 'claim your free prize offer', 'limited offer buy cheap watches'];
const HAM = ['meeting agenda for the project review', 'notes from the team meeting', 'project review moved to tomorrow', 'agenda and notes for review', 'the team will review the project', 'lunch with the project team on friday'];

/**
 * A tiny general model (libs/ml fastText, exported to ONNX) with the default model's contract:
 * labels ham/spam, probabilities, an embedding. Another seed gives another version with another
 * embedding, as a retrained general model would. Trains in well under a second.
 */
export async function addToyGeneralModel(repository: string, version = 1): Promise<void> {
  const items: LabeledText[] = [];
  for (let i = 0; i < 48; i++) {
    items.push({ key: `s${i}`, text: `${SPAM[i % SPAM.length]} ${i}`, label: 'spam' });
    items.push({ key: `h${i}`, text: `${HAM[i % HAM.length]} ${i}`, label: 'ham' });
  }
  const result = await trainTextModel(items, { tokenizer: { bucketBits: 10, maxFeatures: 64, maxHeaderFeatures: 16 }, dim: 8, epochs: 10, seed: 7 + version });
  const bytes = exportFastTextOnnx(result.model, { tokenizer: result.tokenizer, modelName: 'general', modelVersion: version });
  await writeModelVersion(repository, 'general', version, bytes, { metadata: { labels: ['ham', 'spam'] } });
}

/** The general-model service on a free port; `versionPolicy` 'all' keeps older versions loaded beside the newest. */
export async function startGeneral(repository: string, logger: Logger, versionPolicy = 'latest:1'): Promise<RunningGeneralModel> {
  return startGeneralModel(
    { grpc: { host: '127.0.0.1', port: 0, drainTimeoutMs: 2_000 }, generalModel: { repository, poolSize: 1, executionProviders: ['cpu'], warmup: false, versionPolicy } },
    logger,
  );
}
