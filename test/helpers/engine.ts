import { afterAll } from 'vitest';
import { stringify } from 'yaml';
import { ControllerClient, GitWorkspace, createBareRepo } from '../../devenv/index.js';
import { localSettings } from '../../shared/config/index.js';
import { syncRepo, type EngineContext } from '../../shared/usecases/index.js';
import type { KubeObject, SyncResult } from '../../shared/model/index.js';
import { testEnv, testKubeConfig, uniqueName } from './env.js';

/** An engine context wired to the test servers: every cluster alias is the test apiserver, as the user of `token`. */
export function testEngine(token?: string): EngineContext & { client: ControllerClient } {
  const client = new ControllerClient(testKubeConfig(token));
  return { settings: localSettings(), connect: () => Promise.resolve(client), gitSource: (url) => ({ url }), client };
}

/** A GitOps repository on the test git server, with helpers to commit manifests and sync. */
export async function gitopsRepo(prefix: string, opts: { owner?: string; token?: string } = {}) {
  const env = testEnv().git;
  const name = uniqueName(prefix);
  const url = await createBareRepo(env, opts.owner ? `${opts.owner}/${name}` : name);
  const ws = await GitWorkspace.clone(env, url);
  afterAll(() => ws.remove());
  const engine = testEngine(opts.token);
  return {
    url,
    name,
    ws,
    engine,
    commit: (files: Record<string, string | KubeObject | KubeObject[] | null>, message = 'change') =>
      ws.commit(
        Object.fromEntries(
          Object.entries(files).map(([k, v]) => [k, v === null || typeof v === 'string' ? v : yamlDocs(v)]),
        ),
        message,
      ),
    sync: async (target?: string, sha?: string, dryRun = false): Promise<SyncResult[]> =>
      syncRepo(engine, { repo: url, target, ...(sha ? { revision: { ref: 'refs/heads/main', sha } } : {}), dryRun }),
  };
}

export function yamlDocs(objs: KubeObject | KubeObject[]): string {
  return (Array.isArray(objs) ? objs : [objs]).map((o) => stringify(o)).join('---\n');
}

export const configMap = (
  name: string,
  data: Record<string, string>,
  extra: Partial<KubeObject['metadata']> = {},
): KubeObject => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name, ...extra },
  data,
});

export function deployment(
  name: string,
  opts: { replicas?: number; image?: string; labels?: Record<string, string> } = {},
): KubeObject {
  const labels = opts.labels ?? { app: name };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name },
    spec: {
      replicas: opts.replicas ?? 1,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: { containers: [{ name: 'app', image: opts.image ?? 'registry.example/app:1.0.0' }] },
      },
    },
  };
}

/** A Deployment manifest whose image carries a Flux image-policy marker (and, optionally, the same image unmarked in a comment). */
export const markedDeployment = (image: string, marker: string, unmarkedCopy = false): string => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: podinfo
spec:
  selector:
    matchLabels: { app: podinfo }
  template:
    metadata:
      labels: { app: podinfo }
    spec:
      containers:
        - name: podinfo
          image: ${image} # {"$imagepolicy": "${marker}"}
${unmarkedCopy ? `          # the same image unmarked stays: ${image}\n` : ''}`;

/** A tidegate.yaml of one target on the test cluster, named as the namespace it creates, its files under `path`. */
export const oneTarget = (namespace: string, path: string, extra: Record<string, unknown> = {}): string =>
  stringify({
    targets: [{ name: namespace, cluster: 'test', path, targetNamespace: namespace, wait: false, ...extra }],
  });

/** A Secret manifest with string data. */
export const secret = (name: string, stringData: Record<string, string>): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Secret',
  metadata: { name },
  stringData,
});
