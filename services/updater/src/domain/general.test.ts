import { describe, expect, it } from 'vitest';
import { v1 } from '@aimass/proto';
import { compareVersions, generalOutputOf, referencedLogits, sameGeneral, servedVersion } from './general.js';

const info = (name: string, version: string, state: v1.ModelState, isDefault = false): v1.GeneralModelInfo => ({
  model: { name, version },
  state,
  isDefault,
  labels: [],
  embeddingDimension: 0,
  sha256: '',
  loadedAt: undefined,
});
const { MODEL_STATE_READY: READY, MODEL_STATE_AVAILABLE: AVAILABLE } = v1.ModelState;

describe('the served general model version', () => {
  it('is the flagged default for the default model', () => {
    const models = [info('general', '1', READY), info('general', '2', READY, true), info('other', '7', READY)];
    expect(servedVersion(models, '')).toEqual({ name: 'general', version: '2' });
    expect(servedVersion(models, 'general')).toEqual({ name: 'general', version: '2' });
  });

  it('is the newest loaded version, numerically, for another model', () => {
    const models = [info('general', '2', READY, true), info('other', '9', READY), info('other', '10', READY), info('other', '11', AVAILABLE)];
    expect(servedVersion(models, 'other')).toEqual({ name: 'other', version: '10' });
  });

  it('is unknown when nothing is loaded', () => {
    expect(servedVersion([info('general', '1', AVAILABLE)], '')).toBeUndefined();
    expect(servedVersion([info('general', '1', AVAILABLE)], 'general')).toBeUndefined();
    expect(servedVersion([], 'x')).toBeUndefined();
  });

  it('compares versions as numbers when they are numbers', () => {
    expect(compareVersions('10', '9')).toBeGreaterThan(0);
    expect(compareVersions('b', 'a')).toBeGreaterThan(0);
    expect(compareVersions('3', '3')).toBe(0);
  });

  it('pairs by name and version', () => {
    expect(sameGeneral({ name: 'g', version: '1' }, { name: 'g', version: '1' })).toBe(true);
    expect(sameGeneral({ name: 'g', version: '1' }, { name: 'g', version: '2' })).toBe(false);
    expect(sameGeneral(undefined, { name: 'g', version: '1' })).toBe(false);
  });
});

describe('general outputs as personal models read them', () => {
  it('references logits to class 0', () => {
    expect(referencedLogits([Math.log(0.25), Math.log(0.75)], [0.25, 0.75])).toEqual([0, Math.log(3)]);
  });

  it('rebuilds logits from probabilities when a logit is not finite or missing', () => {
    const z = referencedLogits([-Infinity, 0], [0, 1]);
    expect(z[0]).toBe(0);
    expect(Number.isFinite(z[1])).toBe(true);
    expect(z[1]).toBeGreaterThan(15);
    expect(referencedLogits([], [0.5, 0.5])).toEqual([0, 0]);
  });

  it('turns a Classify result into a GeneralOutput of the answering version', () => {
    const out = generalOutputOf({ name: 'general', version: '3' }, { label: 'spam', probabilities: [0.2, 0.8], logits: [Math.log(0.2), Math.log(0.8)], embedding: [1, 2] });
    expect(out.model).toEqual({ name: 'general', version: '3' });
    expect(out.logits[0]).toBe(0);
    expect(out.logits[1]).toBeCloseTo(Math.log(4));
    expect(out.embedding).toEqual([1, 2]);
  });
});
