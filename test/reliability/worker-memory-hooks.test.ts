import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { testEnv, uniqueName } from '../helpers/env.js';
import { gitopsRepo } from '../helpers/engine.js';
import { kubeClient } from '../helpers/state.js';
import { syncBatch, syncSpans, targetPerApp } from '../helpers/worker-batch.js';

/**
 * A chart's hooks are rendered, placed, applied and waited for by the same sync: they count in what its
 * message holds. Two charts of 1 object and 30 hooks each (31 documents; render.maxDocuments 40, 20
 * held together) in one batch run one after the other, as two targets of 30 plain objects do
 * (worker-memory.test.ts). (Found by a review with write access: hooks were not counted.)
 */
const direct = kubeClient();

const chart = (hooks: number): Record<string, string> => ({
  'Chart.yaml': stringify({ apiVersion: 'v2', name: 'hooky', version: '0.1.0' }),
  'templates/cm.yaml': stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'main' }, data: { v: '1' } }),
  'templates/hooks.yaml': `{{- range $i := until ${hooks} }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: hook-{{ $i }}
  annotations:
    helm.sh/hook: pre-install,pre-upgrade
    helm.sh/hook-delete-policy: before-hook-creation
data:
  v: "{{ $i }}"
{{- end }}
`,
});

describe('one invocation, several targets at once: a chart’s hooks are held but not counted', () => {
  it('two targets that each render more than half of render.maxDocuments (as hooks) never overlap', async () => {
    process.env['TIDEGATE_HELM'] = testEnv().tools.helm;
    const names = ['a', 'b', 'c'].map((n) => uniqueName(`hk${n}`));
    const repo = await gitopsRepo('hooks');
    const files: Record<string, string> = {
      'tidegate.yaml': targetPerApp(names),
    };
    names.forEach((_, i) => {
      for (const [f, text] of Object.entries(chart(i < 2 ? 30 : 1))) files[`apps/${i}/${f}`] = text;
    });
    const sha = await repo.commit(files);
    const delivery = await syncBatch(
      repo.url,
      sha,
      names.map((n) => [n]),
      { render: { maxDocuments: 40 }, worker: { concurrency: 4 } },
    );
    expect(delivery.failures).toEqual([]);
    const big = names.slice(0, 2);
    // Each did render, apply and wait for its 30 hooks (kept in the cluster: before-hook-creation).
    for (const t of big) expect(await direct.get('v1', 'ConfigMap', t, 'hook-29')).toBeDefined();
    const spans = await syncSpans(direct, big);
    const [first, second] = spans.sort((x, y) => x.start - y.start);
    expect(second?.start).toBeGreaterThanOrEqual(first?.end ?? Infinity);
  });
});
