import { describe, expect, it } from 'vitest';
import { RenderError, type RenderProblem } from './errors.js';
import { parseBudget, parseManifests } from './manifests.js';

const budget = (maxDocuments = 100) =>
  parseBudget({ maxDocumentTokens: 10_000, maxFileBytes: 2 ** 20, maxDocuments }, 60_000);
const TEXT = [
  'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {k: "${VALUE}"}',
  'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\ndata: {k: v}',
  'kind: NotAnObject\n- broken',
].join('\n---\n');

/** Parses the same text twice with fresh problems and budgets: what a second (remembered) parse gives. */
async function twice(text: string, vars: Record<string, string>, source = 'apps/cm.yaml') {
  const runs = [];
  for (let i = 0; i < 2; i++) {
    const problems: RenderProblem[] = [];
    const b = budget();
    const objects = await parseManifests(text, source, vars, problems, b);
    runs.push({ objects, problems, documents: b.documents });
  }
  return runs as [(typeof runs)[number], (typeof runs)[number]];
}

describe('parseManifests remembers a parse: the second gives what the first gave', () => {
  it.each([
    ['no variables', {}],
    ['a variable substituted', { VALUE: 'one' }],
    ['another value of it', { VALUE: 'two' }],
  ] as Array<[string, Record<string, string>]>)(
    '%s: the same objects, problems and documents counted',
    async (_name, vars) => {
      const [first, second] = await twice(TEXT, vars);
      expect(second).toEqual(first);
      expect(first.documents).toBe(3);
      expect(first.problems).toHaveLength(1); // the broken document, reported every time
      expect(second.objects[0]?.object.data).toEqual({ k: vars['VALUE'] ?? '${VALUE}' });
    },
  );

  it('a different value of a variable, or another file name, is not the remembered parse', async () => {
    const [one] = await twice(TEXT, { VALUE: 'one' });
    const [two] = await twice(TEXT, { VALUE: 'two' });
    expect(one.objects[0]?.object.data).toEqual({ k: 'one' });
    expect(two.objects[0]?.object.data).toEqual({ k: 'two' });
    const [elsewhere] = await twice(TEXT, { VALUE: 'one' }, 'other/cm.yaml');
    expect(elsewhere.objects.map((o) => o.source)).toEqual(['other/cm.yaml', 'other/cm.yaml']);
  });

  it('no caller sees another caller’s objects: changing what one parse returned leaves the next as written', async () => {
    const [first] = await twice(TEXT, {});
    (first.objects[1]?.object.data as Record<string, string>).k = 'changed by a caller';
    first.objects[1]!.object.metadata.namespace = 'elsewhere';
    const [again] = await twice(TEXT, {});
    expect(again.objects[1]?.object).toEqual({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'b' },
      data: { k: 'v' },
    });
  });

  it('a remembered parse counts its documents against render.maxDocuments as the first did', async () => {
    await twice(TEXT, {});
    const b = budget(4);
    b.documents = 2;
    await expect(parseManifests(TEXT, 'apps/cm.yaml', {}, [], b)).rejects.toThrow(RenderError);
    await expect(parseManifests(TEXT, 'apps/cm.yaml', {}, [], budget(4))).resolves.toHaveLength(2);
  });
});
