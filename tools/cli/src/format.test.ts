import { status as Status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { toAiMassError, type PredictionResult, type RefitJob, type TrainingState } from '@aimass/sdk';
import { UsageError } from './args.js';
import { EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_UNAVAILABLE, EXIT_USAGE } from './exit-codes.js';
import {
  errorLine,
  exitCodeOf,
  formatFeedback,
  formatPrediction,
  formatRefitJob,
  formatTrainingState,
  InputFileError,
  InterruptedError,
  PlatformUnavailableError,
  trainingJson,
  TrainingWaitError,
} from './format.js';

const RESULT: PredictionResult = {
  predictionId: 'p-42',
  label: 'spam',
  probabilities: { ham: 0.125, spam: 0.875 },
  probabilityList: [
    { label: 'ham', index: 0, probability: 0.125 },
    { label: 'spam', index: 1, probability: 0.875 },
  ],
  provenance: {
    requestedStrategy: 'unspecified',
    appliedStrategy: 'general',
    models: [{ name: 'general', version: '1', role: 'general', weight: 1 }],
    fallbacks: [{ reason: 'no_personal_model', role: 'personal', detail: 'user has no personal model yet' }],
    timingsMs: { total: 4.25, general_model: 3.5 },
  },
  embedding: undefined,
  general: { model: { name: 'general', version: '1' }, label: 'spam', probabilities: { spam: 0.875 } },
  personal: undefined,
};

describe('formatPrediction', () => {
  it('puts the answer first, then how it was made', () => {
    expect(formatPrediction(RESULT)).toBe(
      [
        'spam  (p=0.8750)',
        '  ham    0.1250',
        '  spam   0.8750',
        'prediction  p-42',
        'strategy    general (asked: tenant default)',
        'models      general general@1 weight 1.00',
        'fallbacks   no_personal_model (personal): user has no personal model yet',
        'timings     general_model 3.5 ms · total 4.3 ms',
        'general     spam (p=0.8750) from general@1',
      ].join('\n'),
    );
  });
});

describe('formatFeedback', () => {
  it('says whether the feedback was new or a repeat, with the key to repeat it safely', () => {
    expect(formatFeedback({ accepted: true, duplicate: false, eventId: 'e-1', idempotencyKey: 'k' })).toBe('feedback recorded: event e-1, idempotency key k');
    expect(formatFeedback({ accepted: true, duplicate: true, eventId: 'e-1', idempotencyKey: 'k' })).toBe(
      'feedback already recorded (same idempotency key): event e-1, idempotency key k',
    );
  });
});

const JOB: RefitJob = {
  jobId: 'job-7',
  generalModel: { name: 'general', version: '3' },
  state: 'running',
  usersTotal: 12,
  usersDone: 5,
  usersFailed: 1,
  startedAt: new Date('2025-01-02T03:04:05Z'),
  finishedAt: undefined,
};

describe('formatRefitJob', () => {
  it('shows the job id, state, users done of total and the target general model', () => {
    expect(formatRefitJob(JOB)).toBe(
      [
        'job         job-7',
        'state       running',
        'users       5 of 12 done, 1 failed',
        'general     general@3',
        'started     2025-01-02T03:04:05.000Z',
        'finished    -',
      ].join('\n'),
    );
    const queued = formatRefitJob({ ...JOB, state: 'queued', usersDone: 0, usersFailed: 0, generalModel: undefined, startedAt: undefined });
    expect(queued).toContain("general     the tenant's current general model");
    expect(queued).toContain('started     -');
  });

  it('prints JSON with ISO times', () => {
    expect(JSON.parse(trainingJson(JOB))).toEqual({ ...JOB, startedAt: '2025-01-02T03:04:05.000Z' });
  });
});

describe('formatTrainingState', () => {
  const state: TrainingState = {
    pendingEvents: 1,
    user: {
      userPseudonym: 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567',
      currentVersion: 4,
      generalModel: { name: 'general', version: '3' },
      pendingEvents: 2,
      lastAppliedSequence: 1234,
      lastTrainedAt: new Date('2025-01-02T03:00:00Z'),
      refitPending: true,
    },
    jobs: [JOB, { ...JOB, jobId: 'job-6', state: 'completed', usersDone: 12, usersFailed: 0, finishedAt: new Date('2025-01-01T00:00:00Z') }],
  };

  it("shows the tenant's lag, the user's model and training, then the jobs", () => {
    expect(formatTrainingState(state, true)).toBe(
      [
        'tenant      1 feedback event not yet received by the updater',
        'user        pseudonym ABCDEFGHIJKLMNOPQRSTUVWXYZ234567',
        'version     4, paired with general@3',
        'pending     2 events received, not yet applied',
        'applied     up to stream sequence 1234',
        'trained     2025-01-02T03:00:00.000Z',
        'refit       queued or running',
        'jobs',
        '  job-7  running: 5/12 users done, 1 failed, on general@3, started 2025-01-02T03:04:05.000Z',
        '  job-6  completed: 12/12 users done, 0 failed, on general@3, started 2025-01-02T03:04:05.000Z, finished 2025-01-01T00:00:00.000Z',
      ].join('\n'),
    );
  });

  it('says when a user has no model yet, is unknown, and when there are no jobs', () => {
    const fresh = formatTrainingState(
      { pendingEvents: 0, user: { ...state.user!, currentVersion: 0, generalModel: undefined, pendingEvents: 0, lastAppliedSequence: 0, lastTrainedAt: undefined, refitPending: false }, jobs: [] },
      true,
    );
    expect(fresh).toContain('tenant      0 feedback events not yet received by the updater');
    expect(fresh).toContain('version     none yet (no personal model)');
    expect(fresh).toContain('applied     nothing yet');
    expect(fresh).toContain('trained     never');
    expect(fresh).toContain('refit       none pending');
    expect(fresh.endsWith('jobs        none')).toBe(true);
    expect(formatTrainingState({ pendingEvents: 0, user: undefined, jobs: [] }, true)).toContain('user        unknown to the updater');
    expect(formatTrainingState({ pendingEvents: 0, user: undefined, jobs: [] }, false)).not.toContain('user');
  });
});

describe('errors', () => {
  const unavailable = toAiMassError({ code: Status.UNAVAILABLE, details: 'No connection established.\nLast error: connect ECONNREFUSED' });
  const invalid = toAiMassError({ code: Status.INVALID_ARGUMENT, details: 'label "maybe" is not one of the model\'s labels (ham, spam)' });
  const internal = toAiMassError({ code: Status.INTERNAL, details: 'internal error (ref abc123abc123)' });

  it('maps failures to the documented exit codes', () => {
    expect(exitCodeOf(new UsageError('x', ''))).toBe(EXIT_USAGE);
    expect(exitCodeOf(unavailable)).toBe(EXIT_UNAVAILABLE);
    expect(exitCodeOf(new PlatformUnavailableError('no fusion'))).toBe(EXIT_UNAVAILABLE);
    expect(exitCodeOf(invalid)).toBe(EXIT_FAILURE);
    expect(exitCodeOf(new InputFileError('cannot read'))).toBe(EXIT_FAILURE);
    expect(exitCodeOf(new InterruptedError('interrupted'))).toBe(EXIT_INTERRUPTED);
    expect(exitCodeOf(new TrainingWaitError('job failed'))).toBe(EXIT_FAILURE);
    expect(exitCodeOf(toAiMassError({ code: Status.UNIMPLEMENTED, details: 'unknown service' }))).toBe(EXIT_UNAVAILABLE);
    expect(exitCodeOf(new TypeError('bug'))).toBe(EXIT_FAILURE);
  });

  it('prints one line with what to do when the platform is not reachable', () => {
    const line = errorLine('predict', unavailable, '127.0.0.1:50053');
    expect(line).toBe(
      'aimass predict: UNAVAILABLE: No connection established. Last error: connect ECONNREFUSED — is the platform running at 127.0.0.1:50053? Start it with `aimass dev` or pass --address',
    );
    expect(line).not.toContain('\n');
  });

  it('points at the updater when `models` cannot reach it, or reaches something else', () => {
    expect(errorLine('models state', unavailable, '127.0.0.1:50054', 'updater')).toBe(
      'aimass models state: UNAVAILABLE: No connection established. Last error: connect ECONNREFUSED — is the updater running at 127.0.0.1:50054? ' +
        'In the one-process mode `aimass dev` starts it; else pass --address or set AIMASS_UPDATER_ADDRESS',
    );
    const unimplemented = toAiMassError({ code: Status.UNIMPLEMENTED, details: 'The server does not implement the method /aimass.v1.UpdaterAdminService/GetTrainingState' });
    expect(errorLine('models state', unimplemented, '127.0.0.1:50053', 'updater')).toMatch(
      / — 127\.0\.0\.1:50053 does not serve the updater's admin API \(aimass\.v1\.UpdaterAdminService\): is it the updater's address\?$/,
    );
    expect(errorLine('models refit', new TrainingWaitError('refit job j failed'))).toBe('aimass models refit: refit job j failed');
  });

  it("prints the server's message for refused calls", () => {
    expect(errorLine('feedback', invalid)).toBe('aimass feedback: INVALID_ARGUMENT: label "maybe" is not one of the model\'s labels (ham, spam)');
    expect(errorLine('predict', internal)).toBe('aimass predict: INTERNAL: internal error (ref abc123abc123)');
  });
});
