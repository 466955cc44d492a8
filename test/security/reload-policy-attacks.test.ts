import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { startGitHub, type TestGitHub } from '../../devenv/index.js';
import type { ReloadPolicySetting } from '../../shared/config/index.js';
import type { KubeObject } from '../../shared/model/index.js';
import { RELOADER as R } from '../../shared/reload/annotations.js';
import { readReloadRegister } from '../../shared/state/index.js';
import { reloadWithPolicies } from '../../shared/sync/index.js';
import { approveReloads, rollback } from '../../shared/usecases/index.js';
import { readTargetState } from '../../shared/state/index.js';
import { testEnv, uniqueName } from '../helpers/env.js';
import { reloadingDeployment } from '../helpers/reload.js';
import { configMap, gitopsRepo, yamlDocs } from '../helpers/engine.js';
import { gatedWorld, tidegateYaml, type TargetDecl } from '../helpers/gates.js';

/**
 * Security review of reload policies (reload.windows, reload.mode notify, reload.approve).
 *
 * Property attacked: for a target whose effective reload policy (its own, under the floor) is
 * notify, approve or has windows, no workload of that target is ever rolled by a reload outside its
 * window, without an approval of exactly that change by someone allowed to approve, or at all under
 * notify; and an approval of one repository's target never releases another repository's reloads.
 *
 * Each test asserts the property, so it FAILS while the way past is open.
 */

const TOKEN = 'ghp_reload_policy_attacks_token';

/** A Deployment that reads the ConfigMap `cfg` (from Git) and the Secret `ext` (from outside Git), with Reloader's auto annotation. */
const workload = (name: string, annotations?: Record<string, string>): KubeObject =>
  reloadingDeployment(
    name,
    { configMaps: ['cfg'], secrets: ['ext'], optionalSecrets: true },
    annotations ? { annotations } : {},
  );

const generationOf = async (client: { get: (...a: any[]) => Promise<KubeObject | undefined> }, ns: string) =>
  (await client.get('apps/v1', 'Deployment', ns, 'w'))?.metadata.generation ?? 0;

/** A target (no gate) whose tidegate.yaml is written per commit; one Deployment `w` reloading on `cfg` and `ext`. */
async function plainWorld() {
  const repo = await gitopsRepo('rpolattack');
  const ns = uniqueName('rpa');
  const client = repo.engine.client;
  const files = (reload: Partial<ReloadPolicySetting> | undefined, cfg: string) => ({
    'tidegate.yaml': stringify({
      targets: [
        { name: ns, cluster: 'c', path: 'apps', targetNamespace: ns, wait: false, ...(reload ? { reload } : {}) },
      ],
    }),
    'apps/objects.yaml': yamlDocs([configMap('cfg', { k: cfg }), workload('w')]),
  });
  const external = (value: string) =>
    client.apply(
      { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'ext', namespace: ns }, stringData: { k: value } },
      { fieldManager: 'external-secrets', force: true },
    );
  await client.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } }, { fieldManager: 'test' });
  await external('0');
  return {
    repo,
    ns,
    client,
    external,
    commit: (reload: Partial<ReloadPolicySetting> | undefined, cfg: string) => repo.commit(files(reload, cfg)),
    sync: async () => {
      const [result] = await repo.sync(ns);
      expect(result?.error, result?.error).toBeUndefined();
      return result;
    },
    generation: () => generationOf(client, ns),
    /** The scheduled pass over the target's namespace, as the worker runs it. */
    pass: () => reloadWithPolicies(client, { namespaces: [ns], strategy: 'annotations' }),
  };
}

describe('reload policy attacks: same-commit policy change', () => {
  /*
   * ATTACK: the target runs with `reload.mode: notify` (or approve / windows). A writer pushes ONE
   * commit that both changes the ConfigMap `cfg` and drops the reload policy from tidegate.yaml.
   *
   * WHY IT WORKS: the sync decides whether the reload may ride in the workload's own write from the
   * tidegate.yaml of the revision it applies (plan-target.ts reloadHoldsNow uses `spec.reload`), and the
   * pass right after the apply is given the same revision's setting (`applying: spec.reload`, which
   * replaces the policy recorded as last applied). So the reload caused by this very commit is judged
   * by the policy the commit itself writes. Unlike a gate ("a commit cannot lower the gate it is judged
   * by"; judged by the strictest of this revision and the last signed-off one), nothing takes the
   * stricter of the policy as last applied and the new one: the workload rolls although the target's
   * policy, when the ConfigMap change arrived, was notify.
   */
  it('a commit that drops reload.mode notify and changes the ConfigMap in the same commit does not roll the workload', async () => {
    const w = await plainWorld();
    await w.commit({ mode: 'notify' }, '0');
    await w.sync();
    const g0 = await w.generation();
    // Sanity: under notify a ConfigMap change is held.
    await w.commit({ mode: 'notify' }, '1');
    const held = await w.sync();
    expect(held?.reloadsHeld?.map((h) => h.kind)).toEqual(['notify']);
    expect(await w.generation()).toBe(g0);

    // The attack: the next ConfigMap change and the policy's removal in one commit.
    await w.commit(undefined, '2');
    const res = await w.sync();
    // Property: the ConfigMap change of this commit is judged by the notify policy in force: never rolled.
    expect(res?.reloads ?? []).toEqual([]);
    expect(await w.generation()).toBe(g0);
  }, 90_000);
});

describe('reload policy attacks: rollback', () => {
  /*
   * ATTACK (needs someone to roll back, or `rollback.onFailedHealth` to do it): the target added
   * `reload.approve: true` at R2. A rollback to R1 (before the policy existed; e.g. to undo a bad image)
   * records R1's reload policy (none) as the target's policy in its state.
   *
   * WHY IT WORKS: SyncRun.recorded() stores `reload: recordedPolicy(spec)` for every sync that runs,
   * rollbacks included, with the spec of the revision rolled back to (usecases/rollback.ts loads the
   * target as that revision declared it). The scheduled pass takes each target's policy from its
   * state, so from then on every out-of-band Secret change of the target's workloads rolls without an
   * approval, although tidegate.yaml at the head of the branch (and as last signed off) says
   * `reload.approve: true`. The gates doc promises the opposite for gates ("rollbacks never lower the
   * gate a later revision is judged by"); the reload policy is lowered.
   */
  it('a rollback to a revision before reload.approve does not let the next out-of-band Secret change roll unapproved', async () => {
    const w = await plainWorld();
    const r1 = await w.commit(undefined, '0');
    await w.sync();
    await w.commit({ approve: true }, '0');
    await w.sync();
    const g0 = await w.generation();
    // Sanity: under approve an out-of-band change is held.
    await w.external('1');
    const before = await w.pass();
    expect(before.report.held?.map((h) => h.kind)).toEqual(['approval']);
    expect(await w.generation()).toBe(g0);

    // Someone rolls back to R1 (an older ConfigMap-identical revision): the pin holds the target there.
    const back = await rollback(w.repo.engine, { repo: w.repo.url, target: w.ns, to: r1, by: 'ops' });
    expect(back.error, back.error).toBeUndefined();
    const g1 = await w.generation();

    // The held Secret change, and the next one, are not approved by anyone.
    await w.external('2');
    const after = await w.pass();
    // Property: still held for an approval (head's tidegate.yaml says reload.approve: true).
    expect(after.report.rolled).toEqual([]);
    expect(await w.generation()).toBe(g1);
  }, 90_000);
});

describe('reload policy attacks: approvals by comment', () => {
  let github: TestGitHub;
  beforeAll(async () => {
    github = await startGitHub({ token: TOKEN, gitRoot: testEnv().git.root });
  });
  afterAll(async () => {
    await github?.stop();
  });

  /*
   * ATTACK: `prod` has `reload.approve: true`. mallory (write access) pushes a change of the
   * ConfigMap `cfg` that prod's Deployment reloads on; the sync applies it and the reload is held for
   * an approval. mallory then comments `/tidegate approve reload <prod>` on any pull request: the
   * reload she caused is released by her own approval.
   *
   * WHY IT WORKS: approveReloadsFromComment (usecases/approve.ts) only asks `refusal()` whether the
   * commenter may approve the target at all (approvers, else write access). Unlike the revision
   * approval (commentRefusal), it never looks at who made the change the approval releases, so the
   * rule "nobody approves their own change" is not applied to reload approvals: the person who wrote
   * the ConfigMap change is the one approving its rollout.
   */
  it('the pusher of a ConfigMap change cannot release its held reload with her own /tidegate approve reload comment', async () => {
    const w = await gatedWorld(github, TOKEN, { prefix: 'rpol-self', writers: ['alice', 'mallory'] });
    const prod: TargetDecl = {
      name: uniqueName('prod'),
      dir: 'prod',
      namespace: uniqueName('prod'),
      extra: { reload: { approve: true } },
    };
    const objects = (v: string) => yamlDocs([configMap('cfg', { k: v }), workload('w')]);
    await w.push('alice', { 'tidegate.yaml': tidegateYaml([prod]), 'apps/prod/objects.yaml': objects('0') });
    await w.deliver();
    expect(w.failures).toEqual([]);
    const g0 = await generationOf(w.client, prod.namespace);
    expect(g0).toBeGreaterThan(0);

    // mallory's change: applied, its reload held for an approval.
    await w.push('mallory', { 'apps/prod/objects.yaml': objects('mallory') });
    await w.deliver();
    expect(await w.data(prod.namespace, 'cfg')).toEqual({ k: 'mallory' });
    const register = await readReloadRegister(w.client);
    expect(register.holds.filter((h) => h.target === prod.name).map((h) => h.kind)).toEqual(['approval']);
    expect(await generationOf(w.client, prod.namespace)).toBe(g0);

    // mallory approves her own reload with a comment on a pull request of hers.
    const { pr } = await w.propose('mallory', { 'README.md': 'hello\n' });
    const out = await w.comment('mallory', pr, `/tidegate approve reload ${prod.name}`);
    // Property: nothing rolled, and the approval refused (she made the change it releases).
    expect(await generationOf(w.client, prod.namespace)).toBe(g0);
    expect(out).toEqual([expect.objectContaining({ kind: 'approved', approved: [] })]);
  }, 120_000);
});

describe('reload policy attacks: held reloads hidden from the status', () => {
  /*
   * ATTACK: a writer of ANY repository on the cluster (here a second repository) gives one target
   * `reload.mode: notify` and 50 Deployments, each with a named reload
   * (`configmap.reloader.stakater.com/reload: "c[0-9]+-x+"`) matching 100 ConfigMaps with 245-character
   * names, then changes all 100 ConfigMaps in one commit. Every Deployment is held (notify) with 100
   * sources: 50 holds × 100 × ~255 bytes ≈ 1.3 MB of register.
   *
   * WHY IT WORKS: every pass writes all holds it found (with their full `sources` lists) into ONE
   * ConfigMap, tidegate-system/tidegate-reloads. HOLDS_LIMIT caps the number of holds (2000), not
   * their size, so the register no longer fits the apiserver's 1 MiB ConfigMap limit: every later
   * pass that sees the attacker's namespace fails writing it (reloadWithPolicies throws after its
   * rolls, so the scheduled pass's notifications of fresh holds are never sent either). Another
   * repository's target, whose out-of-band Secret change is held for an approval, is then never
   * recorded: `tidegate status` and the status page show nothing held for it, and
   * `tidegate approve <target> --reload` / `/tidegate approve reload` find nothing to approve.
   */
  it("another repository's flood of held reloads does not hide (or make unapprovable) a victim target's held reload", async () => {
    // The victim: reload.approve, one Deployment, synced (hashes recorded).
    const victim = await plainWorld();
    await victim.commit({ approve: true }, '0');
    await victim.sync();

    // The attacker's repository and target.
    const repo = await gitopsRepo('rpolflood');
    const ns = uniqueName('rpflood');
    const client = repo.engine.client;
    const long = 'x'.repeat(240);
    const cms = (v: string) => Array.from({ length: 100 }, (_, i) => configMap(`c${i}-${long}`, { k: v }));
    const deployments = Array.from({ length: 50 }, (_, i) => ({
      ...workload(`d${i}`, { [R.configmapReload]: 'c[0-9]+-x+' }),
    }));
    const files = (v: string) => ({
      'tidegate.yaml': stringify({
        targets: [
          { name: ns, cluster: 'c', path: 'apps', targetNamespace: ns, wait: false, reload: { mode: 'notify' } },
        ],
      }),
      'apps/objects.yaml': yamlDocs([...cms(v), ...deployments]),
    });
    await repo.commit(files('0'));
    const [first] = await repo.sync(ns);
    expect(first?.error, first?.error).toBeUndefined();
    await repo.commit(files('1'));
    await repo.sync(ns); // its own pass after the apply may fail: the attacker does not care

    // The victim's Secret changes out of band; the scheduled pass (reload.namespaces covering both) runs.
    await victim.external('1');
    const outcome = await reloadWithPolicies(client, {
      namespaces: [victim.ns, ns],
      strategy: 'annotations',
    }).catch((err: unknown) => err);
    // Property: the pass records the victim's hold, so that the status shows it and it can be approved.
    expect(outcome instanceof Error ? outcome.message : 'pass completed').toBe('pass completed');
    const holds = (await readReloadRegister(client)).holds.filter((h) => h.workload.namespace === victim.ns);
    expect(holds.map((h) => h.kind)).toEqual(['approval']);
  }, 300_000);
});

describe('reload policy attacks: another repository approves', () => {
  /*
   * ATTACK: repository A's target X (reload.approve: true, deletionPolicy: orphan) is removed from A's
   * tidegate.yaml: its objects are kept (orphaned, still labelled as X's), its state is kept as an
   * archive marked removed, and its reload policy keeps governing those workloads (the pass takes
   * X's policy from the archived state: their reloads are still held for an approval). A writer of
   * repository B then declares a target of the same name X in B's tidegate.yaml (nothing needs to be
   * synced) and approves "its" reloads: `tidegate approve X --reload --repo B`, or the comment
   * `/tidegate approve reload X` on a pull request of B.
   *
   * WHY IT WORKED: releaseReloads guards with refuseOtherOwner(state, repo), which returns early for a
   * state marked `removed`; the held reloads were looked up by target NAME alone (the workload's
   * tidegate.dev/target label), and approvals are keyed by `target/digest`, with no repository. So
   * repository B's approval released reloads of workloads in repository A's namespace.
   *
   * NOW: a workload follows a target's policy only while that target's inventory lists it; a
   * removed target's orphans follow the deploy-time floor alone, and nothing of them is held under
   * the name for another repository to release.
   */
  it("repository B declaring the name of A's removed target cannot release the reloads A's policy holds", async () => {
    const a = await plainWorld();
    const other = uniqueName('rpa-keep');
    const aConfig = (withX: boolean) =>
      stringify({
        targets: [
          ...(withX
            ? [
                {
                  name: a.ns,
                  cluster: 'c',
                  path: 'apps',
                  targetNamespace: a.ns,
                  wait: false,
                  deletionPolicy: 'orphan',
                  reload: { approve: true },
                },
              ]
            : []),
          { name: other, cluster: 'c', path: 'other', targetNamespace: other, wait: false },
        ],
      });
    await a.repo.commit({
      'tidegate.yaml': aConfig(true),
      'apps/objects.yaml': yamlDocs([configMap('cfg', { k: '0' }), workload('w')]),
      'other/cm.yaml': yamlDocs(configMap('keep', { k: '0' })),
    });
    const synced = await a.repo.sync();
    expect(synced.map((r) => r.error).filter(Boolean)).toEqual([]);
    // A drops X (orphaning its objects).
    await a.repo.commit({ 'tidegate.yaml': aConfig(false) });
    await a.repo.sync();
    expect((await readTargetState(a.client, a.ns)).removed).toBeDefined();
    const g0 = await a.generation();
    expect(g0).toBeGreaterThan(0);

    // Repository B declares a target of the same name (into a namespace of its own), syncs it (the
    // name's state is now B's) and approves "its" reloads.
    const b = await gitopsRepo('rpolother');
    await b.commit({
      'tidegate.yaml': stringify({
        targets: [
          {
            name: a.ns,
            cluster: 'c',
            path: 'apps',
            targetNamespace: uniqueName('rpb'),
            wait: false,
            reload: { approve: true },
          },
        ],
      }),
      'apps/cm.yaml': yamlDocs(configMap('b', { k: '0' })),
    });
    const [bSynced] = await b.sync(a.ns);
    expect(bSynced?.error, bSynced?.error).toBeUndefined();
    // A's orphaned workload still carries the name X in its label, but X's inventory (now B's) does
    // not list it: its reloads are no reloads of X, so nothing of it is held under X for B to release.
    await a.external('1');
    const pass = await a.pass();
    expect(pass.report.held?.filter((h) => h.target === a.ns) ?? []).toEqual([]);
    const released = await approveReloads(b.engine, { repo: b.url, target: a.ns, by: 'mallory' });
    expect(released.approved).toEqual([]);
    // What rolled A's workload is the pass under the floor (none here: a workload no target lists rolls),
    // never B's approval: B's approval found nothing of A to release.
    expect(released.report).toBeUndefined();
    expect(g0).toBeGreaterThan(0);
  }, 120_000);
});
