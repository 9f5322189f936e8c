import { AiMassClient } from '@aimass/sdk';
import type { ConnectionOptions, FeedbackCommand, PredictCommand } from '../args.js';
import { EXIT_OK } from '../exit-codes.js';
import { feedbackJson, formatFeedback, formatPrediction, predictionJson } from '../format.js';
import type { CliIo } from '../io.js';
import { readInput } from './input.js';

export function connect(c: ConnectionOptions): AiMassClient {
  return new AiMassClient({ address: c.address, tenant: c.tenant, apiKey: c.apiKey, defaultDeadlineMs: c.deadlineMs });
}

export async function predictCommand(options: PredictCommand, io: CliIo): Promise<number> {
  const input = await readInput(options.input, io);
  const client = connect(options.connection);
  try {
    const result = await client.predict(options.user, input, {
      strategy: options.strategy,
      topK: options.topK,
      includeComponents: options.components,
    });
    io.stdout.write(`${options.json ? predictionJson(result) : formatPrediction(result)}\n`);
    return EXIT_OK;
  } finally {
    client.close();
  }
}

export async function feedbackCommand(options: FeedbackCommand, io: CliIo): Promise<number> {
  const target = 'predictionId' in options.target ? { predictionId: options.target.predictionId } : { input: await readInput(options.target, io) };
  const client = connect(options.connection);
  try {
    const result = await client.feedback({
      userId: options.user,
      label: options.label,
      idempotencyKey: options.idempotencyKey,
      occurredAt: options.occurredAt,
      ...target,
    });
    io.stdout.write(`${options.json ? feedbackJson(result) : formatFeedback(result)}\n`);
    return EXIT_OK;
  } finally {
    client.close();
  }
}
