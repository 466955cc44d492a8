import { symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { readTargetState } from '../../shared/state/index.js';
import { deployedPath } from '../helpers/deployed.js';
import { uniqueName } from '../helpers/env.js';
import { configMap, yamlDocs } from '../helpers/engine.js';

/**
 * A push that changes what a target renders syncs it, also when the change is reached through a
 * symbolic link (the render follows links that stay inside the repository): through the built
 * webhook and worker bundles and SQS, with the changed paths GitHub would list.
 */
describe('render inputs reached through symbolic links', () => {
  const h = deployedPath('inputs-link');
  const [web, kust] = [uniqueName('web'), uniqueName('kust')];

  it('a push to a file a link in the target path points at, or into a base linked from a kustomization, syncs the target', async () => {
    await h.repo.commit({
      'tidegate.yaml': stringify({
        targets: [
          { name: web, cluster: 'test', path: 'apps/web', targetNamespace: web, wait: false },
          { name: kust, cluster: 'test', path: 'apps/kust', targetNamespace: kust, wait: false },
        ],
      }),
      'shared/settings.yaml': yamlDocs(configMap('settings', { LOG: 'info' })),
      'apps/web/own.yaml': yamlDocs(configMap('own', { a: '1' })),
      'common/base/kustomization.yaml': 'resources: [cm.yaml]\n',
      'common/base/cm.yaml': yamlDocs(configMap('from-base', { LOG: 'info' })),
      'apps/kust/kustomization.yaml': 'resources: [base]\n',
    });
    symlinkSync('../../shared/settings.yaml', join(h.repo.ws.dir, 'apps/web/settings.yaml'));
    symlinkSync('../../common/base', join(h.repo.ws.dir, 'apps/kust/base'));
    const r1 = await h.repo.commit({}, 'link shared manifests');
    await h.push(r1, ['tidegate.yaml', 'apps/web/settings.yaml', 'apps/kust/base']);
    await h.work();
    const { client } = h.repo.engine;
    const data = async () => ({
      web: (await client.get('v1', 'ConfigMap', web, 'settings'))?.['data'],
      kust: (await client.get('v1', 'ConfigMap', kust, 'from-base'))?.['data'],
    });
    expect(await data()).toEqual({ web: { LOG: 'info' }, kust: { LOG: 'info' } });

    const r2 = await h.repo.commit({
      'shared/settings.yaml': yamlDocs(configMap('settings', { LOG: 'debug' })),
      'common/base/cm.yaml': yamlDocs(configMap('from-base', { LOG: 'debug' })),
    });
    await h.push(r2, ['shared/settings.yaml', 'common/base/cm.yaml']);
    await h.work();
    expect(await data()).toEqual({ web: { LOG: 'debug' }, kust: { LOG: 'debug' } });
    for (const t of [web, kust])
      expect((await readTargetState(client, t)).history.at(-1)).toMatchObject({ revision: { sha: r2 } });
  });
});
