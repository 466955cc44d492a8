import { mkdirSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { pushImage } from '../../devenv/index.js';
import { SqsQueue } from '../../shared/aws/sqs-queue.js';
import { RELOADER as R } from '../../shared/reload/annotations.js';
import { readTargetState } from '../../shared/state/index.js';
import type { KubeObject, QueueMessage } from '../../shared/model/index.js';
import { testEnv, uniqueName } from '../helpers/env.js';
import { configMap, deployment, gitopsRepo, testEngine, yamlDocs } from '../helpers/engine.js';
import { awsConfig, createFifoQueue, deliverBatch, testClusterSetting } from '../helpers/lambda.js';
import { startFunction, type LambdaFunction } from '../helpers/lambda-runtime.js';

/**
 * No input can take the worker down: each hostile input of one repository (a marker line of
 * 1 MiB, a reload namespace of costly patterns, a chart that allocates without printing, a small
 * pack that unpacks to a huge file, plain YAML in tens of thousands of documents) fails its own
 * message, or finishes, within its budget, in one SQS batch beside ordinary targets of other
 * repositories, through the built worker bundle under Lambda's limits (memory of the whole
 * process tree measured and enforced). TIDEGATE_HOSTILE=1 runs the inputs at the sizes the attack
 * was found with (1280 MiB of zeros, 60 MiB of YAML, 730 costly Deployments).
 */
const FULL = process.env['TIDEGATE_HOSTILE'] === '1';
const MiB = 1024 * 1024;
const SIZES = FULL
  ? { zerosMiB: 1280, yamlDocuments: 120_000, costlyDeployments: 730, markerLineMiB: 1 }
  : { zerosMiB: 300, yamlDocuments: 12_000, costlyDeployments: 25, markerLineMiB: 1 };
const ORDINARY = 10;

const costly = (last: string): string => `${'(?:x?){253}'.repeat(40)}${last}`;
const LONG = `${'x'.repeat(240)}-a`;
const CHART = stringify({ apiVersion: 'v2', name: 'app', version: '0.1.0' });

describe(`budgets: hostile inputs in one batch beside ${ORDINARY} ordinary targets, through the built worker (${FULL ? 'full size' : 'scaled'})`, () => {
  let worker: LambdaFunction;
  let queueUrl = '';
  let queue: SqsQueue;
  const { client } = testEngine();
  const reg = testEnv().registry;
  const image = `${reg.host}/apps/${uniqueName('budget')}`;
  const repos = {} as Record<
    'ordinary' | 'marker' | 'bomb' | 'zeros' | 'yaml' | 'scope',
    Awaited<ReturnType<typeof gitopsRepo>>
  >;
  const ignoredNs = uniqueName('ignored');
  const costlyNs = uniqueName('costly');
  const plainNs = uniqueName('plain');

  const target = (name: string, path: string, extra: Record<string, unknown> = {}) => ({
    name,
    cluster: 'test',
    path,
    targetNamespace: name,
    wait: false,
    ...extra,
  });
  const head = async (repo: (typeof repos)['ordinary']) => (await repo.ws.git('rev-parse', 'HEAD')).trim();
  const sync = async (repo: (typeof repos)['ordinary'], name: string): Promise<QueueMessage> => ({
    type: 'sync',
    repo: repo.url,
    target: name,
    revision: { ref: 'refs/heads/main', sha: await head(repo) },
    reason: 'push',
  });
  const apply = (ns: string, o: KubeObject) =>
    client.apply({ ...o, metadata: { ...o.metadata, namespace: ns } }, { fieldManager: 'test', force: true });

  beforeAll(async () => {
    for (const key of Object.keys({ ordinary: 0, marker: 0, bomb: 0, zeros: 0, yaml: 0, scope: 0 }) as Array<
      keyof typeof repos
    >)
      repos[key] = await gitopsRepo(`budget-${key}`, { owner: 'acme' });
    queueUrl = await createFifoQueue('budget');
    queue = new SqsQueue(new SQSClient(awsConfig()), queueUrl);
    worker = await startFunction('sync-worker', {
      settings: {
        repositories: Object.values(repos).map((r) => ({ url: r.url, branch: 'main' })),
        clusters: { test: testClusterSetting() },
        webhookSecret: { value: 'unused' },
        reload: {
          ignoreNamespaces: ['kube-system', 'tidegate-system', ignoredNs],
          namespaces: [costlyNs, plainNs, ignoredNs],
          // The pass below runs right after the out-of-band change it must roll: no debounce here.
          debounce: '0s',
        },
      },
      queueUrl,
    });
  }, 120_000);
  afterAll(async () => worker?.stop());

  /** Delivers the queue to the worker until it is empty; the errors of the messages that failed (each retried by the queue). */
  const work = async (...messages: QueueMessage[]): Promise<string[]> => {
    const from = worker.output().length;
    await queue.send(messages);
    for (let i = 0; i < 20; i++) {
      const { received } = await deliverBatch(queueUrl, (e) => worker.invoke(e));
      if (received.length === 0) break;
    }
    return worker
      .output()
      .slice(from)
      .split('\n')
      .filter((l) => l.includes('"message":"message failed"'))
      .map((l) => String((JSON.parse(l) as { error?: string }).error));
  };

  it(
    'each hostile input fails its own message (or finishes) within its budget with a clear error, the worker stays under its memory size, and the ordinary targets of other repositories are applied in their normal time',
    async () => {
      // Ten ordinary targets of one repository: their time alone is the baseline.
      const ordinary = Array.from({ length: ORDINARY }, (_, i) => uniqueName(`ord${i}`));
      await repos.ordinary.commit({
        'tidegate.yaml': stringify({ targets: ordinary.map((n) => target(n, `apps/${n}`)) }),
        ...Object.fromEntries(ordinary.map((n) => [`apps/${n}/cm.yaml`, yamlDocs(configMap('app', { v: '1' }))])),
      });
      expect(await work(...(await Promise.all(ordinary.map((n) => sync(repos.ordinary, n)))))).toEqual([]);
      const alone = Math.max(
        ...(await Promise.all(
          ordinary.map(async (n) => (await readTargetState(client, n)).history.at(-1)?.durationMs ?? 0),
        )),
      );

      // Case 2: a line of 1 MiB mentioning $imagepolicy in a file image automation reads.
      await pushImage(reg, image.slice(reg.host.length + 1), '1.0.0');
      const markerTarget = uniqueName('marker');
      await repos.marker.commit({
        'tidegate.yaml': stringify({
          targets: [target(markerTarget, 'apps')],
          images: [{ name: 'web', repository: image, insecure: true, policy: { semver: { range: '>=1.0.0' } } }],
        }),
        'apps/cm.yaml': yamlDocs(configMap('app', { v: '1' })),
        'notes/long.yaml': `# ${' '.repeat(SIZES.markerLineMiB * MiB)} # {"$imagepolicy": "flux-system:web"} ${'x'.repeat(1000)}\n`,
      });
      // Case 4: a chart that allocates ~1 GiB and prints 20 bytes; a pack that unpacks to a huge file; YAML in many documents.
      const [bomb, zeros, yaml] = [uniqueName('bomb'), uniqueName('zeros'), uniqueName('yaml')];
      await repos.bomb.commit({
        'tidegate.yaml': stringify({ targets: [target(bomb, 'chart')] }),
        'chart/Chart.yaml': CHART,
        'chart/templates/cm.yaml': `{{- $s := "xxxxxxxx" }}{{- range until 25 }}{{- $s = printf "%s%s" $s $s }}{{- end }}
apiVersion: v1
kind: ConfigMap
metadata: { name: bomb }
data: { length: "{{ len $s }}" }
`,
      });
      await repos.zeros.commit({
        'tidegate.yaml': stringify({ targets: [target(zeros, 'apps')] }),
        'apps/cm.yaml': yamlDocs(configMap('app', { v: '1' })),
      });
      mkdirSync(join(repos.zeros.ws.dir, 'data'), { recursive: true });
      writeFileSync(join(repos.zeros.ws.dir, 'data/zeros.bin'), '');
      truncateSync(join(repos.zeros.ws.dir, 'data/zeros.bin'), SIZES.zerosMiB * MiB);
      await repos.zeros.commit({}, 'data');
      const perFile = 2000;
      await repos.yaml.commit({
        'tidegate.yaml': stringify({ targets: [target(yaml, 'apps')] }),
        ...Object.fromEntries(
          Array.from({ length: Math.ceil(SIZES.yamlDocuments / perFile) }, (_, f) => [
            `apps/part-${f}.yaml`,
            Array.from(
              { length: perFile },
              (_x, d) =>
                `apiVersion: v1\nkind: ConfigMap\nmetadata: { name: cm-${f}-${d} }\ndata: { v: "${'y'.repeat(400)}" }\n`,
            ).join('---\n'),
          ]),
        ),
      });
      // Case 3: one namespace of costly reload patterns, another whose ConfigMap changes.
      for (const ns of [costlyNs, plainNs])
        await client.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } }, { fieldManager: 'test' });
      await apply(costlyNs, configMap(LONG, { v: '1' }));
      const list = [costly('y'), costly('z'), costly('w'), 'x+-a'].join(',');
      for (let i = 0; i < SIZES.costlyDeployments; i++) {
        const d = deployment(`costly-${i}`);
        await apply(costlyNs, { ...d, metadata: { ...d.metadata, annotations: { [R.configmapReload]: list } } });
      }
      await apply(plainNs, configMap('settings', { v: '1' }));
      const web = deployment('web');
      await apply(plainNs, { ...web, metadata: { ...web.metadata, annotations: { [R.configmapReload]: 'settings' } } });
      expect(await work({ type: 'reload', cluster: 'test', bucket: 1 })).toEqual([]); // baselines recorded (over as many passes as they take)
      for (let i = 2; i < 12; i++) expect(await work({ type: 'reload', cluster: 'test', bucket: i })).toEqual([]);
      await apply(plainNs, configMap('settings', { v: '2' }));
      // Case 5: a sync changing a ConfigMap in a namespace the deploy-time scope ignores rolls nothing there.
      const scoped = ignoredNs;
      const watched = deployment('watched');
      await repos.scope.commit({
        'tidegate.yaml': stringify({ targets: [target(scoped, 'apps')] }),
        'apps/cm.yaml': yamlDocs(configMap('conf', { v: '1' })),
        'apps/deploy.yaml': yamlDocs({
          ...watched,
          metadata: { ...watched.metadata, annotations: { [R.configmapReload]: 'conf' } },
        }),
      });
      expect(await work(await sync(repos.scope, scoped))).toEqual([]);
      await repos.scope.commit({ 'apps/cm.yaml': yamlDocs(configMap('conf', { v: '2' })) });
      await repos.ordinary.commit(
        Object.fromEntries(ordinary.map((n) => [`apps/${n}/cm.yaml`, yamlDocs(configMap('app', { v: '2' }))])),
      );

      // Everything in batches of the queue, hostile messages first.
      await pushImage(reg, image.slice(reg.host.length + 1), '2.0.0');
      const started = Date.now();
      const failed = await work(
        {
          type: 'image',
          registry: reg.host,
          repository: image.slice(reg.host.length + 1),
          tag: '2.0.0',
          source: 'distribution',
        },
        await sync(repos.bomb, bomb),
        await sync(repos.zeros, zeros),
        await sync(repos.yaml, yaml),
        { type: 'reload', cluster: 'test', bucket: 100 },
        await sync(repos.scope, scoped),
        ...(await Promise.all(ordinary.map((n) => sync(repos.ordinary, n)))),
      );
      const reports = worker.invocations();
      expect(reports.filter((r) => r.killed)).toEqual([]);
      expect(Math.max(...reports.map((r) => r.peakRssMiB))).toBeLessThan(worker.memorySizeMiB);

      // The hostile ones: each failed alone, with its limit named.
      const lastError = async (name: string) => (await readTargetState(client, name)).history.at(-1)?.error ?? '';
      expect(await lastError(bomb)).toMatch(
        /used more than 512 MiB of memory \(deploy-time setting render\.maxMemoryMiB\)/,
      );
      // The repository that cannot be fetched within its budget fails its own message (retried, then dead-lettered), and only that one.
      expect(failed.length).toBeGreaterThan(0);
      for (const error of failed)
        expect(error).toMatch(
          /budget-zeros-\w+\.git is larger than allowed: an object of \d+ MiB, more than 64 MiB \(deploy-time setting source\.maxFileMiB\)/,
        );
      expect(await lastError(yaml)).toMatch(
        /more than 10000 YAML documents \(deploy-time setting render\.maxDocuments\)/,
      );
      // The image update read the long line in one pass and found nothing to write.
      expect(worker.output()).not.toMatch(/"message":"message failed"[^\n]*image/);
      // The reload pass rolled the plain namespace's workload, whatever the costly namespace cost it.
      const template = async (ns: string, name: string) =>
        ((await client.get('apps/v1', 'Deployment', ns, name))?.['spec'] as any).template.metadata.annotations ?? {};
      expect((await template(plainNs, 'web'))['tidegate.dev/reloaded-from']).toBe('ConfigMap/settings');
      // Case 5: the post-apply pass honoured ignoreNamespaces.
      expect((await template(scoped, 'watched'))['tidegate.dev/reloaded-hash']).toBeUndefined();

      // The ordinary targets: applied, each in about its normal time.
      for (const n of ordinary) {
        const last = (await readTargetState(client, n)).history.at(-1);
        expect(last?.outcome, n).toBe('applied');
        expect(last?.durationMs ?? Infinity).toBeLessThan(Math.max(3 * alone, alone + 2000));
      }
      console.log(
        `hostile batch: ${Date.now() - started} ms in ${reports.length} invocation(s); peak RSS ${Math.max(...reports.map((r) => r.peakRssMiB))} MiB of ${worker.memorySizeMiB}; ordinary sync alone ≤ ${alone} ms`,
      );
    },
    FULL ? 3_600_000 : 900_000,
  );
});
