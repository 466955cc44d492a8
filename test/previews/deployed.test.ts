import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { previewTarget } from '../../shared/model/index.js';
import { readPreviews } from '../../shared/state/index.js';
import { deployedPath } from '../helpers/deployed.js';
import { uniqueName } from '../helpers/env.js';
import { configMap, yamlDocs } from '../helpers/engine.js';
import { prPayload } from '../helpers/github.js';

/**
 * Preview environments on the deployed path: GitHub's pull_request deliveries to the built
 * github-webhook bundle, SQS in moto, the built sync-worker bundle (each in a process of its own,
 * as Lambda runs them), the cluster from the deploy-time settings.
 */
describe('preview environments through the built bundles', () => {
  const h = deployedPath('pv-deployed');

  it('pull request opened → its namespace runs the head; closed → torn down, deployment inactive', async () => {
    const target = uniqueName('site');
    const main = await h.repo.commit({
      'tidegate.yaml': stringify({
        targets: [
          {
            name: target,
            cluster: 'test',
            path: 'site',
            targetNamespace: target,
            substitute: { HOST: 'www.example.com' },
            preview: { enabled: true, substitute: { HOST: 'pr-{{number}}.preview.example.com' } },
          },
        ],
      }),
      'site/config.yaml': yamlDocs(configMap('site', { host: '${HOST}', v: '1' })),
    });
    await h.push(main, ['tidegate.yaml', 'site/config.yaml']);
    await h.work();
    const client = h.repo.engine.client;
    expect((await client.get('v1', 'ConfigMap', target, 'site'))?.['data']).toEqual({
      host: 'www.example.com',
      v: '1',
    });

    h.github.grant('acme', h.repo.name, 'alice', 'write');
    const sha = await h.repo.ws.commit(
      { 'site/config.yaml': yamlDocs(configMap('site', { host: '${HOST}', v: '2' })) },
      'v2',
      'v2',
    );
    const { number } = await h.github.openPullRequest('acme', h.repo.name, {
      head: 'v2',
      base: 'main',
      author: 'alice',
    });
    const repo = { owner: 'acme', name: h.repo.name, url: h.repo.url };
    await h.deliver('pull_request', prPayload(repo, { number, action: 'opened', sha, branch: 'v2' }));
    await h.work();
    const ns = `pr-${number}-${target}`;
    expect((await client.get('v1', 'ConfigMap', ns, 'site'))?.['data']).toEqual({
      host: `pr-${number}.preview.example.com`,
      v: '2',
    });
    expect((await client.get('v1', 'ConfigMap', target, 'site'))?.['data']).toMatchObject({ v: '1' });
    expect(
      h.github.deployments('acme', h.repo.name).find((d) => d.environment === `preview/pr-${number}`),
    ).toMatchObject({ sha, statuses: ['success'], transient: true });
    expect(h.github.comments('acme', h.repo.name, number).at(-1)?.body).toContain(`namespace \`${ns}\``);

    h.github.close('acme', h.repo.name, number);
    await h.deliver('pull_request', prPayload(repo, { number, action: 'closed', sha, branch: 'v2' }));
    await h.work();
    expect(await client.get('v1', 'ConfigMap', ns, 'site')).toBeUndefined();
    expect((await readPreviews(client)).some((e) => e.name === previewTarget(number, target))).toBe(false);
    expect(
      h.github.deployments('acme', h.repo.name).find((d) => d.environment === `preview/pr-${number}`)?.statuses,
    ).toEqual(['success', 'inactive']);
    expect(h.github.violations).toEqual([]);
  });
});
