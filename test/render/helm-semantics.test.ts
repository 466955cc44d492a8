import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { SyncResult } from '../../shared/model/index.js';
import { gitopsRepo } from '../helpers/engine.js';
import { uniqueName } from '../helpers/env.js';

/**
 * What real charts need beyond `helm template`: test hooks are not part of a release, and values a
 * chart generates at random (passwords, names of test pods) must not make every sync a change.
 */
const CHART = stringify({ apiVersion: 'v2', name: 'app', version: '0.1.0' });
const TEMPLATES = {
  'chart/templates/config.yaml': `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-config
data:
  greeting: {{ .Values.greeting | quote }}
`,
  // A generated password, as many charts make one when none is given.
  'chart/templates/secret.yaml': `apiVersion: v1
kind: Secret
metadata:
  name: {{ .Release.Name }}-password
  annotations:
    generated-at: {{ randNumeric 12 | quote }}
data:
  password: {{ randAlphaNum 24 | b64enc | quote }}
stringData:
  token: {{ randAlphaNum 16 | quote }}
`,
  // Test hooks with random names, in both spellings Helm accepts.
  'chart/templates/tests/test-connection.yaml': `apiVersion: v1
kind: Pod
metadata:
  name: {{ .Release.Name }}-test-{{ randAlphaNum 5 | lower }}
  annotations:
    helm.sh/hook: test
spec:
  restartPolicy: Never
  containers:
    - name: wget
      image: busybox
      command: ['wget', '{{ .Release.Name }}-config']
`,
  'chart/templates/tests/test-legacy.yaml': `apiVersion: v1
kind: Pod
metadata:
  name: {{ .Release.Name }}-legacy-{{ randAlphaNum 5 | lower }}
  annotations:
    helm.sh/hook: test-success
spec:
  restartPolicy: Never
  containers:
    - name: check
      image: busybox
`,
};

const written = (r: SyncResult | undefined): string[] =>
  (r?.changeSet.changes ?? [])
    .filter((c) => c.action !== 'unchanged')
    .map((c) => `${c.action} ${c.ref.kind}/${c.ref.name}`);

describe('helm charts: test hooks and random values', () => {
  it('a chart with test hooks and randAlphaNum values: no test pod applied; two syncs in a row, the second writes nothing and the password stays', async () => {
    const repo = await gitopsRepo('helm-random');
    const ns = uniqueName('helm-random');
    const target = uniqueName('helm-random');
    await repo.commit({
      'tidegate.yaml': stringify({
        targets: [{ name: target, cluster: 'test', path: 'chart', targetNamespace: ns, wait: false }],
      }),
      'chart/Chart.yaml': CHART,
      'chart/values.yaml': 'greeting: hello\n',
      ...TEMPLATES,
    });
    const [first] = await repo.sync(target);
    expect(first?.outcome, first?.error).toBe('applied');
    expect(written(first).sort()).toEqual(
      [`created Namespace/${ns}`, `created ConfigMap/${target}-config`, `created Secret/${target}-password`].sort(),
    );
    const pods = await repo.engine.client.list('v1', 'Pod', { namespace: ns });
    expect(pods.map((p) => p.metadata.name)).toEqual([]);
    const secret = async () => repo.engine.client.get('v1', 'Secret', ns, `${target}-password`);
    const before = await secret();

    const [second] = await repo.sync(target);
    expect(second?.outcome, second?.error).toBe('unchanged');
    expect(written(second)).toEqual([]);
    const after = await secret();
    expect(after?.['data']).toEqual(before?.['data']);
    expect(after?.metadata.annotations?.['generated-at']).toBe(before?.metadata.annotations?.['generated-at']);
    expect(after?.metadata.resourceVersion).toBe(before?.metadata.resourceVersion);

    // A change in Git to the same object still goes through, and the generated values stay.
    await repo.commit({
      'chart/templates/secret.yaml': TEMPLATES['chart/templates/secret.yaml'].replace('generated-at', 'made-at'),
    });
    const [third] = await repo.sync(target);
    expect(third?.outcome, third?.error).toBe('applied');
    expect(written(third)).toEqual([`configured Secret/${target}-password`]);
    const changed = await secret();
    expect(changed?.['data']).toEqual(before?.['data']);
    expect(changed?.metadata.annotations?.['made-at']).toMatch(/^\d{12}$/);
  });
});
