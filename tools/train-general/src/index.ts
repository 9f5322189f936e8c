// What other packages use: the one-process runner trains the default model on first start.
export {
  QualityGateError,
  nextVersion,
  trainGeneral,
  tritonConfig,
  type GeneralModelMetadata,
  type TrainGeneralOptions,
  type TrainGeneralProgress,
  type TrainGeneralResult,
} from './train.js';
export { progressPrinter, type ProgressSink } from './progress.js';
export { dataHash, loadSpamAssassin, type Corpus, type CorpusMail } from './corpus.js';
