import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { startGitHub, type TestGitHub } from '../../devenv/index.js';
import { GitHub } from '../../shared/github/index.js';
import { previewTarget, type KubeObject, type QueueMessage } from '../../shared/model/index.js';
import { readPreviews } from '../../shared/state/index.js';
import { handleMessage, type EngineContext, type WorkOutcome } from '../../shared/usecases/index.js';
import { testEnv, uniqueName } from '../helpers/env.js';
import { configMap, gitopsRepo, yamlDocs } from '../helpers/engine.js';
import { prComment, prEvent } from '../helpers/github.js';
import { keepingQueue } from '../helpers/previews.js';

const OWNER = 'acme';
const TOKEN = 'ghp_preview_environments_token';

const service = (name: string): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name },
  spec: { selector: { app: name }, ports: [{ port: 80, targetPort: 8080 }] },
});

/**
 * Preview environments: a pull request's head applied into a namespace of its own, per target that
 * opts in (tidegate.yaml of the tracked branch), with its own inventory, torn down when the pull
 * request closes, on `/tidegate preview stop`, or when its TTL passes without a push (the sweep the
 * scheduled poll queues). Against the test apiserver (cluster-admin: a preview creates and deletes
 * namespaces, which only a cluster-scoped grant allows) and the test GitHub.
 */
describe('preview environments: every pull request its own namespace, torn down when it closes', () => {
  let github: TestGitHub;
  beforeAll(async () => {
    github = await startGitHub({ token: TOKEN, gitRoot: testEnv().git.root });
  });
  afterAll(async () => {
    expect(github.violations).toEqual([]);
    await github?.stop();
  });

  /** A GitOps repository whose one target opts into previews, applied on main; pull requests by writer alice. */
  async function setup(preview: Record<string, unknown> = {}, floor?: { previews?: boolean }) {
    const target = uniqueName('web');
    const repo = await gitopsRepo('pvenv', { owner: OWNER });
    const queue = keepingQueue();
    const ctx: EngineContext = {
      ...repo.engine,
      github: () => new GitHub({ apiUrl: github.url, token: TOKEN }),
      ...(floor ? { floor: () => ({ approvals: 0, manual: false, windows: [], ...floor }) } : {}),
    };
    await repo.commit({
      'tidegate.yaml': stringify({
        targets: [
          {
            name: target,
            cluster: 'c',
            path: 'apps',
            targetNamespace: target,
            substitute: { HOST: 'www.example.com' },
            preview: {
              enabled: true,
              ttl: '2h',
              substitute: { HOST: 'pr-{{number}}.preview.example.com' },
              url: 'https://pr-{{number}}.preview.example.com',
              ...preview,
            },
          },
        ],
      }),
      'apps/config.yaml': yamlDocs(configMap('web-config', { host: '${HOST}', v: '1' })),
      'apps/web.yaml': yamlDocs(service('web')),
    });
    expect((await repo.sync())[0]?.outcome).toBe('applied');
    github.grant(OWNER, repo.name, 'alice', 'write');
    const client = repo.engine.client;
    /** alice pushes files to a branch and opens a pull request; its `opened` event is handled. */
    const open = async (branch: string, files: Record<string, string | null>, fork?: string) => {
      const sha = await repo.ws.commit(files, `change on ${branch}`, branch);
      const { number } = await github.openPullRequest(OWNER, repo.name, {
        head: branch,
        base: 'main',
        author: fork ? 'mallory' : 'alice',
        ...(fork ? { fork } : {}),
      });
      return { number, sha, outcome: await handle(event(number, 'opened', sha, branch, fork)) };
    };
    const event = (number: number, action: string, sha: string, branch: string, fork?: string) => {
      const routed = prEvent(
        { owner: OWNER, name: repo.name, url: repo.url },
        { number, action, sha, branch, ...(fork ? { fork } : {}) },
      );
      expect(routed.response.status).toBe(202);
      expect(routed.messages).toHaveLength(1);
      return routed.messages[0]!;
    };
    const handle = (msg: QueueMessage, c: EngineContext = ctx): Promise<WorkOutcome> => handleMessage(c, msg, queue);
    /** Every object carrying a preview's owner label, in any namespace (cluster-scoped kinds included). */
    const objectsOf = async (preview: string) => {
      const selector = `tidegate.dev/target=${preview}`;
      const kinds: Array<[string, string]> = [
        ['v1', 'ConfigMap'],
        ['v1', 'Service'],
        ['rbac.authorization.k8s.io/v1', 'ClusterRole'],
      ];
      const found = await Promise.all(kinds.map(([v, k]) => client.list(v, k, { labelSelector: selector })));
      return found.flat().map((o) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`);
    };
    const comment = (number: number) => github.comments(OWNER, repo.name, number).at(-1)?.body ?? '';
    return { target, repo, ctx, queue, client, open, event, handle, objectsOf, comment };
  }

  it('open → its namespace is created with the head applied, healthy, commented and deployed; push → updated and pruned; close → namespace, objects, state and place gone, deployment inactive', async () => {
    const s = await setup();
    const files = {
      'apps/config.yaml': yamlDocs(configMap('web-config', { host: '${HOST}', v: '2' })),
      'apps/extra.yaml': yamlDocs(configMap('extra', { a: 'b' })),
    };
    const { number, sha, outcome } = await s.open('feature', files);
    const preview = previewTarget(number, s.target);
    const ns = `pr-${number}-${s.target}`;
    expect(outcome).toMatchObject({
      kind: 'previewed',
      environments: [{ target: s.target, namespace: ns, status: 'deployed', result: { outcome: 'applied' } }],
    });
    const namespace = await s.client.get('v1', 'Namespace', '', ns);
    expect(namespace?.metadata.labels).toMatchObject({
      'tidegate.dev/preview': preview,
      'pod-security.kubernetes.io/enforce': 'baseline',
    });
    expect((await s.client.get('v1', 'ConfigMap', ns, 'web-config'))?.['data']).toEqual({
      host: `pr-${number}.preview.example.com`,
      v: '2',
    });
    expect((await s.objectsOf(preview)).sort()).toEqual(
      [`ConfigMap/${ns}/extra`, `ConfigMap/${ns}/web-config`, `Service/${ns}/web`].sort(),
    );
    // The target itself is untouched: a preview is not a sync of the branch.
    expect((await s.client.get('v1', 'ConfigMap', s.target, 'web-config'))?.['data']).toEqual({
      host: 'www.example.com',
      v: '1',
    });
    expect(await s.client.get('v1', 'ConfigMap', s.target, 'extra')).toBeUndefined();
    const body = s.comment(number);
    expect(body).toContain('#### Preview environment');
    expect(body).toContain(
      `namespace \`${ns}\` on cluster \`c\`: applied at feature@${sha.slice(0, 12)}, health healthy`,
    );
    expect(body).toContain(`\`HOST\` = \`pr-${number}.preview.example.com\``);
    expect(body).toMatch(/torn down at \d{4}-\d\d-\d\dT[\d:.]+Z unless the pull request is pushed to/);
    expect(github.deployments(OWNER, s.repo.name)).toEqual([
      {
        id: expect.any(Number),
        sha,
        environment: `preview/pr-${number}`,
        transient: true,
        statuses: ['success'],
        url: `https://pr-${number}.preview.example.com`,
      },
    ]);
    const [entry] = (await readPreviews(s.client)).filter((e) => e.name === preview);
    expect(entry).toMatchObject({ status: 'active', head: sha, namespace: ns, pullRequest: number });

    // A push to the pull request: changed values applied, the dropped ConfigMap pruned, the TTL renewed.
    const sha2 = await s.repo.ws.commit(
      { 'apps/config.yaml': yamlDocs(configMap('web-config', { host: '${HOST}', v: '3' })), 'apps/extra.yaml': null },
      'drop extra',
      'feature',
    );
    expect(await s.handle(s.event(number, 'synchronize', sha2, 'feature'))).toMatchObject({
      environments: [{ status: 'deployed', result: { outcome: 'applied' } }],
    });
    expect((await s.client.get('v1', 'ConfigMap', ns, 'web-config'))?.['data']).toMatchObject({ v: '3' });
    expect(await s.client.get('v1', 'ConfigMap', ns, 'extra')).toBeUndefined();
    const renewed = (await readPreviews(s.client)).find((e) => e.name === preview);
    expect(renewed?.head).toBe(sha2);
    expect(Date.parse(renewed?.expiresAt ?? '')).toBeGreaterThanOrEqual(Date.parse(entry?.expiresAt ?? ''));
    expect(github.comments(OWNER, s.repo.name, number)).toHaveLength(1);

    // A push to main meanwhile: the fan-out's removal of targets left out of tidegate.yaml leaves previews alone.
    await s.repo.sync();
    expect(await s.objectsOf(preview)).toHaveLength(2);

    // Closed: torn down.
    github.close(OWNER, s.repo.name, number);
    expect(await s.handle(s.event(number, 'closed', sha2, 'feature'))).toMatchObject({
      kind: 'preview-stopped',
      targets: [s.target],
    });
    expect(await s.objectsOf(preview)).toEqual([]);
    const gone = await s.client.get('v1', 'Namespace', '', ns);
    // The test apiserver runs no namespace controller: a deleted namespace stays Terminating there.
    expect(gone === undefined || Boolean(gone.metadata.deletionTimestamp)).toBe(true);
    expect(await s.client.get('v1', 'ConfigMap', 'tidegate-system', `tidegate-target-${preview}`)).toBeUndefined();
    expect((await readPreviews(s.client)).some((e) => e.name === preview)).toBe(false);
    expect(
      github
        .deployments(OWNER, s.repo.name)
        .find((d) => d.sha === sha2)
        ?.statuses.at(-1),
    ).toBe('inactive');
    expect(s.comment(number)).toContain('torn down (the pull request closed');
    expect(s.comment(number)).not.toContain('torn down at ');
    // The dry-run part of the comment stays.
    expect(s.comment(number)).toContain(`tidegate preview of #${number}`);
  });

  it('a preview whose TTL passes without a push is torn down by the scheduled sweep; one renewed in time is not', async () => {
    const s = await setup({ ttl: '1h' });
    const { number } = await s.open('ttl', { 'apps/config.yaml': yamlDocs(configMap('web-config', { v: 'ttl' })) });
    const preview = previewTarget(number, s.target);
    const sweep: QueueMessage = { type: 'previews', cluster: 'c', bucket: 1 };
    // Within the TTL: nothing happens.
    expect(await s.handle(sweep)).toMatchObject({ kind: 'previews-swept', expired: [] });
    expect(await s.objectsOf(preview)).toHaveLength(2);
    const later: EngineContext = { ...s.ctx, now: () => new Date(Date.now() + 61 * 60_000) };
    const swept = await s.handle({ ...sweep, bucket: 2 }, later);
    expect(swept).toMatchObject({ kind: 'previews-swept' });
    expect((swept as { expired: Array<{ name: string }> }).expired.map((e) => e.name)).toContain(preview);
    expect(await s.objectsOf(preview)).toEqual([]);
    expect((await readPreviews(s.client)).some((e) => e.name === preview)).toBe(false);
    expect(s.comment(number)).toContain('torn down (no push within its TTL');
  });

  it('a head with a ClusterRole and an object in another namespace is refused with the reasons: nothing is applied, nothing outside its namespace changes', async () => {
    const s = await setup();
    const victim = uniqueName('victim');
    const { number, outcome } = await s.open('escape', {
      'apps/role.yaml': yamlDocs({
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRole',
        metadata: { name: victim },
        rules: [{ apiGroups: ['*'], resources: ['*'], verbs: ['*'] }],
      }),
      'apps/elsewhere.yaml': yamlDocs(configMap(victim, { x: 'y' }, { namespace: 'kube-system' })),
      'apps/config.yaml': yamlDocs(configMap('web-config', { v: 'escape' })),
    });
    const preview = previewTarget(number, s.target);
    expect(outcome).toMatchObject({ environments: [{ status: 'failed', result: { outcome: 'failed' } }] });
    const error = (outcome as { environments: Array<{ result: { error: string } }> }).environments[0]?.result.error;
    expect(error).toContain('2 object(s) would leave the preview namespace');
    expect(error).toContain(`ClusterRole.rbac.authorization.k8s.io/${victim} (apps/role.yaml): cluster-scoped`);
    expect(error).toContain(`ConfigMap/kube-system/${victim} (apps/elsewhere.yaml): names namespace kube-system`);
    // Checked by listing: nothing of the preview anywhere, the ClusterRole and the kube-system ConfigMap absent.
    expect(await s.objectsOf(preview)).toEqual([]);
    expect(await s.client.get('rbac.authorization.k8s.io/v1', 'ClusterRole', '', victim)).toBeUndefined();
    expect(await s.client.get('v1', 'ConfigMap', 'kube-system', victim)).toBeUndefined();
    expect(await s.client.list('v1', 'ConfigMap', { namespace: `pr-${number}-${s.target}` })).toEqual(
      expect.not.arrayContaining([
        expect.objectContaining({ metadata: expect.objectContaining({ name: 'web-config' }) }),
      ]),
    );
    expect(s.comment(number)).toContain('failed, nothing of this head applied');
    expect(s.comment(number)).toContain('cluster-scoped');
    expect(github.deployments(OWNER, s.repo.name).at(-1)?.statuses).toEqual(['failure']);
  });

  it("maxConcurrent reached: the next preview waits and says so, and starts when one is torn down; another repository's previews take none of its places", async () => {
    // Another repository's preview runs on the cluster: it does not count against this repository's places.
    const other = await setup({ maxConcurrent: 5 });
    const theirs = await other.open('theirs', { 'apps/config.yaml': yamlDocs(configMap('web-config', { v: 'x' })) });
    expect(theirs.outcome).toMatchObject({ environments: [{ status: 'deployed' }] });
    expect((await readPreviews(other.client)).filter((e) => e.status === 'active').length).toBeGreaterThan(0);
    const s = await setup({ maxConcurrent: 1 });
    const first = await s.open('one', { 'apps/config.yaml': yamlDocs(configMap('web-config', { v: 'one' })) });
    expect(first.outcome).toMatchObject({ environments: [{ status: 'deployed' }] });
    const second = await s.open('two', { 'apps/config.yaml': yamlDocs(configMap('web-config', { v: 'two' })) });
    expect(second.outcome).toMatchObject({ environments: [{ status: 'waiting' }] });
    const ns2 = `pr-${second.number}-${s.target}`;
    expect(await s.client.get('v1', 'Namespace', '', ns2)).toBeUndefined();
    expect(s.comment(second.number)).toContain(
      `1 preview(s) of this repository run on cluster c (maxConcurrent 1); this one starts when one of them is torn down`,
    );

    // `/tidegate preview stop` by its author (a writer) tears the first down; the waiting one is queued again.
    const stop = prComment(github, { owner: OWNER, name: s.repo.name, url: s.repo.url }, first.number, {
      user: 'alice',
      body: '/tidegate preview stop',
      id: 9001,
    });
    expect(stop.messages).toMatchObject([{ type: 'preview', stop: 'command', requestedBy: 'alice' }]);
    s.queue.sent.length = 0;
    expect(await s.handle(stop.messages[0]!)).toMatchObject({ kind: 'preview-stopped', targets: [s.target] });
    const woken = s.queue.sent.filter((m) => m.type === 'preview' && m.pullRequest === second.number);
    expect(woken).toHaveLength(1);
    expect(await s.handle(woken[0]!)).toMatchObject({ environments: [{ status: 'deployed' }] });
    expect((await s.client.get('v1', 'ConfigMap', ns2, 'web-config'))?.['data']).toMatchObject({ v: 'two' });
    github.close(OWNER, s.repo.name, second.number);
    await s.handle(s.event(second.number, 'closed', second.sha, 'two'));
    github.close(OWNER, other.repo.name, theirs.number);
    await other.handle(other.event(theirs.number, 'closed', theirs.sha, 'theirs'));
  });

  it('a fork’s pull request without a writer’s /tidegate preview <sha> gets no environment: nothing applied, no namespace', async () => {
    const s = await setup();
    const { number, outcome } = await s.open(
      'fork-change',
      { 'apps/config.yaml': yamlDocs(configMap('web-config', { v: 'fork' })) },
      'mallory/fork',
    );
    expect(outcome).toMatchObject({ kind: 'previewed', refused: expect.stringContaining('comes from a fork') });
    expect(await s.client.get('v1', 'Namespace', '', `pr-${number}-${s.target}`)).toBeUndefined();
    expect((await readPreviews(s.client)).some((e) => e.pullRequest === number && e.target === s.target)).toBe(false);
  });

  it('refused: a cluster whose floor forbids previews, and a namespace template naming a namespace that is not the preview’s own', async () => {
    const forbidden = await setup({}, { previews: false });
    const a = await forbidden.open('floor', { 'apps/config.yaml': yamlDocs(configMap('web-config', { v: 'f' })) });
    expect(a.outcome).toMatchObject({
      environments: [{ status: 'refused', reason: expect.stringContaining('floor.previews: false') }],
    });
    expect(await forbidden.client.get('v1', 'Namespace', '', `pr-${a.number}-${forbidden.target}`)).toBeUndefined();

    // The template names an existing namespace (pr-{{number}}-… can name someone's): refused, that namespace untouched.
    const hijack = uniqueName('taken');
    const s = await setup({ namespace: `pr-{{number}}-${hijack}` });
    const sha = await s.repo.ws.commit(
      { 'apps/config.yaml': yamlDocs(configMap('web-config', { v: 'mine' })) },
      'x',
      'taken',
    );
    const { number } = await github.openPullRequest(OWNER, s.repo.name, {
      head: 'taken',
      base: 'main',
      author: 'alice',
    });
    const theirs = `pr-${number}-${hijack}`;
    await s.client.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: theirs } });
    await s.client.apply(
      { ...configMap('web-config', { v: 'theirs' }), metadata: { name: 'web-config', namespace: theirs } },
      { fieldManager: 'someone-else' },
    );
    expect(await s.handle(s.event(number, 'opened', sha, 'taken'))).toMatchObject({
      environments: [{ status: 'refused', reason: expect.stringContaining('is not this preview') }],
    });
    expect((await s.client.get('v1', 'ConfigMap', theirs, 'web-config'))?.['data']).toEqual({ v: 'theirs' });
    expect(
      (await s.client.get('v1', 'Namespace', '', theirs))?.metadata.labels?.['tidegate.dev/preview'],
    ).toBeUndefined();
    expect((await readPreviews(s.client)).some((e) => e.target === s.target)).toBe(false);
  });

  it('/tidegate preview stop by someone who is neither the author nor a writer is refused; a stale close event after a reopen is ignored', async () => {
    const s = await setup();
    const { number, sha } = await s.open('keep', { 'apps/config.yaml': yamlDocs(configMap('web-config', { v: 'k' })) });
    const preview = previewTarget(number, s.target);
    const stop = prComment(github, { owner: OWNER, name: s.repo.name, url: s.repo.url }, number, {
      user: 'eve',
      body: '/tidegate preview stop',
      id: 9101,
    });
    expect(await s.handle(stop.messages[0]!)).toMatchObject({
      refused: expect.stringContaining('eve may not stop the previews'),
    });
    // GitHub says the pull request is open: a `closed` delivery (redelivered after a reopen) tears nothing down.
    expect(await s.handle(s.event(number, 'closed', sha, 'keep'))).toMatchObject({
      refused: expect.stringContaining('reopened'),
    });
    expect(await s.objectsOf(preview)).toHaveLength(2);
    github.close(OWNER, s.repo.name, number);
    await s.handle(s.event(number, 'closed', sha, 'keep'));
    expect(await s.objectsOf(preview)).toEqual([]);
  });
});
