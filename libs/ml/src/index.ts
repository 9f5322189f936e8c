export {
  chooseExecutionProviders,
  resolveExecutionProviders,
  type BackendInfo,
  type ProviderChoice,
} from './execution-providers.js';
export {
  OnnxGraphBuilder,
  float,
  floats,
  int,
  ints,
  onnxDataType,
  onnxElemTypeOf,
  str,
  strs,
  tensorAttr,
  type OnnxAttr,
  type OnnxAttrValue,
  type OnnxDim,
  type OnnxElemType,
  type OnnxGraphBuilderOptions,
  type OnnxTensorData,
} from './onnx/builder.js';
export { inspectOnnxModel, type OnnxModelInfo, type OnnxValueInfo } from './onnx/inspect.js';
export { seededRandom, normalArray, type SeededRandom } from './models/random.js';
export { type Activation, type BuiltModel } from './models/layers.js';
export { buildMlp, resolveMlpSpec, type MlpOptions, type MlpSpec } from './models/mlp.js';
export { buildEncoder, resolveEncoderSpec, type EncoderOptions, type EncoderSpec } from './models/encoder.js';
export { writeModelVersion, type ModelVersionExtras } from './models/repository.js';
export {
  buildBenchmarkRepository,
  type BenchmarkBuildProgress,
  type BenchmarkModelEntry,
  type BenchmarkModelName,
  type BenchmarkRepositoryOptions,
} from './models/benchmark-repository.js';
export { bucketOf, murmur3 } from './text/hash.js';
export { BODY_ENCODING_HEADERS, decodeEncodedWords, htmlToText, mailFromRfc822, mediaTypeOf, parseMail, type MailFields, type MailPart, type ParsedMail } from './text/mime.js';
export {
  DEFAULT_TOKENIZER_CONFIG,
  createFeaturizer,
  extractFeatures,
  normalizeText,
  padIds,
  parseTokenizerConfig,
  tokenizerConfig,
  type Featurizer,
  type Features,
  type TokenizerConfig,
} from './text/featurizer.js';
export { Prng } from './train/prng.js';
export { isHeldOut, splitByKey } from './train/split.js';
export { binaryMetrics, rocAuc, type BinaryMetrics, type Confusion, type GroupMetrics, type Scored } from './train/metrics.js';
export {
  DEFAULT_TRAIN_OPTIONS,
  FastTextModel,
  bagScale,
  trainFastText,
  type BagCombiner,
  type FastTextParameters,
  type TrainExample,
  type TrainOptions,
  type TrainProgress,
} from './train/fasttext.js';
export { FASTTEXT_ONNX, exportFastTextOnnx, type FastTextOnnxOptions } from './train/export-onnx.js';
export {
  DEFAULT_LABELS,
  trainTextModel,
  type LabeledText,
  type TextModelOptions,
  type TextModelProgress,
  type TextModelResult,
} from './train/general.js';
export {
  DEFAULT_PERSONAL_FEATURIZER_OPTIONS,
  PERSONAL_FEATURE_NAMESPACES,
  addressOf,
  createPersonalFeaturizer,
  orgDomain,
  personalFeatureStrings,
  type PersonalFeatureNamespace,
  type PersonalFeaturizer,
  type PersonalFeaturizerOptions,
  type PersonalInput,
  type SparseFeatures,
} from './personal/featurizer.js';
export {
  DEFAULT_PERSONAL_LEARNER_OPTIONS,
  LOGIT_CLIP,
  PERSONAL_MODEL_FORMAT,
  PersonalModel,
  PersonalModelFormatError,
  PersonalModelInputError,
  crc32,
  serializedSize,
  softmax,
  type PersonalExample,
  type PersonalLearnerOptions,
  type PersonalModelInput,
  type PersonalModelShape,
  type PersonalPrediction,
} from './personal/learner.js';
