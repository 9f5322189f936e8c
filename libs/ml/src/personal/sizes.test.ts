/**
 * The README's size table, reproducible: `AIMASS_PERSONAL_SIZE_TABLE=1 npx vitest run
 * src/personal/sizes.test.ts` (about a minute: it trains the default general model on the whole
 * SpamAssassin corpus first, as tools/train-general does). Skipped otherwise; format.mail.test.ts
 * checks the same properties on a smaller setup in every run.
 *
 * Procedure (the one behind the format-v1 table): five users, each going through the corpus in
 * their own random order and giving feedback (the true label) on every mail the general model gets
 * wrong and on 10 % of the others; the model's bytes after 0, 10, 50 and 200 feedback examples,
 * without a budget (trained in memory) and with personal-model's default budget (pruned to 4,096
 * sparse coordinates and stored after every example, as one-example Train calls do).
 */
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../models/random.js';
import { trainTextModel } from '../train/general.js';
import { PersonalModel } from './learner.js';
import { corpusMails, realItems } from './testing/corpus.js';

const CHECKPOINTS = [0, 10, 50, 200];
const USERS = 5;
const BUDGET = 4096;

describe.skipIf(!process.env['AIMASS_PERSONAL_SIZE_TABLE'])('personal model sizes on the corpus (README table)', () => {
  it('v2 is several times smaller than v1 and predicts within 1e-2', async () => {
    const mails = corpusMails();
    const general = await trainTextModel(mails.map((m) => ({ key: m.key, text: m.text, label: m.label ? 'spam' : 'ham', group: m.group })));
    const items = await realItems([], mails, { model: general.model, tokenizer: { bucketBits: general.tokenizer.bucketBits } });
    const sizes = new Map<string, number[]>();
    const add = (key: string, v: number) => sizes.set(key, [...(sizes.get(key) ?? []), v]);
    let worst = 0;
    for (let u = 0; u < USERS; u++) {
      const random = seededRandom(1000 + u);
      const order = items.map((_, i) => i);
      for (let i = order.length - 1; i > 0; i--) {
        const j = Math.floor(random.next() * (i + 1));
        [order[i], order[j]] = [order[j]!, order[i]!];
      }
      const shape = { classes: 2, embeddingDim: 64, sparseDimension: 2 ** 20 };
      const free = PersonalModel.create(shape);
      let capped = PersonalModel.create(shape);
      let n = 0;
      const record = () => {
        for (const [name, model] of [
          ['free', free],
          ['capped', capped],
        ] as const) {
          add(`${name} v1 ${n}`, model.serialize({ formatVersion: 1 }).length);
          add(`${name} v2 ${n}`, model.serialize().length);
        }
        const back = PersonalModel.deserialize(free.serialize());
        for (let p = 0; p < 300; p++) {
          const t = items[order[order.length - 1 - p]!]!;
          const [a, b] = [free.predict(t), back.predict(t)];
          worst = Math.max(worst, Math.abs(a.logits[1]! - b.logits[1]!), Math.abs(a.correctionLogits[1]! - b.correctionLogits[1]!));
        }
      };
      record();
      for (const i of order) {
        if (n >= CHECKPOINTS[CHECKPOINTS.length - 1]!) break;
        const item = items[i]!;
        const generalLabel = item.generalLogits[1]! > item.generalLogits[0]! ? 1 : 0;
        if (generalLabel === item.label && random.next() >= 0.1) continue;
        free.update({ ...item, label: item.label });
        capped.update({ ...item, label: item.label });
        capped.prune({ maxCoordinates: BUDGET });
        capped = PersonalModel.deserialize(capped.serialize());
        n++;
        if (CHECKPOINTS.includes(n)) record();
      }
    }
    const mean = (key: string) => Math.round(sizes.get(key)!.reduce((a, b) => a + b, 0) / sizes.get(key)!.length);
    const lines = ['| examples | v1, no budget | v2, no budget | v1, 4,096 budget | v2, 4,096 budget |', '|---|---|---|---|---|'];
    for (const n of CHECKPOINTS) lines.push(`| ${n} | ${mean(`free v1 ${n}`)} | ${mean(`free v2 ${n}`)} | ${mean(`capped v1 ${n}`)} | ${mean(`capped v2 ${n}`)} |`);
    process.stdout.write(`${lines.join('\n')}\nlargest |Δ logit| after a round trip: ${worst.toExponential(2)}\n`);
    for (const n of CHECKPOINTS.slice(1)) {
      expect(mean(`free v2 ${n}`)).toBeLessThan(0.3 * mean(`free v1 ${n}`));
      expect(mean(`capped v2 ${n}`)).toBeLessThan(0.4 * mean(`capped v1 ${n}`));
    }
    expect(worst).toBeLessThan(1e-2);
  }, 600_000);
});
