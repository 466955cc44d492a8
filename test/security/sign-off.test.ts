import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { startGitHub, type TestGitHub } from '../../devenv/index.js';
import { SYSTEM_NAMESPACE } from '../../shared/apply/index.js';
import { approve } from '../../shared/usecases/index.js';
import { testEnv, uniqueName } from '../helpers/env.js';
import { OWNER, configMapYaml, gatedWorld, tidegateYaml, type TargetDecl, type World } from '../helpers/gates.js';

const TOKEN = 'ghp_sign_off_test_token';

/**
 * What one sign-off covers, case by case (each of these got a change past a gate before): a gate
 * judges the change (every commit since its target's last signed-off revision, and every object
 * it would change, whichever target ends up with it), never a target name or one merge commit; and
 * no value read from a Secret reaches anything tidegate publishes.
 */
describe('a sign-off covers the change, not a name or a merge commit', () => {
  let github: TestGitHub;
  beforeAll(async () => {
    github = await startGitHub({ token: TOKEN, gitRoot: testEnv().git.root });
  });
  afterAll(async () => {
    expect(github.violations).toEqual([]);
    await github?.stop();
  });

  /** A repository whose target `prod` (gate as given) applied ConfigMap app {v: 1}, signed off by ops on the command line. */
  async function applied(gate: Record<string, unknown>): Promise<{ w: World; prod: TargetDecl }> {
    const w = await gatedWorld(github, TOKEN);
    const prod: TargetDecl = { name: uniqueName('prod'), dir: 'prod', namespace: uniqueName('prod'), gate };
    await w.push('alice', {
      'tidegate.yaml': tidegateYaml([prod]),
      'apps/prod/app.yaml': configMapYaml('app', { v: '1' }),
    });
    await w.deliver();
    await approve(w.ctx, { repo: w.url, target: prod.name, revision: await w.head(), by: 'ops', via: 'cli' });
    expect(await w.data(prod.namespace, 'app')).toEqual({ v: '1' });
    return { w, prod };
  }

  describe('case 1: a gate belongs to the objects its target applied, not to the target name', () => {
    it('renaming a manual target (and dropping its gate) in one direct push: the new name is held, the old one is not pruned; the old gate signs it off', async () => {
      const { w, prod } = await applied({ manual: true });
      const renamed = { ...prod, name: uniqueName('renamed'), gate: undefined };
      await w.push('mallory', {
        'tidegate.yaml': tidegateYaml([renamed]),
        'apps/prod/app.yaml': configMapYaml('app', { v: '2' }),
      });
      const from = w.outcomes.length;
      await w.deliver();
      expect(w.failures).toEqual([]);
      const results = w.results(from);
      expect(results.find((r) => r.target === renamed.name)).toMatchObject({
        outcome: 'held',
        heldFor: expect.stringContaining(
          `takes over 1 object(s) of target ${prod.name} (ConfigMap/${prod.namespace}/app)`,
        ),
      });
      expect(results.find((r) => r.target === prod.name)).toMatchObject({
        outcome: 'held',
        heldFor: expect.stringMatching(
          /^removal 1 change\(s\) since [0-9a-f]{12} not signed off \(a manual approval needed/,
        ),
      });
      expect(await w.data(prod.namespace, 'app')).toEqual({ v: '1' });
      expect((await w.state(prod.name)).removed).toBeUndefined();

      // Signed off under the old gate: the new name takes the object over, the old target is removed without deleting it.
      await approve(w.ctx, { repo: w.url, target: prod.name, revision: await w.head(), by: 'ops', via: 'cli' });
      expect(await w.data(prod.namespace, 'app')).toEqual({ v: '2' });
      const live = await w.client.get('v1', 'ConfigMap', prod.namespace, 'app');
      expect(live?.metadata.labels?.['tidegate.dev/target']).toBe(renamed.name);
      expect((await w.state(prod.name)).removed).toBeDefined();
    });

    it('removing a gated target in one direct push prunes nothing until its gate signs the removal off', async () => {
      const { w, prod } = await applied({ manual: true });
      const other: TargetDecl = { name: uniqueName('other'), dir: 'other', namespace: uniqueName('other') };
      await w.push('mallory', {
        'tidegate.yaml': tidegateYaml([other]),
        'apps/other/x.yaml': configMapYaml('x', { v: '1' }),
      });
      const from = w.outcomes.length;
      await w.deliver();
      expect(w.results(from).find((r) => r.target === prod.name)?.outcome).toBe('held');
      expect(await w.data(prod.namespace, 'app')).toEqual({ v: '1' });
      await w.deliver(); // the poll's look again: still held, recorded once
      expect((await w.state(prod.name)).history.filter((h) => h.kind === 'removal')).toHaveLength(1);

      await approve(w.ctx, { repo: w.url, target: prod.name, revision: await w.head(), by: 'ops', via: 'cli' });
      expect(await w.data(prod.namespace, 'app')).toBeUndefined();
      expect((await w.state(prod.name)).removed).toBeDefined();
    });

    it('a new ungated target declaring an object a gated target applied is held, naming the owner; the object keeps its content', async () => {
      const { w, prod } = await applied({ manual: true });
      const sneaky: TargetDecl = { name: uniqueName('sneaky'), dir: 'sneaky', namespace: prod.namespace };
      await w.push('mallory', {
        'tidegate.yaml': tidegateYaml([prod, sneaky]),
        'apps/sneaky/app.yaml': configMapYaml('app', { v: 'evil' }),
      });
      const from = w.outcomes.length;
      await w.deliver();
      expect(w.results(from).find((r) => r.target === sneaky.name)).toMatchObject({
        outcome: 'held',
        heldFor: expect.stringContaining(`takes over 1 object(s) of target ${prod.name}`),
      });
      expect(await w.data(prod.namespace, 'app')).toEqual({ v: '1' });
      // prod itself did not change (its files did not): it stays as applied.
      expect(w.results(from).find((r) => r.target === prod.name)?.outcome).not.toBe('applied');
    });

    it("another repository's target never takes an object over: refused, naming the repository", async () => {
      const { w, prod } = await applied({});
      const w2 = await gatedWorld(github, TOKEN, { prefix: 'elsewhere' });
      const thief: TargetDecl = { name: uniqueName('thief'), dir: 'thief', namespace: prod.namespace };
      await w2.push('mallory', {
        'tidegate.yaml': tidegateYaml([thief]),
        'apps/thief/app.yaml': configMapYaml('app', { v: 'stolen' }),
      });
      await w2.deliver();
      expect(w2.results().find((r) => r.target === thief.name)).toMatchObject({
        outcome: 'failed',
        // Refused before any takeover is judged: the namespace is the other repository's.
        error: expect.stringContaining(
          `would write into another repository's namespace, which no target of another repository does: ConfigMap/${prod.namespace}/app (namespace ${prod.namespace} was created by target ${prod.name} of ${w.url})`,
        ),
      });
      expect(await w.data(prod.namespace, 'app')).toEqual({ v: '1' });
    });
  });

  it("case 2: an approved pull request covers its own commits, not a writer's held direct push merged along with it", async () => {
    const w = await gatedWorld(github, TOKEN);
    const prod: TargetDecl = {
      name: uniqueName('prod'),
      dir: 'prod',
      namespace: uniqueName('prod'),
      gate: { approvals: 1 },
    };
    await w.push('alice', { 'README.md': 'the GitOps repository\n' });
    let { pr } = await w.propose('alice', {
      'tidegate.yaml': tidegateYaml([prod]),
      'apps/prod/app.yaml': configMapYaml('app', { v: '1' }),
    });
    await w.review('carol', pr);
    await w.merge('carol', pr);
    await w.deliver();
    expect(await w.data(prod.namespace, 'app')).toEqual({ v: '1' });

    const binding = uniqueName('admin');
    const direct = await w.push('mallory', {
      'apps/prod/binding.yaml': stringify({
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRoleBinding',
        metadata: { name: binding },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
        subjects: [{ kind: 'User', name: 'mallory', apiGroup: 'rbac.authorization.k8s.io' }],
      }),
    });
    let from = w.outcomes.length;
    await w.deliver();
    expect(w.results(from)[0]?.outcome).toBe('held');

    // Her next pull request, approved by a reviewer who saw only its diff, merged by bob.
    ({ pr } = await w.propose('mallory', { 'apps/prod/app.yaml': configMapYaml('app', { v: '2' }) }));
    await w.review('carol', pr);
    await w.merge('bob', pr);
    from = w.outcomes.length;
    await w.deliver();
    const held = w.results(from)[0];
    expect(held).toMatchObject({ outcome: 'held' });
    expect(held?.heldFor).toContain(
      `${direct.slice(0, 12)} by mallory: pushed straight to main, not through a merged pull request; 0 of 1 approval(s)`,
    );
    expect(await w.client.get('rbac.authorization.k8s.io/v1', 'ClusterRoleBinding', '', binding)).toBeUndefined();
    expect(await w.data(prod.namespace, 'app')).toEqual({ v: '1' });
    // The merged pull request is told too: which commit is not signed off, and how to approve.
    const told = github.comments(OWNER, w.name, pr).find((c) => c.body.startsWith('<!-- tidegate:hold:'));
    expect(told?.body).toContain(`**${prod.name}**: 1 change(s) since`);
    expect(told?.body).toContain(`${direct.slice(0, 12)} by mallory: pushed straight to main`);

    // carol, who made none of it, approves the whole change by naming the head.
    const head = await w.head();
    expect(await w.comment('carol', pr, `/tidegate approve ${head.slice(0, 12)} ${prod.name}`)).toContainEqual({
      kind: 'approved',
      approved: [prod.name],
      refused: [],
    });
    expect(await w.data(prod.namespace, 'app')).toEqual({ v: '2' });
    expect(await w.client.get('rbac.authorization.k8s.io/v1', 'ClusterRoleBinding', '', binding)).toBeDefined();
  });

  it("case 3: a writer cannot release her own held change by approving someone else's pull request", async () => {
    const { w, prod } = await applied({ manual: true });
    const mine = await w.propose('mallory', { 'apps/prod/app.yaml': configMapYaml('app', { v: '2' }) });
    await w.merge('bob', mine.pr);
    await w.deliver();
    expect(await w.data(prod.namespace, 'app')).toEqual({ v: '1' });

    const ownRefusal = await w.comment('mallory', mine.pr, '/tidegate approve');
    expect(ownRefusal[0]).toMatchObject({ kind: 'approved', approved: [] });

    const theirs = await w.propose('bob', { 'apps/prod/other.yaml': configMapYaml('other', { v: '1' }) });
    await w.merge('carol', theirs.pr);
    await w.deliver();
    const refused = await w.comment('mallory', theirs.pr, '/tidegate approve');
    expect(refused[0]).toMatchObject({
      kind: 'approved',
      approved: [],
      refused: [expect.stringContaining('nobody approves their own change')],
    });
    expect(await w.data(prod.namespace, 'app')).toEqual({ v: '1' });
    expect((await w.state(prod.name)).approvals ?? []).toEqual([]);

    // Refused on her own pull request too, saying which commit was hers.
    expect(ownRefusal[0]).toMatchObject({
      kind: 'approved',
      approved: [],
      refused: [expect.stringMatching(/mallory made [0-9a-f]{12}/)],
    });
    // carol made none of the change: her approval releases it, and history says it was hers.
    const applied_ = await w.comment('carol', theirs.pr, '/tidegate approve');
    expect(applied_[0]).toMatchObject({ kind: 'approved', approved: [prod.name] });
    expect(await w.data(prod.namespace, 'app')).toEqual({ v: '2' });
    expect((await w.state(prod.name)).history.at(-1)?.approvals?.map((a) => a.by)).toEqual(['carol']);
  });

  it('reviews count only from the approvers tidegate.yaml as last signed off names (a writer outside them does not count)', async () => {
    const gate = { approvals: 1, approvers: { users: ['carol'], teams: [] } };
    const { w, prod } = await applied(gate);
    let change = await w.propose('mallory', { 'apps/prod/app.yaml': configMapYaml('app', { v: '2' }) });
    await w.review('bob', change.pr);
    await w.merge('bob', change.pr);
    let from = w.outcomes.length;
    await w.deliver();
    expect(w.results(from)[0]?.heldFor).toContain('not counted: bob (not among the approvers)');
    expect(await w.data(prod.namespace, 'app')).toEqual({ v: '1' });
    change = await w.propose('alice', { 'apps/prod/app.yaml': configMapYaml('app', { v: '3' }) });
    await w.review('carol', change.pr);
    await w.merge('bob', change.pr);
    from = w.outcomes.length;
    await w.deliver();
    // carol's review covers alice's pull request, not mallory's: the change is still held on mallory's commits.
    expect(w.results(from)[0]?.outcome).toBe('held');
    await w.comment('carol', change.pr, `/tidegate approve ${(await w.head()).slice(0, 12)} ${prod.name}`);
    expect(await w.data(prod.namespace, 'app')).toEqual({ v: '3' });
  });

  describe('case 4: no value read from a Secret is published', () => {
    const SECRET = 'sekret-8f3a2b9c7d';
    const published = (w: World) =>
      JSON.stringify([
        github.pulls(OWNER, w.name).map((p) => github.comments(OWNER, w.name, p.number)),
        github.checkRuns(OWNER, w.name),
        w.results(),
      ]);

    async function withSecret(gate: Record<string, unknown>, preview = false) {
      const w = await gatedWorld(github, TOKEN);
      const namespace = uniqueName('vars');
      await w.client.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
      await w.client.create({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'vars', namespace },
        stringData: { TOKEN: SECRET },
      });
      const prod: TargetDecl = {
        name: uniqueName('prod'),
        dir: 'prod',
        namespace,
        gate,
        extra: {
          substituteFrom: [{ kind: 'Secret', name: 'vars' }],
          ...(preview ? { preview: { enabled: true } } : {}),
        },
      };
      await w.push('alice', {
        'tidegate.yaml': tidegateYaml([prod]),
        'apps/prod/app.yaml': configMapYaml('app', { v: '1' }),
      });
      await w.deliver();
      if (Object.keys(gate).length)
        await approve(w.ctx, { repo: w.url, target: prod.name, revision: await w.head(), by: 'ops', via: 'cli' });
      expect(await w.data(namespace, 'app')).toEqual({ v: '1' });
      return { w, prod };
    }

    const leaking = {
      'apps/prod/app.yaml': `${configMapYaml('app', { v: '1', token: '${TOKEN}' })}---\n${configMapYaml('x-${TOKEN}', { a: 'b' })}`,
    };

    it("a pull request's preview writing ${VAR} of a Secret into a value and a name: the comment and check run show neither", async () => {
      const { w, prod } = await withSecret({});
      const { pr, branch } = await w.propose('bob', leaking);
      await w.queue.send([{ type: 'preview', repo: w.url, pullRequest: pr, head: await w.head(branch) }]);
      await w.queue.idle();
      const comment = github.comments(OWNER, w.name, pr).at(-1)?.body ?? '';
      expect(comment).toContain(`**${prod.name}**`);
      expect(published(w)).not.toContain(SECRET);
      expect(published(w)).not.toContain(Buffer.from(SECRET).toString('base64').slice(0, 16));
    });

    it('an object named after a Secret value by a signed-off change: a later preview (that would prune it) shows no value, in the name either', async () => {
      // Found by the model test's long mode (seed 20261207, path 355): the preview's render withholds the Secret, so
      // the live object (named with the value) was listed as to be deleted, under its real name.
      const { w, prod } = await withSecret({});
      await w.push('alice', { 'apps/prod/leak.yaml': configMapYaml('leak-${TOKEN}', { v: '1' }) });
      await w.deliver();
      expect(await w.client.get('v1', 'ConfigMap', prod.namespace, `leak-${SECRET}`)).toBeDefined();
      const { pr, branch } = await w.propose('bob', { 'notes.txt': 'nothing the target renders\n' });
      await w.queue.send([{ type: 'preview', repo: w.url, pullRequest: pr, head: await w.head(branch) }]);
      await w.queue.idle();
      const comment = github.comments(OWNER, w.name, pr).at(-1)?.body ?? '';
      expect(comment).toContain('ConfigMap/');
      expect(published(w)).not.toContain(SECRET);
    });

    it('a preview environment of a target reading a Secret is refused, saying why', async () => {
      const { w } = await withSecret({}, true);
      const { pr, branch } = await w.propose('bob', leaking);
      await w.queue.send([{ type: 'preview', repo: w.url, pullRequest: pr, head: await w.head(branch) }]);
      await w.queue.idle();
      const comment = github.comments(OWNER, w.name, pr).at(-1)?.body ?? '';
      expect(comment).toMatch(/refused: the target reads values from Secrets \(substituteFrom: vars\)/);
      expect(published(w)).not.toContain(SECRET);
    });

    it('a held direct push writing ${VAR} of a Secret into names and values: no status, history entry or result holds it', async () => {
      const { w, prod } = await withSecret({ manual: true });
      await w.push('mallory', leaking);
      await w.deliver();
      expect(w.results().at(-1)?.outcome).toBe('held');
      const statuses = JSON.stringify(github.statuses(OWNER, w.name, await w.head()));
      const state = JSON.stringify(
        await w.client.get('v1', 'ConfigMap', SYSTEM_NAMESPACE, `tidegate-target-${prod.name}`),
      );
      expect(`${statuses}${state}${published(w)}`).not.toContain(SECRET);
    });
  });
});
