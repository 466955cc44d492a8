import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { startGitHub, type TestGitHub } from '../../devenv/index.js';
import { GitHub } from '../../shared/github/index.js';
import { handleMessage, type EngineContext, type Queue } from '../../shared/usecases/index.js';
import { UnknownClusterError } from '../../shared/model/index.js';
import { testEnv, uniqueName } from '../helpers/env.js';
import { configMap, gitopsRepo, yamlDocs } from '../helpers/engine.js';
import { prComment, prEvent } from '../helpers/github.js';

const OWNER = 'acme';
const TOKEN = 'ghp_security_preview_token';
const noQueue: Queue = { send: () => Promise.resolve() };

/**
 * Attacks through pull request previews: a preview renders the pull request's head and dry-runs it
 * with the worker's cluster access, then publishes the result. Untrusted heads are previewed only
 * when a writer asks, always on the base branch's configuration, and the comment shows nothing of
 * objects the target does not manage.
 */
describe('attack: a pull request that previews itself with the worker’s access', () => {
  let github: TestGitHub;
  beforeAll(async () => {
    github = await startGitHub({ token: TOKEN, gitRoot: testEnv().git.root });
  });
  afterAll(async () => {
    expect(github.violations).toEqual([]);
    await github?.stop();
  });

  async function previewed(opts: { author: string; fork?: string; files: Record<string, string> }) {
    const ns = uniqueName('prv');
    const repo = await gitopsRepo('prv', { owner: OWNER });
    const clusters: string[] = [];
    const ctx: EngineContext = {
      ...repo.engine,
      github: () => new GitHub({ apiUrl: github.url, token: TOKEN }),
      connect: (alias) => {
        clusters.push(alias);
        return alias === 'c' ? repo.engine.connect(alias) : Promise.reject(new UnknownClusterError(alias, ['c']));
      },
    };
    await repo.commit({
      'tidegate.yaml': stringify({
        targets: [{ name: ns, cluster: 'c', path: 'apps', targetNamespace: ns, wait: false }],
      }),
      'apps/app.yaml': yamlDocs(configMap('app', { v: '0' })),
    });
    await repo.sync();
    const branch = `change-${opts.author}`;
    const head = await repo.ws.commit(opts.files, 'change', branch);
    const number = (
      await github.openPullRequest(OWNER, repo.name, {
        head: branch,
        base: 'main',
        author: opts.author,
        fork: opts.fork,
      })
    ).number;
    const ref = { owner: OWNER, name: repo.name, url: repo.url };
    const event = (action: string, sha: string) =>
      handleMessage(ctx, prEvent(ref, { number, action, sha, branch, fork: opts.fork }).messages[0]!, noQueue);
    let ids = 0;
    const comment = (user: string, sha?: string) =>
      handleMessage(
        ctx,
        prComment(github, ref, number, {
          user,
          body: `/tidegate preview${sha ? ` ${sha}` : ''}`,
          id: number * 1000 + ++ids,
        }).messages[0]!,
        noQueue,
      );
    const published = () => ({
      comments: github.comments(OWNER, repo.name, number).map((c) => c.body),
      checkRuns: github.checkRuns(OWNER, repo.name).length,
    });
    return { ns, repo, ctx, head, number, branch, event, comment, published, clusters };
  }

  it('a pull request from a fork: not previewed on its events, nor on an outsider’s /tidegate preview; a writer’s request previews it; its next push waits again', async () => {
    const p = await previewed({
      author: 'mallory',
      fork: 'mallory/gitops',
      files: { 'apps/app.yaml': yamlDocs(configMap('app', { v: '1' })) },
    });
    github.grant(OWNER, p.repo.name, 'erin', 'write');
    github.grant(OWNER, p.repo.name, 'oscar', 'read');

    expect(await p.event('opened', p.head)).toEqual({
      kind: 'previewed',
      targets: [],
      refused: `pull request #${p.number} comes from a fork: it is previewed after a writer reviews its head and comments /tidegate preview <the full 40-character SHA of that head>, again after each push`,
    });
    expect(await p.comment('oscar')).toEqual({
      kind: 'previewed',
      targets: [],
      refused: 'oscar may not request a preview: only users with write access may',
    });
    expect(await p.comment('mallory')).toMatchObject({
      refused: 'mallory may not request a preview: only users with write access may',
    });
    expect(p.published()).toEqual({ comments: [], checkRuns: 0 });

    // A writer's request that names no head (the head could move between the comment and the preview) waits too.
    expect(await p.comment('erin')).toMatchObject({
      targets: [],
      refused: expect.stringContaining('comes from a fork'),
    });
    expect(p.published()).toEqual({ comments: [], checkRuns: 0 });
    expect(await p.comment('erin', p.head)).toMatchObject({ kind: 'previewed', targets: [p.ns], comment: 'created' });
    expect(p.published().comments[0]).toContain(`| ~ | ConfigMap/${p.ns}/app | \`data.v\`: \`0\` → \`1\` |`);

    // The fork's author pushes again: that head waits for a writer again, and the published preview stays as it was.
    const before = p.published();
    const next = await p.repo.ws.commit({ 'apps/app.yaml': yamlDocs(configMap('app', { v: '2' })) }, 'more', p.branch);
    await github.updatePullRef(OWNER, p.repo.name, p.number, next);
    expect(await p.event('synchronize', next)).toMatchObject({
      targets: [],
      refused: expect.stringContaining('comes from a fork'),
    });
    expect(p.published()).toEqual(before);
    expect((await p.repo.engine.client.get('v1', 'ConfigMap', p.ns, 'app'))?.['data']).toEqual({ v: '0' });
  });

  it('a pull request by an author without write access (same repository) waits for a writer’s /tidegate preview', async () => {
    const p = await previewed({ author: 'trudy', files: { 'apps/app.yaml': yamlDocs(configMap('app', { v: '1' })) } });
    github.grant(OWNER, p.repo.name, 'erin', 'write');
    expect(await p.event('opened', p.head)).toMatchObject({
      targets: [],
      refused: `pull request #${p.number} is by trudy, who has no write access: it is previewed after a writer reviews its head and comments /tidegate preview <the full 40-character SHA of that head>, again after each push`,
    });
    expect(p.published()).toEqual({ comments: [], checkRuns: 0 });
    expect(await p.comment('erin', p.head)).toMatchObject({ targets: [p.ns], comment: 'created' });
  });

  it('a head tidegate.yaml pointing the target at another cluster alias and namespace is ignored: the base configuration is previewed', async () => {
    const ns = uniqueName('victim');
    const p = await previewed({
      author: 'alice',
      files: {
        'tidegate.yaml': stringify({
          targets: [
            { name: 'x', cluster: 'prod', path: 'apps', targetNamespace: ns, wait: false },
            { name: 'y', cluster: 'c', path: 'apps', targetNamespace: 'kube-system', wait: false },
          ],
        }),
        'apps/app.yaml': yamlDocs(configMap('app', { v: '1' })),
      },
    });
    github.grant(OWNER, p.repo.name, 'alice', 'write');
    expect(await p.event('opened', p.head)).toMatchObject({ kind: 'previewed', targets: [p.ns] });
    const body = p.published().comments[0] ?? '';
    expect(body).toContain(`| ~ | ConfigMap/${p.ns}/app | \`data.v\`: \`0\` → \`1\` |`);
    expect(body).not.toMatch(/kube-system|victim|\*\*x\*\*|\*\*y\*\*/);
    expect(new Set(p.clusters)).toEqual(new Set(['c']));
  });

  it('a head naming an object the target does not manage: the comment shows none of its live values', async () => {
    const canary = randomBytes(12).toString('hex');
    const p = await previewed({
      author: 'alice',
      files: { 'apps/other.yaml': yamlDocs(configMap('other', { token: 'changed' })) },
    });
    github.grant(OWNER, p.repo.name, 'alice', 'write');
    // Someone else's object in the namespace, not in this target's inventory.
    await p.repo.engine.client.create({
      ...configMap('other', { token: canary }),
      metadata: { name: 'other', namespace: p.ns },
    });
    expect(await p.event('opened', p.head)).toMatchObject({ kind: 'previewed', targets: [p.ns] });
    const body = p.published().comments[0] ?? '';
    expect(body).toContain(
      `| ~ | ConfigMap/${p.ns}/other | not managed by this target yet: its live state is not shown |`,
    );
    expect(JSON.stringify(github.comments(OWNER, p.repo.name, p.number))).not.toContain(canary);
  });

  it('a head pushed after a writer’s /tidegate preview <sha>: the request names the head the writer reviewed, the new one is not previewed', async () => {
    const p = await previewed({
      author: 'mallory',
      fork: 'mallory/gitops',
      files: { 'apps/app.yaml': yamlDocs(configMap('app', { v: 'reviewed' })) },
    });
    github.grant(OWNER, p.repo.name, 'erin', 'write');
    // Erin reviewed the head and asks for its preview; before the worker runs, the fork's author pushes again.
    const next = await p.repo.ws.commit(
      { 'apps/app.yaml': yamlDocs(configMap('app', { v: 'pushed-after-the-request' })) },
      'sneak',
      p.branch,
    );
    await github.updatePullRef(OWNER, p.repo.name, p.number, next);
    expect(await p.comment('erin', p.head)).toEqual({
      kind: 'previewed',
      targets: [],
      refused: `pull request #${p.number} is at ${next.slice(0, 12)} now, not at ${p.head.slice(0, 12)}: review the new head and ask again`,
    });
    expect(p.published()).toEqual({ comments: [], checkRuns: 0 });
  });

  it('a head naming a Secret the target does not manage: a right guess of its value and a wrong one show the same', async () => {
    const secret = (password: string) =>
      yamlDocs({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'db' }, stringData: { password } });
    const guess = async (value: string) => {
      const p = await previewed({ author: 'alice', files: { 'apps/other.yaml': secret(value) } });
      github.grant(OWNER, p.repo.name, 'alice', 'write');
      await p.repo.engine.client.create({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'db', namespace: p.ns },
        stringData: { password: 'hunter2' },
      });
      await p.event('opened', p.head);
      return (p.published().comments[0] ?? '')
        .split('\n')
        .find((l) => l.includes('Secret/'))
        ?.replace(p.ns, 'NS');
    };
    const right = await guess('hunter2');
    expect(right).toBe('| ~ | Secret/NS/db | not managed by this target yet: its live state is not shown |');
    expect(await guess('letmein')).toBe(right);
  });

  it('a comment that plants the preview marker before the preview: left as it is, tidegate writes its own', async () => {
    const p = await previewed({ author: 'alice', files: { 'apps/app.yaml': yamlDocs(configMap('app', { v: '1' })) } });
    github.grant(OWNER, p.repo.name, 'alice', 'write');
    const planted = '<!-- tidegate:preview -->\n### tidegate preview: no changes (trust me)';
    github.comment(OWNER, p.repo.name, p.number, 'mallory', planted);
    expect(await p.event('opened', p.head)).toMatchObject({ kind: 'previewed', comment: 'created' });
    const comments = github.comments(OWNER, p.repo.name, p.number);
    expect(comments.map((c) => [c.user, c.body.split('\n')[1]])).toEqual([
      ['mallory', '### tidegate preview: no changes (trust me)'],
      ['tidegate-bot', `### tidegate preview of #${p.number}: 1 of 1 target(s) would change`],
    ]);
  });
});
