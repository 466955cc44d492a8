import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { DocumentTooLarge, TICK, documentMarkers, parseDocuments, yamlDocuments } from './yaml.js';

const firstError = (doc: { errors: Array<{ message: string }> }): string | undefined =>
  doc.errors[0]?.message.split('\n')[0];

describe('yamlDocuments: the documents parseAllDocuments gives, one at a time, within a token budget', () => {
  it.each([
    ['one mapping', 'a: 1\nb: [x, y]\n'],
    ['several documents, an empty one', 'a: 1\n---\n---\nb: 2\n...\n'],
    ['an empty stream', ''],
    ['comments only', '# nothing\n'],
    ['a duplicate key in a block mapping', 'a: 1\nb: 2\na: 3\n'],
    ['a duplicate key in a flow mapping', 'm: {x: 1, x: 2}\n'],
    ['a duplicate key deep inside', 'spec:\n  template:\n    metadata:\n      labels: {app: a, app: b}\n'],
    ['equal values of different types are different keys', '1: a\n"1": b\ntrue: c\n"true": d\n'],
    ['two null keys', '? \n: a\n? \n: b\n'],
    ['a syntax error', 'a: [1, 2\nb: 3\n'],
    ['aliases and anchors', 'a: &x {k: v}\nb: *x\n'],
    ['a multi-line string with a document marker inside a block scalar ends the document', 'a: |\n  x\n---\nb: 2\n'],
  ])('%s', (_name, text) => {
    const expected = parseAllDocuments(text, { prettyErrors: false });
    const got = parseDocuments(text, 1000, { prettyErrors: false });
    expect(got.length).toBe(Array.isArray(expected) ? expected.length : 0);
    got.forEach((doc, i) => {
      const want = (expected as typeof got)[i] as (typeof got)[number];
      expect(firstError(doc)).toBe(firstError(want));
      if (want.errors.length === 0) expect(doc.toJS()).toEqual(want.toJS());
    });
  });

  it('a document past its token budget is refused before it is composed, named by its number', () => {
    const text = `a: 1\n---\nitems: [${'1,'.repeat(5000)}1]\n`;
    expect(() => parseDocuments(text, 1000)).toThrow(DocumentTooLarge);
    expect(() => parseDocuments(text, 1000)).toThrow('document 2 has more than 1000 YAML tokens');
    // The budget is per document: many small ones pass.
    expect(parseDocuments('---\na: 1\n'.repeat(500), 1000)).toHaveLength(500);
  });

  it('40,000 keys in one mapping: linear, not quadratic (yaml alone takes ~20 s), a duplicate still found', () => {
    const keys = Array.from({ length: 40_000 }, (_, i) => `k${i}: ${i}`);
    const start = Date.now();
    const [clean] = parseDocuments(`${keys.join('\n')}\n`, 1_000_000);
    const [dup] = parseDocuments(`${keys.join('\n')}\nk7: again\n`, 1_000_000);
    expect(Date.now() - start).toBeLessThan(5000);
    expect(clean?.errors).toEqual([]);
    expect(firstError(dup as NonNullable<typeof dup>)).toBe('Map keys must be unique');
  });

  it('yields TICK between documents and inside a long one (where a reader lets the event loop run)', () => {
    const ticks = (text: string) => [...yamlDocuments(text, 10_000_000, {}, () => 0)].filter((d) => d === TICK).length;
    expect(ticks('a: 1\n---\nb: 2\n')).toBe(2);
    expect(ticks(`items: [${'1,'.repeat(100_000)}1]\n`)).toBeGreaterThan(2);
  });
});

describe('documentMarkers: documents counted without parsing', () => {
  it.each([
    ['', 0, 0],
    ['a: 1\n', 0, 5],
    ['---\na: 1\n', 1, 9],
    ['a: 1\n---\nb: 22\n---\n', 2, 10],
    ['--- # comment\na\n---\tb\n', 2, 16],
    ['---x: 1\n', 0, 8], // not a marker: part of a scalar
    ['a: |\n  ---\n', 0, 11], // indented: inside the block scalar
  ])('%j: %i markers, the longest document at most %i', (text, markers, longest) => {
    expect(documentMarkers(text)).toEqual({ markers, longest });
  });
});
