import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { startGitHub, type TestGitHub } from '../../devenv/index.js';
import type { KubeObject } from '../../shared/model/index.js';
import { RELOAD_REVISION_ANNOTATION } from '../../shared/reload/index.js';
import { readReloadRegister } from '../../shared/state/index.js';
import { reloadWithPolicies } from '../../shared/sync/index.js';
import { testEnv, uniqueName } from '../helpers/env.js';
import { configMap, gitopsRepo, yamlDocs } from '../helpers/engine.js';
import { gatedWorld, tidegateYaml, type TargetDecl } from '../helpers/gates.js';
import { reloadingDeployment, templateOf } from '../helpers/reload.js';

/**
 * Security review of reload policies, third round (see reload-policy-attacks.test.ts and
 * reload-policy-attacks-2.test.ts for the first two).
 *
 * Property attacked: for a target whose effective reload policy (its own, the last applied one,
 * under the deploy-time floor) is notify, approve or has windows, no workload of that target is
 * ever rolled by a reload outside its window, without an approval of exactly that change by
 * someone allowed to approve and not involved in commits that can have caused it, or at all under
 * notify.
 *
 * Each test asserts the property, so it FAILS while the way past is open.
 */

const TOKEN = 'ghp_reload_policy_attacks_3_token';

describe('reload policy attacks 3: the revision recorded before another target applies the commit', () => {
  let github: TestGitHub;
  beforeAll(async () => {
    github = await startGitHub({ token: TOKEN, gitRoot: testEnv().git.root });
  });
  afterAll(async () => {
    await github?.stop();
  });

  /*
   * ATTACK: `prod` (reload.approve: true) runs the Deployment `w`, which reloads (auto) on the
   * ConfigMap `cfg` and on an optional Secret `extra` that does not exist yet. `cfg` is applied by
   * another target of the repository, `conf` (no reload policy, same namespace), which dependsOn
   * prod, so prod syncs first on every push. mallory pushes ONE commit M that changes `cfg` (conf's
   * file) and adds the Secret `extra` to prod's files. Then she comments
   * `/tidegate approve reload <prod>`.
   *
   * WHY IT WORKS: prod syncs M first. Its pass after the apply finds a source of `w` it has never
   * recorded (`extra`) and nothing changed (cfg is still the old one: conf has not synced yet), so
   * it writes w's baseline — and with it `tidegate.dev/reload-revision: M` (the revision prod is
   * applying). Then conf syncs M and applies the new `cfg`: the pass after conf's apply holds w's
   * reload for prod's approval, leaving the revision as it is (M). ownReloadCause only looks at
   * the commits after the recorded revision (`exclude: [M]`, up to the head M): none. So mallory,
   * who wrote M — the commit that changed cfg — is "not involved" and releases her own reload.
   * The recorded revision claims "w's sources were as of M", but conf had not applied M yet.
   */
  it('a commit that changes a ConfigMap through a later-syncing target cannot be approved by its own author', async () => {
    const w = await gatedWorld(github, TOKEN, { prefix: 'rpol3-ord', writers: ['alice', 'mallory'] });
    const ns = uniqueName('rp3or');
    const prod: TargetDecl = { name: `p-${ns}`, dir: 'prod', namespace: ns, extra: { reload: { approve: true } } };
    const conf: TargetDecl = { name: `c-${ns}`, dir: 'conf', namespace: ns, extra: { dependsOn: [prod.name] } };
    const deployment = reloadingDeployment('w', { configMaps: ['cfg'], secrets: ['extra'], optionalSecrets: true });
    await w.push('alice', {
      'tidegate.yaml': tidegateYaml([prod, conf]),
      'apps/conf/cfg.yaml': yamlDocs(configMap('cfg', { k: '0' })),
      'apps/prod/w.yaml': yamlDocs(deployment),
    });
    await w.deliver();
    expect(w.failures).toEqual([]);
    // The scheduled pass: w's baseline records cfg.
    await reloadWithPolicies(w.client, { namespaces: [ns], strategy: 'annotations' });
    const g0 = await templateOf(w.client, ns);
    expect(g0).not.toBe('null');

    // mallory's one commit: cfg changed in conf's files, and a new (harmless) Secret in prod's.
    await w.push('mallory', {
      'apps/conf/cfg.yaml': yamlDocs(configMap('cfg', { k: 'mallory' })),
      'apps/prod/extra.yaml': yamlDocs({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'extra' },
        stringData: { k: 'x' },
      } as KubeObject),
    });
    await w.deliver();
    expect(w.failures).toEqual([]);
    expect(await w.data(ns, 'cfg')).toEqual({ k: 'mallory' });
    const holds = (await readReloadRegister(w.client)).holds.filter((h) => h.target === prod.name);
    expect(holds.map((h) => h.kind)).toEqual(['approval']);
    expect(await templateOf(w.client, ns)).toBe(g0);
    // (The revision recorded on w is now mallory's commit itself: prod's pass wrote it, for the
    // new Secret, before conf applied cfg.)
    const live = await w.client.get('apps/v1', 'Deployment', ns, 'w');
    expect(live?.metadata.annotations?.[RELOAD_REVISION_ANNOTATION]).toBeDefined();

    const { pr } = await w.propose('mallory', { 'README.md': 'hello\n' });
    const out = await w.comment('mallory', pr, `/tidegate approve reload ${prod.name}`);
    // Property: nothing rolled, and the approval refused (she pushed the change that caused it).
    expect(await templateOf(w.client, ns)).toBe(g0);
    expect(out).toEqual([expect.objectContaining({ kind: 'approved', approved: [] })]);
  }, 240_000);
});

describe('reload policy attacks 3: the held policy snapshot evicted', () => {
  /*
   * ATTACK: the target runs with `reload.mode: notify`; `w` reloads on `cfg`. Earlier (under
   * notify, nothing rolls) the writer added 300 decoy Deployments `z000`…`z299` reloading on
   * another ConfigMap `bulk` (their baselines get recorded). Then ONE commit drops the notify
   * policy, changes `cfg` and `bulk`.
   *
   * WHY IT WORKS: as fixed, the sync's pass holds all 301 reloads under the stricter of the old
   * and the new policy (notify), and each hold carries that policy as its snapshot in the
   * target's register — the only place the "held under notify" is kept once the sync records the
   * lowered policy. But the register keeps at most HOLDS_PER_TARGET (300) holds, the newest in
   * list order (by name): `w` sorts before every `z…` and its hold, snapshot included, is cut.
   * The next scheduled pass finds w's change (same digest) with no snapshot and judges it by the
   * lowered policy alone: it rolls, although it arrived under notify. The writer controls both the
   * decoys' number and their names.
   */
  it('a held reload keeps its notify policy when the target holds more than 300 reloads', async () => {
    const repo = await gitopsRepo('rpol3evict');
    const ns = uniqueName('rp3ev');
    const client = repo.engine.client;
    const decoys = Array.from({ length: 300 }, (_, i) =>
      reloadingDeployment(`z${String(i).padStart(3, '0')}`, { configMaps: ['bulk'] }),
    );
    const files = (reload: Record<string, unknown> | undefined, v: string) => ({
      'tidegate.yaml': stringify({
        targets: [
          { name: ns, cluster: 'c', path: 'apps', targetNamespace: ns, wait: false, ...(reload ? { reload } : {}) },
        ],
      }),
      'apps/objects.yaml': yamlDocs([
        configMap('cfg', { k: v }),
        configMap('bulk', { k: v }),
        reloadingDeployment('w', { configMaps: ['cfg'] }),
        ...decoys,
      ]),
    });
    await repo.commit(files({ mode: 'notify' }, '0'));
    const [first] = await repo.sync(ns);
    expect(first?.error, first?.error).toBeUndefined();
    const g0 = await templateOf(client, ns);
    expect(g0).not.toBe('null');

    // The policy dropped, cfg (and bulk) changed in one commit: held, as fixed.
    await repo.commit(files(undefined, '1'));
    const [res] = await repo.sync(ns);
    expect(res?.error, res?.error).toBeUndefined();
    expect(await templateOf(client, ns)).toBe(g0);
    expect(res?.reloadsHeld?.find((h) => h.workload.name === 'w')?.kind).toBe('notify');

    // The deployed worker's next scheduled pass; nobody changed anything since.
    const pass = await reloadWithPolicies(client, { namespaces: [ns], strategy: 'annotations' });
    // Property: the change that arrived under notify is never rolled.
    expect(pass.report.rolled.map((r) => r.workload.name)).not.toContain('w');
    expect(await templateOf(client, ns)).toBe(g0);
  }, 600_000);
});

describe('reload policy attacks 3: the policy dropped by a target that syncs before the one applying the ConfigMap', () => {
  /*
   * ATTACK: `p` (reload.mode: notify) runs `w`, which reloads on `cfg`; `cfg` is applied by `q`
   * (no policy, same namespace). The writer's ONE commit drops p's notify policy, changes `cfg`
   * and makes q dependsOn p (or it already does), so p syncs the commit first.
   *
   * WHY IT WORKS: the fix of "a commit cannot lower the policy its own reloads follow" lives in
   * p's sync (the embed and the pass after p's apply take the stricter of the revision's and the
   * last applied policy). When p syncs, cfg is still the old one: nothing is pending, nothing is
   * held, no snapshot is kept, and p records the lowered policy. Then q syncs the same commit and
   * applies the new cfg: the pass after q's apply judges w by p's policy as now recorded (roll),
   * and rolls it. The reload the commit caused follows the policy the commit itself wrote.
   */
  it("a commit that drops a target's notify policy and changes its ConfigMap through a later-syncing target does not roll it", async () => {
    const repo = await gitopsRepo('rpol3xdrop');
    const ns = uniqueName('rp3xd');
    const client = repo.engine.client;
    const p = `p-${ns}`;
    const q = `q-${ns}`;
    const files = (reload: Record<string, unknown> | undefined, v: string) => ({
      'tidegate.yaml': stringify({
        targets: [
          { name: p, cluster: 'c', path: 'apps/p', targetNamespace: ns, wait: false, ...(reload ? { reload } : {}) },
          { name: q, cluster: 'c', path: 'apps/q', targetNamespace: ns, wait: false, dependsOn: [p] },
        ],
      }),
      'apps/p/w.yaml': yamlDocs(reloadingDeployment('w', { configMaps: ['cfg'] })),
      'apps/q/cfg.yaml': yamlDocs(configMap('cfg', { k: v })),
    });
    await repo.commit(files({ mode: 'notify' }, '0'));
    const first = await repo.sync();
    expect(first.map((r) => r.error).filter(Boolean)).toEqual([]);
    await reloadWithPolicies(client, { namespaces: [ns], strategy: 'annotations' });
    const g0 = await templateOf(client, ns);
    // Sanity: under notify, a change of cfg is held.
    await repo.commit(files({ mode: 'notify' }, '1'));
    const held = await repo.sync();
    expect(held.map((r) => r.error).filter(Boolean)).toEqual([]);
    const holds = (await readReloadRegister(client)).holds.filter((h) => h.target === p);
    expect(holds.map((h) => h.kind)).toEqual(['notify']);
    expect(await templateOf(client, ns)).toBe(g0);

    // The attack: the policy dropped and cfg changed again in one commit.
    await repo.commit(files(undefined, '2'));
    const res = await repo.sync();
    expect(res.map((r) => r.error).filter(Boolean)).toEqual([]);
    expect(res.map((r) => r.target)).toEqual([p, q]);
    // Property: this commit's cfg change is judged by the notify policy in force when it came: never rolled.
    expect(res.flatMap((r) => r.reloads ?? [])).toEqual([]);
    expect(await templateOf(client, ns)).toBe(g0);
  }, 180_000);
});

describe('reload policy attacks 3: Reloader annotations removed and re-added', () => {
  /*
   * ATTACK: the target runs with `reload.mode: notify`; `w` reloads (auto) on `cfg`. ONE commit
   * drops the notify policy, changes `cfg`, and removes Reloader's annotation from `w` (workload
   * metadata: no rollout). The next commit puts the annotation back, nothing else.
   *
   * WHY IT WORKS: the pass only looks at workloads that carry Reloader's annotations. In the first
   * commit's sync, `w` has none: it is not held, no snapshot of the notify policy is kept for it
   * (a hold it had is dropped from the register), and the sync records the lowered policy. Its
   * baseline still names the OLD hash of cfg (nothing wrote it). When the annotation comes back,
   * the sync's embed finds cfg changed against the baseline, asks the policy (the target's, the
   * last applied one: both roll now, no snapshot) and carries the reload in w's own write: the
   * change that arrived under notify rolls. Same with reload.approve or windows (nobody approves).
   */
  it('a ConfigMap change made while dropping notify does not roll when Git removes and re-adds the Reloader annotation', async () => {
    const repo = await gitopsRepo('rpol3readd');
    const ns = uniqueName('rp3ra');
    const client = repo.engine.client;
    const files = (reload: Record<string, unknown> | undefined, v: string, annotated: boolean) => ({
      'tidegate.yaml': stringify({
        targets: [
          { name: ns, cluster: 'c', path: 'apps', targetNamespace: ns, wait: false, ...(reload ? { reload } : {}) },
        ],
      }),
      'apps/objects.yaml': yamlDocs([
        configMap('cfg', { k: v }),
        reloadingDeployment('w', { configMaps: ['cfg'] }, annotated ? {} : { annotations: {} }),
      ]),
    });
    await repo.commit(files({ mode: 'notify' }, '0', true));
    const [first] = await repo.sync(ns);
    expect(first?.error, first?.error).toBeUndefined();
    const g0 = await templateOf(client, ns);

    await repo.commit(files(undefined, '1', false));
    const [dropped] = await repo.sync(ns);
    expect(dropped?.error, dropped?.error).toBeUndefined();
    expect(await templateOf(client, ns)).toBe(g0);

    await repo.commit(files(undefined, '1', true));
    const [readded] = await repo.sync(ns);
    expect(readded?.error, readded?.error).toBeUndefined();
    // Property: the cfg change arrived under notify (in the commit that dropped it): never rolled.
    expect(readded?.reloads ?? []).toEqual([]);
    expect(await templateOf(client, ns)).toBe(g0);
  }, 180_000);
});
