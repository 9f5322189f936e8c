import { status as Status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { toAiMassError, type PredictionResult } from '@aimass/sdk';
import { UsageError } from './args.js';
import { EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_UNAVAILABLE, EXIT_USAGE } from './exit-codes.js';
import { errorLine, exitCodeOf, formatFeedback, formatPrediction, InputFileError, InterruptedError, PlatformUnavailableError } from './format.js';

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
    expect(exitCodeOf(new TypeError('bug'))).toBe(EXIT_FAILURE);
  });

  it('prints one line with what to do when the platform is not reachable', () => {
    const line = errorLine('predict', unavailable, '127.0.0.1:50053');
    expect(line).toBe(
      'aimass predict: UNAVAILABLE: No connection established. Last error: connect ECONNREFUSED — is the platform running at 127.0.0.1:50053? Start it with `aimass dev` or pass --address',
    );
    expect(line).not.toContain('\n');
  });

  it("prints the server's message for refused calls", () => {
    expect(errorLine('feedback', invalid)).toBe('aimass feedback: INVALID_ARGUMENT: label "maybe" is not one of the model\'s labels (ham, spam)');
    expect(errorLine('predict', internal)).toBe('aimass predict: INTERNAL: internal error (ref abc123abc123)');
  });
});
