import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

/** docs/architecture.md describes the layers .dependency-cruiser.cjs enforces, and every module. */
describe('docs/architecture.md matches the code', () => {
  const root = join(import.meta.dirname, '..', '..');
  const doc = readFileSync(join(root, 'docs', 'architecture.md'), 'utf8');
  const cruiser = readFileSync(join(root, '.dependency-cruiser.cjs'), 'utf8');
  const layers = new Function(
    `return ${/const layers = (\[[\s\S]*?\n\]);/.exec(cruiser)?.[1] ?? '[]'}`,
  )() as string[][];
  const modules = readdirSync(join(root, 'shared')).filter((m) => statSync(join(root, 'shared', m)).isDirectory());

  it('the dependency rules section lists the layers in the order the lint enforces', () => {
    const block = /## Dependency rules[\s\S]*?```\n([\s\S]*?)```/.exec(doc)?.[1] ?? '';
    const documented = block.split('←').map((layer) =>
      layer
        .split(',')
        .map((m) => m.trim())
        .filter(Boolean)
        .sort(),
    );
    expect(documented).toEqual(layers.map((l) => [...l].sort()));
  });

  it('every module of shared/ is in a layer and has a row in the module table', () => {
    const rows = [...doc.matchAll(/^\| `([a-z]+)` \|/gm)].map((m) => m[1]);
    expect([...layers.flat()].sort()).toEqual([...modules].sort());
    expect([...rows].sort()).toEqual([...modules].sort());
  });
});
