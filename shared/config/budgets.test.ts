import { describe, expect, it } from 'vitest';
import { deploySettingsSchema } from './deploy.js';
import { DEFAULT_BUDGETS, localSettings } from './local.js';

const MiB = 1024 * 1024;
const base = { repositories: [{ url: 'https://git.example/a.git' }], clusters: {} };

describe('budgets: the deploy-time settings render.* and source.* as every shell reads them', () => {
  it.each([
    ['no settings (local runs): the defaults', undefined, DEFAULT_BUDGETS],
    ['settings without the sections: the defaults', JSON.stringify(base), DEFAULT_BUDGETS],
    [
      'settings with them: in bytes',
      JSON.stringify({
        ...base,
        render: { maxMemoryMiB: 256, maxFileMiB: 4, maxDocuments: 500, maxDocumentTokens: 100_000 },
        source: { maxFetchMiB: 64, maxFileMiB: 16, maxTreeMiB: 128, maxFiles: 2000 },
      }),
      {
        render: { maxMemoryBytes: 256 * MiB, maxFileBytes: 4 * MiB, maxDocuments: 500, maxDocumentTokens: 100_000 },
        source: { maxFetchBytes: 64 * MiB, maxFileBytes: 16 * MiB, maxTreeBytes: 128 * MiB, maxFiles: 2000 },
      },
    ],
    [
      'some of them: the others default',
      JSON.stringify({ ...base, render: { maxMemoryMiB: 768 } }),
      { ...DEFAULT_BUDGETS, render: { ...DEFAULT_BUDGETS.render, maxMemoryBytes: 768 * MiB } },
    ],
    [
      'settings that do not validate (deploySettings refuses them): the defaults',
      '{"render":{"maxMemoryMiB":1}}',
      DEFAULT_BUDGETS,
    ],
    ['not JSON: the defaults', '{', DEFAULT_BUDGETS],
  ])('%s', (_name, settings, budgets) => {
    expect(localSettings(settings === undefined ? {} : { TIDEGATE_SETTINGS: settings }).budgets).toEqual(budgets);
  });

  it('the schema defaults are the defaults of every shell, sized for the 1024 MB worker', () => {
    const parsed = deploySettingsSchema.parse(base);
    expect(parsed.render).toMatchObject({
      maxMemoryMiB: 512,
      maxFileMiB: 8,
      maxDocuments: 10_000,
      maxDocumentTokens: 250_000,
    });
    expect(parsed.source).toEqual({ maxFetchMiB: 128, maxFileMiB: 64, maxTreeMiB: 512, maxFiles: 100_000 });
    expect(DEFAULT_BUDGETS.render.maxMemoryBytes).toBe(parsed.render.maxMemoryMiB * MiB);
    expect(DEFAULT_BUDGETS.source.maxFetchBytes).toBe(parsed.source.maxFetchMiB * MiB);
  });
});
