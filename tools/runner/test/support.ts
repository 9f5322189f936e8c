import { createHash } from 'node:crypto';
import { exportFastTextOnnx, trainTextModel, writeModelVersion, type LabeledText } from '@aimass/ml';
import { captureLogs as capture, type CapturedLogs } from '@aimass/testing';

/** The operator token of these tests; the runner is given its SHA-256 only. */
export const OPERATOR_TOKEN = 'amo_runner-test-operator-token-0123456789abcdef';
export const OPERATOR_SHA256 = createHash('sha256').update(OPERATOR_TOKEN).digest('hex');

const SPAM = ['win free money now', 'cheap pills free offer', 'click here to claim your prize', 'claim your free prize offer'];
const HAM = ['meeting agenda for the project review', 'notes from the team meeting', 'project review moved to tomorrow', 'lunch with the project team on friday'];

/**
 * A tiny general model (libs/ml fastText exported to ONNX) with the default model's contract
 * (labels ham/spam, an embedding), written where the embedded general-model looks for it
 * (`<dataDir>/models/general/1`), so a test need not train the real default model.
 */
export async function addToyGeneralModel(repository: string): Promise<void> {
  const items: LabeledText[] = [];
  for (let i = 0; i < 48; i++) {
    items.push({ key: `s${i}`, text: `${SPAM[i % SPAM.length]} ${i}`, label: 'spam' });
    items.push({ key: `h${i}`, text: `${HAM[i % HAM.length]} ${i}`, label: 'ham' });
  }
  const result = await trainTextModel(items, { tokenizer: { bucketBits: 10, maxFeatures: 64, maxHeaderFeatures: 16 }, dim: 8, epochs: 10, seed: 7 });
  const bytes = exportFastTextOnnx(result.model, { tokenizer: result.tokenizer, modelName: 'general', modelVersion: 1 });
  await writeModelVersion(repository, 'general', 1, bytes, { metadata: { labels: ['ham', 'spam'] } });
}

export type LogSink = CapturedLogs;

export function captureLogs(service = 'runner-test'): LogSink {
  return capture(service, 'info');
}
