// The README's example, kept here so the typecheck proves it compiles (run it after `npm run build` with `aimass dev` up).
import { AiMassClient, InvalidArgumentError, UnavailableError } from '@aimass/sdk';

const client = new AiMassClient({ address: '127.0.0.1:50053', tenant: 'acme', apiKey: process.env.AIMASS_API_KEY });

const mail = { subject: 'Your invoice', body: 'Please find attached…', headers: { from: 'billing@shop.example' } };
const prediction = await client.predict('user-42', mail);
console.log(prediction.label, prediction.probabilities.spam, prediction.provenance.appliedStrategy, prediction.provenance.fallbacks);

// The user says it was not spam: the personal model learns it, so the next prediction can change.
await client.feedback({ userId: 'user-42', predictionId: prediction.predictionId, label: 'ham' });

try {
  await client.predict('user-42', '', { deadlineMs: 300 });
} catch (err) {
  if (err instanceof InvalidArgumentError) console.error(err.field, err.details);
  else if (err instanceof UnavailableError) console.error('AI Mass is down, retried already:', err.message);
  else throw err;
}
client.close();
