import { describe, expect, it } from 'vitest';
import { parametersAssociatedData, retention, sameGeneralModel, versionDocumentId } from './versions.js';

describe('retention', () => {
  it('keeps everything while there are fewer versions than kept', () => {
    expect(retention(undefined, 1, 3)).toEqual({ oldestVersion: 1, remove: [] });
    expect(retention({ version: 1, oldestVersion: 1 }, 2, 3)).toEqual({ oldestVersion: 1, remove: [] });
    expect(retention({ version: 2, oldestVersion: 1 }, 3, 3)).toEqual({ oldestVersion: 1, remove: [] });
  });

  it('drops the oldest once the limit is passed', () => {
    expect(retention({ version: 3, oldestVersion: 1 }, 4, 3)).toEqual({ oldestVersion: 2, remove: [1] });
    expect(retention({ version: 10, oldestVersion: 8 }, 11, 3)).toEqual({ oldestVersion: 9, remove: [8] });
  });

  it('catches up after the limit was lowered', () => {
    expect(retention({ version: 10, oldestVersion: 1 }, 11, 3)).toEqual({ oldestVersion: 9, remove: [1, 2, 3, 4, 5, 6, 7, 8] });
  });

  it('rejects keeping nothing', () => {
    expect(() => retention(undefined, 1, 0)).toThrow(/kept/);
  });
});

describe('helpers', () => {
  it('compares general models by name and version', () => {
    expect(sameGeneralModel({ name: 'g', version: '1' }, { name: 'g', version: '1' })).toBe(true);
    expect(sameGeneralModel({ name: 'g', version: '1' }, { name: 'g', version: '2' })).toBe(false);
    expect(sameGeneralModel({ name: 'g', version: '1' }, { name: 'h', version: '1' })).toBe(false);
  });
  it('names version documents by pseudonym and number', () => {
    expect(versionDocumentId('a'.repeat(32), 7)).toBe(`${'a'.repeat(32)}:7`);
  });
});

describe('associated data of sealed parameters', () => {
  it('differs for every tenant, user and version, without ambiguity between the parts', () => {
    const all = [
      parametersAssociatedData('acme', 'u1', 1),
      parametersAssociatedData('acme', 'u1', 2),
      parametersAssociatedData('acme', 'u2', 1),
      parametersAssociatedData('globex', 'u1', 1),
      parametersAssociatedData('acme:u1', '', 1),
    ];
    expect(new Set(all).size).toBe(all.length);
    expect(parametersAssociatedData('acme', 'u1', 1)).toBe(parametersAssociatedData('acme', 'u1', 1));
  });
});
