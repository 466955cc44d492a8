import { existsSync, mkdtempSync, readFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { assembleArtifact } from '../../shared/render/assemble.js';
import { tempTree } from '../helpers/files.js';

/** An ExternalArtifact's files copied from the repository by its ArtifactGenerator's rules. */
describe('copy rules of an ArtifactGenerator', () => {
  const repo = () =>
    tempTree({
      'apps/base/a.yaml': 'a',
      'apps/base/nested/b.yaml': 'b',
      'apps/base/README.md': 'doc',
      'config/values.yaml': 'v',
    });

  it.each([
    [
      'a glob keeps paths below its base',
      [{ from: 'apps/base/**', to: 'base/' }],
      ['base/a.yaml', 'base/nested/b.yaml', 'base/README.md'],
    ],
    ['a glob of one level', [{ from: 'apps/base/*.yaml', to: '' }], ['a.yaml']],
    [
      'exclude leaves files out',
      [{ from: 'apps/**', to: 'x/', exclude: ['**/*.md'] }],
      ['x/base/a.yaml', 'x/base/nested/b.yaml'],
    ],
    ['a file into a directory', [{ from: 'config/values.yaml', to: 'helm/' }], ['helm/values.yaml']],
    ['a file to a new name', [{ from: 'config/values.yaml', to: 'values-prod.yaml' }], ['values-prod.yaml']],
  ])('%s', (_, rules, files) => {
    const into = mkdtempSync(join(tmpdir(), 'assembled-'));
    assembleArtifact(repo(), rules, into, 1 << 20);
    for (const f of files) expect(existsSync(join(into, f)), f).toBe(true);
    if (files.includes('x/base/a.yaml')) expect(existsSync(join(into, 'x/base/README.md'))).toBe(false);
    if (files.includes('helm/values.yaml')) expect(readFileSync(join(into, 'helm/values.yaml'), 'utf8')).toBe('v');
  });

  it('refuses a rule leading out of the repository, through a link, or past the byte limit', () => {
    const root = repo();
    symlinkSync('/etc', join(root, 'outside'));
    const into = () => mkdtempSync(join(tmpdir(), 'assembled-'));
    expect(() => assembleArtifact(root, [{ from: '../**', to: '' }], into(), 1 << 20)).toThrow(
      /leads out of the repository/,
    );
    expect(() => assembleArtifact(root, [{ from: 'outside/**', to: '' }], into(), 1 << 20)).toThrow(/is a link/);
    expect(() => assembleArtifact(root, [{ from: 'apps/**', to: '' }], into(), 2)).toThrow(/exceed 2 bytes/);
  });
});
