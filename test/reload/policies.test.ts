import { Cron } from 'croner';
import { describe, expect, it, vi } from 'vitest';
import { stringify } from 'yaml';
import type { ReloadPolicySetting } from '../../shared/config/index.js';
import type { KubeObject } from '../../shared/model/index.js';
import { RELOADED_HASH_ANNOTATION, reloadPass } from '../../shared/reload/pass.js';
import { readReloadRegister } from '../../shared/state/index.js';
import { STATE_OF_LABEL } from '../../shared/state/state.js';
import { reloadWithPolicies } from '../../shared/sync/index.js';
import { approveReloads, handleMessage } from '../../shared/usecases/index.js';
import type { NotifyEvent } from '../../shared/notify/index.js';
import { cli } from '../helpers/cli.js';
import { testEnv, uniqueName } from '../helpers/env.js';
import { reloadingDeployment } from '../helpers/reload.js';
import { configMap, gitopsRepo } from '../helpers/engine.js';

/** A Deployment that reads the ConfigMap `cfg` (from Git) and the Secret `ext` (from outside Git), Reloader's auto annotation on it. */
const workload = (name: string, annotations?: Record<string, string>): KubeObject =>
  reloadingDeployment(name, { configMaps: ['cfg'], secrets: ['ext'] }, annotations ? { annotations } : {});

const KUBE = (): string[] => ['--kubeconfig', testEnv().kube.kubeconfigPath, '--context', 'tidegate-test'];

/** A cron window that opens 12 hours from now (closed now), and a moment inside it. */
function laterWindow(): { window: { allow: string; duration: string }; inside: Date } {
  const at = new Date(Date.now() + 12 * 3600_000);
  const allow = `${at.getUTCMinutes()} ${at.getUTCHours()} * * *`;
  const opens = new Cron(allow, { timezone: 'UTC' }).nextRun() as Date;
  return { window: { allow, duration: '1h' }, inside: new Date(opens.getTime() + 60_000) };
}

/** A target with `names` workloads, its reload policy as given, synced once (hashes recorded). */
async function world(reload: Partial<ReloadPolicySetting> & Record<string, unknown>, names = ['w']) {
  const repo = await gitopsRepo('reloadpolicy');
  const ns = uniqueName('rpol');
  const client = repo.engine.client;
  const files = (cfg: string, objects: (name: string) => KubeObject = (n) => workload(n)) => ({
    'tidegate.yaml': stringify({
      targets: [{ name: ns, cluster: 'c', path: 'apps', targetNamespace: ns, wait: false, reload }],
    }),
    'apps/objects.yaml': [configMap('cfg', { k: cfg }), ...names.map(objects)].map((o) => stringify(o)).join('---\n'),
  });
  const external = (value: string) =>
    client.apply(
      { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'ext', namespace: ns }, stringData: { k: value } },
      { fieldManager: 'external-secrets', force: true },
    );
  await client.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } }, { fieldManager: 'test' });
  await external('0');
  await repo.commit(files('0'));
  const [first] = await repo.sync(ns);
  expect(first?.error, first?.error).toBeUndefined();
  const generations = async () =>
    Object.fromEntries(
      (await client.list('apps/v1', 'Deployment', { namespace: ns })).map((d) => [
        d.metadata.name,
        d.metadata.generation ?? 0,
      ]),
    );
  return {
    repo,
    ns,
    client,
    external,
    generations,
    register: async () => {
      const r = await readReloadRegister(client);
      return {
        holds: r.holds.filter((h) => h.workload.namespace === ns),
        approvals: r.approvals.filter((a) => a.workload.namespace === ns),
      };
    },
    commit: (cfg: string, objects?: (name: string) => KubeObject) => repo.commit(files(cfg, objects)),
    sync: async () => {
      const [result] = await repo.sync(ns);
      expect(result?.error, result?.error).toBeUndefined();
      return result;
    },
    pass: (now?: Date) =>
      reloadWithPolicies(client, {
        namespaces: [ns],
        strategy: 'annotations',
        floor: repo.engine.reload?.floor,
        ...(now ? { now: () => now } : {}),
      }),
  };
}

describe('reload.windows: a reload waits for its window', () => {
  it('out of band and from Git: held while the window is closed, rolled once when it opens', async () => {
    const { window, inside } = laterWindow();
    const w = await world({ windows: [{ ...window, timeZone: 'UTC' }] });
    const g0 = await w.generations();

    await w.external('1');
    const closed = await w.pass();
    expect(closed.report.rolled).toEqual([]);
    expect(closed.report.held?.map((h) => [h.workload.name, h.kind, h.sources])).toEqual([
      ['w', 'window', ['Secret/ext']],
    ]);
    expect(closed.report.held?.[0]?.reason).toMatch(/^reload held: outside the allow windows of tidegate.yaml of /);
    expect(closed.fresh).toHaveLength(1);
    expect(await w.generations()).toEqual(g0);
    // Kept on the cluster, and shown by `tidegate status`.
    expect((await w.register()).holds.map((h) => h.workload.name)).toEqual(['w']);
    const status = await cli('status', w.ns, ...KUBE());
    expect(status.code, status.err).toBe(0);
    expect(status.out).toContain(`reload held: Deployment/${w.ns}/w (Secret/ext changed)`);
    expect(status.out).toContain('rolls when the window opens');

    // A commit changing the ConfigMap while the window is closed: applied, the workload not rolled.
    await w.commit('1');
    const synced = await w.sync();
    expect(await w.generations()).toEqual(g0);
    expect(synced?.reloads).toBeUndefined();
    expect(synced?.reloadsHeld?.map((h) => [h.kind, h.sources])).toEqual([['window', ['ConfigMap/cfg', 'Secret/ext']]]);

    // The window opens: one rollout for both changes; nothing held any more, nothing twice.
    const open = await w.pass(inside);
    expect(open.report.rolled.map((r) => r.sources)).toEqual([['ConfigMap/cfg', 'Secret/ext']]);
    expect((await w.generations())['w']).toBe((g0['w'] ?? 0) + 1);
    expect((await w.register()).holds).toEqual([]);
    expect((await w.pass(inside)).report.rolled).toEqual([]);
  }, 60_000);
});

describe('reload.mode notify: reported, never rolled', () => {
  it('three workloads whose Secret changed: each reported (notified once), none rolled', async () => {
    const w = await world({ mode: 'notify' }, ['a', 'b', 'c']);
    const g0 = await w.generations();
    await w.external('1');
    const first = await w.pass();
    expect(first.report.rolled).toEqual([]);
    expect(first.report.held?.map((h) => [h.workload.name, h.kind]).sort()).toEqual([
      ['a', 'notify'],
      ['b', 'notify'],
      ['c', 'notify'],
    ]);
    expect(first.fresh).toHaveLength(3);
    // Still reported by the next pass and on the status, but news only once: the worker's pass
    // (the scheduled one, kept to this namespace) notifies nothing now.
    const sent: NotifyEvent[] = [];
    const ctx = {
      ...w.repo.engine,
      reload: { strategy: 'annotations' as const, scope: { namespaces: [w.ns] } },
      notifier: { notify: (e: NotifyEvent) => Promise.resolve(sent.push(e) ? [] : []) },
    };
    const again = await handleMessage(
      ctx,
      { type: 'reload', cluster: 'c', bucket: 1 },
      { send: () => Promise.resolve() },
    );
    expect(again.kind === 'reloaded' && again.report.held).toHaveLength(3);
    expect(sent).toEqual([]);
    // A further change is news again: one message per workload, naming it and what changed (no values).
    await w.external('2');
    await handleMessage(ctx, { type: 'reload', cluster: 'c', bucket: 1 }, { send: () => Promise.resolve() });
    expect(sent.map((e) => [e.kind, e.title]).sort()).toEqual(
      ['a', 'b', 'c'].map((n) => ['reload-held', `Deployment/${w.ns}/${n}: would reload (Secret/ext changed)`]),
    );
    expect(JSON.stringify(sent)).not.toMatch(/"2"|Mg==/);
    expect(await w.generations()).toEqual(g0);
    const status = await cli('status', w.ns, ...KUBE(), '-o', 'json');
    const [row] = JSON.parse(status.out) as Array<{ reloadHolds: Array<{ kind: string }> }>;
    expect(row?.reloadHolds.map((h) => h.kind)).toEqual(['notify', 'notify', 'notify']);
    // A commit changing the ConfigMap: applied, nothing rolled, reported.
    await w.commit('1');
    const synced = await w.sync();
    expect(await w.generations()).toEqual(g0);
    expect(synced?.reloadsHeld).toHaveLength(3);
  }, 60_000);
});

describe('reload.approve: a reload waits for an approval of exactly that change', () => {
  it('held until approved, then rolled once; a later change needs its own approval', async () => {
    const w = await world({ approve: true });
    const g0 = (await w.generations())['w'] ?? 0;
    await w.external('1');
    const held = await w.pass();
    expect(held.report.held?.map((h) => h.kind)).toEqual(['approval']);
    expect(held.report.held?.[0]?.reason).toContain('waits for an approval');
    expect((await w.generations())['w']).toBe(g0);
    // Another pass does not roll it either.
    expect((await w.pass()).report.rolled).toEqual([]);

    const released = await approveReloads(w.repo.engine, { repo: w.repo.url, target: w.ns, by: 'alice' });
    expect(released.approved.map((h) => h.workload.name)).toEqual(['w']);
    expect(released.report?.rolled.map((r) => r.sources)).toEqual([['Secret/ext']]);
    expect((await w.generations())['w']).toBe(g0 + 1);
    const register = await w.register();
    expect(register.holds).toEqual([]);
    expect(register.approvals).toEqual([]); // used up

    // The next change is another reload: held again, the old approval covers nothing.
    await w.external('2');
    expect((await w.pass()).report.held?.map((h) => h.kind)).toEqual(['approval']);
    expect((await w.generations())['w']).toBe(g0 + 1);
    // An approval of a change that changes again before the pass: void, held again.
    await approveReloadsRecordOnly(w);
    await w.external('3');
    expect((await w.pass()).report.held?.map((h) => h.kind)).toEqual(['approval']);
    expect((await w.generations())['w']).toBe(g0 + 1);
    expect((await w.register()).approvals).toEqual([]);

    // Nothing held for another target: nothing approved, exit 1 from the command line.
    const none = await cli('approve', w.ns, '--reload', '--repo', w.repo.url, ...KUBE());
    expect(none.code).toBe(0);
    expect(none.out).toContain(`approved  Deployment/${w.ns}/w  (Secret/ext changed)`);
    expect((await w.generations())['w']).toBe(g0 + 2);
    const empty = await cli('approve', w.ns, '--reload', '--repo', w.repo.url, ...KUBE());
    expect(empty.code).toBe(1);
    expect(empty.out).toContain(`no reload of ${w.ns} waits for an approval`);
    const both = await cli('approve', w.ns, 'abcdef1', '--reload', '--repo', w.repo.url);
    expect(both.code).toBe(2);
  }, 90_000);
});

/** Records approvals of what is held without a pass rolling them: the approval as written, then the change moves on. */
async function approveReloadsRecordOnly(w: Awaited<ReturnType<typeof world>>): Promise<void> {
  const { updateTargetReloads } = await import('../../shared/state/index.js');
  await updateTargetReloads(w.client, w.ns, (r) => ({
    ...r,
    approvals: r.holds.map((h) => ({
      target: h.target ?? '',
      digest: h.digest,
      workload: h.workload,
      by: 'alice',
      at: new Date().toISOString(),
      via: 'cli' as const,
    })),
  }));
}

describe('reloads that wait for a later pass show as waiting', () => {
  it('debounced, and past reload.maxConcurrent: listed as waiting with why, gone once rolled', async () => {
    const w = await world({}, ['a', 'b']);
    // A workload no target lists, reading the same Secret: its wait is no reload of the target's.
    await w.client.apply(reloadingDeployment('loose', { secrets: ['ext'] }, { namespace: w.ns }), {
      fieldManager: 'kubectl',
    });
    await reloadWithPolicies(w.client, { namespaces: [w.ns], strategy: 'annotations' }); // hashes recorded
    await w.external('1');
    const pass = (opts: { debounceMs?: number; maxRolls?: number }) =>
      reloadWithPolicies(w.client, { namespaces: [w.ns], strategy: 'annotations', ...opts });
    const early = await pass({ debounceMs: 60_000 });
    expect(early.report.rolled).toEqual([]);
    expect(early.fresh).toEqual([]); // waits are no news
    const debounced = (await w.register()).holds.filter((h) => h.target);
    expect(debounced.map((h) => [h.workload.name, h.kind]).sort()).toEqual([
      ['a', 'waiting'],
      ['b', 'waiting'],
    ]);
    expect(debounced[0]?.reason).toMatch(/^changed within reload.debounce: rolls once after \d{4}-/);
    const status = await cli('status', w.ns, ...KUBE());
    expect(status.out).toContain(`reload waiting: Deployment/${w.ns}/a (Secret/ext changed)`);
    expect(status.out).toContain('a later pass rolls it');
    expect(status.out).not.toContain(`Deployment/${w.ns}/loose`);
    expect((await cli('status', ...KUBE())).out).toContain(`reload waiting: Deployment/${w.ns}/loose`);

    const one = await pass({ maxRolls: 1 });
    expect(one.report.rolled).toHaveLength(1);
    const throttled = (await w.register()).holds.filter((h) => h.target);
    // Three workloads, one rolled: the target's that wait (one or both) say why.
    expect(throttled.length).toBeGreaterThanOrEqual(1);
    for (const h of throttled) {
      expect(h.kind).toBe('waiting');
      expect(h.reason).toMatch(/^reload.maxConcurrent \(1\) workloads rolled in this pass/);
    }
    await pass({ maxRolls: 1 });
    await pass({ maxRolls: 1 });
    expect((await w.register()).holds).toEqual([]);
  }, 60_000);
});

describe('the deploy-time floor: every target gets at least its policy', () => {
  it('a floor of notify holds the reload of a target that sets nothing', async () => {
    const w = await world({});
    w.repo.engine.reload = {
      strategy: 'annotations',
      scope: {},
      floor: { windows: [], mode: 'notify', approve: false },
    };
    const g0 = await w.generations();
    await w.commit('1');
    const synced = await w.sync();
    expect(await w.generations()).toEqual(g0);
    expect(synced?.reloadsHeld?.map((h) => [h.kind, h.reason])).toEqual([
      ['notify', 'reload.mode is notify (the deploy-time settings): not rolled'],
    ]);
    // The scheduled pass keeps it too.
    await w.external('1');
    const pass = await w.pass();
    expect(pass.report.rolled).toEqual([]);
    expect(pass.report.held?.map((h) => [h.kind, h.sources])).toEqual([['notify', ['ConfigMap/cfg', 'Secret/ext']]]);
    expect(await w.generations()).toEqual(g0);
  }, 60_000);
});

describe('field ownership of reloads that ride in a workload’s write', () => {
  it('the reload fields stay the reloader’s: Git dropping the annotation rolls nothing, and stops reloads', async () => {
    const w = await world({});
    await w.commit('1');
    await w.sync(); // the ConfigMap and the workload's reload in one write
    const mark = async () => {
      const d = await w.client.get('apps/v1', 'Deployment', w.ns, 'w');
      const t = (d?.['spec'] as { template: { metadata: { annotations?: Record<string, string> } } }).template;
      return t.metadata.annotations?.[RELOADED_HASH_ANNOTATION];
    };
    const before = await mark();
    expect(before).toBeDefined();
    const template = async () => JSON.stringify((await w.client.get('apps/v1', 'Deployment', w.ns, 'w'))?.['spec']);
    const rolled = await template();
    // Git removes Reloader's annotation: the template keeps the reload fields, so nothing rolls (a
    // Deployment's generation counts its own annotations too: the template is what rolls pods).
    await w.commit('1', (n) => workload(n, {}));
    await w.sync();
    expect(await template()).toBe(rolled);
    expect(await mark()).toBe(before);
    // And it is no longer reloaded.
    const g2 = (await w.generations())['w'];
    await w.external('9');
    expect((await w.pass()).report.rolled).toEqual([]);
    expect((await w.generations())['w']).toBe(g2);
    expect(await template()).toBe(rolled);
  }, 60_000);
});

describe('a pass reads the target states only when it decides on a workload', () => {
  it('nothing changed: no state read; a change: the states read then, and the policy as last applied holds it', async () => {
    const w = await world({ mode: 'notify' });
    const g0 = await w.generations();
    // Observed, not replaced: every call goes to the apiserver.
    const lists = vi.spyOn(w.client, 'list');
    const stateReads = (): number =>
      lists.mock.calls.filter(([, kind, o]) => kind === 'ConfigMap' && o?.labelSelector === STATE_OF_LABEL).length;
    try {
      const idle = await w.pass();
      expect(idle.report.rolled).toEqual([]);
      expect(idle.report.held ?? []).toEqual([]);
      expect(stateReads()).toBe(0);
      await w.external('1');
      const changed = await w.pass();
      expect(changed.report.held?.map((h) => [h.workload.name, h.kind])).toEqual([['w', 'notify']]);
      expect(stateReads()).toBe(1);
      expect(await w.generations()).toEqual(g0);
    } finally {
      lists.mockRestore();
    }
  }, 60_000);

  it('policies that cannot be read fail the pass before it writes anything, never as one workload', async () => {
    const w = await world({});
    const g0 = await w.generations();
    await w.external('1');
    const unreadable = new Error('the target states cannot be read');
    const pass = reloadPass(w.client, {
      namespaces: [w.ns],
      strategy: 'annotations',
      preparePolicies: () => Promise.reject(unreadable),
      policyOf: () => {
        throw new Error('asked before preparePolicies');
      },
    });
    await expect(pass).rejects.toBe(unreadable);
    expect(await w.generations()).toEqual(g0);
    // Once readable, the same change rolls.
    expect((await w.pass()).report.rolled.map((r) => r.workload.name)).toEqual(['w']);
  }, 60_000);
});
