import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { startGitHub, type TestGitHub } from '../../devenv/index.js';
import { RELOADER as R } from '../../shared/reload/annotations.js';
import { RELOAD_REVISION_ANNOTATION } from '../../shared/reload/index.js';
import { readReloadRegister } from '../../shared/state/index.js';
import { testEnv, uniqueName } from '../helpers/env.js';
import { configMap, gitopsRepo, yamlDocs } from '../helpers/engine.js';
import { gatedWorld, tidegateYaml, type TargetDecl } from '../helpers/gates.js';
import { reloadingDeployment, templateOf } from '../helpers/reload.js';

/**
 * Security review of reload policies, fourth round (see reload-policy-attacks.test.ts, -2 and -3
 * for the first three).
 *
 * Property attacked: for a target whose effective reload policy is notify, approve or has
 * windows, no workload of that target is rolled by a reload outside its window, without an
 * approval of exactly that change by someone allowed to approve and not involved in commits that
 * can have caused it, or at all under notify.
 *
 * Each test asserts the property, so it FAILS while the way past is open.
 */

const TOKEN = 'ghp_reload_policy_attacks_4_token';

describe('reload policy attacks 4: the commit range of a comment approval truncated', () => {
  let github: TestGitHub;
  beforeAll(async () => {
    github = await startGitHub({ token: TOKEN, gitRoot: testEnv().git.root });
  });
  afterAll(async () => {
    await github?.stop();
  });

  /*
   * ATTACK: `prod` has `reload.approve: true`; its Deployment `w` reloads on `cfg`. mallory pushes
   * a change of `cfg` (applied, its reload held for an approval, as it should be). Then she pushes
   * 500 EMPTY commits onto main (one push, `git commit --allow-empty`; no file changes, nothing to
   * review, the sync is a no-op) and comments `/tidegate approve reload <prod>`.
   *
   * WHY IT WORKS: ownReloadCause asks judgeCommits for the commits since the revision recorded on
   * `w` (`exclude: [from]`, up to the head). commitRange walks at most RANGE_LIMIT (500) commits
   * from the head and then stops, marking the range `truncated` — but ownReloadCause never looks
   * at `truncated` (or `forward`), only at the commits it got. The 500 newest are mallory's empty
   * commits: they touch no path, so judgeCommits deems them not relevant and reports nobody as
   * involved in them. Her ConfigMap commit, the 501st, is never seen: she is "not involved" and
   * releases the reload of her own change. (The filler need not be hers: any 500 commits by others
   * since the change — a busy repository while the reload waits — hide it the same way.)
   */
  it('a commenter whose ConfigMap change lies beyond 500 newer commits cannot approve its reload', async () => {
    const w = await gatedWorld(github, TOKEN, { prefix: 'rpol4-trunc', writers: ['alice', 'mallory'] });
    const ns = uniqueName('rp4tr');
    const prod: TargetDecl = { name: `p-${ns}`, dir: 'prod', namespace: ns, extra: { reload: { approve: true } } };
    const objects = (v: string) =>
      yamlDocs([configMap('cfg', { k: v }), reloadingDeployment('w', { configMaps: ['cfg'] })]);
    await w.push('alice', { 'tidegate.yaml': tidegateYaml([prod]), 'apps/prod/objects.yaml': objects('0') });
    await w.deliver();
    expect(w.failures).toEqual([]);
    const g0 = await templateOf(w.client, ns);
    expect(g0).not.toBe('null');

    // mallory's change: applied, its reload held for an approval (as fixed).
    await w.push('mallory', { 'apps/prod/objects.yaml': objects('mallory') });
    await w.deliver();
    expect(w.failures).toEqual([]);
    expect(await w.data(ns, 'cfg')).toEqual({ k: 'mallory' });
    const holds = (await readReloadRegister(w.client)).holds.filter((h) => h.target === prod.name);
    expect(holds.map((h) => h.kind)).toEqual(['approval']);
    expect(await templateOf(w.client, ns)).toBe(g0);

    // Sanity: right now her own approval is refused.
    const first = await w.propose('mallory', { 'README.md': 'hello\n' });
    const refused = await w.comment('mallory', first.pr, `/tidegate approve reload ${prod.name}`);
    expect(refused).toEqual([expect.objectContaining({ kind: 'approved', approved: [] })]);

    // 500 empty commits on top, in one push.
    const ws = await w.as('mallory');
    await ws.git('fetch', '--quiet', 'origin', 'main');
    await ws.git('checkout', '--quiet', '-B', 'main', 'FETCH_HEAD');
    for (let i = 0; i < 500; i++) await ws.git('commit', '--quiet', '--allow-empty', '-m', `nothing ${i}`);
    await ws.git('push', '--quiet', 'origin', 'HEAD:refs/heads/main');
    await w.deliver();
    expect(w.failures).toEqual([]);
    expect(await templateOf(w.client, ns)).toBe(g0);

    const out = await w.comment('mallory', first.pr, `/tidegate approve reload ${prod.name}`);
    // Property: nothing rolled, and the approval refused (she pushed the change it releases).
    expect(await templateOf(w.client, ns)).toBe(g0);
    expect(out).toEqual([expect.objectContaining({ kind: 'approved', approved: [] })]);
  }, 600_000);
});

describe('reload policy attacks 4: the reload revision written from Git', () => {
  /*
   * ATTACK: the target runs with `reload.mode: notify`; `w` reloads (auto) on `cfg`.
   *   C1: drops notify and changes `cfg` (held under notify, as fixed: the target's state keeps
   *       reloadBefore = {notify, C1}, and w's recorded revision is C0, older than C1).
   *   C2: removes Reloader's annotation from `w` and puts `tidegate.dev/reload-revision: <C1>` in
   *       w's metadata in Git (workload metadata only: nothing rolls).
   *   C3: puts Reloader's annotation back.
   *
   * WHY IT WORKS: the only thing that keeps a workload under the policy it had before a lowering
   * is the revision on the workload (policyBefore: "rolled" at or after the revision that changed
   * the policy → the old policy no longer counts). That annotation is an ordinary field of the
   * workload the sync applies with force from Git. The embed overwrites it with the live value
   * only for workloads it handles; in C2 `w` has no Reloader annotation, so the embed skips it
   * and the sync's apply writes C1 from Git. In C3 the embed's holds() asks policyBefore, which
   * finds w "rolled at C1" (same history time as the change) and drops the notify policy; the
   * embed never consults the register's per-digest snapshot (rule 3), so the change of `cfg`
   * made in C1 — under notify — is carried into w's own write and rolls. (`reload.enabled: false`
   * in C2 instead of dropping the annotation skips the embed the same way.)
   */
  it('a Git-written reload-revision annotation does not release a change that arrived under notify', async () => {
    const repo = await gitopsRepo('rpol4forge');
    const ns = uniqueName('rp4fg');
    const client = repo.engine.client;
    const files = (
      reload: Record<string, unknown> | undefined,
      v: string,
      annotations: Record<string, string> = { [R.auto]: 'true' },
    ) => ({
      'tidegate.yaml': stringify({
        targets: [
          { name: ns, cluster: 'c', path: 'apps', targetNamespace: ns, wait: false, ...(reload ? { reload } : {}) },
        ],
      }),
      'apps/objects.yaml': yamlDocs([
        configMap('cfg', { k: v }),
        reloadingDeployment('w', { configMaps: ['cfg'] }, { annotations }),
      ]),
    });
    await repo.commit(files({ mode: 'notify' }, '0'));
    const [first] = await repo.sync(ns);
    expect(first?.error, first?.error).toBeUndefined();
    const g0 = await templateOf(client, ns);
    expect(g0).not.toBe('null');

    // C1: notify dropped, cfg changed: held under notify (as fixed).
    const c1 = await repo.commit(files(undefined, '1'));
    const [dropped] = await repo.sync(ns);
    expect(dropped?.error, dropped?.error).toBeUndefined();
    expect(dropped?.reloadsHeld?.map((h) => h.kind)).toEqual(['notify']);
    expect(await templateOf(client, ns)).toBe(g0);

    // C2: the Reloader annotation dropped, the reload revision written from Git.
    await repo.commit(files(undefined, '1', { [RELOAD_REVISION_ANNOTATION]: c1 }));
    const [forged] = await repo.sync(ns);
    expect(forged?.error, forged?.error).toBeUndefined();
    expect(await templateOf(client, ns)).toBe(g0);
    // Git's value is not taken: what the reloader records on a workload never comes from a manifest.
    const live = await client.get('apps/v1', 'Deployment', ns, 'w');
    expect(live?.metadata.annotations?.[RELOAD_REVISION_ANNOTATION]).not.toBe(c1);

    // C3: the Reloader annotation back.
    await repo.commit(files(undefined, '1', { [R.auto]: 'true', [RELOAD_REVISION_ANNOTATION]: c1 }));
    const [readded] = await repo.sync(ns);
    expect(readded?.error, readded?.error).toBeUndefined();
    // Property: cfg changed under notify (in C1) and w has not rolled since: never rolled.
    expect(readded?.reloads ?? []).toEqual([]);
    expect(await templateOf(client, ns)).toBe(g0);
  }, 180_000);
});
