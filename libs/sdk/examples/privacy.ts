// The README's privacy example, kept here so the typecheck proves it compiles (run it after `npm run build` with `aimass dev` up).
import { ErasureTimeoutError, PrivacyClient } from '@aimass/sdk';

const privacy = new PrivacyClient({ address: '127.0.0.1:50055', tenant: 'acme', policyVersion: 'privacy-policy-2025-01', source: 'web-settings' });

// The user opts in on the consent screen: their personal model may be used and learn from their feedback.
await privacy.grant('user-42', ['personalization', 'training']);
await privacy.setConsent({ userId: 'user-42', purpose: 'training', state: 'withdrawn', source: 'support-ticket:4711' });
const decisions = await privacy.getConsent('user-42');
const { records, chainVerified } = await privacy.consentHistory('user-42');
console.log(decisions, records.length, chainVerified);

const { document } = await privacy.export('user-42');
console.log(Object.keys(document));

const { erasureId } = await privacy.erase('user-42', { reason: 'gdpr-art17' });
try {
  const receipt = await privacy.waitForErasure(erasureId, { timeoutMs: 30_000 });
  console.log(receipt.completedAt, receipt.confirmations);
} catch (err) {
  if (err instanceof ErasureTimeoutError) console.error('still waiting for', err.pendingServices);
  else throw err;
}
privacy.close();
