import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { SYSTEM_NAMESPACE } from '../../shared/apply/index.js';
import { entryRef } from '../../shared/model/index.js';
import { readTargetState } from '../../shared/state/index.js';
import { stateName } from '../../shared/state/state.js';
import type { ControllerClient } from '../../devenv/index.js';
import { recover, release, rollback } from '../../shared/usecases/index.js';
import { uniqueName } from '../helpers/env.js';
import { configMap, deployment, gitopsRepo } from '../helpers/engine.js';

const cfg = (name: string, ns: string, extra: Record<string, unknown> = {}) =>
  stringify({ targets: [{ name, cluster: 't', path: 'apps', targetNamespace: ns, wait: false, ...extra }] });
const data = async (client: ControllerClient, ns: string) =>
  Object.fromEntries(
    (await client.list('v1', 'ConfigMap', { namespace: ns })).map((c) => [
      c.metadata.name,
      (c['data'] as Record<string, string>)['v'],
    ]),
  );

describe('history, rollback, pin, release', () => {
  it('rolls back from C to A: what B and C added is pruned, what they changed is back, history shows it all', async () => {
    const ns = uniqueName('rb');
    const name = uniqueName('rb');
    const repo = await gitopsRepo('rb');
    const a = await repo.commit(
      { 'tidegate.yaml': cfg(name, ns), 'apps/a.yaml': configMap('a', { v: '1' }) },
      'A: first',
    );
    await repo.sync(name, a);
    const b = await repo.commit(
      { 'apps/a.yaml': configMap('a', { v: '2' }), 'apps/b.yaml': configMap('b', { v: 'b' }) },
      'B: add b',
    );
    await repo.sync(name, b);
    const c = await repo.commit(
      { 'apps/a.yaml': configMap('a', { v: '3' }), 'apps/c.yaml': configMap('c', { v: 'c' }) },
      'C: add c',
    );
    await repo.sync(name, c);
    const { client } = repo.engine;
    expect(await data(client, ns)).toEqual({ a: '3', b: 'b', c: 'c' });

    const res = await rollback(repo.engine, { repo: repo.url, target: name, to: a.slice(0, 10), by: 'alice' });
    expect(res.outcome).toBe('applied');
    expect(
      res.changeSet.changes
        .filter((x) => x.action !== 'unchanged')
        .map((x) => `${x.action} ${x.ref.name}`)
        .sort(),
    ).toEqual(['configured a', 'deleted b', 'deleted c']);
    expect(await data(client, ns)).toEqual({ a: '1' });

    const state = await readTargetState(client, name);
    expect(
      state.history.map((h) => `${h.kind} ${h.revision.sha.slice(0, 7)} ${h.outcome} ${h.commit?.message ?? ''}`),
    ).toEqual([
      `sync ${a.slice(0, 7)} applied A: first`,
      `sync ${b.slice(0, 7)} applied B: add b`,
      `sync ${c.slice(0, 7)} applied C: add c`,
      `rollback ${a.slice(0, 7)} applied A: first`,
    ]);
    expect(state.history.at(-1)?.by).toBe('alice');
    expect(state.history[0]?.commit?.author).toBe('Test Author <author@example.test>');
    expect(state.pin).toMatchObject({ revision: { sha: a }, by: 'alice' });
  });

  it('a push while pinned changes nothing and says why; after release it applies', async () => {
    const ns = uniqueName('pin');
    const name = uniqueName('pin');
    const repo = await gitopsRepo('pin');
    const a = await repo.commit({ 'tidegate.yaml': cfg(name, ns), 'apps/a.yaml': configMap('a', { v: '1' }) });
    await repo.sync(name, a);
    const b = await repo.commit({ 'apps/a.yaml': configMap('a', { v: '2' }) });
    await repo.sync(name, b);
    await rollback(repo.engine, { repo: repo.url, target: name, by: 'bob' }); // default: the last healthy revision before the current one
    const { client } = repo.engine;
    expect(await data(client, ns)).toEqual({ a: '1' });

    const c = await repo.commit({ 'apps/a.yaml': configMap('a', { v: '3' }) });
    const [pinned] = await repo.sync(name, c);
    expect(pinned?.outcome).toBe('pinned');
    expect(pinned?.error).toMatch(
      new RegExp(
        `^pinned at main@${a.slice(0, 12)} by bob \\(rolled back to ${a.slice(0, 12)} by bob\\) since .*; \`tidegate release ${name}\` lifts the pin$`,
      ),
    );
    expect(await data(client, ns)).toEqual({ a: '1' });

    expect(await release(repo.engine, { repo: repo.url, target: name })).toBe(true);
    const [applied] = await repo.sync(name, c);
    expect(applied?.outcome).toBe('applied');
    expect(await data(client, ns)).toEqual({ a: '3' });
    expect((await readTargetState(client, name)).pin).toBeUndefined();
  });

  it('a Deployment that exceeds its progress deadline triggers auto-rollback to the last healthy revision', async () => {
    const ns = uniqueName('auto');
    const name = uniqueName('auto');
    const repo = await gitopsRepo('auto');
    const { client } = repo.engine;
    // Plays the Deployment controller: "bad" images never progress, others become available.
    let stop = false;
    const controller = (async () => {
      while (!stop) {
        for (const d of await client.list('apps/v1', 'Deployment', { namespace: ns }).catch(() => [])) {
          const image = JSON.stringify(d['spec']);
          const gen = d.metadata.generation;
          const status = image.includes(':bad')
            ? {
                observedGeneration: gen,
                replicas: 1,
                updatedReplicas: 0,
                conditions: [
                  { type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded', message: 'timed out' },
                ],
              }
            : {
                observedGeneration: gen,
                replicas: 1,
                updatedReplicas: 1,
                availableReplicas: 1,
                readyReplicas: 1,
                conditions: [
                  { type: 'Progressing', status: 'True', reason: 'NewReplicaSetAvailable' },
                  { type: 'Available', status: 'True' },
                ],
              };
          if ((d['status'] as { observedGeneration?: number } | undefined)?.observedGeneration !== gen)
            await client.patchStatus(d, status).catch(() => undefined);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    try {
      const good = await repo.commit({
        'tidegate.yaml': cfg(name, ns, { wait: true, timeout: '20s', rollback: { onFailedHealth: true } }),
        'apps/d.yaml': deployment('web', { image: 'registry.example/web:1.0' }),
      });
      const [first] = await repo.sync(name, good);
      expect(first?.health.status).toBe('healthy');
      const bad = await repo.commit({ 'apps/d.yaml': deployment('web', { image: 'registry.example/web:bad' }) });
      const [failed] = await repo.sync(name, bad);
      expect(failed?.outcome).toBe('failed');
      expect(failed?.error).toContain('ProgressDeadlineExceeded');
      expect(failed?.rolledBackTo?.sha).toBe(good);
      const live = await client.get('apps/v1', 'Deployment', ns, 'web');
      expect(JSON.stringify(live?.['spec'])).toContain('web:1.0');
      const state = await readTargetState(client, name);
      expect(state.pin?.revision.sha).toBe(good);
      expect(state.pin?.reason).toMatch(new RegExp(`^health failed at ${bad.slice(0, 12)}`));
      expect(state.history.at(-1)).toMatchObject({
        kind: 'auto-rollback',
        revision: { sha: good },
        health: 'healthy',
        by: 'tidegate',
      });
    } finally {
      stop = true;
      await controller;
    }
  });

  it('recovers a set of dependent targets into an emptied cluster, restoring every object', async () => {
    const [nsInfra, nsApp] = [uniqueName('rec-infra'), uniqueName('rec-app')];
    const [infra, app] = [uniqueName('infra'), uniqueName('app')];
    const repo = await gitopsRepo('rec');
    await repo.commit({
      'tidegate.yaml': stringify({
        targets: [
          { name: app, cluster: 't', path: 'app', targetNamespace: nsApp, wait: false, dependsOn: [infra] },
          { name: infra, cluster: 't', path: 'infra', targetNamespace: nsInfra, wait: false },
        ],
      }),
      'infra/a.yaml': [configMap('i1', { v: '1' }), configMap('i2', { v: '2' })].map((o) => stringify(o)).join('---\n'),
      'app/d.yaml': deployment('web'),
      'app/c.yaml': configMap('web-config', { v: 'x' }),
    });
    await repo.sync();
    const { client } = repo.engine;
    // Empty the cluster of everything these targets applied, and of their recorded state.
    for (const t of [infra, app]) {
      for (const e of (await readTargetState(client, t)).inventory) await client.delete(entryRef(e));
      await client.delete({
        group: '',
        kind: 'ConfigMap',
        namespace: SYSTEM_NAMESPACE,
        name: stateName(t),
        apiVersion: 'v1',
      });
    }
    expect(await data(client, nsInfra)).toEqual({});
    const progress: string[] = [];
    const results = await recover(repo.engine, {
      repo: repo.url,
      onProgress: (r, i, n) => progress.push(`${i}/${n} ${r.target} ${r.outcome}`),
    });
    expect(progress).toEqual([`1/2 ${infra} applied`, `2/2 ${app} applied`]);
    expect(results.every((r) => r.outcome === 'applied')).toBe(true);
    expect(await data(client, nsInfra)).toEqual({ i1: '1', i2: '2' });
    expect(await client.get('apps/v1', 'Deployment', nsApp, 'web')).toBeDefined();
    expect(await client.get('v1', 'ConfigMap', nsApp, 'web-config')).toBeDefined();
  });
});
