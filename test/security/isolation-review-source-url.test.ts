import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { GitWorkspace, createBareRepo } from '../../devenv/index.js';
import { startGitServer, type GitServer } from '../../devenv/git-server.js';
import { createRuntime } from '../../shared/aws/runtime.js';
import { syncRepo } from '../../shared/usecases/index.js';
import { testKubeConfig, uniqueName } from '../helpers/env.js';
import { configMap, gitopsRepo, secret, yamlDocs } from '../helpers/engine.js';
import { motoEnv, testClusterSetting } from '../helpers/lambda.js';
import { ControllerClient } from '../../devenv/index.js';

/**
 * Repository A is private: the deploy-time settings give the worker A's token (repositories[].token),
 * and nothing else can read A. Repository B is tracked by the same deployment, without a token (or
 * with its own). A writer of B adds a target whose `source.url` is A's URL and whose `path` is A's
 * directory of manifests (or a Flux GitRepository with A's URL: the same `source`). Nothing checks
 * that a target's source is its own repository or one it holds credentials for: syncOne
 * (shared/usecases/sync-repo.ts targetCheckout) calls ctx.gitSource(A's url), and the runtime's
 * gitSource (shared/aws/runtime.ts) hands out the token of whatever URL it is given. So B's sync
 * fetches A's private repository with A's token and applies A's files (here a Secret A keeps in Git)
 * into B's own namespace, where B's writers read them; B's target also follows A's branch.
 * Safe: B's sync of a target sourced from another tracked repository is refused (or made without
 * A's credentials), and nothing of A's repository lands in B's namespace.
 */
describe("a target's source names another tracked repository", () => {
  let server: GitServer;
  const tokenA = `tok-a-${uniqueName('x')}`;
  let urlA = '';
  let wsA: GitWorkspace;
  beforeAll(async () => {
    server = await startGitServer({ root: mkdtempSync(join(tmpdir(), 'r3src-git-')), token: tokenA });
    urlA = await createBareRepo(server, uniqueName('r3src-a'));
    wsA = await GitWorkspace.clone(server, urlA);
  });
  afterAll(async () => {
    wsA.remove();
    await server.stop();
  });

  it("B's target sourced from A's private repository is not fetched with A's token: nothing of A lands in B's namespace", async () => {
    const nsA = uniqueName('r3src-a');
    const nsB = uniqueName('r3src-b');
    await wsA.commit(
      {
        'tidegate.yaml': stringify({
          targets: [{ name: nsA, cluster: 'c', path: 'apps', targetNamespace: nsA, wait: false }],
        }),
        'apps/secret.yaml': yamlDocs(secret('db', { password: 'a-private-password' })),
        'apps/cm.yaml': yamlDocs(configMap('a-settings', { owner: 'a' })),
      },
      'a',
    );
    const b = await gitopsRepo('r3src-b', { owner: 'other' });
    await b.commit({
      'tidegate.yaml': stringify({
        targets: [
          {
            name: nsB,
            cluster: 'c',
            source: { url: urlA, ref: { branch: 'main' } },
            path: 'apps',
            targetNamespace: nsB,
            wait: false,
          },
        ],
      }),
    });
    const runtime = await createRuntime('test', {
      ...motoEnv(),
      TIDEGATE_CACHE: mkdtempSync(join(tmpdir(), 'tidegate-r3src-cache-')),
      TIDEGATE_SETTINGS: JSON.stringify({
        repositories: [
          { url: urlA, branch: 'main', token: { value: tokenA } },
          { url: b.url, branch: 'main' },
        ],
        clusters: { c: testClusterSetting() },
        queueUrl: 'http://127.0.0.1:1/unused',
      }),
    });
    const { engine } = await runtime.git();
    // A syncs as usual with its token.
    expect((await syncRepo(engine, { repo: urlA }))[0]).toMatchObject({ outcome: 'applied' });

    const [resultB] = await syncRepo(engine, { repo: b.url, target: nsB });
    const client = new ControllerClient(testKubeConfig());
    // Nothing of A's private repository was applied where B's writers read it.
    expect(await client.get('v1', 'Secret', nsB, 'db')).toBeUndefined();
    expect(await client.get('v1', 'ConfigMap', nsB, 'a-settings')).toBeUndefined();
    expect(resultB?.outcome).toBe('failed');
    expect(resultB?.error).toMatch(
      /401 Unauthorized \(a source other than the target's own repository is fetched without credentials/,
    );
  }, 120_000);

  it("a tenant's repository read with its own credentials: the token the settings give one repository for that URL (repositories[].sourceTokens) reads it for that repository's targets only", async () => {
    await wsA.commit({ 'tenant/cm.yaml': yamlDocs(configMap('tenant-settings', { owner: 'tenant' })) }, 'tenant');
    const platform = await gitopsRepo('r3src-platform', { owner: 'other' });
    const other = await gitopsRepo('r3src-other', { owner: 'other' });
    const target = (name: string) =>
      stringify({
        targets: [
          {
            name,
            cluster: 'c',
            source: { url: urlA, ref: { branch: 'main' } },
            path: 'tenant',
            targetNamespace: name,
            wait: false,
          },
        ],
      });
    const nsP = uniqueName('r3src-p');
    const nsO = uniqueName('r3src-o');
    await platform.commit({ 'tidegate.yaml': target(nsP) });
    await other.commit({ 'tidegate.yaml': target(nsO) });
    const runtime = await createRuntime('test', {
      ...motoEnv(),
      TIDEGATE_CACHE: mkdtempSync(join(tmpdir(), 'tidegate-r3src-cache-')),
      TIDEGATE_SETTINGS: JSON.stringify({
        repositories: [
          { url: platform.url, branch: 'main', sourceTokens: { [urlA]: { value: tokenA } } },
          { url: other.url, branch: 'main' },
        ],
        clusters: { c: testClusterSetting() },
        queueUrl: 'http://127.0.0.1:1/unused',
      }),
    });
    const { engine } = await runtime.git();
    const client = new ControllerClient(testKubeConfig());
    const [p] = await syncRepo(engine, { repo: platform.url, target: nsP });
    expect(p?.outcome, p?.error).toBe('applied');
    expect((await client.get('v1', 'ConfigMap', nsP, 'tenant-settings'))?.['data']).toEqual({ owner: 'tenant' });
    // Another repository naming the same URL gets no token, not even after the platform's fetch filled a cache.
    const [o] = await syncRepo(engine, { repo: other.url, target: nsO });
    expect(o?.outcome).toBe('failed');
    expect(o?.error).toMatch(/401 Unauthorized/);
    expect(await client.get('v1', 'ConfigMap', nsO, 'tenant-settings')).toBeUndefined();
  }, 120_000);
});
