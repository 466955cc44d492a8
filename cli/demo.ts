import { randomBytes } from 'node:crypto';
import { stringify } from 'yaml';
import {
  ControllerClient,
  GitWorkspace,
  createBareRepo,
  pushImage,
  setNotificationTarget,
  startEnvironment,
  type Environment,
} from '../devenv/index.js';
import { localSettings } from '../shared/config/index.js';
import type { EngineContext, WorkOutcome } from '../shared/usecases/index.js';
import type { KubeObject, QueueMessage, SyncResult } from '../shared/model/index.js';
import { silentLogger } from '../shared/telemetry/index.js';
import { kubeConfigFromEndpoint } from '../shared/cluster/kubeconfig.js';
import { statusCommand } from './commands/status.js';
import { signedPush, startDevServer, type DevServer } from './dev-server.js';
import { formatResults, type Io } from './output.js';

const NS = 'demo';
const indent = (text: string): string => `${text.trimEnd().replace(/^/gm, '         ')}\n`;
const TARGET = 'podinfo';

const IMAGE_MARKER = '# {"$imagepolicy": "flux-system:podinfo"}';

function manifests(replicas: number, logLevel: string, image: string): Record<string, string> {
  const labels = { app: 'podinfo' };
  const docs: Record<string, KubeObject> = {
    'apps/podinfo/deployment.yaml': {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'podinfo', annotations: { 'reloader.stakater.com/auto': 'true' } },
      spec: {
        replicas,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            containers: [
              { name: 'podinfo', image: `${image}:6.5.0`, envFrom: [{ configMapRef: { name: 'podinfo-config' } }] },
            ],
          },
        },
      },
    },
    'apps/podinfo/service.yaml': {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'podinfo' },
      spec: { selector: labels, ports: [{ port: 9898 }] },
    },
    'apps/podinfo/config.yaml': {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'podinfo-config' },
      data: { PODINFO_LOG_LEVEL: logLevel },
    },
  };
  return {
    'tidegate.yaml': stringify({
      targets: [{ name: TARGET, cluster: 'embedded', path: 'apps/podinfo', targetNamespace: NS, timeout: '30s' }],
      images: [{ name: 'podinfo', repository: image, insecure: true, policy: { semver: { range: '>=6.0.0' } } }],
    }),
    // The image line carries a Flux setter marker, so image automation may rewrite it.
    ...Object.fromEntries(
      Object.entries(docs).map(([k, v]) => [
        k,
        stringify(v).replace(`image: ${image}:6.5.0`, `image: ${image}:6.5.0 ${IMAGE_MARKER}`),
      ]),
    ),
  };
}

/**
 * There is no kubelet or controller-manager in the embedded cluster: this stand-in marks
 * Deployments rolled out, so health checks behave as on a real cluster.
 */
function standInController(client: ControllerClient): () => void {
  let stopped = false;
  const loop = async (): Promise<void> => {
    while (!stopped) {
      for (const d of await client.list('apps/v1', 'Deployment', { namespace: NS }).catch(() => [])) {
        const replicas = (d['spec'] as { replicas?: number }).replicas ?? 1;
        const status = d['status'] as { observedGeneration?: number; availableReplicas?: number } | undefined;
        if (status?.observedGeneration === d.metadata.generation && status?.availableReplicas === replicas) continue;
        await client
          .patchStatus(d, {
            observedGeneration: d.metadata.generation,
            replicas,
            updatedReplicas: replicas,
            readyReplicas: replicas,
            availableReplicas: replicas,
          })
          .catch(() => undefined);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  void loop();
  return () => void (stopped = true);
}

/** Resolves on Ctrl-C (SIGINT) or SIGTERM. */
function untilInterrupted(): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve();
    };
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
}

/**
 * `npm start`: the whole loop, live, on an embedded kube-apiserver + etcd, git server and
 * registry; then the status page is served until Ctrl-C (`once`: return when the loop is done).
 */
export async function runDemo(
  io: Io,
  opts: {
    once?: boolean;
    /** Called with the status page's URL once the loop is done, while it is served (the README's picture is taken here). */
    whileServing?: (url: string) => Promise<void>;
  } = {},
): Promise<number> {
  const t0 = Date.now();
  const at = (): string => `[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s]`;
  const say = (text: string): void => io.out(`${at()} ${text}\n`);
  let env: Environment | undefined;
  let dev: DevServer | undefined;
  let stopController = (): void => undefined;
  try {
    say('starting the embedded servers: kube-apiserver + etcd, git smart-HTTP server, OCI registry ...');
    env = await startEnvironment({ withoutAws: true });
    say(
      `ready: kube-apiserver ${env.kube.versions.kubeApiserver} (etcd ${env.kube.versions.etcd}) at ${env.kube.server}; kubeconfig ${env.kube.kubeconfigPath}`,
    );
    const url = await createBareRepo(env.git, 'demo/gitops');
    const image = `${env.registry.host}/demo/podinfo`;
    await pushImage(env.registry, 'demo/podinfo', '6.5.0');
    const ws = await GitWorkspace.clone(env.git, url);
    const kube = env.kube;
    const client = new ControllerClient(
      kubeConfigFromEndpoint({ name: 'embedded', server: kube.server, caPem: kube.caPem, token: kube.token }),
    );
    stopController = standInController(client);
    const engine: EngineContext = {
      settings: localSettings(),
      connect: () => Promise.resolve(client),
      gitSource: (u) => ({ url: u }),
      logger: silentLogger,
    };
    const secret = randomBytes(16).toString('hex');
    const results: SyncResult[] = [];
    let waiting: ((r: SyncResult) => void) | undefined;
    dev = await startDevServer({
      engine,
      repo: url,
      branch: 'main',
      webhookSecret: secret,
      registrySecret: secret,
      onWork: (_msg: QueueMessage, outcome: WorkOutcome | Error) => {
        if (!(outcome instanceof Error) && outcome.kind === 'synced') {
          results.push(outcome.result);
          waiting?.(outcome.result);
        }
      },
    });
    await setNotificationTarget(env.registry, `${dev.url}/webhooks/registry?token=${secret}`);
    say(
      `dev server on ${dev.url} (POST /webhooks/github, POST /webhooks/registry), GitOps repository ${url}, registry ${env.registry.url}`,
    );
    const push = async (files: Record<string, string>, message: string): Promise<SyncResult> => {
      const sha = await ws.commit(files, message);
      const started = Date.now();
      const synced = new Promise<SyncResult>((resolve) => (waiting = resolve));
      const { headers, body } = signedPush(url, sha, Object.keys(files), secret);
      const res = await fetch(`${dev?.url ?? ''}/webhooks/github`, { method: 'POST', headers, body });
      say(`  git push ${sha.slice(0, 12)} "${message}" → webhook answered ${res.status} in ${Date.now() - started} ms`);
      const result = await synced;
      io.out(indent(formatResults([result])));
      say(`  push → applied and healthy in ${Date.now() - started} ms`);
      return result;
    };
    const replicas = async (): Promise<number> =>
      ((await client.get('apps/v1', 'Deployment', NS, 'podinfo'))?.['spec'] as { replicas: number }).replicas;

    io.out('\nstep 1  initial sync of a fresh repository\n');
    await push(manifests(1, 'info', image), 'podinfo: initial');
    io.out('\nstep 2  a commit changing replicas 1 → 3, delivered as a GitHub push webhook\n');
    await push(manifests(3, 'info', image), 'podinfo: scale to 3');
    say(`  the cluster now runs replicas=${await replicas()}`);

    io.out('\nstep 3  someone scales by hand (replicas → 7); the scheduled poll corrects the drift\n');
    await client.apply(
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'podinfo', namespace: NS },
        spec: { replicas: 7 },
      },
      { fieldManager: 'kubectl-edit', force: true },
    );
    say(`  replicas=${await replicas()} (out of band)`);
    const corrected = new Promise<SyncResult>((resolve) => (waiting = resolve));
    await dev.poll();
    const drift = await corrected;
    io.out(indent(formatResults([drift])));
    say(`  replicas=${await replicas()} again`);

    io.out('\nstep 4  a ConfigMap change in Git rolls the Deployment that uses it (reloader.stakater.com/auto)\n');
    const generation = async (): Promise<number> =>
      (await client.get('apps/v1', 'Deployment', NS, 'podinfo'))?.metadata.generation ?? 0;
    const genBefore = await generation();
    await push(
      { 'apps/podinfo/config.yaml': manifests(3, 'debug', image)['apps/podinfo/config.yaml'] ?? '' },
      'podinfo: log level debug',
    );
    say(`  Deployment generation ${genBefore} → ${await generation()}: a new rollout, pods get the new config`);

    io.out(
      '\nstep 5  an image push to the registry: the new tag is written to Git (a commit), and that commit is applied\n',
    );
    const imageSynced = new Promise<SyncResult>((resolve) => (waiting = resolve));
    const pushedAt = Date.now();
    await pushImage(env.registry, 'demo/podinfo', '6.5.1');
    say(`  pushed ${image}:6.5.1; the registry notified the dev server`);
    const applied = await imageSynced;
    const message = (
      await ws
        .git('fetch', '--quiet', 'origin')
        .then(() => ws.git('log', '-1', '--format=%h by %an: %B', 'origin/main'))
    ).trim();
    say(`  commit ${message.split('\n').filter(Boolean).join(' | ')}`);
    io.out(indent(formatResults([applied])));
    const running = (
      (await client.get('apps/v1', 'Deployment', NS, 'podinfo'))?.['spec'] as {
        template: { spec: { containers: Array<{ image: string }> } };
      }
    ).template.spec.containers[0]?.image;
    say(`  registry push → applied in ${Date.now() - pushedAt} ms; the Deployment now runs ${running ?? '?'}`);

    io.out('\nstatus (tidegate status)\n');
    await statusCommand(
      undefined,
      { kubeconfig: kube.kubeconfigPath, output: 'text' },
      { out: (t) => io.out(`  ${t}`), err: io.err },
    );
    io.out(`
next steps: point tidegate at a real cluster
  1. write tidegate.yaml at the root of your GitOps repository (docs/configuration.md)
  2. check it, then see and apply it with your kubeconfig (README: Your first ten minutes):
       npm run tidegate -- validate --dir <your repo>
       npm run tidegate -- diff --dir <your repo> --context <kubeconfig context>
  3. on AWS (README: Deploying to AWS; docs/deploy.md in full): settings, then npx sls deploy;
     its output WebhookBaseUrl + /webhooks/github is the GitHub webhook's payload URL;
     ECR pushes in the stack's account and region need nothing more (the stack has the rule)
`);
    const page = await fetch(`${dev.url}/`);
    const html = await page.text();
    say(
      `status page: ${dev.url}/ (HTTP ${page.status}, ${(html.match(/<tr class="target"/g) ?? []).length} target(s), ${(html.match(/<rect class="bar/g) ?? []).length} bars plotted)`,
    );
    say(
      `demo finished: ${results.length} syncs, all ${results.every((r) => r.outcome !== 'failed') ? 'succeeded' : 'done (some failed)'}`,
    );
    await opts.whileServing?.(`${dev.url}/`);
    if (!opts.once) {
      io.out(`\nthe status page stays at ${dev.url}/ until Ctrl-C (npm start -- --once stops here)\n`);
      await untilInterrupted();
    }
    return results.every((r) => r.outcome !== 'failed') ? 0 : 1;
  } finally {
    stopController();
    await dev?.stop();
    await env?.stop();
  }
}
