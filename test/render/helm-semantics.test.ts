import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { SyncResult } from '../../shared/model/index.js';
import { gitopsRepo } from '../helpers/engine.js';
import { uniqueName } from '../helpers/env.js';

/** Test hooks are run by `helm test`, not installed with the release: tidegate never applies them. */
const CHART = stringify({ apiVersion: 'v2', name: 'app', version: '0.1.0' });
const TEMPLATES = {
  'chart/templates/config.yaml': `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-config
data:
  greeting: {{ .Values.greeting | quote }}
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

describe('helm charts: test hooks', () => {
  it('a chart with test hooks (random names, both spellings): never applied, and a second sync writes nothing', async () => {
    const repo = await gitopsRepo('helm-hooks');
    const ns = uniqueName('helm-hooks');
    const target = uniqueName('helm-hooks');
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
    expect(written(first).sort()).toEqual([`created ConfigMap/${target}-config`, `created Namespace/${ns}`]);
    const [second] = await repo.sync(target);
    expect(second?.outcome, second?.error).toBe('unchanged');
    expect(written(second)).toEqual([]);
    expect((await repo.engine.client.list('v1', 'Pod', { namespace: ns })).map((p) => p.metadata.name)).toEqual([]);
  });
});
