import { basename } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { beforeAll, inject } from 'vitest';
import type { EnvironmentInfo } from '../../devenv/index.js';
import { kubeConfigFromEndpoint } from '../../shared/cluster/kubeconfig.js';

export const testEnv = (): EnvironmentInfo => inject('env');

/** A client configuration for the test apiserver (cluster-admin). */
export function testKubeConfig(token = testEnv().kube.token): KubeConfig {
  const { kube } = testEnv();
  return kubeConfigFromEndpoint({ name: 'tidegate-test', server: kube.server, caPem: kube.caPem, token });
}

/** A DNS-1123 name unique to this run: prefix + random suffix. */
export function uniqueName(prefix: string): string {
  const clean = prefix
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40);
  return `${clean}-${randomBytes(3).toString('hex')}`;
}

/**
 * Gives the calling test file a namespace of its own, created before its tests run.
 * Usage: `const ns = useNamespace(import.meta.url);` then `ns.name` inside tests.
 */
export function useNamespace(fileUrl: string): { readonly name: string } {
  const name = uniqueName(`t-${basename(fileURLToPath(fileUrl)).replace(/\.test\.ts$/, '')}`);
  beforeAll(async () => {
    await testKubeConfig()
      .makeApiClient(CoreV1Api)
      .createNamespace({ body: { metadata: { name, labels: { 'tidegate.dev/test': 'true' } } } });
  });
  return { name };
}
