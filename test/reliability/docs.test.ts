import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

/** docs/reliability.md names a test for every row; the table and the suite must not drift apart. */
describe('docs/reliability.md matches the suite', () => {
  const root = join(import.meta.dirname, '..', '..');
  const doc = readFileSync(join(root, 'docs', 'reliability.md'), 'utf8');
  const refs = [...doc.matchAll(/`(test\/[^`]+\.test\.ts)`: "([^"]+)"/g)].map((m) => ({
    file: m[1] ?? '',
    title: m[2] ?? '',
  }));

  it('every row names a test that exists (file and title)', () => {
    expect(refs.length).toBeGreaterThan(40);
    const missing = refs.filter(
      ({ file, title }) => !readFileSync(join(root, file), 'utf8').replaceAll("\\'", "'").includes(title),
    );
    expect(missing).toEqual([]);
  });

  it('every test of test/reliability and test/security is in the table', () => {
    const files = ['reliability', 'security'].flatMap((dir) =>
      readdirSync(join(root, 'test', dir))
        .filter((f) => f.endsWith('.test.ts') && f !== 'docs.test.ts')
        .map((f) => `${dir}/${f}`),
    );
    const unlisted = files.flatMap((f) => {
      const text = readFileSync(join(root, 'test', f), 'utf8').replaceAll("\\'", "'");
      // Titles in either quote style (the formatter picks the one that needs no escapes).
      const titles = [...text.matchAll(/\bit\((?:'((?:[^'\\]|\\.)+)'|"((?:[^"\\]|\\.)+)")/g)].map(
        (m) => m[1] ?? m[2] ?? '',
      );
      return titles
        .filter((t) => !refs.some((r) => r.file === `test/${f}` && t.includes(r.title)))
        .map((t) => `${f}: ${t}`);
    });
    expect(unlisted).toEqual([]);
  });
});
