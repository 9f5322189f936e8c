// What other packages (e.g. test-e2e) may use from the CLI: the command runner and the
// personalization evaluation's pieces. The package has no `exports` entry yet (see README).
export { run, type RunDependencies } from './cli.js';
export {
  parseCommand,
  UsageError,
  type ConsentHistoryCommand,
  type ConsentSetCommand,
  type ConsentShowCommand,
  type EraseCommand,
  type EvalCommand,
  type ExportCommand,
  type FeedbackCommand,
  type ModelsRefitCommand,
  type ModelsStateCommand,
  type ParsedCommand,
  type PredictCommand,
  type ReceiptCommand,
} from './args.js';
export { waitForJob, type TrainingAdmin } from './commands/models.js';
export { type PrivacyApi, type PrivacyDependencies } from './commands/privacy.js';
export { EXIT_FAILURE, EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE } from './exit-codes.js';
export type { CliIo } from './io.js';
export { mailFromRfc822 } from './mail.js';
export { evalMail, evalMails, type EvalMail, type Label } from './eval/corpus.js';
export { PROFILES, buildUsers, userLabel, type BuildUsersOptions, type Profile, type SimulatedUser } from './eval/profiles.js';
export {
  MEASURED,
  runUser,
  runUsers,
  type EvalTarget,
  type MeasuredOutcome,
  type MeasuredStrategy,
  type PredictOutcome,
  type PrequentialSettings,
  type UserHooks,
  type UserRun,
} from './eval/prequential.js';
export { profileCheckpoints, profileGoal, type GoalResult, type ProfileCheckpoint } from './eval/metrics.js';
export { buildReport, type PersonalizationReport } from './eval/report.js';
export { sdkTarget, type SdkTargetOptions } from './eval/target.js';
export { waitForTraining, type SettleOptions } from './eval/settle.js';
