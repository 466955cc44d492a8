import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { startGitHub, type TestGitHub } from '../../devenv/index.js';
import type { KubeObject } from '../../shared/model/index.js';
import { RELOADER as R } from '../../shared/reload/annotations.js';
import { readReloadRegister } from '../../shared/state/index.js';
import { reloadWithPolicies } from '../../shared/sync/index.js';
import { testEnv, uniqueName } from '../helpers/env.js';
import { configMap, gitopsRepo, yamlDocs } from '../helpers/engine.js';
import { gatedWorld, tidegateYaml, type TargetDecl } from '../helpers/gates.js';

/**
 * Security review of reload policies, second round (see reload-policy-attacks.test.ts for the first).
 *
 * Property attacked: for a target whose effective reload policy (its own, the last applied one,
 * under the deploy-time floor) is notify, approve or has windows, no workload of that target is
 * ever rolled by a reload outside its window, without an approval of exactly that change by
 * someone allowed to approve (not someone who made a commit of the change that caused it), or at
 * all under notify.
 *
 * Each test asserts the property, so it FAILS while the way past is open.
 */

const TOKEN = 'ghp_reload_policy_attacks_2_token';

/** A Deployment that reads the ConfigMap `cfg`, with Reloader's auto annotation. */
function workload(name: string): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, annotations: { [R.auto]: 'true' } },
    spec: {
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          containers: [{ name: 'app', image: 'registry.example/app:1', envFrom: [{ configMapRef: { name: 'cfg' } }] }],
        },
      },
    },
  };
}

type Getter = { get: (...a: any[]) => Promise<KubeObject | undefined> };
const generationOf = async (client: Getter, ns: string, name = 'w') =>
  (await client.get('apps/v1', 'Deployment', ns, name))?.metadata.generation ?? 0;

describe('reload policy attacks 2: who caused a held reload', () => {
  let github: TestGitHub;
  beforeAll(async () => {
    github = await startGitHub({ token: TOKEN, gitRoot: testEnv().git.root });
  });
  afterAll(async () => {
    await github?.stop();
  });

  /*
   * ATTACK: `prod` (reload.approve: true) runs the Deployment `w`, which reloads on the ConfigMap
   * `cfg`. `cfg` itself is applied by ANOTHER target of the same repository (`conf`, no reload
   * policy, files under apps/conf, same namespace: a repository's targets may share a namespace).
   * mallory pushes a change of `cfg` (in apps/conf); conf's sync applies it, and the pass after
   * conf's apply finds `w` held for prod's approval. mallory then comments
   * `/tidegate approve reload <prod>`: the reload of her own change is released by herself.
   *
   * WHY IT WORKS: afterPass (shared/sync/reload.ts) records a hold's `cause` only when the hold's
   * target is the target being applied (`applying.target === h.target`); here the applying
   * target is conf, the hold's is prod, so the hold is recorded WITHOUT a cause. ownReloadCause
   * (usecases/approve.ts) only checks the commits named by causes (and only prod's inputs), so a
   * hold without a cause is treated like an out-of-band change: anybody who may approve prod,
   * including the author of the change, releases it.
   */
  it('a ConfigMap change pushed through another target of the repository cannot be approved by its own pusher', async () => {
    const w = await gatedWorld(github, TOKEN, { prefix: 'rpol2-xt', writers: ['alice', 'mallory'] });
    const ns = uniqueName('rp2xt');
    const prod: TargetDecl = {
      name: uniqueName('prod'),
      dir: 'prod',
      namespace: ns,
      extra: { reload: { approve: true } },
    };
    const conf: TargetDecl = { name: uniqueName('conf'), dir: 'conf', namespace: ns };
    await w.push('alice', {
      'tidegate.yaml': tidegateYaml([conf, prod]),
      'apps/conf/cfg.yaml': yamlDocs(configMap('cfg', { k: '0' })),
      'apps/prod/w.yaml': yamlDocs(workload('w')),
    });
    await w.deliver();
    expect(w.failures).toEqual([]);
    // The scheduled pass: w's baseline records cfg (whatever order the targets synced in).
    await reloadWithPolicies(w.client, { namespaces: [ns], strategy: 'annotations' });
    const g0 = await generationOf(w.client, ns);
    expect(g0).toBeGreaterThan(0);

    // mallory changes cfg (conf's file): applied, w's reload held for prod's approval.
    await w.push('mallory', { 'apps/conf/cfg.yaml': yamlDocs(configMap('cfg', { k: 'mallory' })) });
    await w.deliver();
    expect(w.failures).toEqual([]);
    expect(await w.data(ns, 'cfg')).toEqual({ k: 'mallory' });
    const holds = (await readReloadRegister(w.client)).holds.filter((h) => h.target === prod.name);
    expect(holds.map((h) => h.kind)).toEqual(['approval']);
    expect(await generationOf(w.client, ns)).toBe(g0);

    // mallory approves the reload of her own change.
    const { pr } = await w.propose('mallory', { 'README.md': 'hello\n' });
    const out = await w.comment('mallory', pr, `/tidegate approve reload ${prod.name}`);
    // Property: nothing rolled, and the approval refused (she pushed the change that caused it).
    expect(await generationOf(w.client, ns)).toBe(g0);
    expect(out).toEqual([expect.objectContaining({ kind: 'approved', approved: [] })]);
  }, 180_000);

  /*
   * ATTACK: `prod` (reload.approve: true). mallory pushes a change of `cfg` in prod's own files;
   * the sync holds w's reload, with cause = mallory's commit. Then anybody else (alice, doing her
   * ordinary work, or mallory's second account) pushes any other change of prod that writes into
   * the same namespace (here another ConfigMap). mallory now comments `/tidegate approve reload`.
   *
   * WHY IT WORKS: every sync of prod re-finds the same hold in its pass after the apply, and
   * afterPass REPLACES its cause with the range of THAT sync (`{ revision, from: lastApplied }`),
   * instead of keeping the range of the sync that found it first (or the union). After alice's
   * sync the hold's cause is alice's commit only, and ownReloadCause no longer sees mallory's
   * commit among the ones that caused the held reload (it is still the same reload, same digest).
   */
  it("a later sync of someone else's commit does not launder the cause of a held reload for its author", async () => {
    const w = await gatedWorld(github, TOKEN, { prefix: 'rpol2-lc', writers: ['alice', 'mallory'] });
    const prod: TargetDecl = {
      name: uniqueName('prod'),
      dir: 'prod',
      namespace: uniqueName('rp2lc'),
      extra: { reload: { approve: true } },
    };
    const ns = prod.namespace;
    await w.push('alice', {
      'tidegate.yaml': tidegateYaml([prod]),
      'apps/prod/cfg.yaml': yamlDocs(configMap('cfg', { k: '0' })),
      'apps/prod/w.yaml': yamlDocs(workload('w')),
    });
    await w.deliver();
    expect(w.failures).toEqual([]);
    const g0 = await generationOf(w.client, ns);
    expect(g0).toBeGreaterThan(0);

    await w.push('mallory', { 'apps/prod/cfg.yaml': yamlDocs(configMap('cfg', { k: 'mallory' })) });
    await w.deliver();
    const first = (await readReloadRegister(w.client)).holds.filter((h) => h.target === prod.name);
    expect(first.map((h) => h.kind)).toEqual(['approval']);

    // alice's unrelated change of prod (another ConfigMap in the same namespace).
    await w.push('alice', { 'apps/prod/other.yaml': yamlDocs(configMap('other', { k: 'alice' })) });
    await w.deliver();
    expect(w.failures).toEqual([]);
    const second = (await readReloadRegister(w.client)).holds.filter((h) => h.target === prod.name);
    // The same reload (same digest) is still held.
    expect(second.map((h) => h.digest)).toEqual(first.map((h) => h.digest));
    expect(await generationOf(w.client, ns)).toBe(g0);

    const { pr } = await w.propose('mallory', { 'README.md': 'hello\n' });
    const out = await w.comment('mallory', pr, `/tidegate approve reload ${prod.name}`);
    // Property: nothing rolled, and the approval refused (she pushed the change that caused it).
    expect(await generationOf(w.client, ns)).toBe(g0);
    expect(out).toEqual([expect.objectContaining({ kind: 'approved', approved: [] })]);
  }, 180_000);

  /*
   * ATTACK: `prod` (reload.approve: true). mallory pushes ONE commit that changes `cfg` and sets
   * `reload.enabled: false` on prod (approve stays true: the policy recorded keeps approve). The
   * sync applies the ConfigMap but runs no pass after the apply (the target's reload is disabled),
   * so nothing records who caused the change. The deployed worker's scheduled pass does not look at
   * `reload.enabled` at all: it finds w's reload and holds it for prod's approval — without a
   * cause. mallory comments `/tidegate approve reload <prod>` and her own change rolls.
   *
   * WHY IT WORKS: the cause is only ever recorded by the pass that runs right after a sync
   * (apply-target.ts reloadAfterApply, skipped when `!spec.reload.enabled`); a hold first found by
   * the scheduled pass has no cause, and ownReloadCause lets anyone approve a hold without one.
   */
  it('a commit that disables reload for its sync cannot make its own ConfigMap change self-approvable', async () => {
    const w = await gatedWorld(github, TOKEN, { prefix: 'rpol2-en', writers: ['alice', 'mallory'] });
    const ns = uniqueName('rp2en');
    const prod = (reload: Record<string, unknown>): TargetDecl => ({
      name: `p-${ns}`,
      dir: 'prod',
      namespace: ns,
      extra: { reload },
    });
    await w.push('alice', {
      'tidegate.yaml': tidegateYaml([prod({ approve: true })]),
      'apps/prod/cfg.yaml': yamlDocs(configMap('cfg', { k: '0' })),
      'apps/prod/w.yaml': yamlDocs(workload('w')),
    });
    await w.deliver();
    expect(w.failures).toEqual([]);
    const g0 = await generationOf(w.client, ns);
    expect(g0).toBeGreaterThan(0);

    await w.push('mallory', {
      'tidegate.yaml': tidegateYaml([prod({ approve: true, enabled: false })]),
      'apps/prod/cfg.yaml': yamlDocs(configMap('cfg', { k: 'mallory' })),
    });
    await w.deliver();
    expect(w.failures).toEqual([]);
    expect(await w.data(ns, 'cfg')).toEqual({ k: 'mallory' });
    // The deployed worker's scheduled pass.
    w.ctx.reload = { strategy: 'annotations', scope: { namespaces: [ns] } };
    const scheduled = await reloadWithPolicies(w.client, { namespaces: [ns], strategy: 'annotations' });
    expect(scheduled.report.held?.map((h) => h.kind)).toEqual(['approval']);
    expect(await generationOf(w.client, ns)).toBe(g0);

    const { pr } = await w.propose('mallory', { 'README.md': 'hello\n' });
    const out = await w.comment('mallory', pr, `/tidegate approve reload p-${ns}`);
    // Property: nothing rolled, and the approval refused (she pushed the change that caused it).
    expect(await generationOf(w.client, ns)).toBe(g0);
    expect(out).toEqual([expect.objectContaining({ kind: 'approved', approved: [] })]);
  }, 180_000);
});

describe('reload policy attacks 2: moving a workload to a target without a policy', () => {
  /*
   * ATTACK: targets `a` (reload.mode: notify) and `b` (no reload policy) of one repository share a
   * namespace. `a` runs the Deployment `w` and its ConfigMap `cfg`. ONE commit moves both files
   * from a's path to b's path (b dependsOn nothing; a dependsOn b, so b syncs first and takes the
   * objects over, as a repository's targets may) and changes `cfg`.
   *
   * WHY IT WORKS: the reload policy is judged per target only: b's sync decides whether the reload
   * may ride in w's own write from b's tidegate.yaml and b's last applied policy (reloadHoldsNow),
   * never from the policy of the target that owned w until this very commit. Taking objects over is
   * judged by a's gate (ownerHold), not by a's reload policy. So w — a notify-only workload when the
   * commit arrived — is rolled by this commit's ConfigMap change: the "a commit cannot lower the
   * policy its own reload follows" rule is bypassed by moving the workload instead of editing the
   * policy.
   */
  it("moving a notify-only target's workload and ConfigMap to another target in the commit that changes the ConfigMap does not roll it", async () => {
    const repo = await gitopsRepo('rpol2move');
    const ns = uniqueName('rp2mv');
    const client = repo.engine.client;
    const a = `a-${ns}`;
    const b = `b-${ns}`;
    const config = stringify({
      targets: [
        { name: b, cluster: 'c', path: 'apps/b', targetNamespace: ns, wait: false },
        {
          name: a,
          cluster: 'c',
          path: 'apps/a',
          targetNamespace: ns,
          wait: false,
          dependsOn: [b],
          reload: { mode: 'notify' },
        },
      ],
    });
    await repo.commit({
      'tidegate.yaml': config,
      'apps/a/objects.yaml': yamlDocs([configMap('cfg', { k: '0' }), workload('w')]),
      'apps/b/keep.yaml': yamlDocs(configMap('keep', { k: '0' })),
    });
    const first = await repo.sync();
    expect(first.map((r) => r.error).filter(Boolean)).toEqual([]);
    const g0 = await generationOf(client, ns);
    expect(g0).toBeGreaterThan(0);
    // Sanity: a change of cfg in a is held (notify).
    await repo.commit({ 'apps/a/objects.yaml': yamlDocs([configMap('cfg', { k: '1' }), workload('w')]) });
    const held = await repo.sync();
    expect(held.map((r) => r.error).filter(Boolean)).toEqual([]);
    expect(held.flatMap((r) => r.reloadsHeld ?? []).map((h) => h.kind)).toEqual(['notify']);
    expect(await generationOf(client, ns)).toBe(g0);

    // The attack: move w and cfg to b, with the next cfg change, in one commit.
    await repo.commit({
      'apps/a/objects.yaml': null,
      'apps/a/keep.yaml': yamlDocs(configMap('keep-a', { k: '0' })),
      'apps/b/objects.yaml': yamlDocs([configMap('cfg', { k: '2' }), workload('w')]),
    });
    const moved = await repo.sync();
    expect(moved.map((r) => r.error).filter(Boolean)).toEqual([]);
    expect((await client.get('apps/v1', 'Deployment', ns, 'w'))?.metadata.labels?.['tidegate.dev/target']).toBe(b);
    // Property: the cfg change arrived while w was a notify-only target's workload: never rolled.
    expect(moved.flatMap((r) => r.reloads ?? [])).toEqual([]);
    expect(await generationOf(client, ns)).toBe(g0);
  }, 180_000);
});

describe('reload policy attacks 2: renaming a target', () => {
  /*
   * ATTACK: target `a` (reload.mode: notify) runs `w` and `cfg`. ONE commit renames the target to
   * `a2` (same path, same namespace, no reload policy) and changes `cfg`.
   *
   * WHY IT WORKS: `a2` is a new target: no state, so no policy "last applied"; its sync takes a's
   * objects over (same repository, a's gate open) and judges the reload by a2's tidegate.yaml
   * alone (reloadHoldsNow), so the reload rides in w's write. The policy that governed w when the
   * change arrived (a's notify, recorded in a's state) is never consulted. The rename is a way to
   * lower the policy for the commit's own reload.
   */
  it('renaming a notify-only target in the commit that changes its ConfigMap does not roll its workload', async () => {
    const repo = await gitopsRepo('rpol2ren');
    const ns = uniqueName('rp2rn');
    const client = repo.engine.client;
    const config = (name: string, reload?: Record<string, unknown>) =>
      stringify({
        targets: [
          { name, cluster: 'c', path: 'apps', targetNamespace: ns, wait: false, ...(reload ? { reload } : {}) },
        ],
      });
    await repo.commit({
      'tidegate.yaml': config(`a-${ns}`, { mode: 'notify' }),
      'apps/objects.yaml': yamlDocs([configMap('cfg', { k: '0' }), workload('w')]),
    });
    const first = await repo.sync();
    expect(first.map((r) => r.error).filter(Boolean)).toEqual([]);
    const g0 = await generationOf(client, ns);
    expect(g0).toBeGreaterThan(0);

    await repo.commit({
      'tidegate.yaml': config(`a2-${ns}`),
      'apps/objects.yaml': yamlDocs([configMap('cfg', { k: '1' }), workload('w')]),
    });
    const renamed = await repo.sync();
    expect(renamed.map((r) => r.error).filter(Boolean)).toEqual([]);
    expect((await client.get('apps/v1', 'Deployment', ns, 'w'))?.metadata.labels?.['tidegate.dev/target']).toBe(
      `a2-${ns}`,
    );
    // Property: the cfg change arrived under a's notify policy: never rolled.
    expect(await generationOf(client, ns)).toBe(g0);
    expect(renamed.flatMap((r) => r.reloads ?? [])).toEqual([]);
  }, 180_000);
});

describe('reload policy attacks 2: the same-commit policy drop, seen by the next scheduled pass', () => {
  /*
   * ATTACK: the target runs with `reload.mode: notify`. ONE commit drops the policy and changes
   * `cfg` (the first review's attack). The sync now holds the reload, as fixed — but the deployed
   * worker's scheduled pass runs a minute later.
   *
   * WHY IT WORKS: the fix lives only in the pass right after the sync (`applying` adds the
   * revision's setting beside the one last applied). The sync then records the revision's policy
   * (none) as the last applied one (run.ts `reload: recordedPolicy(spec)`), and the scheduled pass
   * judges the STILL-HELD reload — the same change, baseline unchanged — by that lowered policy
   * only: it rolls. "The lower policy applies from the next change on" is not kept: it applies to
   * this change from the next pass on.
   */
  it('the reload a policy-dropping commit caused stays held in the scheduled passes after its sync', async () => {
    const repo = await gitopsRepo('rpol2next');
    const ns = uniqueName('rp2nx');
    const client = repo.engine.client;
    const files = (reload: Record<string, unknown> | undefined, cfg: string) => ({
      'tidegate.yaml': stringify({
        targets: [
          { name: ns, cluster: 'c', path: 'apps', targetNamespace: ns, wait: false, ...(reload ? { reload } : {}) },
        ],
      }),
      'apps/objects.yaml': yamlDocs([configMap('cfg', { k: cfg }), workload('w')]),
    });
    await repo.commit(files({ mode: 'notify' }, '0'));
    const [first] = await repo.sync(ns);
    expect(first?.error, first?.error).toBeUndefined();
    const g0 = await generationOf(client, ns);
    expect(g0).toBeGreaterThan(0);

    await repo.commit(files(undefined, '1'));
    const [res] = await repo.sync(ns);
    expect(res?.error, res?.error).toBeUndefined();
    // As fixed: the sync holds the reload of its own commit.
    expect(res?.reloadsHeld?.map((h) => h.kind)).toEqual(['notify']);
    expect(await generationOf(client, ns)).toBe(g0);

    // The deployed worker's next scheduled pass; nobody changed anything since.
    const pass = await reloadWithPolicies(client, { namespaces: [ns], strategy: 'annotations' });
    // Property: the change that arrived under notify is never rolled.
    expect(await generationOf(client, ns)).toBe(g0);
    expect(pass.report.rolled).toEqual([]);
  }, 120_000);

  /*
   * ATTACK: as above, with `reload.enabled: false` in the same commit: the sync runs no pass at all
   * (no hold, no cause recorded), records the dropped policy, and the first pass that ever sees the
   * change is the scheduled one, under the lowered policy: it rolls at once.
   */
  it('a commit that drops reload.approve and disables reload for its sync does not roll its own ConfigMap change in the scheduled pass', async () => {
    const repo = await gitopsRepo('rpol2dis');
    const ns = uniqueName('rp2ds');
    const client = repo.engine.client;
    const files = (reload: Record<string, unknown>, cfg: string) => ({
      'tidegate.yaml': stringify({
        targets: [{ name: ns, cluster: 'c', path: 'apps', targetNamespace: ns, wait: false, reload }],
      }),
      'apps/objects.yaml': yamlDocs([configMap('cfg', { k: cfg }), workload('w')]),
    });
    await repo.commit(files({ approve: true }, '0'));
    const [first] = await repo.sync(ns);
    expect(first?.error, first?.error).toBeUndefined();
    const g0 = await generationOf(client, ns);

    await repo.commit(files({ enabled: false }, '1'));
    const [res] = await repo.sync(ns);
    expect(res?.error, res?.error).toBeUndefined();
    expect(await generationOf(client, ns)).toBe(g0);

    const pass = await reloadWithPolicies(client, { namespaces: [ns], strategy: 'annotations' });
    // Property: the change arrived under reload.approve: never rolled without an approval.
    expect(await generationOf(client, ns)).toBe(g0);
    expect(pass.report.rolled).toEqual([]);
  }, 120_000);
});
