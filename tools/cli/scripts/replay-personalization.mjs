#!/usr/bin/env node
// An offline replay of `aimass eval personalization`, for tuning the personal learner and its
// features on many seeds: the eval's own users, streams, feedback rule and checkpoints
// (tools/cli's eval modules), with the general model run in this process (onnxruntime, the task
// API's own input text) and each user's PersonalModel in memory, trained on each feedback before
// the next mail. A few seconds per seed instead of two minutes per run.
//
// It is not the measurement: the eval goes through the public API, where the updater applies
// feedback asynchronously, so its figures differ from the replay's by a mail or two. Fused here is
// the tenant default, stacking (general logits + the correction head), as fusion computes it.
//
// Needs `npm run build` and a model trained by train-general:
//   node tools/train-general/dist/main.js --repository /tmp/models
//   node tools/cli/scripts/replay-personalization.mjs --model /tmp/models/general/1 --seeds 1-20
// Options: --seeds LIST|A-B (default 1), --users N per profile (default 2),
//   --learner JSON (PersonalLearnerOptions overrides), --without-traits (drop the features of the
//   eighth header slice, body_format and message_id_domain: the featurizer before they were added).
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const { values: opts } = parseArgs({
  options: {
    model: { type: 'string' },
    seeds: { type: 'string', default: '1' },
    users: { type: 'string', default: '2' },
    learner: { type: 'string', default: '{}' },
    'without-traits': { type: 'boolean', default: false },
  },
});
if (!opts.model) {
  console.error('usage: replay-personalization.mjs --model DIR (a model-repository version: model.onnx, metadata.json) [--seeds 1-20]');
  process.exit(2);
}
const seeds = opts.seeds.includes('-')
  ? (([a, b]) => Array.from({ length: b - a + 1 }, (_, i) => a + i))(opts.seeds.split('-').map(Number))
  : opts.seeds.split(',').map(Number);

const load = (p) => import(path.join(root, p));
const ort = createRequire(path.join(root, 'package.json'))('onnxruntime-node');
const ml = await load('libs/ml/dist/index.js');
const { loadSpamAssassin } = await load('tools/train-general/dist/index.js');
const { evalMails } = await load('tools/cli/dist/eval/corpus.js');
const { buildUsers } = await load('tools/cli/dist/eval/profiles.js');
const { runUser } = await load('tools/cli/dist/eval/prequential.js');
const { inputText } = await load('services/general-model/dist/grpc/task-service.js');

const meta = JSON.parse(readFileSync(path.join(opts.model, 'metadata.json'), 'utf8'));
const labels = meta.labels;
const generalFeaturizer = ml.createFeaturizer(ml.parseTokenizerConfig(meta.tokenizer));
const width = generalFeaturizer.config.maxFeatures;
const session = await ort.InferenceSession.create(path.join(opts.model, 'model.onnx'));
const personalFeaturizer = ml.createPersonalFeaturizer();
const learner = { ...ml.DEFAULT_PERSONAL_LEARNER_OPTIONS, ...JSON.parse(opts.learner) };

const mails = evalMails(await loadSpamAssassin());
const structured = new Map(mails.map((m) => [m.key, ml.mailFromRfc822(m.raw)]));

// The general model's answer for every mail, as the task API gives it (log-probabilities as logits).
const general = new Map();
for (let start = 0; start < mails.length; start += 64) {
  const part = mails.slice(start, start + 64);
  const ids = new BigInt64Array(part.length * width);
  part.forEach((m, r) => ids.set(generalFeaturizer.encodePadded(inputText({ kind: { $case: 'mail', value: structured.get(m.key) } }, 0)).subarray(0, width), r * width));
  const out = await session.run({ [session.inputNames[0]]: new ort.Tensor('int64', ids, [part.length, width]) });
  const probs = out.probs.data;
  const emb = out.embedding.data;
  const dim = emb.length / part.length;
  part.forEach((m, r) => general.set(m.key, { logits: [Math.log(probs[2 * r]), Math.log(probs[2 * r + 1])], embedding: Array.from(emb.subarray(r * dim, (r + 1) * dim)) }));
}

const traitsStart = personalFeaturizer.dimension / 2 + 7 * (personalFeaturizer.dimension / 16);
const sparse = new Map();
const sparseOf = (m) => {
  let s = sparse.get(m.key);
  if (!s) {
    const f = personalFeaturizer.featurize({ mail: structured.get(m.key) });
    const keep = f.indices.map((i, k) => [i, f.values[k]]).filter(([i]) => !opts['without-traits'] || i < traitsStart);
    s = { dimension: f.dimension, indices: keep.map((e) => e[0]), values: keep.map((e) => e[1]) };
    sparse.set(m.key, s);
  }
  return s;
};
const argmax = (v) => v.indexOf(Math.max(...v));

function inMemoryTarget() {
  const models = new Map();
  const predictions = new Map();
  const label = (userId, m, strategy) => {
    const g = general.get(m.key);
    const model = models.get(userId);
    if (!model || strategy === 'general') return labels[argmax(g.logits)];
    const p = model.predict({ generalLogits: g.logits, embedding: g.embedding, sparse: sparseOf(m) });
    return labels[argmax(strategy === 'personal' ? p.logits : g.logits.map((x, i) => x + p.correctionLogits[i]))];
  };
  return {
    async predict(userId, m) {
      const id = String(predictions.size);
      predictions.set(id, m);
      return { predictionId: id, label: label(userId, m, 'fused') };
    },
    async predictMany(userId, ms, strategy) {
      return ms.map((m) => ({ label: label(userId, m, strategy), fallbacks: [] }));
    },
    async feedback(userId, predictionId, truth) {
      const m = predictions.get(predictionId);
      const g = general.get(m.key);
      let model = models.get(userId);
      if (!model) {
        model = ml.PersonalModel.create({ classes: labels.length, embeddingDim: g.embedding.length, sparseDimension: personalFeaturizer.dimension }, learner);
        models.set(userId, model);
      }
      model.train([{ generalLogits: g.logits, embedding: g.embedding, sparse: sparseOf(m), label: labels.indexOf(truth), weight: 1 }]);
      // personal-model's default storage budget.
      model.prune({ minAbsZ: 0, maxCoordinates: 4096 });
    },
  };
}

const pooled = {};
const goalsMet = {};
console.log(`seed  ${['newsletter-averse', 'insurance-agent', 'list-muter'].map((p) => `${p}@50 fused/general wrong`).join('  ')}  neutral fused-general @10/50/200`);
for (const seed of seeds) {
  const users = buildUsers(mails, { usersPerProfile: Number(opts.users), seed, streamLength: 2400, heldOut: 600, runId: 'replay' });
  const target = inMemoryTarget();
  const perSeed = {};
  for (const user of users) {
    const run = await runUser(user, target, { checkpoints: [10, 50, 200], feedbackShare: 0.1, seed });
    for (const c of run.checkpoints.filter((c) => c.reached)) {
      for (const into of [pooled, perSeed]) {
        const a = (into[`${user.profile.name}@${c.feedback}`] ??= { measured: 0, general: 0, personal: 0, fused: 0 });
        a.measured += c.measures.general.measured;
        for (const s of ['general', 'personal', 'fused']) a[s] += c.measures[s].wrong;
      }
    }
  }
  const divergent = ['newsletter-averse', 'insurance-agent', 'list-muter'].map((p) => {
    const a = perSeed[`${p}@50`];
    const met = a.fused <= a.general / 2;
    goalsMet[p] = (goalsMet[p] ?? 0) + (met ? 1 : 0);
    return `${`${a.fused}/${a.general}${met ? '' : ' (not met)'}`.padEnd(p.length + 26)}`;
  });
  const neutral = [10, 50, 200].map((c) => {
    const a = perSeed[`neutral@${c}`];
    return a ? ((100 * (a.fused - a.general)) / a.measured).toFixed(2) : '-';
  });
  console.log(`${String(seed).padEnd(6)}${divergent.join('  ')}  ${neutral.join(' / ')}`);
}
console.log(`\npooled over seeds ${opts.seeds}: error % (general / personal / fused)`);
const pct = (x, n) => ((100 * x) / n).toFixed(2);
for (const [k, a] of Object.entries(pooled)) {
  if (k.endsWith('@0')) continue;
  const ratio = k.endsWith('@50') && !k.startsWith('neutral') ? `  ratio ${(a.fused / a.general).toFixed(3)}` : '';
  console.log(`${k.padEnd(24)} ${pct(a.general, a.measured)} / ${pct(a.personal, a.measured)} / ${pct(a.fused, a.measured)}${ratio}`);
}
console.log(`\nseeds meeting the goal after 50 events: ${Object.entries(goalsMet).map(([p, n]) => `${p} ${n}/${seeds.length}`).join(', ')}`);
