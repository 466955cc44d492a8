import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { locateTool } from '../shared/render/index.js';
import { localSettings } from '../shared/config/index.js';
import { startGitServer, type GitServerInfo } from './git-server.js';
import { startKube, type KubeInfo } from './kube.js';
import { startMoto, type MotoInfo } from './moto.js';
import { startRegistry, type RegistryInfo } from './registry.js';
import { errorMessage } from '../shared/model/index.js';

export { ControllerClient } from './controller-client.js';
export { startFaultProxy, type Fault, type FaultProxy, type FaultRule, type ProxiedRequest } from './fault-proxy.js';
export {
  ACTIVITY_FILE,
  GitWorkspace,
  createBareRepo,
  noreplyEmail,
  startGitServer,
  type GitServer,
  type GitServerInfo,
  type RefActivity,
} from './git-server.js';
export { startGitHub, type MergeMethod, type TestGitHub } from './github.js';
export { startHelmRepo, type HelmRepo } from './helm-repo.js';
export { kubeconfigYaml, startKube, type KubeCluster, type KubeInfo } from './kube.js';
export {
  pushImage,
  pushArtifact,
  FLUX_ARTIFACT,
  receivedEvents,
  setNotificationTarget,
  startRegistry,
  waitForEvent,
  type Registry,
  type RegistryEvent,
  type RegistryInfo,
} from './registry.js';
export { startMoto, type Moto, type MotoInfo } from './moto.js';
export { VERSIONS, cosignPath, sopsPath } from './paths.js';
export { freePort, run } from './process.js';

/** Connection facts of every running server; plain data, so vitest can hand it to test files. */
export interface EnvironmentInfo {
  workDir: string;
  kube: KubeInfo;
  git: GitServerInfo;
  registry: RegistryInfo;
  aws: MotoInfo;
  tools: { kubectl: string; helm: string };
}

export interface Environment extends EnvironmentInfo {
  stop(): Promise<void>;
}

/**
 * Starts the real servers on loopback: kube-apiserver + etcd, a git smart-HTTP server, the
 * distribution registry and moto. All of them are stopped by `stop()`, even after a failed start.
 */
export async function startEnvironment(
  opts: { gitToken?: string; keepWorkDir?: boolean; withoutAws?: boolean } = {},
): Promise<Environment> {
  const workDir = mkdtempSync(join(tmpdir(), 'tidegate-env-'));
  const settings = localSettings();
  const tools = { kubectl: locateTool('kubectl', settings), helm: locateTool('helm', settings) };
  const stops: Array<() => Promise<void>> = [];
  const stop = async (): Promise<void> => {
    await Promise.allSettled(stops.reverse().map((s) => s()));
    if (!opts.keepWorkDir) rmSync(workDir, { recursive: true, force: true });
  };
  const started = <T extends { stop(): Promise<void> }>(server: T): T => {
    stops.push(() => server.stop());
    return server;
  };
  // Start side by side; settle all before deciding, so a failed start never leaks a running server.
  const results = await Promise.allSettled([
    startKube(join(workDir, 'kube')).then(started),
    startGitServer({ root: join(workDir, 'git', 'repos'), ...(opts.gitToken ? { token: opts.gitToken } : {}) }).then(
      started,
    ),
    startRegistry(join(workDir, 'registry')).then(started),
    opts.withoutAws ? Promise.resolve(undefined) : startMoto(join(workDir, 'moto')).then(started),
  ] as const);
  const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed.length > 0) {
    await stop();
    throw new AggregateError(
      failed.map((f) => f.reason),
      `test environment failed to start: ${failed.map((f) => errorMessage(f.reason)).join('; ')}`,
    );
  }
  const value = <T>(r: PromiseSettledResult<T>): T => (r as PromiseFulfilledResult<T>).value;
  const [kube, git, registry, aws] = [value(results[0]), value(results[1]), value(results[2]), value(results[3])];
  return {
    workDir,
    kube: {
      server: kube.server,
      caPem: kube.caPem,
      token: kube.token,
      scoped: kube.scoped,
      kubeconfigPath: kube.kubeconfigPath,
      certDir: kube.certDir,
      versions: kube.versions,
    },
    git: { url: git.url, root: git.root, token: git.token },
    registry: { url: registry.url, host: registry.host, relayUrl: registry.relayUrl },
    aws: aws
      ? { endpoint: aws.endpoint, region: aws.region, credentials: aws.credentials }
      : { endpoint: '', region: '', credentials: { accessKeyId: '', secretAccessKey: '' } },
    tools,
    stop,
  };
}
