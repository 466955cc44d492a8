import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { readTargetState } from '../../shared/state/index.js';
import { inventoryHealth } from '../../shared/status/index.js';
import { statusView } from '../../shared/usecases/index.js';
import { testEngine, configMap, deployment, gitopsRepo } from '../helpers/engine.js';
import { testEnv, uniqueName } from '../helpers/env.js';

/**
 * inventoryHealth: the objects a target's state records, read from the real apiserver now and
 * judged by health/'s readiness rules (no controller-manager runs: Deployment status is patched).
 */
describe('inventoryHealth against the test apiserver', () => {
  it('Healthy, Progressing, Degraded and Missing per object, in inventory order, each with its reason', async () => {
    const repo = await gitopsRepo('inventory');
    const target = uniqueName('inv');
    const ns = target;
    await repo.commit({
      'tidegate.yaml': stringify({
        targets: [{ name: target, cluster: 'test', path: 'app', targetNamespace: ns, wait: false }],
      }),
      'app/all.yaml': [
        configMap('settings', { A: '1' }),
        configMap('doomed', { B: '2' }),
        { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'kept' }, stringData: { token: 'kept-value' } },
        { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'lost' }, stringData: { token: 'lost-value' } },
        deployment('ready'),
        deployment('stuck', { replicas: 2 }),
        deployment('deadline'),
      ],
    });
    expect((await repo.sync())[0]?.outcome).toBe('applied');
    const { client } = repo.engine;
    const state = await readTargetState(client, target);
    expect(state.inventory).toHaveLength(7);

    // Out of band: one ConfigMap deleted, one Deployment rolled out, one stuck at 1 of 2, one past its deadline.
    await client.delete({ apiVersion: 'v1', group: '', kind: 'ConfigMap', namespace: ns, name: 'doomed' });
    await client.delete({ apiVersion: 'v1', group: '', kind: 'Secret', namespace: ns, name: 'lost' });
    const dep = async (name: string) => {
      const d = await client.get('apps/v1', 'Deployment', ns, name);
      if (!d) throw new Error(`no Deployment ${name}`);
      return d;
    };
    const ready = await dep('ready');
    await client.patchStatus(ready, {
      observedGeneration: ready.metadata.generation,
      replicas: 1,
      updatedReplicas: 1,
      readyReplicas: 1,
      availableReplicas: 1,
    });
    const stuck = await dep('stuck');
    await client.patchStatus(stuck, {
      observedGeneration: stuck.metadata.generation,
      replicas: 2,
      updatedReplicas: 2,
      readyReplicas: 1,
      availableReplicas: 1,
    });
    const late = await dep('deadline');
    await client.patchStatus(late, {
      observedGeneration: late.metadata.generation,
      replicas: 1,
      updatedReplicas: 0,
      conditions: [
        {
          type: 'Progressing',
          status: 'False',
          reason: 'ProgressDeadlineExceeded',
          message: 'ReplicaSet "deadline-1" has timed out progressing.',
        },
      ],
    });

    const health = await inventoryHealth(client, state);
    const byName = Object.fromEntries(health.map((o) => [`${o.ref.kind}/${o.ref.name}`, o]));
    expect(health.map((o) => `${o.ref.kind}/${o.ref.namespace}/${o.ref.name}`)).toEqual(
      state.inventory.map((e) => {
        const [namespace, name, , kind] = e.id.split('_');
        return `${kind}/${namespace}/${name}`;
      }),
    );
    expect(byName['ConfigMap/settings']).toMatchObject({ status: 'Healthy', apiVersion: 'v1' });
    expect(byName['ConfigMap/doomed']).toMatchObject({ status: 'Missing', message: 'not found in the cluster' });
    // Secrets: present or not, read as metadata only.
    expect(byName['Secret/kept']).toMatchObject({ status: 'Healthy', message: 'present (its values are not read)' });
    expect(byName['Secret/lost']).toMatchObject({ status: 'Missing', message: 'not found in the cluster' });
    expect(JSON.stringify(health)).not.toMatch(/kept-value|lost-value/);
    expect(byName['Deployment/ready']).toMatchObject({ status: 'Healthy', message: '1 replicas available' });
    expect(byName['Deployment/stuck']).toMatchObject({ status: 'Progressing', message: '1 of 2 replicas available' });
    expect(byName['Deployment/deadline']).toMatchObject({
      status: 'Degraded',
      message: expect.stringContaining('ProgressDeadlineExceeded'),
    });
    expect(byName['Deployment/deadline']?.ref).toEqual({
      group: 'apps',
      kind: 'Deployment',
      namespace: ns,
      name: 'deadline',
    });
  });

  it('an object the reader may not read is Unknown with the reason, the others are still judged', async () => {
    const repo = await gitopsRepo('inventory-rbac');
    const target = uniqueName('inv-rbac');
    await repo.commit({
      'tidegate.yaml': stringify({
        targets: [{ name: target, cluster: 'test', path: 'app', targetNamespace: target, wait: false }],
      }),
      'app/all.yaml': [configMap('visible', { A: '1' }), configMap('second', { B: '1' })],
    });
    expect((await repo.sync())[0]?.outcome).toBe('applied');
    const state = await readTargetState(repo.engine.client, target);
    // The namespace-scoped user of the RBAC tests has no access to this namespace.
    const scoped = testEngine(testEnv().kube.scoped.token).client;
    const refused = await inventoryHealth(scoped, state, { concurrency: 1 });
    expect(refused.map((o) => o.status)).toEqual(['Unknown', 'Unknown']);
    expect(refused[0]?.message).toMatch(
      /^not read: .*cannot get resource "configmaps" in API group "" in the namespace/,
    );
    // The second of the same kind and namespace is not asked for again.
    expect(refused[1]?.message).toBe(`not read: this reader may not get ConfigMap in namespace ${target} (HTTP 403)`);
    const asAdmin = await inventoryHealth(repo.engine.client, state);
    expect(asAdmin.map((o) => o.status)).toEqual(['Healthy', 'Healthy']);
  });

  it("the status view reads each target's objects while its budget lasts, and says so past it", async () => {
    const repo = await gitopsRepo('inventory-budget');
    const target = uniqueName('inv-budget');
    await repo.commit({
      'tidegate.yaml': stringify({
        targets: [{ name: target, cluster: 'test', path: 'app', targetNamespace: target, wait: false }],
      }),
      'app/all.yaml': [configMap('a', { A: '1' }), configMap('b', { B: '1' })],
    });
    expect((await repo.sync())[0]?.outcome).toBe('applied');
    const mine = async (maxObjects: number) =>
      (await statusView(repo.engine, ['test'], undefined, { maxObjects })).clusters[0]?.targets.find(
        (t) => t.name === target,
      );
    expect(await mine(0)).toMatchObject({ objectsError: 'not read: the page reads at most 0 objects' });
    expect((await mine(0))?.objects).toBeUndefined();
    expect((await mine(100_000))?.objects?.map((o) => `${o.ref.name} ${o.status}`).sort()).toEqual([
      'a Healthy',
      'b Healthy',
    ]);
  });
});
