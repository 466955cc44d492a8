import { beforeAll, describe, expect, it } from 'vitest';
import type { PodSpec } from './references.js';
import { referencedSources } from './references.js';
import { envVarName } from './references.js';
import { containerUsing } from './references.js';
import { contentHash } from './hash.js';
import type { SourceKind } from './annotations.js';
import { loadPatternEngine, shouldReload } from './annotations.js';
import { RELOADER as R } from './annotations.js';

const cm = (name: string, annotations: Record<string, string> = {}) => ({
  kind: 'ConfigMap' as SourceKind,
  name,
  annotations,
});
const secret = (name: string, annotations: Record<string, string> = {}) => ({
  kind: 'Secret' as SourceKind,
  name,
  annotations,
});

// Each row follows Reloader's README and ShouldReload (pkg/common/common.go): ignore, exclude, named, search/match, auto.
describe('shouldReload: every annotation form, with Reloader precedence', () => {
  beforeAll(() => loadPatternEngine()); // a reload pass loads it first
  it.each([
    ['auto on the workload', cm('app'), { [R.auto]: 'true' }, {}, { reload: true, auto: true }],
    ['auto accepts Go booleans ("1", "True")', cm('app'), { [R.auto]: 'True' }, {}, { reload: true, auto: true }],
    ['auto "false"', cm('app'), { [R.auto]: 'false' }, {}, { reload: false, auto: false }],
    ['configmap auto for a ConfigMap', cm('app'), { [R.configmapAuto]: 'true' }, {}, { reload: true, auto: true }],
    [
      'configmap auto does not cover Secrets',
      secret('app'),
      { [R.configmapAuto]: 'true' },
      {},
      { reload: false, auto: false },
    ],
    ['secret auto for a Secret', secret('app'), { [R.secretAuto]: 'true' }, {}, { reload: true, auto: true }],
    [
      'named ConfigMap',
      cm('app-config'),
      { [R.configmapReload]: 'other, app-config' },
      {},
      { reload: true, auto: false },
    ],
    [
      'named entries are anchored regexes',
      cm('app-config-v2'),
      { [R.configmapReload]: 'app-config-.*' },
      {},
      { reload: true, auto: false },
    ],
    [
      'an anchored regex does not match a longer name',
      cm('my-app-config'),
      { [R.configmapReload]: 'app-config' },
      {},
      { reload: false, auto: false },
    ],
    ['named Secret', secret('db'), { [R.secretReload]: 'db' }, {}, { reload: true, auto: false }],
    ['a ConfigMap name in the Secret list', cm('db'), { [R.secretReload]: 'db' }, {}, { reload: false, auto: false }],
    ['search + match', cm('app', { [R.match]: 'true' }), { [R.search]: 'true' }, {}, { reload: true, auto: true }],
    ['search without match', cm('app'), { [R.search]: 'true' }, {}, { reload: false, auto: false }],
    [
      'ignore on the source beats auto',
      cm('app', { [R.ignore]: 'true' }),
      { [R.auto]: 'true' },
      {},
      { reload: false, auto: false },
    ],
    [
      'ignore beats a named reload',
      cm('app', { [R.ignore]: 'true' }),
      { [R.configmapReload]: 'app' },
      {},
      { reload: false, auto: false },
    ],
    [
      'exclude beats auto',
      cm('app'),
      { [R.auto]: 'true', [R.configmapExclude]: 'x, app' },
      {},
      { reload: false, auto: false },
    ],
    [
      'exclude of ConfigMaps leaves Secrets',
      secret('app'),
      { [R.auto]: 'true', [R.configmapExclude]: 'app' },
      {},
      { reload: true, auto: true },
    ],
    [
      'secret exclude',
      secret('app'),
      { [R.auto]: 'true', [R.secretExclude]: 'app' },
      {},
      { reload: false, auto: false },
    ],
    [
      'exclude beats named too',
      cm('app'),
      { [R.configmapReload]: 'app', [R.configmapExclude]: 'app' },
      {},
      { reload: false, auto: false },
    ],
    [
      'named wins before auto (not auto: no reference needed)',
      cm('app'),
      { [R.configmapReload]: 'app', [R.auto]: 'true' },
      {},
      { reload: true, auto: false },
    ],
    ['pod template annotations as the fallback', cm('app'), {}, { [R.auto]: 'true' }, { reload: true, auto: true }],
    [
      'the fallback only when the workload has none',
      cm('app'),
      { [R.auto]: 'false' },
      { [R.auto]: 'true' },
      { reload: false, auto: false },
    ],
    [
      'the fallback is per source type (a Secret-only workload annotation)',
      cm('app'),
      { [R.secretAuto]: 'true' },
      { [R.auto]: 'true' },
      { reload: true, auto: true },
    ],
    ['no annotation', cm('app'), {}, {}, { reload: false, auto: false }],
  ])('%s', (_case, source, workload, template, expected) => {
    expect(shouldReload(source, workload, template)).toMatchObject(expected);
  });

  it('an entry that is not RE2 is refused, naming the annotation (the pass skips that workload)', () => {
    expect(() => shouldReload(cm('a'), { [R.configmapReload]: 'a,([' }, {})).toThrow(
      /^configmap\.reloader\.stakater\.com\/reload: "\(\[" is not a valid RE2 pattern: /,
    );
  });

  it.each([
    ['a backreference (not RE2)', '(a)\\1'],
    ['a lookahead (not RE2)', 'a(?=b)'],
  ])('%s is refused', (_case, entry) => {
    expect(() => shouldReload(cm('a'), { [R.configmapReload]: entry }, {})).toThrow(/not a valid RE2 pattern/);
  });
});

describe('references: every form, containers and init containers', () => {
  const spec: PodSpec = {
    volumes: [
      { name: 'cfg', configMap: { name: 'vol-cm' } },
      { name: 'sec', secret: { secretName: 'vol-secret' } },
      {
        name: 'proj',
        projected: { sources: [{ configMap: { name: 'proj-cm' } }, { secret: { name: 'proj-secret' } }] },
      },
      { name: 'init-only', configMap: { name: 'init-cm' } },
    ],
    initContainers: [
      { name: 'init', volumeMounts: [{ name: 'init-only' }], envFrom: [{ secretRef: { name: 'init-secret' } }] },
    ],
    containers: [
      {
        name: 'main',
        env: [{ name: 'A', valueFrom: { configMapKeyRef: { name: 'env-cm' } } }],
        volumeMounts: [{ name: 'cfg' }],
      },
      {
        name: 'sidecar',
        env: [{ name: 'B', valueFrom: { secretKeyRef: { name: 'env-secret' } } }],
        envFrom: [{ configMapRef: { name: 'from-cm' } }],
        volumeMounts: [{ name: 'sec' }, { name: 'proj' }],
      },
    ],
  };
  it('finds every referenced ConfigMap and Secret', () => {
    expect(
      referencedSources(spec)
        .map((s) => `${s.kind}/${s.name}`)
        .sort(),
    ).toEqual([
      'ConfigMap/env-cm',
      'ConfigMap/from-cm',
      'ConfigMap/init-cm',
      'ConfigMap/proj-cm',
      'ConfigMap/vol-cm',
      'Secret/env-secret',
      'Secret/init-secret',
      'Secret/proj-secret',
      'Secret/vol-secret',
    ]);
  });
  it.each([
    ['ConfigMap', 'vol-cm', 'main'],
    ['Secret', 'vol-secret', 'sidecar'],
    ['ConfigMap', 'proj-cm', 'sidecar'],
    ['Secret', 'proj-secret', 'sidecar'],
    ['ConfigMap', 'env-cm', 'main'],
    ['Secret', 'env-secret', 'sidecar'],
    ['ConfigMap', 'from-cm', 'sidecar'],
    ['ConfigMap', 'init-cm', 'main'],
    ['Secret', 'init-secret', 'main'],
    ['ConfigMap', 'unused', undefined],
  ])('%s %s is carried by container %s', (kind, name, container) => {
    expect(containerUsing(spec, kind as SourceKind, name)).toBe(container);
  });
  it.each([
    ['app-config', 'ConfigMap', 'STAKATER_APP_CONFIG_CONFIGMAP'],
    ['db.credentials', 'Secret', 'STAKATER_DB_CREDENTIALS_SECRET'],
    ['-x--y-', 'ConfigMap', 'STAKATER_X_Y__CONFIGMAP'],
  ])('names the env var for %s %s as Reloader does: %s', (name, kind, expected) => {
    expect(envVarName(name, kind as SourceKind)).toBe(expected);
  });
});

describe('content hash', () => {
  it('is unambiguous where a k=v join collides', () => {
    expect(contentHash({ a: 'b;c' }, undefined)).not.toBe(contentHash({ 'a;c': 'b' }, undefined));
    expect(contentHash({ a: 'b', c: 'd' }, undefined)).not.toBe(contentHash({ a: 'b,c=d' }, undefined));
    expect(contentHash({ k: 'v' }, undefined)).not.toBe(contentHash(undefined, { k: 'v' }));
  });
  it('does not depend on key order', () => {
    expect(contentHash({ a: '1', b: '2' }, undefined)).toBe(contentHash({ b: '2', a: '1' }, undefined));
  });
  it('is SHA-256 hex', () => expect(contentHash({}, {})).toMatch(/^[0-9a-f]{64}$/));
});
