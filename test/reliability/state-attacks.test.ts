import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { stringify } from 'yaml';
import { LeaseBusyError, acquireLease, readTargetState } from '../../shared/state/index.js';
import { stateName } from '../../shared/state/state.js';
import { SYSTEM_NAMESPACE } from '../../shared/apply/index.js';
import {
  approve,
  handleMessage,
  release,
  rollback,
  syncRepo,
  type EngineContext,
} from '../../shared/usecases/index.js';
import { GitHub } from '../../shared/github/index.js';
import { cli } from '../helpers/cli.js';
import { testEnv, uniqueName } from '../helpers/env.js';
import { configMap, gitopsRepo, yamlDocs } from '../helpers/engine.js';
import {
  engineAt as engine,
  kubeClient as client,
  kubeClient,
  leasePath,
  liveConfigMaps,
  noQueue,
  oneTarget as one,
  outcomeOf,
  statePath,
  useFaultProxy,
} from '../helpers/state.js';

/**
 * Breaks of "target state that nothing can lose" found by a reviewer who had only the README and
 * the code, each kept as the test that showed it (they all failed before their fix). The second
 * review's are in state-attacks-2.test.ts.
 */

const { kube } = testEnv();
const faults = useFaultProxy();
const direct = kubeClient();
const liveNames = (ns: string): Promise<string[]> => liveConfigMaps(direct, ns);

describe('a stalled lease holder and the writer that takes over', () => {
  it('a stalled lease holder and the writer that took over: the newer revision keeps its objects, inventory and lastApplied', async () => {
    const [target, ns] = [uniqueName('tw'), uniqueName('tw')];
    const repo = await gitopsRepo('tw');
    const second = engine(kube.server, 'writer-2', { durationSeconds: 3 });
    const stalled = engine(faults.proxy.server, 'writer-1', { durationSeconds: 3 });
    await repo.commit(
      {
        'tidegate.yaml': stringify({ targets: [one(target, ns)] }),
        'apps/a.yaml': yamlDocs(configMap('common', { v: '0' })),
      },
      'r0',
    );
    expect((await syncRepo(second, { repo: repo.url, target }))[0]?.outcome).toBe('applied');
    const r1 = await repo.commit(
      { 'apps/a.yaml': yamlDocs([configMap('common', { v: '1' }), configMap('a1', { v: '1' })]) },
      'r1',
    );
    const r2 = await repo.commit(
      { 'apps/a.yaml': yamlDocs([configMap('common', { v: '2' }), configMap('b1', { v: '2' })]) },
      'r2',
    );
    // Writer 1's renewals stall, and its final state write is slow (sent while it held the lease).
    faults.proxy.inject({ method: 'PUT', path: leasePath(target), times: 1, fault: { delayMs: 12_000 } });
    const slowRecord = faults.proxy.inject({
      method: 'PUT',
      path: statePath(target),
      after: 1,
      times: 1,
      fault: { delayMs: 8_000 },
    });
    const first = outcomeOf(
      syncRepo(stalled, { repo: repo.url, target, revision: { ref: 'refs/heads/main', sha: r1 } }),
    );
    await expect.poll(() => slowRecord.hits, { timeout: 10_000, interval: 20 }).toBe(1);
    expect(
      (await syncRepo(second, { repo: repo.url, target, revision: { ref: 'refs/heads/main', sha: r2 } }))[0]?.outcome,
    ).toBe('applied');
    // Writer 1 either stopped (its lease ran out by its own clock) or its write, sent in time, landed first
    // and writer 2 recorded on top of it: either way the state below describes the cluster.
    expect(await first).toMatch(/^threw lost the lease of target .* \(not renewed within 3 s\)|^returned applied$/);

    const state = await readTargetState(direct, target);
    expect(state.lastApplied?.sha).toBe(r2);
    expect(state.inventory.map((e) => e.id.split('_')[1]).sort()).toEqual(await liveNames(ns));
    await repo.commit({ 'apps/a.yaml': yamlDocs(configMap('common', { v: '3' })) }, 'r3');
    expect((await syncRepo(second, { repo: repo.url, target }))[0]?.outcome).toBe('applied');
    expect(await liveNames(ns)).toEqual(['common']); // b1 pruned: nothing was orphaned
  });

  it('the stalled writer cannot put back the older gate: a later commit that drops the manual gate is held', async () => {
    const [target, ns] = [uniqueName('tw-gate'), uniqueName('tw-gate')];
    const repo = await gitopsRepo('tw-gate');
    const second = engine(kube.server, 'writer-2', { durationSeconds: 3 });
    const stalled = engine(faults.proxy.server, 'writer-1', { durationSeconds: 3 });
    const cfg = (gate: Record<string, unknown>) => stringify({ targets: [one(target, ns, { gate })] });
    await repo.commit(
      { 'tidegate.yaml': cfg({}), 'apps/a.yaml': yamlDocs(configMap('common', { v: '0' })) },
      'r0: no gate',
    );
    expect((await syncRepo(second, { repo: repo.url, target }))[0]?.outcome).toBe('applied');
    const r1 = await repo.commit({ 'apps/a.yaml': yamlDocs(configMap('common', { v: '1' })) }, 'r1');
    const r2 = await repo.commit(
      { 'tidegate.yaml': cfg({ manual: true }), 'apps/a.yaml': yamlDocs(configMap('common', { v: '2' })) },
      'r2: manual gate from now on',
    );
    faults.proxy.inject({ method: 'PUT', path: leasePath(target), times: 1, fault: { delayMs: 12_000 } });
    const slowRecord = faults.proxy.inject({
      method: 'PUT',
      path: statePath(target),
      times: 1,
      fault: { delayMs: 8_000 },
    });
    const first = outcomeOf(
      syncRepo(stalled, { repo: repo.url, target, revision: { ref: 'refs/heads/main', sha: r1 } }),
    );
    await expect.poll(() => slowRecord.hits, { timeout: 10_000, interval: 20 }).toBe(1);
    expect((await approve(second, { repo: repo.url, target, revision: r2, by: 'erin', via: 'cli' }))[0].outcome).toBe(
      'applied',
    );
    expect(await first).toMatch(/^threw lost the lease|^returned applied$/);
    expect((await readTargetState(direct, target)).gate).toMatchObject({ manual: true });
    await repo.commit(
      { 'tidegate.yaml': cfg({}), 'apps/a.yaml': yamlDocs(configMap('common', { v: '3-unapproved' })) },
      'r3: drop the gate',
    );
    expect((await syncRepo(second, { repo: repo.url, target }))[0]?.outcome).toBe('held');
    expect((await direct.get('v1', 'ConfigMap', ns, 'common'))?.['data']).toEqual({ v: '2' });
  });
});

describe('leases under lost answers, slow renewals and skewed clocks', () => {
  it('renewals slower than their interval do not pile up: a sync cut off at its deadline returns within it', async () => {
    const target = uniqueName('renew-pile');
    const repo = await gitopsRepo('renew-pile');
    await repo.commit(
      {
        'tidegate.yaml': stringify({ targets: [one(target, target)] }),
        'apps/a.yaml': yamlDocs(configMap('a', { v: '1' })),
      },
      'r0',
    );
    const ctx = engine(faults.proxy.server, 'lambda:worker', { waitMs: 10_000, durationSeconds: 3 });
    faults.proxy.inject({ method: 'PUT', path: leasePath(target), fault: { delayMs: 2_900 } });
    faults.proxy.inject({ method: 'PATCH', path: /\/configmaps\/a$/, times: 1, fault: { delayMs: 20_000 } });
    const started = Date.now();
    await outcomeOf(syncRepo(ctx, { repo: repo.url, target, signal: AbortSignal.timeout(6_000) }));
    expect(Date.now() - started).toBeLessThan(6_000 + 5_000); // Lambda keeps 5 s free after a message's deadline
  });

  it('a renewal whose answer is lost (sent again: 409 on its own write) keeps the lease; the sync applies and releases it', async () => {
    const target = uniqueName('renew-lost');
    const repo = await gitopsRepo('renew-lost');
    await repo.commit(
      {
        'tidegate.yaml': stringify({ targets: [one(target, target)] }),
        'apps/a.yaml': yamlDocs(configMap('a', { v: '1' })),
      },
      'r0',
    );
    const ctx = engine(faults.proxy.server, 'writer-1', { waitMs: 10_000, durationSeconds: 3 });
    const lost = faults.proxy.inject({ method: 'PUT', path: leasePath(target), times: 1, fault: { loseAnswer: true } });
    faults.proxy.inject({ method: 'PATCH', path: /\/configmaps\/a$/, times: 1, fault: { delayMs: 2_500 } }); // still running at the first renewal
    expect(await outcomeOf(syncRepo(ctx, { repo: repo.url, target }))).toBe('returned applied');
    expect(lost.hits).toBe(1);
    expect(await direct.get('coordination.k8s.io/v1', 'Lease', SYSTEM_NAMESPACE, stateName(target))).toBeUndefined();
  });

  it('a lease create whose answer is lost is recognised as its own: the writer does not wait for itself', async () => {
    const target = uniqueName('acq-lost');
    const repo = await gitopsRepo('acq-lost');
    await repo.commit(
      {
        'tidegate.yaml': stringify({ targets: [one(target, target)] }),
        'apps/a.yaml': yamlDocs(configMap('a', { v: '1' })),
      },
      'r0',
    );
    await syncRepo(engine(kube.server, 'setup'), { repo: repo.url, target }); // tidegate-system exists: the create is answered 201, then 409
    const post = faults.proxy.inject({ method: 'POST', path: /\/leases$/, times: 1, fault: { loseAnswer: true } });
    const started = Date.now();
    expect(
      await outcomeOf(syncRepo(engine(faults.proxy.server, 'writer-1', { waitMs: 5_000 }), { repo: repo.url, target })),
    ).toBe('returned unchanged');
    expect(post.hits).toBe(1);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(await direct.get('coordination.k8s.io/v1', 'Lease', SYSTEM_NAMESPACE, stateName(target))).toBeUndefined();
  });

  it('a writer whose clock is 90 s ahead does not take over a lease its holder renewed a moment ago', async () => {
    const target = uniqueName('skew');
    const first = await acquireLease(direct, target, { holder: 'lambda:worker', waitMs: 5_000 });
    try {
      vi.useFakeTimers({ toFake: ['Date'], shouldAdvanceTime: true });
      vi.setSystemTime(Date.now() + 90_000);
      const second = await acquireLease(client(kube.server), target, {
        holder: 'alice@laptop (tidegate rollback)',
        waitMs: 2_000,
      }).then(
        async (l) => {
          await l.release();
          return 'acquired while the first holder still held it';
        },
        (err: unknown) => (err instanceof LeaseBusyError ? 'busy' : String(err)),
      );
      expect({ second, firstStillHoldsIt: !first.lost.aborted }).toEqual({ second: 'busy', firstStillHoldsIt: true });
    } finally {
      vi.useRealTimers();
      await first.release();
    }
  });
});

describe('state writes whose answer is lost', () => {
  it('the final record, sent again and answered 409 on its own write, is recorded once', async () => {
    const target = uniqueName('rec-lost');
    const repo = await gitopsRepo('rec-lost');
    await repo.commit(
      {
        'tidegate.yaml': stringify({ targets: [one(target, target)] }),
        'apps/a.yaml': yamlDocs(configMap('a', { v: '1' })),
      },
      'r0',
    );
    const ctx = engine(faults.proxy.server, 'writer-1');
    expect((await syncRepo(ctx, { repo: repo.url, target }))[0]?.outcome).toBe('applied');
    const r1 = await repo.commit(
      { 'apps/a.yaml': yamlDocs([configMap('a', { v: '1' }), configMap('b', { v: '1' })]) },
      'r1',
    );
    // r1 writes the state twice: the write-ahead reservation, then the record, whose answer is lost.
    faults.proxy.inject({ method: 'PUT', path: statePath(target), after: 1, times: 1, fault: { loseAnswer: true } });
    expect((await syncRepo(ctx, { repo: repo.url, target }))[0]?.outcome).toBe('applied');
    expect(
      (await readTargetState(direct, target)).history.map((h) => `${h.outcome}@${h.revision.sha === r1 ? 'r1' : 'r0'}`),
    ).toEqual(['applied@r0', 'applied@r1']);
  });

  it('release whose answer is lost says it lifted the pin', async () => {
    const target = uniqueName('rel-lost');
    const repo = await gitopsRepo('rel-lost');
    await repo.commit(
      {
        'tidegate.yaml': stringify({ targets: [one(target, target)] }),
        'apps/a.yaml': yamlDocs(configMap('a', { v: '1' })),
      },
      'r0',
    );
    const ctx = engine(faults.proxy.server, 'writer-1');
    const r0 = (await syncRepo(ctx, { repo: repo.url, target }))[0]?.revision.sha ?? '';
    await repo.commit({ 'apps/a.yaml': yamlDocs(configMap('a', { v: '2' })) }, 'r1');
    expect((await syncRepo(ctx, { repo: repo.url, target }))[0]?.outcome).toBe('applied');
    expect((await rollback(ctx, { repo: repo.url, target, to: r0, by: 'alice' })).outcome).toBe('applied');
    faults.proxy.inject({ method: 'PUT', path: statePath(target), times: 1, fault: { loseAnswer: true } });
    expect(await release(ctx, { repo: repo.url, target })).toBe(true);
    expect((await readTargetState(direct, target)).pin).toBeUndefined();
  });
});

describe("another repository's target is never touched", () => {
  async function ownedByA(prefix: string) {
    const [target, ns] = [uniqueName(prefix), uniqueName(prefix)];
    const a = await gitopsRepo(`${prefix}-a`);
    const b = await gitopsRepo(`${prefix}-b`);
    const cfg = stringify({ targets: [one(target, ns)] });
    const a1 = await a.commit({ 'tidegate.yaml': cfg, 'apps/a.yaml': yamlDocs(configMap('from-a', { v: '1' })) }, 'a1');
    expect((await a.sync(target))[0]?.outcome).toBe('applied');
    const b1 = await b.commit({ 'tidegate.yaml': cfg, 'apps/b.yaml': yamlDocs(configMap('from-b', { v: '1' })) }, 'b1');
    expect((await b.sync(target))[0]?.error).toMatch(/already used on this cluster/);
    return { target, ns, a, b, a1, b1 };
  }

  it("rollback --repo <other> --force is refused, and nothing of A's is pruned or pinned", async () => {
    const { target, ns, a, b, b1 } = await ownedByA('own-rb');
    const res = await rollback(b.engine, { repo: b.url, target, to: b1, force: true, by: 'mallory' });
    expect(res).toMatchObject({
      outcome: 'failed',
      error: expect.stringMatching(new RegExp(`^target name ${target} is already used on this cluster by `)),
    });
    expect(await a.engine.client.get('v1', 'ConfigMap', ns, 'from-a')).toBeDefined();
    expect(await a.engine.client.get('v1', 'ConfigMap', ns, 'from-b')).toBeUndefined();
    expect((await readTargetState(direct, target)).pin).toBeUndefined();
  });

  it("release --repo <other> is refused: A's pin stays", async () => {
    const { target, a, b } = await ownedByA('own-rel');
    const a2 = await a.commit({ 'apps/a.yaml': yamlDocs(configMap('from-a', { v: '2' })) }, 'a2');
    expect((await a.sync(target))[0]?.revision.sha).toBe(a2);
    const a1 = (await readTargetState(direct, target)).history[0]?.revision.sha ?? '';
    expect((await rollback(a.engine, { repo: a.url, target, to: a1, by: 'alice' })).outcome).toBe('applied');
    await expect(release(b.engine, { repo: b.url, target })).rejects.toThrow(
      `target name ${target} is already used on this cluster by`,
    );
    expect((await readTargetState(direct, target)).pin?.revision.sha).toBe(a1);
  });

  it("`tidegate sync <target>` from a working tree of B (its origin is B) is refused: A's objects stay", async () => {
    const { target, ns, a, b } = await ownedByA('own-dir');
    const run = await cli(
      'sync',
      target,
      '--dir',
      b.ws.dir,
      '--kubeconfig',
      kube.kubeconfigPath,
      '--context',
      'tidegate-test',
    );
    expect(run.code).toBe(1);
    expect(run.out).toContain('already used on this cluster');
    expect(await a.engine.client.get('v1', 'ConfigMap', ns, 'from-a')).toBeDefined();
    expect((await readTargetState(direct, target)).lastApplied?.sha).not.toMatch(/worktree/);
  });
});

describe('removals that race with the commits that bring a target back', () => {
  it('a remove message whose target the branch head declares again (and a sync applied meanwhile) removes nothing', async () => {
    const [ns, x, y] = [uniqueName('rmrace'), uniqueName('rmrace-x'), uniqueName('rmrace-y')];
    const repo = await gitopsRepo('rmrace');
    const person = engine(kube.server, 'someone (tidegate sync)');
    const worker = engine(faults.proxy.server, 'lambda:worker');
    const tx = { ...one(x, ns), path: 'x' };
    const ty = { ...one(y, `${ns}-y`), path: 'y' };
    await repo.commit(
      {
        'tidegate.yaml': stringify({ targets: [tx, ty] }),
        'x/a.yaml': yamlDocs(configMap('xa', { v: '1' })),
        'y/a.yaml': yamlDocs(configMap('ya', { v: '1' })),
      },
      'r0',
    );
    expect((await syncRepo(person, { repo: repo.url })).map((r) => r.outcome)).toEqual(['applied', 'applied']);
    const r1 = await repo.commit({ 'tidegate.yaml': stringify({ targets: [ty] }) }, 'r1: drop x');
    const leasePost = faults.proxy.inject({ method: 'POST', path: /\/leases$/, times: 1, fault: { delayMs: 4_000 } });
    const removal = handleMessage(
      worker,
      { type: 'remove', repo: repo.url, cluster: 'c', target: x, revision: { ref: 'refs/heads/main', sha: r1 } },
      noQueue,
    );
    await expect.poll(() => leasePost.hits, { timeout: 10_000, interval: 20 }).toBe(1);
    const r2 = await repo.commit(
      { 'tidegate.yaml': stringify({ targets: [tx, ty] }), 'x/a.yaml': yamlDocs(configMap('xa', { v: '2' })) },
      'r2: x is back',
    );
    expect((await syncRepo(person, { repo: repo.url, target: x }))[0]).toMatchObject({
      outcome: 'applied',
      revision: { sha: r2 },
    });
    expect(await removal).toMatchObject({ kind: 'ignored' });
    expect((await direct.get('v1', 'ConfigMap', ns, 'xa'))?.['data']).toEqual({ v: '2' });
    expect((await readTargetState(direct, x)).removed).toBeUndefined();
  });

  it('a target renamed (x → x2, same objects): the removal of x leaves the object x2 has just taken over', async () => {
    const [ns, x] = [uniqueName('ren'), uniqueName('ren-x')];
    const x2 = `${x}-2`;
    const repo = await gitopsRepo('ren');
    const syncer = engine(kube.server, 'lambda:sync-x2');
    const remover = engine(faults.proxy.server, 'lambda:remove-x');
    await repo.commit(
      {
        'tidegate.yaml': stringify({ targets: [one(x, ns)] }),
        'apps/a.yaml': yamlDocs(configMap('shared', { v: '1' })),
      },
      'r0',
    );
    expect((await syncRepo(syncer, { repo: repo.url, target: x }))[0]?.outcome).toBe('applied');
    const r1 = await repo.commit({ 'tidegate.yaml': stringify({ targets: [one(x2, ns)] }) }, 'r1: rename x to x2');
    const del = faults.proxy.inject({
      method: 'DELETE',
      path: /\/configmaps\/shared$/,
      times: 1,
      fault: { delayMs: 3_000 },
    });
    const removal = handleMessage(
      remover,
      { type: 'remove', repo: repo.url, cluster: 'c', target: x, revision: { ref: 'refs/heads/main', sha: r1 } },
      noQueue,
    );
    await expect.poll(() => del.hits, { timeout: 10_000, interval: 20 }).toBe(1); // checked while still labelled x
    expect((await syncRepo(syncer, { repo: repo.url, target: x2 }))[0]?.outcome).toBe('applied');
    const removed = await removal;
    expect(removed).toMatchObject({
      kind: 'synced',
      result: {
        changeSet: {
          changes: [{ action: 'skipped', reason: `not pruned: it no longer carries the owner labels of target ${x}` }],
        },
      },
    });
    expect(await direct.get('v1', 'ConfigMap', ns, 'shared')).toBeDefined();
    expect((await readTargetState(direct, x2)).inventory.map((e) => e.id.split('_')[1])).toEqual(['shared']);
  });
});

describe('bookkeeping', () => {
  it('a revision at which the target was removed is not a rollback target without --force', async () => {
    const [ns, x, y] = [uniqueName('rb-rm'), uniqueName('rb-rm-x'), uniqueName('rb-rm-y')];
    const repo = await gitopsRepo('rb-rm');
    const tx = { ...one(x, ns), path: 'x' };
    const ty = { ...one(y, `${ns}-y`), path: 'y' };
    await repo.commit(
      {
        'tidegate.yaml': stringify({ targets: [tx, ty] }),
        'x/a.yaml': yamlDocs(configMap('xa', { v: '1' })),
        'y/a.yaml': yamlDocs(configMap('ya', { v: '1' })),
      },
      'both',
    );
    expect((await repo.sync()).map((r) => r.outcome)).toEqual(['applied', 'applied']);
    const r1 = await repo.commit(
      {
        'tidegate.yaml': stringify({ targets: [ty] }),
        'x/a.yaml': yamlDocs(configMap('xa', { v: 'removed-revision' })),
      },
      'drop x',
    );
    await repo.sync();
    expect((await readTargetState(direct, x)).history.at(-1)).toMatchObject({
      kind: 'removal',
      outcome: 'applied',
      revision: { sha: r1 },
    });
    await repo.commit(
      { 'tidegate.yaml': stringify({ targets: [tx, ty] }), 'x/a.yaml': yamlDocs(configMap('xa', { v: '2' })) },
      'x back',
    );
    expect((await repo.sync(x))[0]?.outcome).toBe('applied');
    await expect(rollback(repo.engine, { repo: repo.url, target: x, to: r1.slice(0, 10), by: 'bob' })).rejects.toThrow(
      `revision ${r1.slice(0, 10)} was not applied to this target`,
    );
    expect((await direct.get('v1', 'ConfigMap', ns, 'xa'))?.['data']).toEqual({ v: '2' });
  });

  it('a commit with a 1 MB subject line: applied and recorded (history entries are bounded)', async () => {
    const target = uniqueName('size');
    const repo = await gitopsRepo('size');
    await repo.commit(
      {
        'tidegate.yaml': stringify({ targets: [one(target, target)] }),
        'apps/a.yaml': yamlDocs(configMap('a', { v: '1' })),
      },
      'first',
    );
    expect((await repo.sync(target))[0]?.outcome).toBe('applied');
    writeFileSync(join(repo.ws.dir, 'apps/b.yaml'), yamlDocs(configMap('b', { v: '1' })));
    const msg = join(repo.ws.dir, '..', `${repo.name}-msg.txt`);
    writeFileSync(msg, `${'x'.repeat(1_000_000)}\n`);
    await repo.ws.git('add', '--all');
    await repo.ws.git('commit', '--quiet', '-F', msg);
    await repo.ws.git('push', '--quiet', 'origin', 'HEAD:refs/heads/main');
    expect((await repo.sync(target))[0]?.outcome).toBe('applied');
    expect(await direct.get('v1', 'ConfigMap', target, 'b')).toBeDefined();
    const last = (await readTargetState(direct, target)).history.at(-1);
    expect(last?.outcome).toBe('applied');
    expect(last?.commit?.message).toHaveLength(200);
  });

  it('GitHub answering 502 while a gate is evaluated: the sync is thrown for the queue to retry, nothing is recorded', async () => {
    const server = createServer((_req, res) =>
      res.writeHead(502, { 'content-type': 'application/json' }).end('{"message":"Server Error"}'),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const ns = uniqueName('gh502');
      const repo = await gitopsRepo('gh502', { owner: 'acme' });
      const ctx: EngineContext = {
        ...repo.engine,
        github: () => new GitHub({ apiUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, token: 't' }),
      };
      const sha = await repo.commit({
        'tidegate.yaml': stringify({ targets: [one(ns, ns, { gate: { approvals: 1 } })] }),
        'apps/a.yaml': yamlDocs(configMap('a', { v: '1' })),
      });
      await expect(
        handleMessage(
          ctx,
          { type: 'sync', repo: repo.url, target: ns, revision: { ref: 'refs/heads/main', sha }, reason: 'push' },
          noQueue,
        ),
      ).rejects.toThrow(/^GitHub: cannot .* \(HTTP 502\)/);
      expect((await readTargetState(direct, ns)).history).toEqual([]);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
