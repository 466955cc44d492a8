import { describe, expect, it } from 'vitest';
import type { KubeObject } from '../model/index.js';
import { changedPaths, comparable, containsSubset, sameObject, valueChanges } from './diff.js';
import { removePointer } from './jsonpointer.js';
import { compareForApply, stageOf } from './ordering.js';

const obj = (kind: string, name: string, extra: Record<string, unknown> = {}, namespace?: string): KubeObject => ({
  apiVersion: 'v1',
  kind,
  metadata: { name, ...(namespace ? { namespace } : {}) },
  ...extra,
});

describe('containsSubset: the no-op fast path (live holds every field tidegate sends)', () => {
  it.each<[string, unknown, unknown, boolean]>([
    ['equal scalars', 1, 1, true],
    ['different scalars', 1, 2, false],
    ['a string is not a number', '1', 1, false],
    ['null against null', null, null, true],
    ['extra live fields are fine', { a: 1, b: 2 }, { a: 1 }, true],
    ['a missing field', { a: 1 }, { a: 1, b: 2 }, false],
    ['nested, same', { spec: { replicas: 2, x: { y: 1 } } }, { spec: { x: { y: 1 } } }, true],
    ['nested, different', { spec: { x: { y: 1 } } }, { spec: { x: { y: 2 } } }, false],
    ['arrays must match in length', { l: [1, 2, 3] }, { l: [1, 2] }, false],
    [
      'arrays compare element by element, as subsets',
      { l: [{ a: 1, extra: true }, { b: 2 }] },
      { l: [{ a: 1 }, { b: 2 }] },
      true,
    ],
    ['array order matters', { l: [1, 2] }, { l: [2, 1] }, false],
    ['an object where live has an array', { a: [1] }, { a: { 0: 1 } }, false],
    ['an array where live has an object', { a: { 0: 1 } }, { a: [1] }, false],
    ['wanted null, live missing', {}, { a: null }, false],
    ['an empty wanted object', { a: 1 }, {}, true],
  ])('%s', (_name, have, want, expected) => {
    expect(containsSubset(have, want)).toBe(expected);
  });
});

describe('changedPaths: which fields differ (never values), to a bounded depth', () => {
  it.each<[string, unknown, unknown, string[]]>([
    ['nothing', { a: 1 }, { a: 1 }, []],
    ['key order does not matter', { a: 1, b: 2 }, { b: 2, a: 1 }, []],
    ['one field', { spec: { replicas: 1 } }, { spec: { replicas: 3 } }, ['spec.replicas']],
    [
      'added and removed keys, sorted',
      { data: { b: '1', c: '1' } },
      { data: { a: '1', b: '1' } },
      ['data.a', 'data.c'],
    ],
    ['an array changes as a whole', { spec: { list: [1, 2] } }, { spec: { list: [1, 3] } }, ['spec.list']],
    ['the root of two scalars', 1, 2, ['.']],
    [
      'deeper than 4 levels is reported at level 4',
      { a: { b: { c: { d: { e: 1 } } } } },
      { a: { b: { c: { d: { e: 2 } } } } },
      ['a.b.c.d'],
    ],
  ])('%s', (_name, before, after, paths) => {
    expect(changedPaths(before, after)).toEqual(paths);
  });

  it('comparable ignores status and server bookkeeping; sameObject uses it', () => {
    const live = {
      ...obj('ConfigMap', 'c', { data: { k: 'v' }, status: { x: 1 } }),
      metadata: { name: 'c', resourceVersion: '9', uid: 'u', generation: 2, managedFields: [], creationTimestamp: 't' },
    } as KubeObject;
    expect(comparable(live)).toEqual({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'c' },
      data: { k: 'v' },
    });
    expect(sameObject(live, obj('ConfigMap', 'c', { data: { k: 'v' } }))).toBe(true);
    expect(sameObject(live, obj('ConfigMap', 'c', { data: { k: 'w' } }))).toBe(false);
  });
});

describe('valueChanges: what previews show', () => {
  it.each<[string, KubeObject, KubeObject, unknown]>([
    [
      'a Deployment field with its values',
      obj('Deployment', 'd', { spec: { replicas: 1 } }),
      obj('Deployment', 'd', { spec: { replicas: 3 } }),
      [{ path: 'spec.replicas', from: '1', to: '3' }],
    ],
    [
      'a ConfigMap value',
      obj('ConfigMap', 'c', { data: { k: 'old' } }),
      obj('ConfigMap', 'c', { data: { k: 'new' } }),
      [{ path: 'data.k', from: 'old', to: 'new' }],
    ],
    [
      'a new key has no "from"',
      obj('ConfigMap', 'c', { data: {} }),
      obj('ConfigMap', 'c', { data: { k: 'v' } }),
      [{ path: 'data.k', to: 'v' }],
    ],
    [
      'long values are cut',
      obj('ConfigMap', 'c', { data: { k: 'a' } }),
      obj('ConfigMap', 'c', { data: { k: 'x'.repeat(100) } }),
      [{ path: 'data.k', from: 'a', to: `${'x'.repeat(77)}...` }],
    ],
    [
      "a Secret's data is hidden",
      obj('Secret', 's', { data: { password: 'c2VjcmV0' } }),
      obj('Secret', 's', { data: { password: 'b3RoZXI=' } }),
      [{ path: 'data.password', from: '(hidden)', to: '(hidden)' }],
    ],
    [
      "a Secret's stringData is hidden",
      obj('Secret', 's', { stringData: { token: 'a' } }),
      obj('Secret', 's', { stringData: { token: 'b' } }),
      [{ path: 'stringData.token', from: '(hidden)', to: '(hidden)' }],
    ],
    [
      "a Secret's labels are shown",
      obj('Secret', 's', { metadata: { name: 's', labels: { a: '1' } } }),
      obj('Secret', 's', { metadata: { name: 's', labels: { a: '2' } } }),
      [{ path: 'metadata.labels.a', from: '1', to: '2' }],
    ],
  ])('%s', (_name, before, after, expected) => {
    expect(valueChanges(before, after)).toEqual(expected);
  });
});

describe('removePointer: ignored fields (RFC 6901), copy on write', () => {
  it.each<[string, unknown, string, unknown]>([
    ['a field', { spec: { replicas: 3, x: 1 } }, '/spec/replicas', { spec: { x: 1 } }],
    ['a missing path changes nothing', { spec: {} }, '/spec/replicas', { spec: {} }],
    ['an array element', { l: ['a', 'b', 'c'] }, '/l/1', { l: ['a', 'c'] }],
    ['inside an array element', { l: [{ a: 1, b: 2 }] }, '/l/0/b', { l: [{ a: 1 }] }],
    ['an index out of range', { l: ['a'] }, '/l/5', { l: ['a'] }],
    ['not an index', { l: ['a'] }, '/l/x', { l: ['a'] }],
    [
      'escaped / and ~ in keys',
      { metadata: { annotations: { 'a/b': 1, 'c~d': 2, e: 3 } } },
      '/metadata/annotations/a~1b',
      { metadata: { annotations: { 'c~d': 2, e: 3 } } },
    ],
    ['escaped ~', { m: { 'c~d': 2, e: 3 } }, '/m/c~0d', { m: { e: 3 } }],
    ['through a scalar', { a: 1 }, '/a/b', { a: 1 }],
  ])('%s', (_name, value, pointer, expected) => {
    const before = JSON.stringify(value);
    expect(removePointer(value, pointer)).toEqual(expected);
    expect(JSON.stringify(value)).toBe(before); // the input is never changed
  });
});

describe('apply order: definitions, then classes, then resources; within a stage what others depend on first', () => {
  it.each([
    ['CustomResourceDefinition', 0],
    ['Namespace', 0],
    ['ClusterRole', 0],
    ['StorageClass', 1],
    ['IngressClass', 1],
    ['Deployment', 2],
    ['ClusterRoleBinding', 2],
  ] as const)('%s is in stage %i', (kind, stage) => {
    expect(stageOf(kind)).toBe(stage);
  });

  it('sorts a mixed set the way it is applied', () => {
    const set = [
      obj('Deployment', 'web', {}, 'a'),
      obj('Widget', 'w', {}, 'a'),
      obj('Service', 'web', {}, 'a'),
      obj('StorageClass', 'fast'),
      obj('ConfigMap', 'b', {}, 'a'),
      obj('ConfigMap', 'a', {}, 'a'),
      obj('Namespace', 'a'),
      obj('CustomResourceDefinition', 'widgets.example.com'),
      obj('ServiceAccount', 'sa', {}, 'a'),
    ];
    expect([...set].sort(compareForApply).map((o) => `${o.kind}/${o.metadata.name}`)).toEqual([
      'CustomResourceDefinition/widgets.example.com',
      'Namespace/a',
      'StorageClass/fast',
      'ServiceAccount/sa',
      'ConfigMap/a',
      'ConfigMap/b',
      'Service/web',
      'Deployment/web',
      'Widget/w',
    ]);
  });
});
