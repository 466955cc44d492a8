import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { GitWorkspace, createBareRepo, type GitServer, type TestGitHub } from '../../devenv/index.js';
import { createRuntime } from '../../shared/aws/runtime.js';
import { commitAndPush } from '../../shared/source/index.js';
import { handleMessage } from '../../shared/usecases/index.js';
import { uniqueName } from '../helpers/env.js';
import { configMap, yamlDocs } from '../helpers/engine.js';
import { testClusterSetting } from '../helpers/lambda.js';
import { prEvent } from '../helpers/github.js';
import { startGitHubApp } from '../helpers/github-app.js';

const OWNER = 'acme';
const TTL_SECONDS = 3;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * tidegate as a GitHub App, as deployed (the runtime built from deploy-time settings): the App's
 * JWT is exchanged for installation tokens that expire (after 3 s here) and are refused once
 * expired by the test GitHub and the test git server alike; tidegate keeps working across several
 * token lives, for the API (statuses, check runs, comments) and for git (fetch and push).
 */
describe('GitHub App installation tokens', () => {
  let github: TestGitHub;
  let git: GitServer;
  let privateKey = '';
  let stop: () => Promise<unknown>;
  beforeAll(async () => {
    // The workspace of the test pushes with its own token; tidegate's requests carry installation tokens.
    ({ github, git, privateKey, stop } = await startGitHubApp({
      id: 4242,
      installationId: 77,
      tokenTtlSeconds: TTL_SECONDS,
    }));
  });
  afterAll(async () => {
    expect(github.violations).toEqual([]);
    await stop?.();
  });

  it('syncs, reports, previews and pushes across several token lives; an expired token is refused', async () => {
    const ns = uniqueName('app');
    const name = uniqueName('gitops');
    const url = await createBareRepo(git, `${OWNER}/${name}`);
    const ws = await GitWorkspace.clone(git, url);
    afterAll(() => ws.remove());
    await ws.commit(
      {
        'tidegate.yaml': stringify({
          targets: [{ name: ns, cluster: 'c', path: 'apps', targetNamespace: ns, wait: false }],
        }),
        'apps/app.yaml': yamlDocs(configMap('app', { v: '1' })),
      },
      'v1',
    );
    const runtime = await createRuntime('test', {
      AWS_REGION: 'eu-west-1',
      TIDEGATE_CACHE: mkdtempSync(join(tmpdir(), 'tidegate-app-cache-')),
      TIDEGATE_SETTINGS: JSON.stringify({
        repositories: [{ url, branch: 'main', githubApiUrl: github.url }],
        github: { app: { appId: 4242, privateKey: { value: privateKey } } }, // the installation is found from the repository
        clusters: { c: testClusterSetting() },
        queueUrl: 'http://127.0.0.1:1/unused',
      }),
    });
    const { engine } = await runtime.git();

    const head1 = (await ws.git('rev-parse', 'HEAD')).trim();
    const sync = (sha: string) =>
      handleMessage(
        engine,
        { type: 'sync', repo: url, target: ns, revision: { ref: 'refs/heads/main', sha }, reason: 'push' },
        { send: () => Promise.resolve() },
      );
    expect(await sync(head1)).toMatchObject({ kind: 'synced', result: { outcome: 'applied' } });
    expect(github.statuses(OWNER, name, head1).at(-1)).toMatchObject({ context: `tidegate/${ns}`, state: 'success' });
    expect(github.issuedTokens()).toHaveLength(1);
    const [old = ''] = github.issuedTokens();

    // A token life later: the old token is refused by git and by the API, and tidegate goes on with a new one.
    await sleep(TTL_SECONDS * 1000 + 500);
    const basic = `Basic ${Buffer.from(`x-access-token:${old}`).toString('base64')}`;
    expect(
      (await fetch(`${url}/info/refs?service=git-upload-pack`, { headers: { authorization: basic } })).status,
    ).toBe(401);
    expect(
      (await fetch(`${github.url}/repos/${OWNER}/${name}/pulls`, { headers: { authorization: `token ${old}` } }))
        .status,
    ).toBe(401);
    const head2 = await ws.commit({ 'apps/app.yaml': yamlDocs(configMap('app', { v: '2' })) }, 'v2');
    expect(await sync(head2)).toMatchObject({ kind: 'synced', result: { outcome: 'applied' } });
    expect(await (await engine.connect('c')).get('v1', 'ConfigMap', ns, 'app')).toMatchObject({ data: { v: '2' } });
    expect(github.statuses(OWNER, name, head2).at(-1)).toMatchObject({ state: 'success' });
    expect(github.issuedTokens()).toHaveLength(2);

    // A preview creates its check run (App tokens may) and the comment.
    await sleep(TTL_SECONDS * 1000 + 500);
    github.grant(OWNER, name, 'alice', 'write');
    const head = await ws.commit({ 'apps/app.yaml': yamlDocs(configMap('app', { v: '3' })) }, 'v3', 'change');
    const { number } = await github.openPullRequest(OWNER, name, { head: 'change', base: 'main', author: 'alice' });
    const routed = prEvent({ owner: OWNER, name, url }, { number, action: 'opened', sha: head, branch: 'change' });
    expect(await handleMessage(engine, routed.messages[0]!, { send: () => Promise.resolve() })).toMatchObject({
      kind: 'previewed',
      checkRun: true,
      comment: 'created',
    });
    expect(github.checkRuns(OWNER, name).at(-1)).toMatchObject({ head_sha: head, name: 'tidegate/preview' });

    // Image write-back pushes with the App token too.
    await sleep(TTL_SECONDS * 1000 + 500);
    const pushed = await commitAndPush(engine.gitSource(url), {
      branch: 'main',
      author: { name: 'tidegate', email: 'tidegate@example.test' },
      cacheDir: engine.settings.cacheDir,
      change: (dir) => {
        writeFileSync(join(dir, 'apps', 'app.yaml'), yamlDocs(configMap('app', { v: '4' })));
        return Promise.resolve('image update');
      },
    });
    expect(pushed).toMatchObject({ pushed: true, sha: expect.stringMatching(/^[0-9a-f]{40}$/) });
    await ws.git('fetch', '--quiet', 'origin', 'main');
    expect(await ws.git('show', 'FETCH_HEAD:apps/app.yaml')).toBe(yamlDocs(configMap('app', { v: '4' })));
    expect(github.issuedTokens().length).toBeGreaterThanOrEqual(4);
  }, 60_000);
});
