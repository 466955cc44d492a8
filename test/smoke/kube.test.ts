import { request } from 'node:https';
import { CoreV1Api, KubernetesObjectApi, PatchStrategy, type V1ConfigMap } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { VERSIONS, run } from '../../devenv/index.js';
import { testEnv, testKubeConfig, useNamespace } from '../helpers/env.js';

const ns = useNamespace(import.meta.url);

describe('real kube-apiserver + etcd', () => {
  it('runs the pinned versions', () => {
    const { versions } = testEnv().kube;
    expect(versions.kubeApiserver).toBe(`v${VERSIONS.kubernetes}`);
    expect(versions.etcd).toBe(VERSIONS.etcd);
  });

  it('server-side applies a ConfigMap and records the field manager', async () => {
    const kc = testKubeConfig();
    const objects = KubernetesObjectApi.makeApiClient(kc);
    const body = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'smoke', namespace: ns.name },
      data: { greeting: 'hello' },
    };
    await objects.patch(body, undefined, undefined, 'tidegate-smoke', true, PatchStrategy.ServerSideApply);

    const read: V1ConfigMap = await kc
      .makeApiClient(CoreV1Api)
      .readNamespacedConfigMap({ name: 'smoke', namespace: ns.name });
    expect(read.data).toEqual({ greeting: 'hello' });
    expect(Number(read.metadata?.resourceVersion)).toBeGreaterThan(0);
    const managers = read.metadata?.managedFields?.map((f) => [f.manager, f.operation]);
    expect(managers).toContainEqual(['tidegate-smoke', 'Apply']);

    // Applying the same object again changes nothing: the resourceVersion stays.
    await objects.patch(body, undefined, undefined, 'tidegate-smoke', true, PatchStrategy.ServerSideApply);
    const again = await kc.makeApiClient(CoreV1Api).readNamespacedConfigMap({ name: 'smoke', namespace: ns.name });
    expect(again.metadata?.resourceVersion).toBe(read.metadata?.resourceVersion);
  });

  it('serves kubectl through the written kubeconfig', async () => {
    const { kube, tools } = testEnv();
    await run(tools.kubectl, [
      '--kubeconfig',
      kube.kubeconfigPath,
      'create',
      'configmap',
      'from-kubectl',
      '-n',
      ns.name,
      '--from-literal=a=b',
    ]);
    const out = await run(tools.kubectl, [
      '--kubeconfig',
      kube.kubeconfigPath,
      'get',
      'configmap',
      'from-kubectl',
      '-n',
      ns.name,
      '-o',
      'json',
    ]);
    const cm = JSON.parse(out) as V1ConfigMap;
    expect(cm.data).toEqual({ a: 'b' });
    expect(cm.metadata?.namespace).toBe(ns.name);
  });

  it('refuses requests without credentials (authentication and RBAC are on)', async () => {
    const { kube } = testEnv();
    const status = await new Promise<number>((resolve, reject) => {
      request(`${kube.server}/api/v1/namespaces`, { ca: kube.caPem }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
        .on('error', reject)
        .end();
    });
    expect(status).toBe(403); // system:anonymous has no RBAC grant
  });
});
