import { describe, expect, it } from 'vitest';
import { getPointer, setPointer } from '../apply/jsonpointer.js';
import { markUnstable } from './unstable.js';

const secret = (password: string, extra: Record<string, unknown> = {}) => ({
  object: {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 's', annotations: { 'a/b': password } },
    data: { password, fixed: 'x' },
    list: [1, password],
    ...extra,
  },
  source: 'helm template chart',
});

describe('markUnstable', () => {
  it.each([
    ['identical renders', secret('p'), secret('p'), undefined],
    [
      'random values in data, an annotation with a slash, a list element',
      secret('p1'),
      secret('p2'),
      ['/metadata/annotations/a~1b', '/data/password', '/list/1'],
    ],
    ['a field only in one render', secret('p', { extra: 1 }), secret('p'), ['/extra']],
    ['a list of another length: structure, not marked', secret('p', { l: [1] }), secret('p', { l: [1, 2] }), undefined],
    [
      'a mapping against a value: structure, not marked',
      secret('p', { m: { a: 1 } }),
      secret('p', { m: 'x' }),
      undefined,
    ],
  ])('%s', (_, first, second, unstable) => {
    expect(markUnstable([first], [second])[0]?.unstable).toEqual(unstable);
  });

  it('an object the second render does not have (a random name) is left as it is', () => {
    const other = secret('p');
    other.object.metadata.name = 'other';
    expect(markUnstable([secret('p')], [other])[0]?.unstable).toBeUndefined();
  });
});

describe('getPointer / setPointer', () => {
  const obj = { a: { 'b/c': [1, { d: 2 }] } };
  it.each([
    ['/a/b~1c/1/d', 2],
    ['/a/b~1c/0', 1],
    ['/a/missing/x', undefined],
    ['/a/b~1c/9', undefined],
  ])('get %s', (p, v) => expect(getPointer(obj, p)).toEqual(v));

  it('set copies on write and leaves a missing parent alone', () => {
    const set = setPointer(obj, '/a/b~1c/1/d', 3);
    expect(set).toEqual({ a: { 'b/c': [1, { d: 3 }] } });
    expect(obj.a['b/c'][1]).toEqual({ d: 2 });
    expect(setPointer(obj, '/x/y', 1)).toEqual(obj);
    expect(setPointer(obj, '/a/new', 1)).toEqual({ a: { 'b/c': [1, { d: 2 }], new: 1 } });
  });
});
