import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { Context } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { startGitHub, type TestGitHub } from '../../devenv/index.js';
import { handler as syncWorker } from '../../functions/sync-worker/handler.js';
import { SYSTEM_NAMESPACE } from '../../shared/apply/index.js';
import { acquireLease, readTargetState, updateTargetState, writeTargetState } from '../../shared/state/index.js';
import { stateName } from '../../shared/state/state.js';
import { StateTooLargeError } from '../../shared/state/state.js';
import { TidegateError, type InventoryEntry, type QueueMessage, type SyncMessage } from '../../shared/model/index.js';
import type { KubeClient } from '../../shared/cluster/index.js';
import type { RetryPolicy } from '../../shared/cluster/retry.js';
import { localSettings } from '../../shared/config/index.js';
import {
  MemoryQueue,
  approve,
  handleMessage,
  rollback,
  syncRepo,
  type EngineContext,
  type Queue,
} from '../../shared/usecases/index.js';
import { SqsQueue } from '../../shared/aws/sqs-queue.js';
import { GitHub } from '../../shared/github/index.js';
import type { Logger } from '../../shared/telemetry/index.js';
import { cli } from '../helpers/cli.js';
import { testEnv, uniqueName } from '../helpers/env.js';
import { configMap, deployment, gitopsRepo, yamlDocs } from '../helpers/engine.js';
import { awsConfig, createFifoQueue, deliverBatch, testClusterSetting, useMotoEnv } from '../helpers/lambda.js';
import { deploymentController, kubeClient, statePath, useFaultProxy } from '../helpers/state.js';

/**
 * Target state that nothing can lose: the real apiserver behind a proxy that injects faults, the
 * writers that race for a target (a sync in its health wait, the CLI, comment approvals), and the
 * bookkeeping that decides what a later sync, rollback or prune does.
 */

const { kube } = testEnv();
const faults = useFaultProxy();

const logs: Array<Record<string, unknown>> = [];
const logger: Logger = {
  debug: () => undefined,
  info: (message, fields) => void logs.push({ level: 'info', message, ...fields }),
  warn: (message, fields) => void logs.push({ level: 'warn', message, ...fields }),
  error: (message, fields) => void logs.push({ level: 'error', message, ...fields }),
};

/** A client that talks to the apiserver through the fault proxy, logging its retries. */
const proxied = (retry?: Partial<RetryPolicy>): KubeClient =>
  kubeClient(faults.proxy.server, { logger, ...(retry ? { retry } : {}) });
const direct = kubeClient();
const engineOn = (client: KubeClient, extra: Partial<EngineContext> = {}): EngineContext => ({
  settings: localSettings(),
  connect: () => Promise.resolve(client),
  gitSource: (url) => ({ url }),
  logger,
  ...extra,
});
const targetConfig = (targets: Array<Record<string, unknown>>): string =>
  stringify({ targets: targets.map((t) => ({ cluster: 'c', path: 'apps', wait: false, ...t })) });
const edit = (ns: string, name: string, data: Record<string, string>) =>
  direct.apply(
    { ...configMap(name, data), metadata: { name, namespace: ns } },
    { fieldManager: 'kubectl-edit', force: true },
  );
const data = async (ns: string, name: string) => (await direct.get('v1', 'ConfigMap', ns, name))?.['data'];
const controller = (ns: string, delayMs: number) => deploymentController(direct, ns, { delayMs });
const replicasOf = async (ns: string, name: string): Promise<number | undefined> =>
  ((await direct.get('apps/v1', 'Deployment', ns, name))?.['spec'] as { replicas?: number } | undefined)?.replicas;

describe('faults between tidegate and the apiserver', () => {
  it('the state read fails once (503, then a reset): the sync retries and converges; inventory, pin, approvals, ratchet and owner are intact', async () => {
    const ns = uniqueName('read');
    const repo = await gitopsRepo('read');
    // A gate that holds nothing now, so the ratchet (the gate as last applied) is recorded.
    const gate = { windows: [{ deny: '0 0 29 2 *', duration: '1m', timeZone: 'UTC' }] };
    const sha = await repo.commit({
      'tidegate.yaml': targetConfig([{ name: ns, targetNamespace: ns, gate }]),
      'apps/a.yaml': yamlDocs([configMap('a', { v: '1' }), configMap('b', { v: '1' })]),
    });
    const client = proxied();
    const ctx = engineOn(client);
    expect((await syncRepo(ctx, { repo: repo.url }))[0]?.outcome).toBe('applied');
    // Decisions people made, as the CLI records them.
    const pin = {
      revision: { ref: 'refs/heads/main', sha },
      reason: 'incident 42',
      at: new Date().toISOString(),
      by: 'ops',
    };
    const approval = { sha: 'f'.repeat(40), by: 'erin', at: new Date().toISOString(), via: 'cli' as const };
    await updateTargetState(direct, ns, (s) => ({ ...s, pin, approvals: [approval] }));
    const before = await readTargetState(direct, ns);
    expect(before.gate?.windows).toHaveLength(1);
    await edit(ns, 'a', { v: 'edited' }); // drift, so the sync has something to write

    const unavailable = faults.proxy.inject({ method: 'GET', path: statePath(ns), times: 1, fault: { status: 503 } });
    const reset = faults.proxy.inject({ method: 'GET', path: statePath(ns), times: 1, fault: { reset: true } });
    const retriesBefore = client.retries;
    const [res] = await syncRepo(ctx, { repo: repo.url });
    faults.proxy.clear();
    expect(unavailable.hits).toBe(1);
    expect(reset.hits).toBe(1);
    expect(client.retries - retriesBefore).toBeGreaterThanOrEqual(2);
    expect(res?.error).toBeUndefined();
    expect(res?.outcome).toBe('applied');
    expect(await data(ns, 'a')).toEqual({ v: '1' });
    const after = await readTargetState(direct, ns);
    const byId = (list: InventoryEntry[]) => [...list].sort((x, y) => x.id.localeCompare(y.id));
    expect(byId(after.inventory)).toEqual(byId(before.inventory));
    expect(after.pin).toEqual(pin);
    expect(after.approvals).toEqual([approval]);
    expect(after.gate).toEqual(before.gate);
    expect(after.repo).toBe(repo.url);
    expect(after.history).toHaveLength(before.history.length + 1);
  });

  it('a 429 storm on PATCH with Retry-After: 1: the sync waits at least that long and converges; the retries are logged', async () => {
    const ns = uniqueName('storm');
    const repo = await gitopsRepo('storm');
    await repo.commit({
      'tidegate.yaml': targetConfig([{ name: ns, targetNamespace: ns }]),
      'apps/a.yaml': yamlDocs(configMap('a', { v: '1' })),
    });
    const ctx = engineOn(proxied());
    expect((await syncRepo(ctx, { repo: repo.url }))[0]?.outcome).toBe('applied');
    await repo.commit({ 'apps/a.yaml': yamlDocs([configMap('a', { v: '2' }), configMap('b', { v: '2' })]) });
    const throttled = faults.proxy.inject({
      method: 'PATCH',
      path: new RegExp(`/namespaces/${ns}/configmaps/`),
      times: 4,
      fault: { status: 429, retryAfter: 1 },
    });
    const started = Date.now();
    const logged = logs.length;
    const [res] = await syncRepo(ctx, { repo: repo.url });
    faults.proxy.clear();
    expect(res?.outcome).toBe('applied');
    expect(throttled.hits).toBe(4);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    const retried = logs
      .slice(logged)
      .filter((l) => l['message'] === 'apiserver request retried' && l['reason'] === 'HTTP 429');
    expect(retried).toHaveLength(4);
    for (const r of retried) expect(r['delayMs']).toBeGreaterThanOrEqual(1000);
    expect(await data(ns, 'b')).toEqual({ v: '2' });
  });

  it('idle kept-alive sockets closed by the server between two invocations: no failed sync', async () => {
    const ns = uniqueName('idle');
    const repo = await gitopsRepo('idle');
    await repo.commit({
      'tidegate.yaml': targetConfig([{ name: ns, targetNamespace: ns }]),
      'apps/a.yaml': yamlDocs(configMap('a', { v: '1' })),
    });
    const ctx = engineOn(proxied({ attempts: 2 })); // the stale socket alone must be enough to recover
    expect((await syncRepo(ctx, { repo: repo.url }))[0]?.outcome).toBe('applied');
    faults.proxy.resetIdleAfter(300);
    try {
      await sleep(600); // "frozen" between invocations: the proxy forgets every kept-alive connection
      await repo.commit({ 'apps/a.yaml': yamlDocs(configMap('a', { v: '2' })) });
      const seen = faults.proxy.log.length;
      const [res] = await syncRepo(ctx, { repo: repo.url });
      expect(faults.proxy.log.slice(seen).filter((r) => r.fault && 'reset' in r.fault).length).toBeGreaterThan(0);
      expect(res?.error).toBeUndefined();
      expect(res?.outcome).toBe('applied');
      expect(await data(ns, 'a')).toEqual({ v: '2' });
    } finally {
      faults.proxy.resetIdleAfter(0);
    }
  });
});

describe('one writer per target', () => {
  it('a CLI rollback while a sync of the same target is in its health wait: it waits, then pins; the history has both', async () => {
    const name = uniqueName('race');
    const repo = await gitopsRepo('race');
    const stop = controller(name, 2500);
    try {
      const a = await repo.commit({
        'tidegate.yaml': targetConfig([{ name, targetNamespace: name, wait: true, timeout: '30s' }]),
        'apps/d.yaml': deployment('web', { replicas: 1 }),
      });
      expect((await repo.sync(name))[0]).toMatchObject({ outcome: 'applied', health: { status: 'healthy' } });
      const b = await repo.commit({ 'apps/d.yaml': deployment('web', { replicas: 2 }) });
      const syncing = repo.sync(name);
      await expect.poll(() => replicasOf(name, 'web'), { timeout: 10_000, interval: 20 }).toBe(2); // applied: the sync is in its health wait
      const rolledBack = cli(
        'rollback',
        name,
        '--to',
        a.slice(0, 12),
        '--repo',
        repo.url,
        '--kubeconfig',
        kube.kubeconfigPath,
        '--context',
        'tidegate-test',
      );
      const [[synced], out] = await Promise.all([syncing, rolledBack]);
      expect(synced).toMatchObject({ outcome: 'applied', health: { status: 'healthy' }, revision: { sha: b } });
      expect(out.code, out.err).toBe(0);
      const state = await readTargetState(direct, name);
      expect(state.pin?.revision.sha).toBe(a);
      expect(state.history.map((h) => [h.revision.sha, h.kind, h.outcome])).toEqual([
        [a, 'sync', 'applied'],
        [b, 'sync', 'applied'],
        [a, 'rollback', 'applied'],
      ]);
      const [, syncEntry, rollbackEntry] = state.history;
      // The rollback started once the sync had recorded: they never overlapped.
      expect(Date.parse(rollbackEntry?.startedAt ?? '')).toBeGreaterThanOrEqual(
        Date.parse(syncEntry?.startedAt ?? '') + (syncEntry?.durationMs ?? 0),
      );
      expect(await replicasOf(name, 'web')).toBe(1);
    } finally {
      await stop();
    }
  });

  it("a /tidegate approve comment processed during a sync's health wait: the approval is not lost", async () => {
    const token = 'ghp_state_safety';
    const github: TestGitHub = await startGitHub({ token, gitRoot: testEnv().git.root });
    const name = uniqueName('approve');
    const repo = await gitopsRepo('approve', { owner: 'acme' });
    const ctx: EngineContext = { ...repo.engine, github: () => new GitHub({ apiUrl: github.url, token }) };
    github.grant('acme', repo.name, 'erin', 'write');
    const stop = controller(name, 2500);
    try {
      const cfg = targetConfig([{ name, targetNamespace: name, wait: true, timeout: '30s', gate: { manual: true } }]);
      const a = await repo.commit({ 'tidegate.yaml': cfg, 'apps/d.yaml': deployment('web', { replicas: 1 }) });
      expect((await repo.sync(name))[0]?.outcome).toBe('held');
      // b reaches main through a pull request while a waits for its sign-off.
      await repo.ws.git('checkout', '--quiet', '-B', 'change', 'HEAD');
      await repo.ws.commit({ 'apps/d.yaml': yamlDocs(deployment('web', { replicas: 3 })) }, 'three replicas', 'change');
      const pr = (await github.openPullRequest('acme', repo.name, { head: 'change', base: 'main', author: 'alice' }))
        .number;
      const b = await github.merge('acme', repo.name, pr);

      const approving = approve(ctx, { repo: repo.url, target: name, revision: a, by: 'ops', via: 'cli' }); // applies a, then waits for health
      await expect.poll(() => replicasOf(name, 'web'), { timeout: 10_000, interval: 20 }).toBe(1);
      const queued: QueueMessage[] = [];
      const queue: Queue = { send: (m) => Promise.resolve(void queued.push(...m)) };
      const comment = handleMessage(
        ctx,
        { type: 'approve', repo: repo.url, pullRequest: pr, commenter: 'erin', targets: [name], comment: 7 },
        queue,
      );
      const [[applied], approved] = await Promise.all([approving, comment]);
      expect(applied).toMatchObject({ outcome: 'applied', revision: { sha: a } });
      expect(approved).toEqual({ kind: 'approved', approved: [name], refused: [] });
      expect((await readTargetState(direct, name)).approvals).toEqual([
        { sha: b, by: 'erin', at: expect.any(String), via: 'comment' },
      ]);
      const next = await handleMessage(ctx, queued[0] as SyncMessage, queue);
      expect(next).toMatchObject({
        kind: 'synced',
        result: { outcome: 'applied', revision: { sha: b }, approvals: [{ by: 'erin' }] },
      });
      expect(github.violations).toEqual([]);
    } finally {
      await stop();
      await github.stop();
    }
  });

  it('a writer that finds the lease held waits a bounded time: the CLI says who holds it since when and exits non-zero; an expired holder is taken over', async () => {
    const name = uniqueName('busy');
    const repo = await gitopsRepo('busy');
    await repo.commit({
      'tidegate.yaml': targetConfig([{ name, targetNamespace: name }]),
      'apps/a.yaml': yamlDocs(configMap('a', { v: '1' })),
    });
    const held = await acquireLease(direct, name, { holder: 'lambda:tidegate-sync-worker:req-7', waitMs: 0 });
    const started = Date.now();
    const out = await cli(
      'sync',
      name,
      '--repo',
      repo.url,
      '--kubeconfig',
      kube.kubeconfigPath,
      '--context',
      'tidegate-test',
      '--wait',
      '1s',
    );
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect(out.code).not.toBe(0);
    expect(out.err).toMatch(
      new RegExp(
        `^tidegate: target ${name} is being changed by lambda:tidegate-sync-worker:req-7#[0-9a-f]{6} since \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z; try again when it is done\\n$`,
      ),
    );
    expect(await direct.get('v1', 'ConfigMap', name, 'a')).toBeUndefined(); // nothing was applied
    await held.release();

    // A holder that died (stopped renewing more than its duration ago) is taken over.
    const long = new Date(Date.now() - 10 * 60_000).toISOString().replace('Z', '000Z');
    await direct.create({
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: stateName(name), namespace: SYSTEM_NAMESPACE },
      spec: { holderIdentity: 'crashed-worker#abcdef', leaseDurationSeconds: 60, acquireTime: long, renewTime: long },
    });
    expect((await syncRepo(engineOn(direct), { repo: repo.url }))[0]?.outcome).toBe('applied');
    expect(await direct.get('coordination.k8s.io/v1', 'Lease', SYSTEM_NAMESPACE, stateName(name))).toBeUndefined(); // released after the sync
  });
});

describe('the Lambda path', () => {
  it('a batch of 10 messages whose first syncs outlast the batch deadline: those (worker.concurrency of them, at once) record "progressing", the others go back to the queue untouched', async () => {
    const targets = Array.from({ length: 10 }, (_, i) => uniqueName(`batch${i}`));
    const repo = await gitopsRepo('batch');
    const sha = await repo.commit({
      'tidegate.yaml': stringify({
        targets: targets.map((name) => ({
          name,
          cluster: 'test',
          path: 'apps',
          targetNamespace: name,
          wait: true,
          timeout: '5m',
        })),
      }),
      'apps/d.yaml': deployment('web'), // no controller: never available
    });
    const queueUrl = await createFifoQueue('batch');
    const concurrency = 3;
    useMotoEnv({
      repositories: [{ url: repo.url, branch: 'main' }],
      clusters: { test: testClusterSetting() },
      queueUrl,
      worker: { concurrency },
    });
    const sqs = new SQSClient(awsConfig());
    await new SqsQueue(sqs, queueUrl).send(
      targets.map((target): SyncMessage => ({
        type: 'sync',
        repo: repo.url,
        target,
        revision: { ref: 'refs/heads/main', sha },
        reason: 'push',
      })),
    );
    const deadline = Date.now() + 30_000; // an invocation with 30 s left (10 s of them kept free)
    const context = {
      functionName: 'tidegate-sync-worker',
      awsRequestId: 'req-batch',
      getRemainingTimeInMillis: () => deadline - Date.now(),
    } as unknown as Context;
    const delivery = await deliverBatch(queueUrl, (event) => syncWorker(event, context));
    expect(delivery.received).toHaveLength(10);
    expect(Date.now()).toBeLessThan(deadline);
    // Not failures: the rest are sent to the queue again as copies (so waiting never counts toward the
    // dead-letter queue), and the originals are done.
    expect(delivery.failures).toEqual([]);
    const visible = (
      (await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 })))
        .Messages ?? []
    ).map((m) => JSON.parse(m.Body ?? '{}') as SyncMessage);
    const states = await Promise.all(targets.map((t) => readTargetState(direct, t)));
    const recorded = states.filter((s) => s.history.length > 0);
    expect(visible.map((m) => m.target).sort()).toEqual(
      targets.filter((_, i) => states[i]?.history.length === 0).sort(),
    );
    expect(visible.map((m) => m.deferrals)).toEqual(Array(10 - concurrency).fill(1));
    // Handled at once, each waited until its own deadline: all of them ended within the invocation.
    expect(recorded).toHaveLength(concurrency);
    for (const s of recorded) expect(s.history.map((h) => h.outcome)).toEqual(['progressing']);
    expect(states.flatMap((s) => s.history).filter((h) => h.outcome === 'failed')).toEqual([]);
  }, 60_000);
});

describe('bookkeeping that tells the truth', () => {
  it('a manually gated target: approved, applied, edited out of band, polled: drift is corrected, not held', async () => {
    const name = uniqueName('manual');
    const repo = await gitopsRepo('manual');
    const ctx = engineOn(direct);
    const sha = await repo.commit({
      'tidegate.yaml': targetConfig([{ name, targetNamespace: name, gate: { manual: true } }]),
      'apps/a.yaml': yamlDocs(configMap('a', { v: '1' })),
    });
    const poll = async () => {
      const out = await handleMessage(
        ctx,
        {
          type: 'sync',
          repo: repo.url,
          target: name,
          revision: { ref: 'refs/heads/main', sha },
          reason: 'poll',
          bucket: Date.now(),
        },
        { send: () => Promise.resolve() },
      );
      if (out.kind !== 'synced') throw new Error(JSON.stringify(out));
      return out.result;
    };
    expect((await poll()).outcome).toBe('held');
    expect(
      (await approve(ctx, { repo: repo.url, target: name, revision: sha, by: 'ops', via: 'cli' }))[0].outcome,
    ).toBe('applied');
    await edit(name, 'a', { v: 'edited' });
    const corrected = await poll();
    expect(corrected.outcome).toBe('applied');
    expect(corrected.changeSet.changes.find((c) => c.ref.name === 'a')).toMatchObject({
      action: 'configured',
      drift: true,
      reason: 'drift corrected',
    });
    expect(await data(name, 'a')).toEqual({ v: '1' });
    expect((await poll()).outcome).toBe('unchanged');
    const history = (await readTargetState(direct, name)).history;
    expect(history.map((h) => h.outcome)).toEqual(['held', 'applied', 'applied']);
    expect((await readTargetState(direct, name)).lastApplied?.sha).toBe(sha);
  });

  it('a held revision never becomes lastApplied; rollback goes only to a revision this target applied (--force records who); it never lowers the gate ratchet', async () => {
    const name = uniqueName('rb');
    const repo = await gitopsRepo('rb');
    const ctx = engineOn(direct);
    const open = targetConfig([{ name, targetNamespace: name }]);
    const a = await repo.commit({ 'tidegate.yaml': open, 'apps/a.yaml': yamlDocs(configMap('a', { v: 'a' })) });
    expect((await syncRepo(ctx, { repo: repo.url }))[0]?.outcome).toBe('applied');
    const b = await repo.commit({
      'tidegate.yaml': targetConfig([{ name, targetNamespace: name, gate: { manual: true } }]),
      'apps/a.yaml': yamlDocs(configMap('a', { v: 'b' })),
    });
    expect((await syncRepo(ctx, { repo: repo.url }))[0]?.outcome).toBe('held');
    expect((await readTargetState(direct, name)).lastApplied?.sha).toBe(a); // not the held b
    const never = await repo.commit({ 'apps/a.yaml': yamlDocs(configMap('a', { v: 'never' })) });

    await expect(rollback(ctx, { repo: repo.url, target: name, to: b, by: 'ops' })).rejects.toThrow(
      `revision ${b} was not applied to this target`,
    );
    const refused = await cli(
      'rollback',
      name,
      '--to',
      never,
      '--repo',
      repo.url,
      '--kubeconfig',
      kube.kubeconfigPath,
      '--context',
      'tidegate-test',
    );
    expect(refused.code).toBe(2);
    expect(refused.err).toBe(
      `tidegate: revision ${never} was not applied to this target (a rollback goes to a revision in its history, given by at least 7 characters); --force with the full 40-character SHA applies another revision\n`,
    );
    expect(await data(name, 'a')).toEqual({ v: 'a' });

    expect(
      (await approve(ctx, { repo: repo.url, target: name, revision: never, by: 'ops', via: 'cli' }))[0].outcome,
    ).toBe('applied');
    expect((await readTargetState(direct, name)).gate).toMatchObject({ manual: true });
    expect((await rollback(ctx, { repo: repo.url, target: name, to: a.slice(0, 7), by: 'ops' })).outcome).toBe(
      'applied',
    );
    const state = await readTargetState(direct, name);
    expect(state.gate).toMatchObject({ manual: true }); // a's open gate did not replace it
    expect(await data(name, 'a')).toEqual({ v: 'a' });

    const forced = await rollback(ctx, { repo: repo.url, target: name, to: b, force: true, by: 'ops' });
    expect(forced.outcome).toBe('applied');
    expect((await readTargetState(direct, name)).history.at(-1)).toMatchObject({
      kind: 'rollback',
      revision: { sha: b },
      by: 'ops',
      forced: true,
    });
    expect(await data(name, 'a')).toEqual({ v: 'b' });
  });

  it('a target removed from tidegate.yaml: its objects are pruned (prune: false keeps them) and its state archived; a broken tidegate.yaml removes nothing; a second alias of the cluster removes nothing', async () => {
    const [keep, gone, kept] = [uniqueName('keep'), uniqueName('gone'), uniqueName('kept')];
    const repo = await gitopsRepo('removed');
    // A second alias of the same cluster (through the proxy: another URL): what it lists is not a second copy to remove.
    const other = proxied();
    const ctx = engineOn(direct, {
      connect: (alias) => Promise.resolve(alias === 'other' ? other : direct),
      clusters: () => ['other', 'c'],
    });
    const queue = new MemoryQueue(async (msg, q) => void (await handleMessage(ctx, msg, q)), { maxAttempts: 1 });
    const push = async (sha: string) => {
      await queue.send([{ type: 'push', repo: repo.url, ref: 'refs/heads/main', sha, paths: null, reason: 'push' }]);
      await queue.idle();
    };
    const target = (name: string, extra: Record<string, unknown> = {}) => ({
      name,
      path: `apps/${name}`,
      targetNamespace: name,
      ...extra,
    });
    const files = Object.fromEntries(
      [keep, gone, kept].map((n) => [
        `apps/${n}/cm.yaml`,
        yamlDocs([configMap('one', { v: '1' }), configMap('two', { v: '1' })]),
      ]),
    );
    await push(
      await repo.commit({
        'tidegate.yaml': targetConfig([target(keep), target(gone), target(kept, { prune: false })]),
        ...files,
      }),
    );
    for (const n of [keep, gone, kept]) expect(await data(n, 'two')).toEqual({ v: '1' });

    await push(await repo.commit({ 'tidegate.yaml': 'targets: [ {name: oops' }));
    expect(queue.deadLetters.map((d) => d.error)).toEqual([expect.stringMatching(/^tidegate\.yaml:1: /)]);
    expect(await data(gone, 'two')).toEqual({ v: '1' }); // a tidegate.yaml that fails to load removes nothing
    expect((await readTargetState(direct, gone)).removed).toBeUndefined();

    const c = await repo.commit({ 'tidegate.yaml': targetConfig([target(keep)]) });
    await push(c);
    expect(await data(gone, 'one')).toBeUndefined();
    expect(await data(gone, 'two')).toBeUndefined();
    expect(await data(kept, 'two')).toEqual({ v: '1' }); // prune: false
    expect(await data(keep, 'two')).toEqual({ v: '1' });
    expect((await readTargetState(direct, keep)).removed).toBeUndefined();
    const archived = await readTargetState(direct, gone);
    expect(archived.removed).toEqual({ at: expect.any(String), revision: { ref: 'refs/heads/main', sha: c } });
    expect(archived.inventory).toEqual([]);
    expect(archived.history.map((h) => [h.kind, h.outcome, h.counts.deleted])).toEqual([
      ['sync', 'applied', 0],
      ['removal', 'applied', 2],
    ]);
    expect((await readTargetState(direct, kept)).history.at(-1)).toMatchObject({
      kind: 'removal',
      counts: { deleted: 0 },
    });

    await push(await repo.commit({ 'apps/other.yaml': 'x: 1\n' })); // later pushes leave the archive alone
    expect((await readTargetState(direct, gone)).history).toHaveLength(2);
    expect(queue.deadLetters).toHaveLength(1);
  });

  it('a cluster the shell knows that cannot be reached (EKS access denied, apiserver down) holds back nothing: the push still syncs, and its removals wait', async () => {
    const name = uniqueName('reach');
    const repo = await gitopsRepo('reach');
    const ctx = engineOn(direct, {
      connect: (alias) =>
        alias === 'down'
          ? Promise.reject(
              new TidegateError(
                'AwsCallFailed',
                'cannot describe EKS cluster down in eu-west-1 (eks:DescribeCluster, HTTP 403): denied',
              ),
            )
          : Promise.resolve(direct),
      clusters: () => ['c', 'down'],
    });
    const queue = new MemoryQueue(async (msg, q) => void (await handleMessage(ctx, msg, q)), { maxAttempts: 1 });
    const sha = await repo.commit({
      'tidegate.yaml': targetConfig([{ name, path: 'app', targetNamespace: name }]),
      'app/cm.yaml': yamlDocs(configMap('one', { v: '1' })),
    });
    await queue.send([{ type: 'push', repo: repo.url, ref: 'refs/heads/main', sha, paths: null, reason: 'push' }]);
    await queue.idle();
    expect(queue.deadLetters).toEqual([]);
    expect(await data(name, 'one')).toEqual({ v: '1' });
  });

  it('an inventory of 20 000 objects round-trips through the state; one too large for a ConfigMap is refused before it is written', async () => {
    const name = uniqueName('big');
    const entry = (i: number): InventoryEntry => ({
      id: `ns-${i % 50}_object-${i}__ConfigMap`,
      v: 'v1',
      h: (i * 2654435761).toString(16).padStart(32, '0').slice(-32),
    });
    const inventory = Array.from({ length: 20_000 }, (_, i) => entry(i));
    const written = await writeTargetState(direct, name, {
      inventory,
      history: [],
      repo: 'https://git.example/big.git',
    });
    expect(written.resourceVersion).toBeDefined();
    const back = await readTargetState(direct, name);
    expect(back.inventory).toEqual(inventory);
    expect(back.repo).toBe('https://git.example/big.git');
    const huge = Array.from({ length: 200_000 }, (_, i) => ({ ...entry(i), h: randomBytes(16).toString('hex') })); // 3 MB that no compression shrinks enough
    await expect(writeTargetState(direct, name, { ...back, inventory: huge })).rejects.toBeInstanceOf(
      StateTooLargeError,
    );
    expect((await readTargetState(direct, name)).inventory).toHaveLength(20_000); // nothing written
  });
});
