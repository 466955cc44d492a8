import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, startHelmRepo, startRegistry, type HelmRepo } from '../../devenv/index.js';
import { localSettings } from '../../shared/config/index.js';
import { render } from '../../shared/render/index.js';
import { chartRepositories } from '../../shared/source/index.js';
import { tempTree } from '../helpers/files.js';
import { testEnv } from '../helpers/env.js';

const CONFIG = `apiVersion: v1
kind: ConfigMap
metadata:
  name: chart-version
data:
  version: {{ .Chart.Version | quote }}
`;

/**
 * Charts whose versions carry a "v" (cert-manager's and Envoy Gateway's, tagged v1.21.1 in their
 * OCI registries, as their Chart.yaml versions are): a range picks among them as a Flux OCIRepository
 * does (tagPrefixV, set for charts read from one); Helm reads strict versions only, and so does a chart without it.
 */
describe('OCI chart tags with a "v"', () => {
  let helm: HelmRepo;
  let registry: Awaited<ReturnType<typeof startRegistry>>;
  let dir: string;
  beforeAll(async () => {
    helm = await startHelmRepo(testEnv().tools.helm);
    dir = mkdtempSync(join(tmpdir(), 'chart-v-tags-'));
    registry = await startRegistry(dir);
    for (const v of ['v1.20.3', 'v1.21.0-beta.0', 'v1.21.1', 'v2.0.0']) {
      const archive = await helm.publish('vtagged', v, { 'config.yaml': CONFIG });
      await run(testEnv().tools.helm, ['push', archive, `oci://${registry.host}/charts`, '--plain-http']);
    }
  });
  afterAll(async () => {
    await helm?.stop();
    await registry?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('1.x picks the newest v-tagged release in the range (no prerelease), and the chart of that tag is rendered', async () => {
    const settings = localSettings();
    const local = { ...settings, render: { ...settings.render, allowedHosts: ['127.0.0.1'] } };
    const result = await render({
      root: tempTree({ 'values/.keep': '' }),
      path: 'values',
      mode: 'auto',
      substitute: {},
      defaultReleaseName: 'vtagged',
      settings: local,
      chart: {
        repository: `oci://${registry.host}/charts`,
        name: 'vtagged',
        version: '1.x',
        insecure: true,
        tagPrefixV: true,
      },
      fetchChart: chartRepositories(local),
    });
    expect(result.chart?.version).toBe('v1.21.1');
    expect(result.objects.map((o) => o.object['data'])).toEqual([{ version: 'v1.21.1' }]);
    // As Helm reads them (no tagPrefixV): no tag is a version.
    await expect(
      render({
        root: tempTree({ 'values/.keep': '' }),
        path: 'values',
        mode: 'auto',
        substitute: {},
        defaultReleaseName: 'vtagged',
        settings: local,
        chart: { repository: `oci://${registry.host}/charts`, name: 'vtagged', version: '1.x', insecure: true },
        fetchChart: chartRepositories(local),
      }),
    ).rejects.toThrow(/no version matches 1\.x: the repository has no tags that are versions/);
  });
});
