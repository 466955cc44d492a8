import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { createRuntime } from '../../shared/aws/runtime.js';
import { errorMessage } from '../../shared/model/index.js';
import { syncRepo } from '../../shared/usecases/index.js';
import { uniqueName } from '../helpers/env.js';
import { configMap, gitopsRepo, yamlDocs } from '../helpers/engine.js';
import { motoEnv, testClusterSetting } from '../helpers/lambda.js';

/** Found by review: one repository whose credential cannot be read stopped the poll and the worker for every repository. */
describe('repository credentials', () => {
  it('a repository whose token secret cannot be read fails its own syncs with that error; the other repository syncs', async () => {
    const ns = uniqueName('cred');
    const good = await gitopsRepo('cred');
    await good.commit({
      'tidegate.yaml': stringify({
        targets: [{ name: ns, cluster: 'c', path: 'apps', targetNamespace: ns, wait: false }],
      }),
      'apps/app.yaml': yamlDocs(configMap('app', { v: '1' })),
    });
    const broken = await gitopsRepo('cred');
    const missing = `tidegate/${uniqueName('missing')}`;
    const runtime = await createRuntime('test', {
      ...motoEnv(),
      TIDEGATE_CACHE: mkdtempSync(join(tmpdir(), 'tidegate-cred-cache-')),
      TIDEGATE_SETTINGS: JSON.stringify({
        repositories: [
          { url: good.url, branch: 'main' },
          { url: broken.url, branch: 'main', token: { secretsManager: missing } },
        ],
        clusters: { c: testClusterSetting() },
        queueUrl: 'http://127.0.0.1:1/unused',
      }),
    });
    const { engine } = await runtime.git();
    expect((await syncRepo(engine, { repo: good.url }))[0]).toMatchObject({ outcome: 'applied' });
    const failure = await syncRepo(engine, { repo: broken.url }).then(() => 'synced', errorMessage);
    expect(failure).toContain(`cannot read secret ${missing}`);
  });
});
