import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { startGitHub, type TestGitHub } from '../../devenv/index.js';
import { readTargetState } from '../../shared/state/index.js';
import { approve, handleMessage, type EngineContext, type Queue } from '../../shared/usecases/index.js';
import { GitHub } from '../../shared/github/index.js';
import type { QueueMessage, SyncResult } from '../../shared/model/index.js';
import { cli } from '../helpers/cli.js';
import { prComment } from '../helpers/github.js';
import { testEnv, uniqueName } from '../helpers/env.js';
import { configMap, gitopsRepo, yamlDocs } from '../helpers/engine.js';
import { reloadingDeployment } from '../helpers/reload.js';

const OWNER = 'acme';
const TOKEN = 'ghp_gates_test_token';
const noQueue: Queue = { send: () => Promise.resolve() };

/**
 * Sign-off gates against the real apiserver, with GitHub's behaviour served from its OpenAPI
 * description: every way around a gate is held (and says why); the right sign-off applies.
 */
describe('sign-off gates', () => {
  let github: TestGitHub;
  beforeAll(async () => {
    github = await startGitHub({ token: TOKEN, gitRoot: testEnv().git.root });
  });
  afterAll(async () => {
    expect(github.violations).toEqual([]);
    await github?.stop();
  });

  async function gatedRepo(gate: Record<string, unknown>, extra: Partial<EngineContext> = {}) {
    const ns = uniqueName('gate');
    const repo = await gitopsRepo('gate', { owner: OWNER });
    const ctx: EngineContext = {
      ...repo.engine,
      github: () => new GitHub({ apiUrl: github.url, token: TOKEN }),
      ...extra,
    };
    const config = (g: Record<string, unknown>) =>
      stringify({ targets: [{ name: ns, cluster: 'c', path: 'apps', targetNamespace: ns, wait: false, gate: g }] });
    const value = async () =>
      (await repo.engine.client.get('v1', 'ConfigMap', ns, 'app'))?.['data'] as Record<string, string> | undefined;
    const sync = async (reason: 'push' | 'poll' = 'push'): Promise<SyncResult> => {
      const sha = (await repo.ws.git('ls-remote', 'origin', 'refs/heads/main')).split('\t')[0] ?? '';
      const out = await handleMessage(
        ctx,
        { type: 'sync', repo: repo.url, target: ns, revision: { ref: 'refs/heads/main', sha }, reason },
        noQueue,
      );
      if (out.kind !== 'synced') throw new Error(JSON.stringify(out));
      return out.result;
    };
    let branches = 0;
    /** alice proposes a change through a pull request (a branch of its own). */
    const propose = async (files: Record<string, string>, author = 'alice') => {
      const branch = `change-${++branches}`;
      await repo.ws.git('fetch', '--quiet', 'origin', 'main');
      await repo.ws.git('checkout', '--quiet', '-B', branch, 'FETCH_HEAD');
      await repo.ws.commit(files, `change ${branches}`, branch);
      return {
        branch,
        pr: (await github.openPullRequest(OWNER, repo.name, { head: branch, base: 'main', author })).number,
      };
    };
    return { ns, repo, ctx, config, value, sync, propose };
  }

  it('approvals: every commit since the last signed-off revision needs its approvals; self-approval, an approval of an earlier push, an approver without write access and a commit lowering the gate do not count; approvals of the whole change release it', async () => {
    const g = await gatedRepo({ approvals: 2 });
    for (const user of ['bob', 'carol']) github.grant(OWNER, g.repo.name, user, 'write');
    github.grant(OWNER, g.repo.name, 'dave', 'read');
    github.grant(OWNER, g.repo.name, 'alice', 'admin');

    // Pushed straight onto main (or force-pushed there): no pull request brought it.
    const first = await g.repo.commit({
      'tidegate.yaml': g.config({ approvals: 2 }),
      'apps/app.yaml': yamlDocs(configMap('app', { v: '0' })),
    });
    let res = await g.sync();
    expect(res).toMatchObject({
      outcome: 'held',
      heldFor: expect.stringMatching(
        /^1 change\(s\) since the start not signed off \(2 approval\(s\) needed, tidegate\.yaml\): [0-9a-f]{12} by Test Author: pushed straight to main, not through a merged pull request; 0 of 2 approval\(s\); approve with /,
      ),
    });
    expect(res.changeSet.changes.find((c) => c.ref.kind === 'ConfigMap')?.action).toBe('created'); // the plan
    expect(await g.value()).toBeUndefined();
    expect(github.statuses(OWNER, g.repo.name, res.revision.sha).at(-1)).toMatchObject({
      state: 'pending',
      context: `tidegate/${g.ns}`,
      description: expect.stringMatching(/^held: 1 change\(s\) since the start not signed off/),
    });
    // Signed off on the command line (trusted as its cluster credentials), by two people: applied.
    const cliApprove = (by: string) =>
      approve(g.ctx, { repo: g.repo.url, target: g.ns, revision: first, by, via: 'cli' });
    expect((await cliApprove('ops'))[0].outcome).toBe('held');
    expect((await cliApprove('sre'))[0].outcome).toBe('applied');

    // The author approves her own change, carol approves it: one approval counts.
    const v1 = await g.propose({ 'apps/app.yaml': yamlDocs(configMap('app', { v: '1' })) });
    await github.review(OWNER, g.repo.name, v1.pr, { user: 'alice', state: 'APPROVED' });
    await github.review(OWNER, g.repo.name, v1.pr, { user: 'carol', state: 'APPROVED' });
    await github.merge(OWNER, g.repo.name, v1.pr, 'carol');
    res = await g.sync();
    expect(res.error).toBeUndefined();
    expect(res.outcome).toBe('held');
    expect(res.heldFor).toContain(`#${v1.pr}: 1 of 2 approval(s) (carol); not counted: alice (opened it)`);

    // bob approves, then alice pushes again; dave (read access) approves the last push.
    const v2 = await g.propose({ 'apps/app.yaml': yamlDocs(configMap('app', { v: '2' })) });
    await github.review(OWNER, g.repo.name, v2.pr, { user: 'bob', state: 'APPROVED' });
    const late = await g.repo.ws.commit(
      { 'apps/app.yaml': yamlDocs(configMap('app', { v: '2b' })) },
      'one more push',
      v2.branch,
    );
    await github.review(OWNER, g.repo.name, v2.pr, { user: 'dave', state: 'APPROVED' });
    await github.merge(OWNER, g.repo.name, v2.pr, 'carol');
    res = await g.sync();
    // bob's approval covers the commit he saw, not the one pushed after it; v1's commits are still short of approvals.
    expect(res.heldFor).toContain(
      `${late.slice(0, 12)} by Test Author: #${v2.pr}: 0 of 2 approval(s); not counted: dave (no write access)`,
    );
    expect(res.heldFor).toContain(`#${v1.pr}: 1 of 2 approval(s) (carol)`);
    expect(await g.value()).toEqual({ v: '0' });

    // Two valid approvals of v3: its own commits are signed off, the earlier ones still are not.
    const v3 = await g.propose({ 'apps/app.yaml': yamlDocs(configMap('app', { v: '3' })) });
    await github.review(OWNER, g.repo.name, v3.pr, { user: 'bob', state: 'APPROVED' });
    await github.review(OWNER, g.repo.name, v3.pr, { user: 'carol', state: 'APPROVED' });
    const merged = await github.merge(OWNER, g.repo.name, v3.pr, 'carol');
    res = await g.sync();
    expect(res).toMatchObject({ outcome: 'held', revision: { sha: merged } });
    expect(res.heldFor).not.toContain(`#${v3.pr}:`);
    expect(await g.value()).toEqual({ v: '0' });

    // bob and carol made none of it: approving the head, each signs off every commit up to it.
    const comment = (user: string, id: number) =>
      prComment(github, { owner: OWNER, name: g.repo.name, url: g.repo.url }, v3.pr, {
        user,
        body: `/tidegate approve ${merged.slice(0, 12)} ${g.ns}`,
        id,
      });
    for (const [user, id] of [
      ['bob', 1],
      ['carol', 2],
    ] as const)
      expect(await handleMessage(g.ctx, comment(user, id).messages[0]!, noQueue)).toMatchObject({ approved: [g.ns] });
    res = await g.sync();
    expect(res).toMatchObject({ outcome: 'applied', revision: { sha: merged } });
    expect(res.approvals?.map((a) => [a.by, a.via]).sort()).toEqual([
      ['bob', 'comment'],
      ['bob', 'review'],
      ['carol', 'comment'],
      ['carol', 'review'],
    ]);
    expect(await g.value()).toEqual({ v: '3' });
    expect(github.statuses(OWNER, g.repo.name, merged).at(-1)).toMatchObject({
      state: 'success',
      description: 'applied: 0 created, 1 configured, 0 deleted',
    });
    const state = await readTargetState(g.repo.engine.client, g.ns);
    expect(state.signedOff?.revision.sha).toBe(merged);
    expect(state.approvals).toBeUndefined(); // used up
    expect(state.history.filter((h) => h.outcome === 'held')).toHaveLength(5); // the push, one CLI approval of two, v1, v2, v3

    // A reviewed-by-nobody commit that lowers the gate to 0 is judged by the gate it lowers.
    const lower = await g.propose({
      'tidegate.yaml': g.config({ approvals: 0 }),
      'apps/app.yaml': yamlDocs(configMap('app', { v: 'sneaky' })),
    });
    await github.merge(OWNER, g.repo.name, lower.pr);
    res = await g.sync();
    expect(res.heldFor).toMatch(/\(2 approval\(s\) needed, tidegate\.yaml at the last signed-off [0-9a-f]{12}\)/);
    expect(await g.value()).toEqual({ v: '3' });

    // A force-push of an unreviewed commit on top of the reviewed merge.
    await g.repo.ws.git('fetch', '--quiet', 'origin', 'main');
    await g.repo.ws.git('checkout', '--quiet', '-B', 'rewrite', merged);
    await g.repo.ws.git('commit', '--quiet', '--allow-empty', '-m', 'unreviewed');
    await g.repo.ws.git('push', '--quiet', '--force', 'origin', 'HEAD:refs/heads/main');
    res = await g.sync();
    // An empty commit changes nothing the target renders: nothing to sign off, nothing changes.
    expect(res.outcome).toBe('unchanged');
    expect(await g.value()).toEqual({ v: '3' });
  });

  it('manual: held until `tidegate approve`; the approval is recorded (who, when, which revision)', async () => {
    const g = await gatedRepo({ manual: true });
    const sha = await g.repo.commit({
      'tidegate.yaml': g.config({ manual: true }),
      'apps/app.yaml': yamlDocs(configMap('app', { v: '1' })),
    });
    const held = await g.sync();
    expect(held.heldFor).toBe(
      `1 change(s) since the start not signed off (a manual approval needed, tidegate.yaml): ${sha.slice(0, 12)} by Test Author: no manual approval; approve with \`tidegate approve ${g.ns} ${sha.slice(0, 12)}\` or a \`/tidegate approve ${sha.slice(0, 12)} ${g.ns}\` comment by someone who made none of them`,
    );
    expect(await g.value()).toBeUndefined();
    expect((await g.sync()).outcome).toBe('held'); // asked again: still held, not recorded twice
    expect((await readTargetState(g.repo.engine.client, g.ns)).history).toHaveLength(1);
    const statuses = github.statuses(OWNER, g.repo.name, sha).length;
    expect(statuses).toBeGreaterThan(0);
    expect((await g.sync('poll')).outcome).toBe('held'); // the poll's re-check sets no further status
    expect(github.statuses(OWNER, g.repo.name, sha)).toHaveLength(statuses);

    await expect(
      approve(g.ctx, { repo: g.repo.url, target: g.ns, revision: 'deadbee', by: 'ops', via: 'cli' }),
    ).rejects.toThrow(
      'revision deadbee is neither a commit of the pending change, the head of the branch, nor in the history',
    );
    const { kube } = testEnv();
    const out = await cli(
      'approve',
      g.ns,
      sha.slice(0, 10),
      '--repo',
      g.repo.url,
      '--kubeconfig',
      kube.kubeconfigPath,
      '--context',
      'tidegate-test',
    );
    expect(out.code, out.err).toBe(0);
    expect(out.out).toMatch(/: applied .*\n[\s\S]*approved by \S+ \(cli\)/);
    expect(await g.value()).toEqual({ v: '1' });
    const state = await readTargetState(g.repo.engine.client, g.ns);
    expect(state.history.at(-1)).toMatchObject({
      outcome: 'applied',
      revision: { sha },
      approvals: [{ sha, via: 'cli', at: expect.stringMatching(/^\d{4}-/) }],
    });
    expect(state.approvals).toBeUndefined(); // used up

    // The next revision needs its own approval.
    await g.repo.commit({ 'apps/app.yaml': yamlDocs(configMap('app', { v: '2' })) });
    expect((await g.sync()).outcome).toBe('held');
  });

  it('a /tidegate approve comment: refused from an outsider (nothing recorded), accepted from an approver; the queued sync applies', async () => {
    const gate = { manual: true, approvers: { users: [], teams: ['acme/sre'] } };
    const g = await gatedRepo(gate);
    github.addTeamMember('acme', 'sre', 'erin');
    // Nothing applied yet: an approver also needs write access (the revision's own list cannot widen who approves).
    github.grant(OWNER, g.repo.name, 'erin', 'write');
    github.grant(OWNER, g.repo.name, 'mallory', 'read');
    await g.repo.commit({ 'tidegate.yaml': g.config(gate), 'apps/app.yaml': yamlDocs(configMap('app', { v: '0' })) });
    const { pr } = await g.propose({ 'apps/app.yaml': yamlDocs(configMap('app', { v: '1' })) });
    const merged = await github.merge(OWNER, g.repo.name, pr);
    expect((await g.sync()).outcome).toBe('held');

    const comment = (user: string, body: string, id: number) =>
      prComment(github, { owner: OWNER, name: g.repo.name, url: g.repo.url }, pr, { user, body, id });
    const queued: QueueMessage[] = [];
    const queue: Queue = { send: (m) => Promise.resolve(void queued.push(...m)) };

    const outsider = comment('mallory', '/tidegate approve', 1);
    expect(outsider.response.status).toBe(202);
    const refused = await handleMessage(g.ctx, outsider.messages[0]!, queue);
    expect(refused).toEqual({ kind: 'approved', approved: [], refused: [`${g.ns}: mallory may not approve it`] });
    expect(queued).toEqual([]);
    expect((await readTargetState(g.repo.engine.client, g.ns)).approvals).toBeUndefined();
    expect(comment('erin', 'looks good to me', 2).messages).toEqual([]); // not a command

    const approver = comment('erin', `/tidegate approve ${g.ns}`, 3);
    expect(await handleMessage(g.ctx, approver.messages[0]!, queue)).toEqual({
      kind: 'approved',
      approved: [g.ns],
      refused: [],
    });
    expect(queued).toMatchObject([{ type: 'sync', target: g.ns, revision: { sha: merged } }]);
    const applied = await handleMessage(g.ctx, queued[0]!, noQueue);
    expect(applied).toMatchObject({
      kind: 'synced',
      result: { outcome: 'applied', approvals: [{ by: 'erin', via: 'comment', sha: merged }] },
    });
    expect(await g.value()).toEqual({ v: '1' });
  });

  it('a /tidegate approve reload comment: refused from an outsider (nothing approved), accepted from an approver: the held reload rolls', async () => {
    const g = await gatedRepo({});
    github.grant(OWNER, g.repo.name, 'erin', 'write');
    github.grant(OWNER, g.repo.name, 'mallory', 'read');
    const client = g.repo.engine.client;
    const secret = (v: string) =>
      client.apply(
        { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'ext', namespace: g.ns }, stringData: { k: v } },
        { fieldManager: 'external-secrets', force: true },
      );
    await client.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: g.ns } }, { fieldManager: 'test' });
    await secret('0');
    const workload = reloadingDeployment('w', { secrets: ['ext'] });
    await g.repo.commit({
      'tidegate.yaml': stringify({
        targets: [
          { name: g.ns, cluster: 'c', path: 'apps', targetNamespace: g.ns, wait: false, reload: { approve: true } },
        ],
      }),
      'apps/app.yaml': yamlDocs([configMap('app', { v: '0' }), workload]),
    });
    expect((await g.sync()).outcome).toBe('applied');
    const generation = async () => (await client.get('apps/v1', 'Deployment', g.ns, 'w'))?.metadata.generation;
    const g0 = await generation();
    await secret('1');
    // The scheduled pass, kept to this test's namespace (the apiserver is shared).
    g.ctx.reload = { strategy: 'annotations', scope: { namespaces: [g.ns] } };
    const pass = await handleMessage(g.ctx, { type: 'reload', cluster: 'c', bucket: 1 }, noQueue);
    expect(pass).toMatchObject({ kind: 'reloaded' });
    expect(await generation()).toBe(g0);

    const { pr } = await g.propose({ 'README.md': 'anything' });
    const comment = (user: string, body: string, id: number) =>
      prComment(github, { owner: OWNER, name: g.repo.name, url: g.repo.url }, pr, { user, body, id });
    const outsider = comment('mallory', `/tidegate approve reload ${g.ns}`, 11);
    expect(outsider.messages).toMatchObject([{ type: 'approve', reload: true, targets: [g.ns] }]);
    expect(await handleMessage(g.ctx, outsider.messages[0]!, noQueue)).toEqual({
      kind: 'approved',
      approved: [],
      refused: [`${g.ns}: mallory may not approve it`],
    });
    expect(await generation()).toBe(g0);

    const approver = comment('erin', '/tidegate approve reload', 12);
    expect(await handleMessage(g.ctx, approver.messages[0]!, noQueue)).toEqual({
      kind: 'approved',
      approved: [g.ns],
      refused: [],
    });
    expect(await generation()).toBe((g0 ?? 0) + 1);
    // Nothing is held any more: a second approval releases nothing.
    expect(
      await handleMessage(g.ctx, comment('erin', `/tidegate approve reload ${g.ns}`, 13).messages[0]!, noQueue),
    ).toEqual({
      kind: 'approved',
      approved: [],
      refused: [`${g.ns}: no reload of it waits for an approval`],
    });
  });

  it('change windows: a push inside a deny window is held (deny wins over allow), outside an allow window too; inside, it applies', async () => {
    let now = new Date('2026-11-28T12:00:00Z'); // Saturday, inside "Friday 18:00 Berlin + 62h"
    const windows = [
      { deny: '0 18 * * FRI', duration: '62h', timeZone: 'Europe/Berlin' },
      { allow: '0 9 * * MON-FRI', duration: '10h', timeZone: 'Europe/Berlin' },
      { allow: '0 12 * * SAT', duration: '1h', timeZone: 'Europe/Berlin' }, // allowed, but the deny window wins
    ];
    const g = await gatedRepo({ windows }, { now: () => now });
    await g.repo.commit({
      'tidegate.yaml': g.config({ windows }),
      'apps/app.yaml': yamlDocs(configMap('app', { v: '1' })),
    });
    expect((await g.sync()).heldFor).toBe(
      'inside deny window "0 18 * * FRI" for 62h (Europe/Berlin) of tidegate.yaml until 2026-11-30T07:00:00.000Z',
    );
    now = new Date('2026-12-01T20:30:00Z'); // Tuesday 21:30 Berlin: after the allow window closed
    expect((await g.sync()).heldFor).toBe(
      'outside the allow windows of tidegate.yaml; the next opens 2026-12-02T08:00:00.000Z',
    );
    expect(await g.value()).toBeUndefined();
    now = new Date('2026-12-02T09:15:00Z'); // Wednesday 10:15 Berlin
    expect((await g.sync()).outcome).toBe('applied');
    expect(await g.value()).toEqual({ v: '1' });
  });

  it('the cluster floor (deploy-time settings) holds what tidegate.yaml leaves open', async () => {
    const g = await gatedRepo(
      {},
      { floor: (cluster) => (cluster === 'c' ? { approvals: 1, manual: false, windows: [] } : undefined) },
    );
    await g.repo.commit({ 'tidegate.yaml': g.config({}), 'apps/app.yaml': yamlDocs(configMap('app', { v: '1' })) });
    expect((await g.sync()).heldFor).toMatch(
      /^1 change\(s\) since the start not signed off \(1 approval\(s\) needed, the floor of cluster c\): [0-9a-f]{12} by Test Author: pushed straight to main/,
    );
    expect(await g.value()).toBeUndefined();
  });
});
