import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { startGitHub, type TestGitHub } from '../../devenv/index.js';
import { previewTarget, type KubeObject } from '../../shared/model/index.js';
import { readPreviews } from '../../shared/state/index.js';
import { testEnv, uniqueName } from '../helpers/env.js';
import { configMap, gitopsRepo, yamlDocs } from '../helpers/engine.js';
import { previewRepo } from '../helpers/previews.js';

const TOKEN = 'ghp_review3_preview_namespace_token';

/**
 * Repository A runs preview environments: each pull request of A gets namespace
 * `pr-<n>-<target>` (a predictable name), created by tidegate with the labels
 * `app.kubernetes.io/managed-by: tidegate` and `tidegate.dev/preview: pr-<n>.<target>`, but without
 * `tidegate.dev/target`. The check that keeps a repository out of another repository's namespaces
 * (refuseForeignNamespaces, shared/sync/plan-target.ts) asks ownerTarget (shared/sync/foreign.ts),
 * which reads only `tidegate.dev/target`: a preview namespace has no owner. And the check that keeps
 * a repository from taking over another repository's objects (gate.ts, via foreignRepository) treats
 * every object of a preview target (`pr-<n>.*`) as nobody's. So an ordinary target of repository B
 * writes into A's running preview: a RoleBinding giving B's ServiceAccount `admin` there (A's
 * pull request's objects and Secrets), and it overwrites the ConfigMap A's preview applied.
 * Safe: B's sync is refused; nothing of B lands in A's preview namespace, A's preview object stays A's.
 *
 * Squatting: the name is predictable before the pull request exists. B's target creates
 * `pr-<n>-<A's target>` ahead of A's pull request n, with the label `tidegate.dev/preview:
 * pr-<n>.<A's target>` its manifest sets, and a RoleBinding of its own inside. The preview label
 * matched, so A's preview was applied into a namespace B controls. Safe: a namespace a target's sync
 * applied carries that target's label (tidegate sets it over the manifest's labels); the preview is
 * refused, saying so, and nothing of A's pull request lands there.
 *
 * And the two-step way round the first: B's target applies a Namespace object named like A's
 * running preview namespace (no object inside it), which set B's target label on it, so B's next
 * sync owned the namespace. Safe: a Namespace object re-applying another repository's namespace is
 * refused like the objects put into it; the namespace keeps its labels.
 */
describe("a preview namespace is its repository's: another repository's target neither writes into it nor makes it ahead of the pull request", () => {
  let github: TestGitHub;
  beforeAll(async () => {
    github = await startGitHub({ token: TOKEN, gitRoot: testEnv().git.root });
  });
  afterAll(async () => {
    await github?.stop();
  });

  it("B's RoleBinding into A's preview namespace and B's copy of A's preview ConfigMap: refused, A's preview is untouched", async () => {
    const a = await previewRepo(github, TOKEN);
    const pr = await a.open('feature', { 'apps/config.yaml': yamlDocs(configMap('web-config', { v: 'pr' })) });
    const ns = `pr-${pr.number}-${a.target}`;
    const before = await a.client.get('v1', 'ConfigMap', ns, 'web-config');
    expect(before?.['data']).toEqual({ v: 'pr' }); // A's preview runs

    const b = await gitopsRepo('r3pv-b', { owner: 'other' });
    const nsB = uniqueName('r3pv-b');
    await b.commit({
      'tidegate.yaml': stringify({
        targets: [{ name: nsB, cluster: 'c', path: 'b', namespace: nsB, createNamespace: true, wait: false }],
      }),
      'b/own.yaml': yamlDocs(configMap('own', { v: '1' })),
      'b/reach.yaml': yamlDocs([
        {
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'RoleBinding',
          metadata: { name: 'b-admin', namespace: ns },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'admin' },
          subjects: [{ kind: 'ServiceAccount', name: 'default', namespace: nsB }],
        },
        { ...configMap('web-config', { v: 'from-b' }), metadata: { name: 'web-config', namespace: ns } },
      ] as KubeObject[]),
    });
    const [resultB] = await b.sync(nsB);
    expect(await a.client.get('rbac.authorization.k8s.io/v1', 'RoleBinding', ns, 'b-admin')).toBeUndefined();
    expect((await a.client.get('v1', 'ConfigMap', ns, 'web-config'))?.['data']).toEqual({ v: 'pr' });
    expect(resultB?.outcome).toBe('failed');
  }, 120_000);

  it("B creates A's next preview namespace (with the preview label) and binds itself admin there: A's preview is refused, naming B's target, and nothing of A's pull request lands there", async () => {
    const a = await previewRepo(github, TOKEN);
    // The pull request exists on GitHub, tidegate has not seen it yet: its number, and so its namespace, is known.
    const { number, sha, branch } = await a.branchOff('squatted', {
      'apps/config.yaml': yamlDocs(configMap('web-config', { v: 'pr' })),
    });
    const ns = `pr-${number}-${a.target}`;
    const preview = previewTarget(number, a.target);

    const b = await gitopsRepo('r3pv-b2', { owner: 'other' });
    const nsB = uniqueName('r3pv-b2');
    await b.commit({
      'tidegate.yaml': stringify({
        targets: [{ name: nsB, cluster: 'c', path: 'b', namespace: nsB, createNamespace: true, wait: false }],
      }),
      'b/own.yaml': yamlDocs(configMap('own', { v: '1' })),
      'b/squat.yaml': yamlDocs([
        {
          apiVersion: 'v1',
          kind: 'Namespace',
          metadata: {
            name: ns,
            labels: { 'tidegate.dev/preview': preview, 'app.kubernetes.io/managed-by': 'tidegate' },
          },
        },
        {
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'RoleBinding',
          metadata: { name: 'b-admin', namespace: ns },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'admin' },
          subjects: [{ kind: 'ServiceAccount', name: 'default', namespace: nsB }],
        },
      ] as KubeObject[]),
    });
    const [resultB] = await b.sync(nsB);
    expect(resultB?.outcome).toBe('applied'); // a namespace no one has yet is B's to make
    expect((await a.client.get('v1', 'Namespace', '', ns))?.metadata.labels).toMatchObject({
      'tidegate.dev/preview': preview,
      'tidegate.dev/target': nsB,
    });
    expect(await a.client.get('rbac.authorization.k8s.io/v1', 'RoleBinding', ns, 'b-admin')).toBeDefined();

    const outcome = await a.handle(a.event(number, 'opened', sha, branch));
    expect(outcome).toMatchObject({
      environments: [
        {
          status: 'refused',
          reason: expect.stringMatching(
            new RegExp(
              `namespace ${ns} carries tidegate.dev/preview=${preview.replaceAll('.', '\\.')} but tidegate did not create it for this preview \\(target ${nsB} applied it\\)`,
            ),
          ),
        },
      ],
    });
    expect(await a.client.get('v1', 'ConfigMap', ns, 'web-config')).toBeUndefined();
    expect((await readPreviews(a.client)).some((e) => e.name === preview)).toBe(false);
    // B's namespace is left as it is (a refused preview tears nothing down).
    expect((await a.client.get('v1', 'Namespace', '', ns))?.metadata.labels?.['tidegate.dev/target']).toBe(nsB);
  }, 120_000);

  it("B's Namespace object naming A's running preview namespace (to make it B's): refused, the namespace keeps A's preview's labels", async () => {
    const a = await previewRepo(github, TOKEN);
    const pr = await a.open('relabel', { 'apps/config.yaml': yamlDocs(configMap('web-config', { v: 'pr' })) });
    const ns = `pr-${pr.number}-${a.target}`;
    const labels = (await a.client.get('v1', 'Namespace', '', ns))?.metadata.labels;
    expect(labels?.['tidegate.dev/preview']).toBe(previewTarget(pr.number, a.target));

    const b = await gitopsRepo('r3pv-b3', { owner: 'other' });
    const nsB = uniqueName('r3pv-b3');
    await b.commit({
      'tidegate.yaml': stringify({
        targets: [{ name: nsB, cluster: 'c', path: 'b', namespace: nsB, createNamespace: true, wait: false }],
      }),
      'b/own.yaml': yamlDocs(configMap('own', { v: '1' })),
      'b/ns.yaml': yamlDocs({
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name: ns, labels: { 'pod-security.kubernetes.io/enforce': 'privileged' } },
      }),
    });
    const [resultB] = await b.sync(nsB);
    expect(resultB?.outcome).toBe('failed');
    expect(resultB?.error).toContain(
      `Namespace/${ns} (namespace ${ns} was created by target ${previewTarget(pr.number, a.target)} of`,
    );
    expect((await a.client.get('v1', 'Namespace', '', ns))?.metadata.labels).toEqual(labels);
  }, 120_000);
});
