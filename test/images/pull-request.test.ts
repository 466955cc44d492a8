import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { pushImage, startGitHub, type TestGitHub } from '../../devenv/index.js';
import { handleMessage, type EngineContext, type Queue, type WorkOutcome } from '../../shared/usecases/index.js';
import type { ImagesWritten } from '../../shared/usecases/image-updates.js';
import { GitHub } from '../../shared/github/index.js';
import type { QueueMessage } from '../../shared/model/index.js';
import { testEnv, uniqueName } from '../helpers/env.js';
import { gitopsRepo, markedDeployment } from '../helpers/engine.js';

const OWNER = 'acme';
const TOKEN = 'ghp_test_token_for_pull_requests';

const deployYaml = (image: string) => markedDeployment(image, 'flux-system:podinfo');

/** A queue that only records what the worker sends. */
const recordingQueue = (): Queue & { sent: QueueMessage[] } => {
  const sent: QueueMessage[] = [];
  return { sent, send: (m) => Promise.resolve(void sent.push(...m)) };
};

const written = (out: WorkOutcome): ImagesWritten[] => {
  if (out.kind !== 'images-written')
    throw new Error(`expected images-written, got ${out.kind}: ${JSON.stringify(out)}`);
  return out.updates;
};

describe('image automation with writeBack: pullRequest (GitHub API from its OpenAPI description)', () => {
  let github: TestGitHub;
  beforeAll(async () => {
    github = await startGitHub({ token: TOKEN, gitRoot: testEnv().git.root });
  });
  afterAll(() => github?.stop());

  it('opens one pull request per policy, updates it for a newer tag, leaves the tracked branch and the cluster alone until merged', async () => {
    const reg = testEnv().registry;
    const path = `apps/${uniqueName('podinfo')}`;
    const image = `${reg.host}/${path}`;
    await pushImage(reg, path, '1.0.0');
    const ns = uniqueName('img-pr');
    const repo = await gitopsRepo('img-pr', { owner: OWNER });
    await repo.commit({
      'tidegate.yaml': stringify({
        targets: [{ name: ns, cluster: 't', path: 'apps', targetNamespace: ns, wait: false }], // target names are cluster-wide: unique per test
        images: [
          {
            name: 'podinfo',
            repository: image,
            insecure: true,
            policy: { semver: { range: '>=1.0.0' } },
            writeBack: 'pullRequest',
          },
        ],
      }),
      'apps/deploy.yaml': deployYaml(`${image}:1.0.0`),
    });
    await repo.sync(ns);
    const ctx: EngineContext = {
      ...repo.engine,
      repositories: [{ url: repo.url, branch: 'main' }],
      github: () => new GitHub({ apiUrl: github.url, token: TOKEN }),
    };
    const main = async () => (await repo.ws.git('ls-remote', 'origin', 'refs/heads/main')).split('\t')[0] ?? '';
    const branchHead = async () =>
      (await repo.ws.git('ls-remote', 'origin', 'refs/heads/tidegate/images/podinfo')).split('\t')[0];
    const liveImage = async () =>
      ((await repo.engine.client.get('apps/v1', 'Deployment', ns, 'podinfo'))?.['spec'] as any).template.spec
        .containers[0].image as string;
    const mainBefore = await main();
    const imageMsg: QueueMessage = { type: 'image', registry: reg.host, repository: path, source: 'distribution' };

    // 1.1.0: a branch with exactly the marked line changed, and one pull request onto main.
    await pushImage(reg, path, '1.1.0');
    const queue = recordingQueue();
    const [first] = written(await handleMessage(ctx, imageMsg, queue));
    expect(first?.pullRequest).toMatchObject({ action: 'created', branch: 'tidegate/images/podinfo' });
    expect(queue.sent).toEqual([]); // nothing to sync: main did not move
    expect(await main()).toBe(mainBefore);
    expect(await branchHead()).toBe(first?.sha);
    await repo.ws.git('fetch', '--quiet', 'origin', 'tidegate/images/podinfo');
    const diff = (await repo.ws.git('diff', '--unified=0', mainBefore, 'FETCH_HEAD'))
      .split('\n')
      .filter((l) => /^[-+][^-+]/.test(l));
    expect(diff).toEqual([
      `-          image: ${image}:1.0.0 # {"$imagepolicy": "flux-system:podinfo"}`,
      `+          image: ${image}:1.1.0 # {"$imagepolicy": "flux-system:podinfo"}`,
    ]);
    let pulls = github.pulls(OWNER, repo.name);
    expect(pulls).toHaveLength(1);
    expect(pulls[0]).toMatchObject({
      state: 'open',
      title: 'tidegate: update image podinfo to 1.1.0',
      head: { ref: 'tidegate/images/podinfo', sha: first?.sha },
      base: { ref: 'main' },
    });
    expect(String(pulls[0]?.body)).toContain(`| \`apps/deploy.yaml:14\` | \`${image}:1.0.0\` | \`${image}:1.1.0\` |`);

    // The same tag again: the branch already holds it, nothing is pushed, the pull request is untouched.
    const [again] = written(await handleMessage(ctx, imageMsg, queue));
    expect(again?.pullRequest?.action).toBe('unchanged');
    expect(await branchHead()).toBe(first?.sha);

    // 1.2.0: the same pull request (and branch) is updated, never a second one.
    await pushImage(reg, path, '1.2.0');
    const [second] = written(await handleMessage(ctx, imageMsg, queue));
    expect(second?.pullRequest).toMatchObject({ action: 'updated', number: first?.pullRequest?.number });
    expect(await branchHead()).toBe(second?.sha);
    pulls = github.pulls(OWNER, repo.name);
    expect(pulls).toHaveLength(1);
    expect(pulls[0]).toMatchObject({ title: 'tidegate: update image podinfo to 1.2.0', head: { sha: second?.sha } });
    expect(await main()).toBe(mainBefore);
    expect(await liveImage()).toBe(`${image}:1.0.0`); // the registry never changes the cluster

    // Merging is what gets applied; afterwards the markers are current and nothing is proposed.
    await repo.ws.git('fetch', '--quiet', 'origin', 'tidegate/images/podinfo');
    await repo.ws.git('push', '--quiet', 'origin', 'FETCH_HEAD:refs/heads/main');
    await repo.sync(ns);
    expect(await liveImage()).toBe(`${image}:1.2.0`);
    expect(written(await handleMessage(ctx, imageMsg, queue))).toEqual([]);

    expect(github.violations).toEqual([]);
    expect(new Set(github.calls.map((c) => `${c.operationId} ${c.status}`))).toEqual(
      new Set(['pulls/list 200', 'pulls/create 201', 'pulls/update 200']),
    );
  });

  it('writeBack auto: where a target requires approvals, the update is proposed as a pull request, never committed to the branch', async () => {
    const reg = testEnv().registry;
    const path = `apps/${uniqueName('auto')}`;
    await pushImage(reg, path, '1.0.0');
    const repo = await gitopsRepo('img-auto', { owner: OWNER });
    await repo.commit({
      'tidegate.yaml': stringify({
        targets: [{ name: 'app', cluster: 't', path: 'apps', gate: { approvals: 1 } }],
        images: [
          { name: 'podinfo', repository: `${reg.host}/${path}`, insecure: true, policy: { semver: { range: '*' } } },
        ],
      }),
      'apps/deploy.yaml': deployYaml(`${reg.host}/${path}:1.0.0`),
    });
    const before = (await repo.ws.git('ls-remote', 'origin', 'refs/heads/main')).split('\t')[0];
    await pushImage(reg, path, '1.0.1');
    const ctx: EngineContext = {
      ...repo.engine,
      repositories: [{ url: repo.url, branch: 'main' }],
      github: () => new GitHub({ apiUrl: github.url, token: TOKEN }),
    };
    const queue = recordingQueue();
    const [update] = written(
      await handleMessage(ctx, { type: 'image', registry: reg.host, repository: path, source: 'distribution' }, queue),
    );
    expect(update?.pullRequest).toMatchObject({ action: 'created', branch: 'tidegate/images/podinfo' });
    expect((await repo.ws.git('ls-remote', 'origin', 'refs/heads/main')).split('\t')[0]).toBe(before);
    expect(queue.sent).toEqual([]);
  });

  it('refuses a pull request policy without GitHub API access, before pushing anything', async () => {
    const reg = testEnv().registry;
    const path = `apps/${uniqueName('nogh')}`;
    await pushImage(reg, path, '2.0.0');
    const repo = await gitopsRepo('img-nogh', { owner: OWNER });
    await repo.commit({
      'tidegate.yaml': stringify({
        targets: [{ name: 'app', cluster: 't', path: 'apps' }],
        images: [
          {
            name: 'web',
            repository: `${reg.host}/${path}`,
            insecure: true,
            policy: { semver: { range: '*' } },
            writeBack: 'pullRequest',
          },
        ],
      }),
      'apps/deploy.yaml': deployYaml(`${reg.host}/${path}:1.0.0`).replace('flux-system:podinfo', 'flux-system:web'),
    });
    const ctx: EngineContext = { ...repo.engine, repositories: [{ url: repo.url, branch: 'main' }] };
    // That repository's update fails (a result: retrying cannot help, and other repositories go on).
    expect(
      await handleMessage(
        ctx,
        { type: 'image', registry: reg.host, repository: path, source: 'distribution' },
        recordingQueue(),
      ),
    ).toEqual({
      kind: 'images-written',
      updates: [],
      failed: [
        {
          repo: repo.url,
          error: expect.stringMatching(/writes back with a pull request, but .* has no GitHub API access/),
        },
      ],
    });
    expect(await repo.ws.git('ls-remote', 'origin', 'refs/heads/tidegate/*')).toBe('');
  });

  it('two workers racing to open the same pull request end with one (GitHub refuses the second create with 422)', async () => {
    const repo = await gitopsRepo('img-race', { owner: OWNER });
    await repo.commit({ 'a.txt': 'a\n' });
    await repo.ws.commit({ 'a.txt': 'b\n' }, 'change', 'tidegate/images/race');
    const client = new GitHub({ apiUrl: github.url, token: TOKEN });
    const pr = { head: 'tidegate/images/race', base: 'main', title: 'update race', body: 'body' };
    // Both workers list (and find nothing) before either creates.
    let arrived = 0;
    let release = (): void => undefined;
    const bothListed = new Promise<void>((resolve) => (release = resolve));
    const unhook = github.before('pulls/list', () => (++arrived === 2 ? (release(), bothListed) : bothListed));
    const results = await Promise.all([
      client.ensurePullRequest({ owner: OWNER, repo: repo.name }, pr),
      client.ensurePullRequest({ owner: OWNER, repo: repo.name }, pr),
    ]);
    unhook();
    expect(results.map((r) => r.action).sort()).toEqual(['created', 'unchanged']);
    expect(results[0]?.number).toBe(results[1]?.number);
    expect(github.pulls(OWNER, repo.name)).toHaveLength(1);
    expect(
      github.calls
        .filter((c) => c.path.includes(repo.name) && c.operationId === 'pulls/create')
        .map((c) => c.status)
        .sort(),
    ).toEqual([201, 422]);
  });

  it('the test GitHub answers as the description says: bad credentials, invalid bodies and unserved operations are not waved through', async () => {
    const post = (path: string, body: unknown, token = TOKEN) =>
      fetch(`${github.url}${path}`, {
        method: 'POST',
        headers: { authorization: `token ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    expect((await post('/repos/acme/x/pulls', { title: 't', head: 'a', base: 'main' }, 'wrong')).status).toBe(401);
    const invalid = await post('/repos/acme/x/pulls', { title: 't', head: 'a', base: 'main', draft: 'yes' });
    expect(invalid.status).toBe(422);
    expect(JSON.stringify(await invalid.json())).toContain('/draft must be boolean');
    const before = github.violations.length;
    expect((await post('/repos/acme/x/issues', { title: 't' })).status).toBe(404);
    expect(github.violations.slice(before)).toEqual(['not served: POST /repos/acme/x/issues (issues/create)']);
    github.violations.splice(before);
  });
});
