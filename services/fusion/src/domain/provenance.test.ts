import { durationToMs, v1 } from '@aimass/proto';
import { describe, expect, it } from 'vitest';
import { fuse, type GeneralComponent } from './fusion.js';
import { softmax } from './logits.js';
import { StageTimer, buildProvenance, timingsToProto } from './provenance.js';

const S = v1.FusionStrategy;
const Stage = v1.Stage;
const policy = { strategy: S.FUSION_STRATEGY_STACKING, interpolation: { k: 10, maxWeight: 0.8 }, override: { threshold: 0.9, minExamples: 5 } };
const general: GeneralComponent = { model: { name: 'general', version: '1' }, labels: ['ham', 'spam'], logits: [0, 1], probabilities: softmax([0, 1]) };
const personal = { name: 'personal', version: '4' };

describe('provenance', () => {
  it('lists both models with their weights, the strategies and the stages in order', () => {
    const outcome = fuse(
      general,
      { kind: 'scored', model: personal, logits: [0, 2], probabilities: softmax([0, 2]), correction: [0, 1], exampleCount: 10 },
      S.FUSION_STRATEGY_INTERPOLATE,
      policy,
    );
    const p = buildProvenance(general.model, outcome, { [Stage.STAGE_TOTAL]: 9, [Stage.STAGE_GENERAL_MODEL]: 4, [Stage.STAGE_ADMISSION]: 0.25, [Stage.STAGE_PERSONAL_MODEL]: 3, [Stage.STAGE_FUSION]: 1 });
    expect(p.models).toEqual([
      { model: { name: 'general', version: '1' }, role: v1.ModelRole.MODEL_ROLE_GENERAL, weight: expect.closeTo(0.6, 12) },
      { model: { name: 'personal', version: '4' }, role: v1.ModelRole.MODEL_ROLE_PERSONAL, weight: expect.closeTo(0.4, 12) },
    ]);
    expect(p.requestedStrategy).toBe(S.FUSION_STRATEGY_INTERPOLATE);
    expect(p.appliedStrategy).toBe(S.FUSION_STRATEGY_INTERPOLATE);
    expect(p.fallbacks).toEqual([]);
    expect(p.timings.map((t) => t.stage)).toEqual([Stage.STAGE_ADMISSION, Stage.STAGE_GENERAL_MODEL, Stage.STAGE_PERSONAL_MODEL, Stage.STAGE_FUSION, Stage.STAGE_TOTAL]);
    expect(durationToMs(p.timings[0]!.duration!)).toBe(0.25);
    expect(durationToMs(p.timings[4]!.duration!)).toBe(9);
  });

  it('records requested vs applied strategy and the fallback, without a personal model entry when there is none', () => {
    const outcome = fuse(general, { kind: 'no_model' }, S.FUSION_STRATEGY_STACKING, policy);
    const p = buildProvenance(general.model, outcome, { [Stage.STAGE_TOTAL]: 2 });
    expect(p.models).toEqual([{ model: general.model, role: v1.ModelRole.MODEL_ROLE_GENERAL, weight: 1 }]);
    expect(p.requestedStrategy).toBe(S.FUSION_STRATEGY_STACKING);
    expect(p.appliedStrategy).toBe(S.FUSION_STRATEGY_GENERAL_ONLY);
    expect(p.fallbacks).toEqual([expect.objectContaining({ reason: v1.FallbackReason.FALLBACK_REASON_NO_PERSONAL_MODEL, role: v1.ModelRole.MODEL_ROLE_PERSONAL })]);
    expect(p.timings.map((t) => t.stage)).toEqual([Stage.STAGE_TOTAL]);
  });

  it('times stages with the clock it is given, including stages that throw', async () => {
    let now = 100;
    const timer = new StageTimer(() => now);
    await timer.time(Stage.STAGE_ADMISSION, () => {
      now += 2;
    });
    await expect(
      timer.time(Stage.STAGE_GENERAL_MODEL, async () => {
        now += 5;
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    await timer.time(Stage.STAGE_FUSION, () => {
      now += 1;
    });
    await timer.time(Stage.STAGE_FUSION, () => {
      now += 1;
    });
    expect(timer.snapshot()).toEqual({ [Stage.STAGE_ADMISSION]: 2, [Stage.STAGE_GENERAL_MODEL]: 5, [Stage.STAGE_FUSION]: 2, [Stage.STAGE_TOTAL]: 9 });
    expect(timingsToProto({ [Stage.STAGE_FUSION]: 1.5 })).toEqual([{ stage: Stage.STAGE_FUSION, duration: { seconds: 0, nanos: 1_500_000 } }]);
  });
});
