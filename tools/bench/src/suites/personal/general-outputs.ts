import { callUnary, createClient, tenantMetadata } from '@aimass/platform';
import { generalLogits } from '@aimass/fusion';
import { v1 } from '@aimass/proto';
import type { BenchMail } from './mails.js';

/** The general model's output for one mail, in the form fusion sends it to personal-model. */
export interface GeneralOutputOf {
  readonly model: { readonly name: string; readonly version: string };
  readonly labels: readonly string[];
  /** Class-0-referenced logits (fusion's `generalLogits`). */
  readonly logits: number[];
  readonly probabilities: number[];
  readonly embedding: number[];
}

const BATCH = 64;

/**
 * Classifies `mails` on the running general-model service (GeneralModelService.Classify with
 * embedding and logits, as fusion asks), 64 inputs per call.
 */
export async function classifyMails(address: string, tenant: string, mails: readonly BenchMail[], deadlineMs = 60_000): Promise<GeneralOutputOf[]> {
  const client = createClient(v1.GeneralModelServiceClient, { address, idempotentMethods: ['Classify'] });
  try {
    const out: GeneralOutputOf[] = [];
    for (let start = 0; start < mails.length; start += BATCH) {
      const inputs = mails.slice(start, start + BATCH).map((m) => m.input);
      const res = await callUnary(client.classify.bind(client), { model: undefined, inputs, includeEmbedding: true, includeLogits: true }, {
        deadline: new Date(Date.now() + deadlineMs),
        metadata: tenantMetadata(tenant),
      });
      if (!res.model || res.results.length !== inputs.length) throw new Error(`general-model answered ${res.results.length} results for ${inputs.length} inputs`);
      for (const r of res.results) {
        out.push({
          model: { name: res.model.name, version: res.model.version },
          labels: res.labels,
          logits: generalLogits(r.logits, r.probabilities),
          probabilities: r.probabilities,
          embedding: r.embedding,
        });
      }
    }
    return out;
  } finally {
    client.close();
  }
}
