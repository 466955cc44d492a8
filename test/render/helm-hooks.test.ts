import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { KubeObject, SyncResult } from '../../shared/model/index.js';
import { readTargetState } from '../../shared/state/index.js';
import { removeTarget } from '../../shared/usecases/remove.js';
import { rollback } from '../../shared/usecases/index.js';
import { gitopsRepo } from '../helpers/engine.js';
import { uniqueName } from '../helpers/env.js';
import { standInControllers } from '../helpers/controllers.js';

/**
 * A chart's hooks run at their points, as `helm install/upgrade/uninstall` runs them: pre hooks
 * before the release's objects, post hooks once they are healthy, by weight then kind then name;
 * install hooks for a new release, upgrade hooks after; each delete policy as Helm has it; a failed
 * hook stops the sync; delete hooks when the target leaves tidegate.yaml. Hooks are never in the
 * inventory. Jobs are finished (and the Deployment made ready) by stand-in controllers.
 */
const hook = (phases: string, weight: number, policy?: string): Record<string, string> => ({
  'helm.sh/hook': phases,
  'helm.sh/hook-weight': String(weight),
  ...(policy ? { 'helm.sh/hook-delete-policy': policy } : {}),
});
const job = (name: string, annotations: Record<string, string>) =>
  stringify({
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name, annotations },
    spec: {
      backoffLimit: 0,
      template: { spec: { restartPolicy: 'Never', containers: [{ name: 'run', image: 'busybox' }] } },
    },
  });

const TEMPLATES: Record<string, string> = {
  'settings.yaml':
    'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  version: {{ .Values.version | quote }}\n',
  'app.yaml': stringify({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'app' },
    spec: {
      selector: { matchLabels: { app: 'app' } },
      template: { metadata: { labels: { app: 'app' } }, spec: { containers: [{ name: 'app', image: 'nginx' }] } },
    },
  }),
  // Out of order in the files: they run by weight, then kind, then name.
  'hooks/z-last.yaml': job('z-last', hook('pre-install,pre-upgrade', 10, 'before-hook-creation,hook-succeeded')),
  'hooks/c-second.yaml': job('c-second', hook('pre-install, pre-upgrade', 0, 'hook-succeeded')),
  'hooks/a-second.yaml': job('a-second', hook('pre-install,pre-upgrade', 0)),
  'hooks/b-first.yaml': job('b-first', hook('pre-install', -5, 'before-hook-creation,hook-succeeded')),
  'hooks/rbac.yaml': stringify({
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: { name: 'hook-runner', annotations: hook('pre-install', -5, 'before-hook-creation,hook-succeeded') },
  }),
  'hooks/upgrade-only.yaml': job('upgrade-only', hook('pre-upgrade', 0, 'hook-succeeded')),
  'hooks/post.yaml': job('post', hook('post-install,post-upgrade', 0, 'before-hook-creation')),
  'hooks/pre-delete.yaml': job('cleanup', hook('pre-delete', 0, 'hook-succeeded')),
  'hooks/post-delete.yaml': job('goodbye', hook('post-delete', 0)),
  'hooks/failing.yaml':
    '{{- if .Values.fail }}\n' + job('failing', hook('pre-upgrade', 5, 'hook-failed')) + '{{- end }}\n',
};

const written = (r: SyncResult | undefined): string[] =>
  (r?.changeSet.changes ?? [])
    .filter((c) => c.action !== 'unchanged')
    .map((c) => `${c.action} ${c.ref.kind}/${c.ref.name}`);
const ranHooks = (r: SyncResult | undefined): string[] =>
  (r?.hooks ?? []).map((h) => `${h.phase} ${h.ref.kind}/${h.ref.name} ${h.outcome}${h.deleted ? ' deleted' : ''}`);

describe('helm hooks', () => {
  const stops: Array<() => Promise<void>> = [];
  afterAll(async () => {
    for (const stop of stops) await stop();
  });

  it('run at their points by weight, install vs upgrade, with their delete policies; a failing hook stops the sync; delete hooks on removal; never in the inventory', async () => {
    const repo = await gitopsRepo('helm-hooks');
    const target = uniqueName('hooks');
    const client = repo.engine.client;
    // Each Job as it is finished: its name, and whether the release's objects were there then.
    const seen: string[] = [];
    stops.push(
      standInControllers(client, [target], {
        failJobs: (j) => j.metadata.name === 'failing',
        onJob: async (j) => {
          const settings = await client.get('v1', 'ConfigMap', target, 'settings');
          const version = (settings?.['data'] as Record<string, string> | undefined)?.['version'] ?? 'none';
          // A hook-succeeded hook is deleted once its whole phase succeeded, not before.
          const earlier =
            j.metadata.name === 'z-last'
              ? ` c-second ${(await client.get('batch/v1', 'Job', target, 'c-second')) ? 'kept' : 'gone'}`
              : '';
          seen.push(`${j.metadata.name} (settings: ${version})${earlier}`);
        },
      }),
    );
    const config = (targets: unknown[]) => stringify({ targets });
    const spec = { name: target, cluster: 'test', path: 'chart', targetNamespace: target, timeout: '30s' };
    const values = (v: Record<string, unknown>) => stringify(v);
    await repo.commit({
      'tidegate.yaml': config([spec]),
      'chart/Chart.yaml': stringify({ apiVersion: 'v2', name: 'app', version: '0.1.0' }),
      'chart/values.yaml': values({ version: 'one', fail: false }),
      ...Object.fromEntries(Object.entries(TEMPLATES).map(([f, t]) => [`chart/templates/${f}`, t])),
    });

    // Install: pre-install hooks by weight (the ServiceAccount before the Job of the same weight,
    // then names), before the release's objects; post-install once the Deployment is ready.
    const [install] = await repo.sync(target);
    expect(install?.outcome, install?.error).toBe('applied');
    expect(ranHooks(install)).toEqual([
      'pre-install Job/b-first succeeded deleted',
      'pre-install ServiceAccount/hook-runner succeeded deleted',
      'pre-install Job/a-second succeeded',
      'pre-install Job/c-second succeeded deleted',
      'pre-install Job/z-last succeeded deleted',
      'post-install Job/post succeeded',
    ]);
    expect(seen).toEqual([
      'b-first (settings: none)',
      'a-second (settings: none)',
      'c-second (settings: none)',
      'z-last (settings: none) c-second kept',
      'post (settings: one)',
    ]);
    const jobs = async () =>
      (await client.list('batch/v1', 'Job', { namespace: target })).map((j) => j.metadata.name).sort();
    // hook-succeeded deleted; before-hook-creation alone (a-second, the default, and post) kept.
    expect(await jobs()).toEqual(['a-second', 'post']);
    expect(await client.get('v1', 'ServiceAccount', target, 'hook-runner')).toBeUndefined();
    const state = await readTargetState(client, target);
    expect(
      state.inventory.map((e) => e.id).filter((id) => /hook-runner|second|first|last|post|cleanup/.test(id)),
    ).toEqual([]);
    expect(written(install)).toEqual(expect.arrayContaining(['created ConfigMap/settings', 'created Deployment/app']));

    // Nothing changed: no hooks, nothing written.
    seen.length = 0;
    const [again] = await repo.sync(target);
    expect(again?.outcome, again?.error).toBe('unchanged');
    expect(again?.hooks).toBeUndefined();
    expect(seen).toEqual([]);

    // An upgrade: pre-upgrade hooks (not the install-only ones), the kept hook recreated (before-hook-creation).
    const keptUid = (await client.get('batch/v1', 'Job', target, 'a-second'))?.metadata.uid;
    await repo.commit({ 'chart/values.yaml': values({ version: 'two', fail: false }) });
    const [upgrade] = await repo.sync(target);
    expect(upgrade?.outcome, upgrade?.error).toBe('applied');
    expect(ranHooks(upgrade)).toEqual([
      'pre-upgrade Job/a-second succeeded',
      'pre-upgrade Job/c-second succeeded deleted',
      'pre-upgrade Job/upgrade-only succeeded deleted',
      'pre-upgrade Job/z-last succeeded deleted',
      'post-upgrade Job/post succeeded',
    ]);
    expect(seen).toEqual([
      'a-second (settings: one)',
      'c-second (settings: one)',
      'upgrade-only (settings: one)',
      'z-last (settings: one) c-second kept',
      'post (settings: two)',
    ]);
    expect((await client.get('batch/v1', 'Job', target, 'a-second'))?.metadata.uid).not.toBe(keptUid);

    // A failing pre-upgrade hook: the sync fails naming it, nothing after it runs, the release is not applied;
    // its hook-failed policy deletes it.
    seen.length = 0;
    await repo.commit({ 'chart/values.yaml': values({ version: 'three', fail: true }) });
    const [failed] = await repo.sync(target);
    expect(failed?.outcome).toBe('failed');
    expect(failed?.error).toMatch(/^pre-upgrade hook Job.batch\/hooks-[0-9a-f]+\/failing failed: job failed/);
    expect(ranHooks(failed).at(-1)).toMatch(/^pre-upgrade Job\/failing failed deleted$/);
    expect(ranHooks(failed).join()).not.toMatch(/z-last|post/);
    expect(
      ((await client.get('v1', 'ConfigMap', target, 'settings'))?.['data'] as Record<string, string>)['version'],
    ).toBe('two');
    expect(await client.get('batch/v1', 'Job', target, 'failing')).toBeUndefined();

    // The target leaves tidegate.yaml: pre-delete before the prune, post-delete after.
    await repo.commit({ 'chart/values.yaml': values({ version: 'three', fail: false }) });
    const [fixed] = await repo.sync(target);
    expect(fixed?.outcome, fixed?.error).toBe('applied');
    seen.length = 0;
    const sha = await repo.commit({
      'tidegate.yaml': config([{ name: `${target}-other`, cluster: 'test', path: 'other' }]),
      'other/cm.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: other\n  namespace: default\n',
    });
    const removal = await removeTarget(repo.engine, {
      repo: repo.url,
      cluster: 'test',
      target,
      revision: { ref: 'refs/heads/main', sha },
    });
    expect(removal?.outcome, removal?.error).toBe('applied');
    expect(ranHooks(removal)).toEqual([
      'pre-delete Job/cleanup succeeded deleted',
      'post-delete Job/goodbye succeeded',
    ]);
    expect(seen).toEqual(['cleanup (settings: three)', 'goodbye (settings: none)']);
    expect(await client.get('apps/v1', 'Deployment', target, 'app')).toBeUndefined();
  });

  it('a tidegate rollback runs the rollback hooks, not the upgrade hooks', async () => {
    const repo = await gitopsRepo('helm-rollback');
    const target = uniqueName('rollback');
    const client = repo.engine.client;
    stops.push(standInControllers(client, [target]));
    const commit = (version: string) =>
      repo.commit({
        'tidegate.yaml': stringify({
          targets: [{ name: target, cluster: 'test', path: 'chart', targetNamespace: target, wait: false }],
        }),
        'chart/Chart.yaml': stringify({ apiVersion: 'v2', name: 'app', version: '0.1.0' }),
        'chart/values.yaml': stringify({ version }),
        'chart/templates/settings.yaml': TEMPLATES['settings.yaml'] ?? '',
        'chart/templates/upgrade.yaml': job('migrate', hook('pre-upgrade', 0, 'hook-succeeded')),
        'chart/templates/rollback.yaml': job('restore', hook('pre-rollback,post-rollback', 0, 'hook-succeeded')),
      });
    const one = await commit('one');
    expect((await repo.sync(target))[0]?.outcome).toBe('applied');
    await commit('two');
    const [upgrade] = await repo.sync(target);
    expect(ranHooks(upgrade)).toEqual(['pre-upgrade Job/migrate succeeded deleted']);
    const back = await rollback(repo.engine, { repo: repo.url, target, to: one, by: 'alice' });
    expect(back.outcome, back.error).toBe('applied');
    expect(ranHooks(back)).toEqual([
      'pre-rollback Job/restore succeeded deleted',
      'post-rollback Job/restore succeeded deleted',
    ]);
    expect(
      ((await client.get('v1', 'ConfigMap', target, 'settings'))?.['data'] as Record<string, string>)['version'],
    ).toBe('one');
  });

  it('disableHooks: the hooks of the actions it names do not run', async () => {
    const repo = await gitopsRepo('helm-nohooks');
    const target = uniqueName('nohooks');
    const client = repo.engine.client;
    stops.push(standInControllers(client, [target]));
    const commit = (disableHooks: unknown, version: string) =>
      repo.commit({
        'tidegate.yaml': stringify({
          targets: [{ name: target, cluster: 'test', path: 'chart', targetNamespace: target, helm: { disableHooks } }],
        }),
        'chart/Chart.yaml': stringify({ apiVersion: 'v2', name: 'app', version: '0.1.0' }),
        'chart/values.yaml': stringify({ version, fail: false }),
        ...Object.fromEntries(Object.entries(TEMPLATES).map(([f, t]) => [`chart/templates/${f}`, t])),
      });
    await commit(['install'], 'one');
    const [install] = await repo.sync(target);
    expect(install?.outcome, install?.error).toBe('applied');
    expect(install?.hooks).toBeUndefined();
    expect(
      (await client.list('batch/v1', 'Job', { namespace: target })).map((j: KubeObject) => j.metadata.name),
    ).toEqual([]);
    await commit(['install'], 'two');
    const [upgrade] = await repo.sync(target);
    expect(upgrade?.outcome, upgrade?.error).toBe('applied');
    expect(ranHooks(upgrade).map((h) => h.split(' ')[0])).toEqual([
      'pre-upgrade',
      'pre-upgrade',
      'pre-upgrade',
      'pre-upgrade',
      'post-upgrade',
    ]);
    await commit(true, 'three');
    const [none] = await repo.sync(target);
    expect(none?.outcome, none?.error).toBe('applied');
    expect(none?.hooks).toBeUndefined();
  });
});
