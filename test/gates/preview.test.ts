import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { startGitHub, type TestGitHub } from '../../devenv/index.js';
import { handleMessage, type EngineContext, type Queue } from '../../shared/usecases/index.js';
import { GitHub } from '../../shared/github/index.js';
import { prEvent } from '../helpers/github.js';
import { testEnv, uniqueName } from '../helpers/env.js';
import { deployment, gitopsRepo, yamlDocs } from '../helpers/engine.js';

const OWNER = 'acme';
const TOKEN = 'ghp_preview_test_token';
const noQueue: Queue = { send: () => Promise.resolve() };
describe('pull request preview: server-side dry-run against the live cluster, one comment updated in place, a check run', () => {
  let github: TestGitHub;
  beforeAll(async () => {
    github = await startGitHub({ token: TOKEN, gitRoot: testEnv().git.root });
  });
  afterAll(() => github?.stop());

  it('a pull request that changes replicas and adds a Secret shows the replica diff and no secret value; a new push updates the same comment', async () => {
    const ns = uniqueName('preview');
    const repo = await gitopsRepo('preview', { owner: OWNER });
    const ctx: EngineContext = { ...repo.engine, github: () => new GitHub({ apiUrl: github.url, token: TOKEN }) };
    await repo.commit({
      'tidegate.yaml': stringify({
        targets: [{ name: ns, cluster: 'c', path: 'apps', targetNamespace: ns, wait: false }],
      }),
      'apps/web.yaml': yamlDocs(deployment('web', { replicas: 1 })),
    });
    expect((await repo.sync())[0]?.outcome).toBe('applied');

    const canary = randomBytes(16).toString('hex');
    const secret = yamlDocs({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'creds' },
      stringData: { password: canary },
    });
    const head1 = await repo.ws.commit(
      { 'apps/web.yaml': yamlDocs(deployment('web', { replicas: 3 })), 'apps/creds.yaml': secret },
      'scale up, add creds',
      'scale',
    );
    github.grant(OWNER, repo.name, 'alice', 'write'); // a writer's pull request is previewed on every push
    const { number } = await github.openPullRequest(OWNER, repo.name, { head: 'scale', base: 'main', author: 'alice' });
    const event = (action: string, sha: string) =>
      prEvent({ owner: OWNER, name: repo.name, url: repo.url }, { number, action, sha, branch: 'scale' });

    const opened = event('opened', head1);
    expect(opened.response.status).toBe(202);
    expect(await handleMessage(ctx, opened.messages[0]!, noQueue)).toEqual({
      kind: 'previewed',
      targets: [ns],
      comment: 'created',
      checkRun: true,
    });
    let comments = github.comments(OWNER, repo.name, number);
    expect(comments).toHaveLength(1);
    const first = comments[0]?.body ?? '';
    expect(first).toContain(`| ~ | Deployment.apps/${ns}/web | \`spec.replicas\`: \`1\` → \`3\` |`);
    expect(first).toContain(`| + | Secret/${ns}/creds | created (values hidden) |`);
    expect(first).toContain(`**${ns}** at scale@${head1.slice(0, 12)}: 1 to create, 1 to configure, 0 to delete`);
    const run = github.checkRuns(OWNER, repo.name).at(-1);
    expect(run).toMatchObject({
      head_sha: head1,
      name: 'tidegate/preview',
      conclusion: 'neutral',
      output: { title: '1 of 1 target(s) would change' },
    });

    const head2 = await repo.ws.commit(
      { 'apps/web.yaml': yamlDocs(deployment('web', { replicas: 4 })) },
      'more',
      'scale',
    );
    expect(await handleMessage(ctx, event('synchronize', head2).messages[0]!, noQueue)).toMatchObject({
      kind: 'previewed',
      comment: 'updated',
    });
    comments = github.comments(OWNER, repo.name, number);
    expect(comments).toHaveLength(1);
    expect(comments[0]?.body).toContain('`spec.replicas`: `1` → `4`');

    // Nothing was applied, and the secret is nowhere on GitHub.
    expect(
      ((await repo.engine.client.get('apps/v1', 'Deployment', ns, 'web'))?.['spec'] as { replicas: number }).replicas,
    ).toBe(1);
    expect(await repo.engine.client.get('v1', 'Secret', ns, 'creds')).toBeUndefined();
    const published = JSON.stringify([github.comments(OWNER, repo.name, number), github.checkRuns(OWNER, repo.name)]);
    for (const form of [canary, Buffer.from(canary).toString('base64')]) expect(published).not.toContain(form);
    // A close queues the teardown of its preview environments (none here: the target has no preview settings).
    expect(event('closed', head2).messages).toMatchObject([{ type: 'preview', stop: 'closed', pullRequest: number }]);
    expect(github.violations).toEqual([]);
  });
});
