import { exportFastTextOnnx, trainTextModel, writeModelVersion, type LabeledText } from '@aimass/ml';
import { startGeneralModel, type RunningGeneralModel } from '@aimass/general-model';
import type { Logger } from '@aimass/platform';

const SPAM = [
  'win free money now',
  'cheap pills free offer',
  'click here to claim your prize',
  'free money click now',
  'claim your free prize offer',
  'limited offer buy cheap watches',
];
const HAM = [
  'meeting agenda for the project review',
  'notes from the team meeting',
  'project review moved to tomorrow',
  'agenda and notes for review',
  'the team will review the project',
  'lunch with the project team on friday',
];

/**
 * A tiny general model (libs/ml fastText, exported to ONNX) with the default model's contract:
 * labels ham/spam, probabilities, an embedding. Trains in well under a second.
 */
export async function addToyGeneralModel(repository: string, version = 1, name = 'general'): Promise<void> {
  const items: LabeledText[] = [];
  for (let i = 0; i < 48; i++) {
    items.push({ key: `s${i}`, text: `${SPAM[i % SPAM.length]} ${i}`, label: 'spam' });
    items.push({ key: `h${i}`, text: `${HAM[i % HAM.length]} ${i}`, label: 'ham' });
  }
  const result = await trainTextModel(items, { tokenizer: { bucketBits: 10, maxFeatures: 64, maxHeaderFeatures: 16 }, dim: 8, epochs: 10, seed: 7 });
  const bytes = exportFastTextOnnx(result.model, { tokenizer: result.tokenizer, modelName: name, modelVersion: version });
  await writeModelVersion(repository, name, version, bytes, { metadata: { labels: ['ham', 'spam'] } });
}

export async function startGeneral(repository: string, logger: Logger): Promise<RunningGeneralModel> {
  return startGeneralModel(
    { grpc: { host: '127.0.0.1', port: 0, drainTimeoutMs: 2_000 }, generalModel: { repository, poolSize: 1, executionProviders: ['cpu'], warmup: false } },
    logger,
  );
}
