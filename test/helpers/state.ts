import { afterAll, afterEach, beforeAll } from 'vitest';
import { ControllerClient, startFaultProxy, type FaultProxy } from '../../devenv/index.js';
import { SYSTEM_NAMESPACE } from '../../shared/apply/index.js';
import { stateName } from '../../shared/state/state.js';
import { EndpointAuth } from '../../shared/cluster/index.js';
import type { RetryPolicy } from '../../shared/cluster/retry.js';
import { localSettings } from '../../shared/config/index.js';
import type { EngineContext, Queue } from '../../shared/usecases/index.js';
import type { KubeObject } from '../../shared/model/index.js';
import type { Logger } from '../../shared/telemetry/index.js';
import { testEnv } from './env.js';

/** Helpers for the tests of target state under faults and concurrent writers. */

/** A client of the test apiserver, or of a proxy in front of it (same CA and token). */
export function kubeClient(
  server = testEnv().kube.server,
  opts: { retry?: Partial<RetryPolicy>; logger?: Logger } = {},
): ControllerClient {
  const { kube } = testEnv();
  return new ControllerClient(new EndpointAuth({ server, caPem: kube.caPem, token: kube.token }), undefined, opts);
}

/** An engine on one apiserver URL; the lease holder is named, and clocks agree unless said otherwise. */
export function engineAt(
  server: string,
  holder: string,
  lease: { waitMs?: number; durationSeconds?: number } = {},
): EngineContext & { client: ControllerClient } {
  const client = kubeClient(server);
  return {
    settings: localSettings(),
    connect: () => Promise.resolve(client),
    gitSource: (url) => ({ url }),
    lease: { holder, waitMs: 30_000, clockSkewSeconds: 0, ...lease },
    client,
  };
}

/** A fault proxy in front of the test apiserver for the calling file, its rules cleared after each test. */
export function useFaultProxy(): { readonly proxy: FaultProxy } {
  const ref = {} as { proxy: FaultProxy };
  beforeAll(async () => {
    const { kube } = testEnv();
    ref.proxy = await startFaultProxy({ server: kube.server, caPem: kube.caPem, certDir: kube.certDir });
  });
  afterEach(() => ref.proxy.clear());
  afterAll(() => ref.proxy?.stop());
  return ref;
}

export const noQueue: Queue = { send: () => Promise.resolve() };
export const oneTarget = (name: string, ns: string, extra: Record<string, unknown> = {}) => ({
  name,
  cluster: 'c',
  path: 'apps',
  targetNamespace: ns,
  wait: false,
  ...extra,
});
export const statePath = (target: string): RegExp =>
  new RegExp(`^/api/v1/namespaces/${SYSTEM_NAMESPACE}/configmaps/${stateName(target)}$`);
export const leasePath = (target: string): RegExp => new RegExp(`/leases/${stateName(target)}$`);
/** What a sync ended with, as text: `returned <outcome>` or `threw <message>`. */
export const outcomeOf = (p: Promise<Array<{ outcome: string }>>): Promise<string> =>
  p.then(
    (r) => `returned ${r[0]?.outcome ?? 'nothing'}`,
    (err: unknown) => `threw ${(err as Error).message}`,
  );
export const liveConfigMaps = async (client: ControllerClient, ns: string): Promise<string[]> =>
  (await client.list('v1', 'ConfigMap', { namespace: ns }))
    .map((c) => c.metadata.name)
    .filter((n) => n !== 'kube-root-ca.crt')
    .sort();

/**
 * Plays the Deployment controller of a namespace: each new generation becomes available after
 * `delayMs`, or stalls (ProgressDeadlineExceeded with `message`) when `stalls` says so.
 */
export function deploymentController(
  client: ControllerClient,
  ns: string,
  opts: { delayMs?: number; stalls?: (spec: string) => boolean; message?: string } = {},
): () => Promise<void> {
  let stop = false;
  const seen = new Map<string, number>();
  const loop = (async () => {
    while (!stop) {
      for (const d of await client.list('apps/v1', 'Deployment', { namespace: ns }).catch(() => [] as KubeObject[])) {
        const gen = d.metadata.generation ?? 1;
        const key = `${d.metadata.name}@${gen}`;
        if (!seen.has(key)) seen.set(key, Date.now());
        const observed = (d['status'] as { observedGeneration?: number } | undefined)?.observedGeneration;
        if (observed === gen || Date.now() - (seen.get(key) ?? 0) < (opts.delayMs ?? 0)) continue;
        const replicas = (d['spec'] as { replicas?: number }).replicas ?? 1;
        const status = opts.stalls?.(JSON.stringify(d['spec']))
          ? {
              observedGeneration: gen,
              replicas,
              updatedReplicas: 0,
              conditions: [
                {
                  type: 'Progressing',
                  status: 'False',
                  reason: 'ProgressDeadlineExceeded',
                  message: opts.message ?? 'timed out',
                },
              ],
            }
          : {
              observedGeneration: gen,
              replicas,
              updatedReplicas: replicas,
              availableReplicas: replicas,
              readyReplicas: replicas,
              conditions: [
                { type: 'Available', status: 'True' },
                { type: 'Progressing', status: 'True', reason: 'NewReplicaSetAvailable' },
              ],
            };
        await client.patchStatus(d, status).catch(() => undefined);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  return async () => {
    stop = true;
    await loop;
  };
}
