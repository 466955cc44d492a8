import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { startGitHub, type TestGitHub } from '../../devenv/index.js';
import { previewTarget, type KubeObject } from '../../shared/model/index.js';
import { readPreviews } from '../../shared/state/index.js';
import { testEnv, uniqueName } from '../helpers/env.js';
import { configMap, yamlDocs } from '../helpers/engine.js';
import { kubeRequest, previewRepo, privilegedPod } from '../helpers/previews.js';

const OWNER = 'acme';
const TOKEN = 'ghp_preview_attacks_token';

describe('preview environments under attack', () => {
  let github: TestGitHub;
  beforeAll(async () => {
    github = await startGitHub({ token: TOKEN, gitRoot: testEnv().git.root });
  });
  afterAll(async () => {
    await github?.stop();
  });

  const setup = (
    preview: Record<string, unknown> = {},
    opts: { target?: string; extraTargets?: Array<Record<string, unknown>>; sync?: boolean } = {},
  ) => previewRepo(github, TOKEN, { preview, ...opts });

  // ---------------------------------------------------------------------------------------------
  // 1. Nothing of a preview leaves its namespace; the namespace is baseline (no privileged pods).
  // ---------------------------------------------------------------------------------------------

  const role = (name: string, rules: unknown[]) => ({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: { name },
    rules,
  });
  const binding = (name: string, ns: string, roleRef: { kind: string; name: string }) => ({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: { name },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', ...roleRef },
    subjects: [{ kind: 'ServiceAccount', name: 'default', namespace: ns }],
  });

  it.each<[string, (ns: string) => unknown[], string]>([
    [
      'a Role that may patch "namespaces", bound to the namespace’s service account',
      (ns) => [
        role('self-admin', [
          { apiGroups: [''], resources: ['namespaces'], verbs: ['get', 'patch', 'update'] },
          { apiGroups: [''], resources: ['pods'], verbs: ['create', 'get'] },
        ]),
        binding('self-admin', ns, { kind: 'Role', name: 'self-admin' }),
      ],
      'Role.rbac.authorization.k8s.io/self-admin (apps/rbac.yaml): may change its own namespace',
    ],
    [
      'a RoleBinding to ClusterRole cluster-admin',
      (ns) => [binding('root', ns, { kind: 'ClusterRole', name: 'cluster-admin' })],
      'binds ClusterRole cluster-admin, which may change its own namespace',
    ],
    [
      'a Role that may bind any role (then bind cluster-admin itself)',
      (ns) => [
        role('binder', [
          { apiGroups: ['rbac.authorization.k8s.io'], resources: ['clusterroles'], verbs: ['bind'] },
          { apiGroups: ['rbac.authorization.k8s.io'], resources: ['rolebindings'], verbs: ['create'] },
        ]),
        binding('binder', ns, { kind: 'Role', name: 'binder' }),
      ],
      'Role.rbac.authorization.k8s.io/binder (apps/rbac.yaml): may bind or escalate roles',
    ],
    [
      'a RoleBinding to a ClusterRole that does not exist (yet)',
      (ns) => [binding('later', ns, { kind: 'ClusterRole', name: 'made-up-later' })],
      'binds ClusterRole made-up-later, which does not exist',
    ],
  ])(
    'Pod Security bypass refused: %s; the preview’s pods cannot relabel their namespace or run a privileged pod',
    async (_, rbac, reason) => {
      const s = await setup();
      const { number } = await s.open('psa', { 'apps/config.yaml': yamlDocs(configMap('web-config', { v: 'psa' })) });
      const ns = `pr-${number}-${s.target}`;
      const sa = `system:serviceaccount:${ns}:default`;
      const sha2 = await s.repo.ws.commit({ 'apps/rbac.yaml': yamlDocs(rbac(ns) as KubeObject[]) }, 'rbac', 'psa');
      const deployed = await s.handle(s.event(number, 'synchronize', sha2, 'psa'));
      expect(deployed).toMatchObject({ environments: [{ status: 'failed' }] });
      expect(
        (deployed as { environments: Array<{ result: { error: string } }> }).environments[0]?.result.error,
      ).toContain(reason);
      // What a pod of the preview (running the pull request's code, with its service account token) can do:
      const relabel = await kubeRequest(
        'PATCH',
        `/api/v1/namespaces/${ns}`,
        { metadata: { labels: { 'pod-security.kubernetes.io/enforce': 'privileged', 'tidegate.dev/preview': 'x' } } },
        { as: sa, contentType: 'application/merge-patch+json' },
      );
      const pod = await privilegedPod(ns, sa);
      const nsNow = await s.client.get('v1', 'Namespace', '', ns);
      expect({
        relabel: relabel.status,
        pod: pod.status,
        enforce: nsNow?.metadata.labels?.['pod-security.kubernetes.io/enforce'],
        owner: nsNow?.metadata.labels?.['tidegate.dev/preview'],
        bindings: (await s.client.list('rbac.authorization.k8s.io/v1', 'RoleBinding', { namespace: ns })).length,
      }).toEqual({ relabel: 403, pod: 403, enforce: 'baseline', owner: previewTarget(number, s.target), bindings: 0 });
    },
  );

  it('held: ordinary RBAC of an app (a Role for its ConfigMaps and leases, a RoleBinding to ClusterRole view) is previewed', async () => {
    const s = await setup();
    const branch = 'app-rbac';
    const { number, outcome } = await s.open(branch, {
      'apps/rbac.yaml': yamlDocs([
        role('leader', [
          { apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'watch', 'create', 'update', 'patch'] },
          { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['*'] },
        ]),
        binding('leader', 'x', { kind: 'Role', name: 'leader' }),
        binding('viewer', 'x', { kind: 'ClusterRole', name: 'view' }),
      ] as KubeObject[]),
    });
    expect(outcome).toMatchObject({ environments: [{ status: 'deployed' }] });
    const ns = `pr-${number}-${s.target}`;
    expect((await s.client.list('rbac.authorization.k8s.io/v1', 'RoleBinding', { namespace: ns })).length).toBe(2);
  });

  // ---------------------------------------------------------------------------------------------
  // 3/4. Teardown is complete and deletes only what is the preview's own.
  // ---------------------------------------------------------------------------------------------

  it('teardown after the tracked branch changed preview.namespace: the namespace tidegate created first is torn down too', async () => {
    const s = await setup();
    const { number } = await s.open('move', { 'apps/config.yaml': yamlDocs(configMap('web-config', { v: 'm' })) });
    const first = `pr-${number}-${s.target}`;
    expect(await s.client.get('v1', 'Namespace', '', first)).toBeDefined();
    // A writer changes the template on main (trusted config); the pull request is pushed to.
    await s.fresh('main');
    await s.repo.commit({ 'tidegate.yaml': s.config({ namespace: 'pv-{{number}}-{{target}}' }) }, 'new template');
    await s.repo.ws.git('checkout', '--quiet', 'move');
    const sha2 = await s.repo.ws.commit(
      { 'apps/config.yaml': yamlDocs(configMap('web-config', { v: 'm2' })) },
      'push',
      'move',
    );
    expect(await s.handle(s.event(number, 'synchronize', sha2, 'move'))).toMatchObject({
      environments: [{ status: 'deployed', namespace: `pv-${number}-${s.target}` }],
    });
    github.close(OWNER, s.repo.name, number);
    expect(await s.handle(s.event(number, 'closed', sha2, 'move'))).toMatchObject({ kind: 'preview-stopped' });
    const gone = (ns: string) =>
      s.client.get('v1', 'Namespace', '', ns).then((n) => n === undefined || Boolean(n.metadata.deletionTimestamp));
    expect({ second: await gone(`pv-${number}-${s.target}`), first: await gone(first) }).toEqual({
      second: true,
      first: true,
    });
  });

  it('two repositories declaring the same target name: the second one’s pull request gets no preview, and closing it leaves the first one’s preview running', async () => {
    const shared = uniqueName('web');
    const x = await setup({}, { target: shared });
    // Repository Y declares the same target name on the same cluster (its sync of the target is refused as owned elsewhere).
    const y = await setup({}, { target: shared, sync: false });
    github.grant(OWNER, y.repo.name, 'alice', 'write');
    const a = await x.open('x-change', { 'apps/config.yaml': yamlDocs(configMap('web-config', { v: 'x' })) });
    expect(a.outcome).toMatchObject({ environments: [{ status: 'deployed' }] });
    const ns = `pr-${a.number}-${shared}`;
    const preview = previewTarget(a.number, shared);
    // Y's pull request has the same number (GitHub numbers pull requests per repository).
    await y.fresh('y-change');
    const ySha = await y.repo.ws.commit(
      { 'apps/config.yaml': yamlDocs(configMap('web-config', { v: 'y' })) },
      'y',
      'y-change',
    );
    const yPr = await github.openPullRequest(OWNER, y.repo.name, { head: 'y-change', base: 'main', author: 'alice' });
    const yPull = github.pulls(OWNER, y.repo.name).find((p) => p.number === yPr.number)!;
    yPull.number = a.number;
    const yOut = await y.handle(y.event(a.number, 'opened', ySha, 'y-change'));
    expect(yOut).toMatchObject({ kind: 'previewed' });
    const entry = (await readPreviews(x.client)).find((e) => e.name === preview);
    // Y closes its pull request: only Y's previews may go.
    github.close(OWNER, y.repo.name, a.number);
    await y.handle(y.event(a.number, 'closed', ySha, 'y-change'));
    const xConfig = await x.client.get('v1', 'ConfigMap', ns, 'web-config');
    expect({
      registerRepo: entry?.repo,
      xPreviewAlive: xConfig?.['data'],
      xNamespaceAlive: (await x.client.get('v1', 'Namespace', '', ns))?.metadata.deletionTimestamp,
    }).toEqual({ registerRepo: x.repo.url, xPreviewAlive: { v: 'x' }, xNamespaceAlive: undefined });
  });

  // ---------------------------------------------------------------------------------------------
  // 2. Forks and non-writers: only the exact head a writer named.
  // ---------------------------------------------------------------------------------------------

  /**
   * Two commits on one parent whose SHAs share their first 7 hex digits: a benign one and one with
   * other content (a birthday search over the commit message: about 2^14 tries each, milliseconds).
   */
  async function collidingCommits(
    ws: { git: (...a: string[]) => Promise<string>; dir: string },
    parent: string,
    benign: Record<string, string>,
    evil: Record<string, string>,
  ): Promise<{ benign: string; evil: string; prefix: string }> {
    const treeOf = async (files: Record<string, string>) => {
      await ws.git('checkout', '--quiet', '--detach', parent);
      for (const [path, content] of Object.entries(files)) writeFileSync(join(ws.dir, path), content);
      await ws.git('add', '--all');
      const tree = (await ws.git('write-tree')).trim();
      await ws.git('reset', '--quiet', '--hard', parent);
      return tree;
    };
    const [t1, t2] = [await treeOf(benign), await treeOf(evil)];
    const body = (tree: string, nonce: string) =>
      `tree ${tree}\nparent ${parent}\nauthor Mallory <m@example.com> 1700000000 +0000\ncommitter Mallory <m@example.com> 1700000000 +0000\n\nchange ${nonce}\n`;
    const sha = (text: string) =>
      createHash('sha1')
        .update(`commit ${Buffer.byteLength(text)}\0`)
        .update(text)
        .digest('hex');
    const seen = new Map<string, string>();
    for (let i = 0; i < 40_000; i++) seen.set(sha(body(t1, `a${i}`)).slice(0, 7), `a${i}`);
    for (let j = 0; ; j++) {
      const text = body(t2, `b${j}`);
      const prefix = sha(text).slice(0, 7);
      const hit = seen.get(prefix);
      if (!hit) continue;
      const dir = mkdtempSync(join(tmpdir(), 'collide-'));
      const write = async (t: string, name: string) => {
        writeFileSync(join(dir, name), t);
        return (await ws.git('hash-object', '-w', '-t', 'commit', join(dir, name))).trim();
      };
      const b = await write(body(t1, hit), 'a');
      const e = await write(text, 'b');
      expect(b.slice(0, 7)).toBe(e.slice(0, 7));
      expect(b).not.toBe(e);
      return { benign: b, evil: e, prefix };
    }
  }

  it('a writer’s /tidegate preview <7 hex> on a fork, then a head made to share that SHA prefix: a prefix does not let any head in', async () => {
    const s = await setup();
    const main = (await s.repo.ws.git('rev-parse', 'origin/main')).trim();
    const { benign, evil, prefix } = await collidingCommits(
      s.repo.ws,
      main,
      { 'apps/config.yaml': yamlDocs(configMap('web-config', { v: 'reviewed' })) },
      { 'apps/config.yaml': yamlDocs(configMap('web-config', { v: 'never-reviewed' })) },
    );
    await s.repo.ws.git('push', '--quiet', 'origin', `${benign}:refs/heads/fork-collide`);
    const pr = await github.openPullRequest(OWNER, s.repo.name, {
      head: 'fork-collide',
      base: 'main',
      author: 'mallory',
      fork: 'mallory/fork',
    });
    expect(await s.handle(s.event(pr.number, 'opened', benign, 'fork-collide', 'mallory/fork'))).toMatchObject({
      refused: expect.stringContaining('fork'),
    });
    // alice (a writer) reviews the benign head and asks for its preview, naming it by 7 characters as the README allows.
    const ask = s.comment(pr.number, 'alice', `/tidegate preview ${prefix}`, 77001);
    expect(ask.messages).toHaveLength(1);
    // Before the worker gets to it, the fork force-pushes the other head.
    await s.repo.ws.git('push', '--quiet', '--force', 'origin', `${evil}:refs/heads/fork-collide`);
    await github.updatePullRef(OWNER, s.repo.name, pr.number, evil);
    await s.handle(ask.messages[0]!);
    const ns = `pr-${pr.number}-${s.target}`;
    // Promised: "a head pushed after the comment is not previewed on it".
    expect((await s.client.get('v1', 'ConfigMap', ns, 'web-config'))?.['data']).not.toEqual({ v: 'never-reviewed' });
  });

  // ---------------------------------------------------------------------------------------------
  // Probes that held (kept as regression checks of the promises they exercise).
  // ---------------------------------------------------------------------------------------------

  it('held: List-wrapped ClusterRole, kustomize namespace, helm-hardcoded namespace, a fake CRD making ClusterRole "namespaced", a Namespace object relabelling the preview namespace: nothing outside, namespace stays baseline', async () => {
    const s = await setup();
    const victim = uniqueName('victim');
    const cases: Array<[string, Record<string, string | null>]> = [
      [
        'list',
        {
          'apps/list.yaml': yamlDocs({
            apiVersion: 'v1',
            kind: 'List',
            metadata: { name: 'l' },
            items: [
              {
                apiVersion: 'rbac.authorization.k8s.io/v1',
                kind: 'ClusterRole',
                metadata: { name: victim },
                rules: [],
              },
            ],
          } as unknown as KubeObject),
        },
      ],
      [
        'kustomize',
        {
          'apps/kustomization.yaml': stringify({ namespace: 'kube-system', resources: ['config.yaml'] }),
        },
      ],
      [
        'helm',
        {
          'apps/Chart.yaml': stringify({ apiVersion: 'v2', name: 'c', version: '0.1.0' }),
          'apps/templates/cm.yaml': yamlDocs(configMap(victim, { a: 'b' }, { namespace: 'kube-system' })),
          'apps/config.yaml': null,
        },
      ],
      [
        'fakecrd',
        {
          'apps/crd.yaml': yamlDocs([
            {
              apiVersion: 'evil.example.com/v1',
              kind: 'CustomResourceDefinition',
              metadata: { name: 'x' },
              spec: {
                group: 'evil.example.com',
                names: { kind: 'CustomResourceDefinition' },
                scope: 'Namespaced',
              },
            } as unknown as KubeObject,
            {
              apiVersion: 'evil.example.com/v1',
              kind: 'CustomResourceDefinition',
              metadata: { name: 'y' },
              spec: { group: 'rbac.authorization.k8s.io', names: { kind: 'ClusterRole' }, scope: 'Namespaced' },
            } as unknown as KubeObject,
            {
              apiVersion: 'rbac.authorization.k8s.io/v1alpha1',
              kind: 'ClusterRole',
              metadata: { name: victim },
              rules: [],
            } as unknown as KubeObject,
          ]),
        },
      ],
    ];
    for (const [branch, files] of cases) {
      const { number, outcome } = await s.open(`held-${branch}`, files);
      expect(outcome, branch).toMatchObject({ environments: [{ status: 'failed' }] });
      expect(await s.client.get('rbac.authorization.k8s.io/v1', 'ClusterRole', '', victim), branch).toBeUndefined();
      expect(await s.client.get('v1', 'ConfigMap', 'kube-system', victim), branch).toBeUndefined();
      expect(await s.client.get('v1', 'ConfigMap', 'kube-system', 'web-config'), branch).toBeUndefined();
      github.close(OWNER, s.repo.name, number);
      await s.handle(s.event(number, 'closed', 'x', branch));
    }
    // A Namespace object for the preview's own namespace is left out: its labels cannot lower the pod security level.
    await s.fresh('held-ns');
    const pre = await github.openPullRequest(OWNER, s.repo.name, {
      head: (await s.repo.ws.commit({ 'apps/x.yaml': '# x\n' }, 'x', 'held-ns'), 'held-ns'),
      base: 'main',
      author: 'alice',
    });
    const ns = `pr-${pre.number}-${s.target}`;
    const sha = await s.repo.ws.commit(
      {
        'apps/ns.yaml': yamlDocs({
          apiVersion: 'v1',
          kind: 'Namespace',
          metadata: {
            name: ns,
            labels: { 'pod-security.kubernetes.io/enforce': 'privileged', 'tidegate.dev/preview': 'other' },
          },
        }),
      },
      'ns',
      'held-ns',
    );
    expect(await s.handle(s.event(pre.number, 'opened', sha, 'held-ns'))).toMatchObject({
      environments: [{ status: 'deployed' }],
    });
    expect((await s.client.get('v1', 'Namespace', '', ns))?.metadata.labels).toMatchObject({
      'pod-security.kubernetes.io/enforce': 'baseline',
      'tidegate.dev/preview': previewTarget(pre.number, s.target),
    });
    github.close(OWNER, s.repo.name, pre.number);
    await s.handle(s.event(pre.number, 'closed', sha, 'held-ns'));
  });

  it('held: maxConcurrent under concurrent admissions of two pull requests; a woken fork preview whose head moved is not started', async () => {
    // One place for this repository (places are counted per repository).
    const s = await setup({ maxConcurrent: 1 });
    const mk = async (branch: string) => {
      await s.fresh(branch);
      const sha = await s.repo.ws.commit(
        { 'apps/config.yaml': yamlDocs(configMap('web-config', { v: branch })) },
        branch,
        branch,
      );
      const pr = await github.openPullRequest(OWNER, s.repo.name, { head: branch, base: 'main', author: 'alice' });
      return { number: pr.number, sha, branch };
    };
    const a = await mk('cc-a');
    const b = await mk('cc-b');
    const outs = await Promise.all([a, b].map((p) => s.handle(s.event(p.number, 'opened', p.sha, p.branch))));
    const statuses = outs.map((o) => (o as { environments: Array<{ status: string }> }).environments[0]?.status).sort();
    expect(statuses).toEqual(['deployed', 'waiting']);
    const active = (await readPreviews(s.client)).filter((e) => e.status !== 'waiting' && e.repo === s.repo.url).length;
    expect(active).toBe(1);
    const [deployed, waiting] =
      statuses[0] === 'deployed' &&
      (outs[0] as { environments: Array<{ status: string }> }).environments[0]?.status === 'deployed'
        ? [a, b]
        : [b, a];
    // Close the waiting writer PR's slot holder later; first: a fork waits, is approved by a writer, then moves its head.
    github.close(OWNER, s.repo.name, waiting.number);
    await s.handle(s.event(waiting.number, 'closed', waiting.sha, waiting.branch));
    await s.fresh('cc-fork');
    const forkSha = await s.repo.ws.commit(
      { 'apps/config.yaml': yamlDocs(configMap('web-config', { v: 'fork-ok' })) },
      'f',
      'cc-fork',
    );
    const fork = await github.openPullRequest(OWNER, s.repo.name, {
      head: 'cc-fork',
      base: 'main',
      author: 'mallory',
      fork: 'mallory/fork',
    });
    const ask = s.comment(fork.number, 'alice', `/tidegate preview ${forkSha}`, 88001);
    expect(await s.handle(ask.messages[0]!)).toMatchObject({ environments: [{ status: 'waiting' }] });
    const moved = await s.repo.ws.commit(
      { 'apps/config.yaml': yamlDocs(configMap('web-config', { v: 'fork-evil' })) },
      'g',
      'cc-fork',
    );
    await github.updatePullRef(OWNER, s.repo.name, fork.number, moved);
    expect(await s.handle(s.event(fork.number, 'synchronize', moved, 'cc-fork', 'mallory/fork'))).toMatchObject({
      refused: expect.stringContaining('fork'),
    });
    s.queue.sent.length = 0;
    github.close(OWNER, s.repo.name, deployed.number);
    await s.handle(s.event(deployed.number, 'closed', deployed.sha, deployed.branch));
    const woken = s.queue.sent.filter((m) => m.type === 'preview' && m.pullRequest === fork.number);
    expect(woken).toHaveLength(1);
    expect(await s.handle(woken[0]!)).toMatchObject({ refused: expect.stringContaining('review the new head') });
    expect(await s.client.get('v1', 'ConfigMap', `pr-${fork.number}-${s.target}`, 'web-config')).toBeUndefined();
    github.close(OWNER, s.repo.name, fork.number);
    await s.handle(s.event(fork.number, 'closed', moved, 'cc-fork', 'mallory/fork'));
  });
});
