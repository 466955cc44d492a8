import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { ControllerClient } from '../../devenv/index.js';
import { uniqueName } from '../helpers/env.js';
import { deployment, gitopsRepo } from '../helpers/engine.js';

/** Plays the Deployment controller: waits for the object, then patches its status. */
async function patchWhenCreated(
  client: ControllerClient,
  ns: string,
  name: string,
  status: (generation: number) => Record<string, unknown>,
): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const live = await client.get('apps/v1', 'Deployment', ns, name);
    if (live) {
      await client.patchStatus(live, status(live.metadata.generation ?? 1));
      return;
    }
    await sleep(50);
  }
  throw new Error(`deployment ${name} never appeared`);
}

describe('health: a sync waits for readiness, bounded by the target timeout', () => {
  it('fails with ProgressDeadlineExceeded when the rollout stalls', async () => {
    const ns = uniqueName('stall');
    const repo = await gitopsRepo('stall');
    await repo.commit({
      'tidegate.yaml': stringify({
        targets: [{ name: ns, cluster: 't', path: 'apps', targetNamespace: ns, timeout: '20s' }],
      }),
      'apps/d.yaml': deployment('web', { replicas: 2 }),
    });
    const [[res]] = await Promise.all([
      repo.sync(ns),
      patchWhenCreated(repo.engine.client, ns, 'web', (generation) => ({
        observedGeneration: generation,
        replicas: 2,
        updatedReplicas: 1,
        conditions: [
          {
            type: 'Progressing',
            status: 'False',
            reason: 'ProgressDeadlineExceeded',
            message: 'ReplicaSet "web-1" has timed out progressing.',
          },
        ],
      })),
    ]);
    expect(res?.outcome).toBe('failed');
    expect(res?.health.status).toBe('failed');
    expect(res?.health.notReady).toEqual([
      {
        ref: { group: 'apps', kind: 'Deployment', namespace: ns, name: 'web' },
        status: 'failed',
        message: 'ProgressDeadlineExceeded: ReplicaSet "web-1" has timed out progressing.',
      },
    ]);
    expect(res?.error).toContain('ProgressDeadlineExceeded');
  });

  it('passes once the Deployment reports its replicas available', async () => {
    const ns = uniqueName('ready');
    const repo = await gitopsRepo('ready');
    await repo.commit({
      'tidegate.yaml': stringify({
        targets: [{ name: ns, cluster: 't', path: 'apps', targetNamespace: ns, timeout: '20s' }],
      }),
      'apps/d.yaml': deployment('web', { replicas: 2 }),
    });
    const [[res]] = await Promise.all([
      repo.sync(ns),
      patchWhenCreated(repo.engine.client, ns, 'web', (generation) => ({
        observedGeneration: generation,
        replicas: 2,
        updatedReplicas: 2,
        readyReplicas: 2,
        availableReplicas: 2,
        conditions: [{ type: 'Available', status: 'True', reason: 'MinimumReplicasAvailable' }],
      })),
    ]);
    expect(res?.outcome).toBe('applied');
    expect(res?.health).toEqual({ status: 'healthy', notReady: [] });
  });

  it('reports which objects are not ready, and why, when the timeout passes', async () => {
    const ns = uniqueName('slow');
    const repo = await gitopsRepo('slow');
    await repo.commit({
      'tidegate.yaml': stringify({
        targets: [{ name: ns, cluster: 't', path: 'apps', targetNamespace: ns, timeout: '1s' }],
      }),
      'apps/d.yaml': deployment('web', { replicas: 3 }),
    });
    const started = Date.now();
    const [res] = await repo.sync(ns);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(res?.outcome).toBe('progressing');
    expect(res?.health.notReady).toEqual([
      {
        ref: { group: 'apps', kind: 'Deployment', namespace: ns, name: 'web' },
        status: 'progressing',
        message: 'waiting for the controller to observe generation 1',
      },
    ]);
  });
});
