import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { KubeClient } from '../shared/cluster/index.js';
import { kubeConfigFromEndpoint } from '../shared/cluster/kubeconfig.js';
import type { KubeObject } from '../shared/model/index.js';
import { kubeBinDir } from './paths.js';
import { freePort, run, startProcess, waitUntilReady, type ManagedProcess } from './process.js';

/** What a client needs to reach the test apiserver (serialisable: handed to every test file). */
export interface KubeInfo {
  server: string;
  /** PEM of the apiserver's self-signed serving chain, trusted as the CA. */
  caPem: string;
  /**
   * Bearer token of user tidegate-cluster-admin (group tidegate), bound to ClusterRole cluster-admin
   * by a ClusterRoleBinding: what EKS's AmazonEKSClusterAdminPolicy grants, through RBAC (the
   * apiserver authorizes with RBAC only; no test talks to it as system:masters).
   */
  token: string;
  /** User tidegate-scoped (group tidegate), bound to nothing: a test grants it what namespace-scoped access would. */
  scoped: { user: string; token: string };
  /** A kubeconfig file for this cluster, usable by kubectl and @kubernetes/client-node. */
  kubeconfigPath: string;
  /** Where the apiserver's serving certificate and key are (apiserver.crt, apiserver.key): a proxy in front of it can serve the same. */
  certDir: string;
  versions: { kubeApiserver: string; etcd: string };
}

export interface KubeCluster extends KubeInfo {
  /** Kills the kube-apiserver only (etcd keeps the data), as an outage would. */
  killApiserver(): Promise<void>;
  /** Starts it again on the same port, certificates and token; resolves when it is ready. */
  restartApiserver(): Promise<void>;
  stop(): Promise<void>;
}

function httpsGet(url: string, caPem: string, token: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca: caPem, headers: { authorization: `Bearer ${token}` }, timeout: 2000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

type ClusterRole = KubeObject & {
  rules?: unknown[];
  aggregationRule?: { clusterRoleSelectors?: Array<{ matchLabels?: Record<string, string> }> };
};

/**
 * What a cluster's controller-manager and its administrator would have done, as system:masters:
 * the aggregated ClusterRoles (admin, edit, view) filled in from the roles their selectors pick,
 * as the clusterrole-aggregation controller does; and user tidegate-cluster-admin bound to
 * cluster-admin.
 */
async function bootstrapRbac(client: KubeClient): Promise<void> {
  const rbac = 'rbac.authorization.k8s.io';
  await client.apply(
    {
      apiVersion: `${rbac}/v1`,
      kind: 'ClusterRoleBinding',
      metadata: { name: 'tidegate-cluster-admin' },
      roleRef: { apiGroup: rbac, kind: 'ClusterRole', name: 'cluster-admin' },
      subjects: [{ apiGroup: rbac, kind: 'User', name: 'tidegate-cluster-admin' }],
    },
    { fieldManager: 'devenv', force: true },
  );
  const roles = (await client.list(`${rbac}/v1`, 'ClusterRole')) as ClusterRole[];
  const picks = (selectors: Array<{ matchLabels?: Record<string, string> }>, r: ClusterRole) =>
    selectors.some((sel) => Object.entries(sel.matchLabels ?? {}).every(([k, v]) => r.metadata.labels?.[k] === v));
  const aggregated = roles.filter((r) => r.aggregationRule?.clusterRoleSelectors?.length);
  // Aggregated roles pick each other (view → edit → admin): fill in until nothing changes.
  for (let changed = true; changed;) {
    changed = false;
    for (const role of aggregated) {
      const selectors = role.aggregationRule?.clusterRoleSelectors ?? [];
      const rules = roles.filter((r) => r !== role && picks(selectors, r)).flatMap((r) => r.rules ?? []);
      if (JSON.stringify(rules) !== JSON.stringify(role.rules ?? [])) {
        role.rules = rules;
        changed = true;
      }
    }
  }
  for (const role of aggregated) await client.replace(role);
}

export function kubeconfigYaml(info: Pick<KubeInfo, 'server' | 'caPem' | 'token'>, context = 'tidegate-test'): string {
  const ca = Buffer.from(info.caPem).toString('base64');
  return [
    'apiVersion: v1',
    'kind: Config',
    `current-context: ${context}`,
    'clusters:',
    `- name: ${context}`,
    '  cluster:',
    `    server: ${info.server}`,
    `    certificate-authority-data: ${ca}`,
    'users:',
    `- name: ${context}-admin`,
    '  user:',
    `    token: ${info.token}`,
    'contexts:',
    `- name: ${context}`,
    '  context:',
    `    cluster: ${context}`,
    `    user: ${context}-admin`,
    '',
  ].join('\n');
}

async function startEtcd(dir: string): Promise<{ proc: ManagedProcess; url: string }> {
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const url = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const proc = startProcess(
    'etcd',
    join(kubeBinDir(), 'etcd'),
    [
      `--data-dir=${join(dir, 'etcd-data')}`,
      `--listen-client-urls=${url}`,
      `--advertise-client-urls=${url}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=default=${peer}`,
      '--unsafe-no-fsync',
      '--log-level=warn',
    ],
    { logFile: join(dir, 'etcd.log') },
  );
  await waitUntilReady(proc, async () => (await fetch(`${url}/health`)).ok, 30_000);
  return { proc, url };
}

/**
 * Starts a real etcd and kube-apiserver on loopback, the way controller-runtime's envtest does:
 * no controller-manager or scheduler, so tests patch `/status` to simulate rollouts.
 */
export async function startKube(dir: string): Promise<KubeCluster> {
  mkdirSync(dir, { recursive: true });
  const etcd = await startEtcd(dir);
  const port = await freePort();
  const bootstrapToken = randomBytes(24).toString('hex'); // system:masters: creates the binding below, nothing else
  const token = randomBytes(24).toString('hex');
  const scoped = { user: 'tidegate-scoped', token: randomBytes(24).toString('hex') };
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  writeFileSync(join(dir, 'sa.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
  writeFileSync(join(dir, 'sa.pub'), publicKey.export({ type: 'spki', format: 'pem' }));
  writeFileSync(
    join(dir, 'tokens.csv'),
    [
      `${bootstrapToken},tidegate-bootstrap,1,"system:masters"`,
      `${token},tidegate-cluster-admin,2,"tidegate"`,
      `${scoped.token},${scoped.user},3,"tidegate"`,
    ].join('\n') + '\n',
    { mode: 0o600 },
  );
  const certDir = join(dir, 'certs');
  const launch = (): ManagedProcess =>
    startProcess(
      'kube-apiserver',
      join(kubeBinDir(), 'kube-apiserver'),
      [
        `--etcd-servers=${etcd.url}`,
        '--bind-address=127.0.0.1',
        '--advertise-address=127.0.0.1',
        `--secure-port=${port}`,
        `--cert-dir=${certDir}`,
        `--token-auth-file=${join(dir, 'tokens.csv')}`,
        '--authorization-mode=RBAC',
        '--service-cluster-ip-range=10.96.0.0/16', // room for benchmarks with thousands of Services
        '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
        `--service-account-key-file=${join(dir, 'sa.pub')}`,
        `--service-account-signing-key-file=${join(dir, 'sa.key')}`,
        // Without a controller-manager nothing creates default ServiceAccounts; Pods must still be admitted.
        '--disable-admission-plugins=ServiceAccount',
        '--allow-privileged=true',
        '--enable-priority-and-fairness=false',
        '--endpoint-reconciler-type=none',
        '--profiling=false',
      ],
      { logFile: join(dir, 'kube-apiserver.log') },
    );
  let apiserver = launch();
  const stop = async (): Promise<void> => {
    await apiserver.stop();
    await etcd.proc.stop();
  };
  const server = `https://127.0.0.1:${port}`;
  const certFile = join(certDir, 'apiserver.crt');
  let caPem = '';
  const ready = (): Promise<void> =>
    waitUntilReady(
      apiserver,
      async () => {
        if (!caPem) {
          if (!existsSync(certFile)) return false;
          caPem = readFileSync(certFile, 'utf8');
        }
        return (await httpsGet(`${server}/readyz`, caPem, bootstrapToken)).status === 200;
      },
      120_000,
    );
  try {
    await ready();
    await bootstrapRbac(
      new KubeClient(kubeConfigFromEndpoint({ name: 'bootstrap', server, caPem, token: bootstrapToken })),
    );
    const version = JSON.parse((await httpsGet(`${server}/version`, caPem, token)).body) as { gitVersion: string };
    const etcdVersion =
      (await run(join(kubeBinDir(), 'etcd'), ['--version'])).match(/etcd Version: (\S+)/)?.[1] ?? 'unknown';
    const kubeconfigPath = join(dir, 'kubeconfig');
    writeFileSync(kubeconfigPath, kubeconfigYaml({ server, caPem, token }), { mode: 0o600 });
    const killApiserver = (): Promise<void> => apiserver.stop(0);
    const restartApiserver = async (): Promise<void> => {
      await apiserver.stop();
      apiserver = launch();
      await ready();
    };
    return {
      server,
      caPem,
      token,
      scoped,
      kubeconfigPath,
      certDir,
      versions: { kubeApiserver: version.gitVersion, etcd: etcdVersion },
      killApiserver,
      restartApiserver,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
