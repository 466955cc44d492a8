import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GitWorkspace, createBareRepo, run, startGitHub, type TestGitHub } from '../../devenv/index.js';
import { testEnv, uniqueName } from '../helpers/env.js';

const OWNER = 'acme';
const TOKEN = 'ghp_emulator_test_token';
const ZERO = '0'.repeat(40);
const SHA = /^[0-9a-f]{40}$/;
const TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;

type Json = Record<string, any>;

/**
 * The test GitHub as the gate logic reads it: who pushed which ref update (recorded by the git
 * server from real pushes), who authored and committed a commit and what it changed, and what
 * each merge method makes, with real pushes by two users (alice, bob).
 */
describe('test GitHub: pushes, commits and merges', () => {
  let github: TestGitHub;
  const workspaces: GitWorkspace[] = [];
  beforeAll(async () => {
    github = await startGitHub({ token: TOKEN, gitRoot: testEnv().git.root });
  });
  afterAll(async () => {
    workspaces.forEach((w) => w.remove());
    expect(github.violations).toEqual([]);
    await github?.stop();
  });

  const api = async (path: string, status = 200): Promise<any> => {
    const res = await fetch(`${github.url}${path}`, { headers: { authorization: `token ${TOKEN}` } });
    expect(res.status, `${path}: ${res.status}`).toBe(status);
    return res.json();
  };

  /** A repository acme/<name> with a workspace for alice and one for bob. */
  async function repository(prefix: string) {
    const env = testEnv().git;
    const name = uniqueName(prefix);
    const url = await createBareRepo(env, `${OWNER}/${name}`);
    const alice = await GitWorkspace.clone(env, url, { user: 'alice' });
    const bob = await GitWorkspace.clone(env, url, { user: 'bob' });
    workspaces.push(alice, bob);
    const repo = `/repos/${OWNER}/${name}`;
    /** Checks out a new branch at the remote's `from` branch. */
    const branchFrom = async (ws: GitWorkspace, branch: string, from = 'main') => {
      await ws.git('fetch', '--quiet', 'origin', from);
      await ws.git('checkout', '--quiet', '-B', branch, 'FETCH_HEAD');
    };
    const head = async (branch = 'main') =>
      (await alice.git('ls-remote', 'origin', `refs/heads/${branch}`)).split('\t')[0] ?? '';
    return { env, name, url, alice, bob, repo, branchFrom, head };
  }

  it('activities: who created, pushed, force-pushed and deleted which branch, newest first, with the filters', async () => {
    const r = await repository('activity');
    const first = await r.alice.commit({ 'README.md': 'one\n' }, 'first');
    await r.branchFrom(r.bob, 'main');
    const second = await r.bob.commit({ 'app.yaml': 'a: 1\n' }, 'second');
    // alice branches off her (older) main, then force-pushes main without bob's commit.
    const feature = await r.alice.commit({ 'feature.txt': 'f\n' }, 'feature', 'feature');
    await r.alice.git('checkout', '--quiet', '-B', 'main', first);
    await r.alice.git('commit', '--quiet', '--allow-empty', '-m', 'rewrite');
    await r.alice.git('push', '--quiet', '--force', 'origin', 'HEAD:refs/heads/main');
    const rewritten = await r.head();
    await r.bob.git('push', '--quiet', 'origin', ':refs/heads/feature');
    // A workspace without a user pushes without basic auth (this git server takes no token): no actor.
    const anonymous = await GitWorkspace.clone(r.env, r.url);
    workspaces.push(anonymous);
    const third = await anonymous.commit({ 'other.txt': 'x\n' }, 'anonymous', 'other');

    const all: Json[] = await api(`${r.repo}/activity`);
    expect(
      all.map((a) => [a['activity_type'], a['ref'], a['actor']?.['login'] ?? null, a['before'], a['after']]),
    ).toEqual([
      ['branch_creation', 'refs/heads/other', null, ZERO, third],
      ['branch_deletion', 'refs/heads/feature', 'bob', feature, ZERO],
      ['force_push', 'refs/heads/main', 'alice', second, rewritten],
      ['branch_creation', 'refs/heads/feature', 'alice', ZERO, feature],
      ['push', 'refs/heads/main', 'bob', first, second],
      ['branch_creation', 'refs/heads/main', 'alice', ZERO, first],
    ]);
    for (const a of all) {
      expect(a['timestamp']).toMatch(TIME);
      expect(a['id']).toEqual(expect.any(Number));
    }
    expect(new Set(all.map((a) => a['id'])).size).toBe(all.length);

    const types = (list: Json[]) => list.map((a) => a['activity_type']);
    expect(types(await api(`${r.repo}/activity?ref=main`))).toEqual(['force_push', 'push', 'branch_creation']);
    expect(types(await api(`${r.repo}/activity?ref=refs/heads/main&direction=asc`))).toEqual([
      'branch_creation',
      'push',
      'force_push',
    ]);
    expect(types(await api(`${r.repo}/activity?actor=bob`))).toEqual(['branch_deletion', 'push']);
    const forced: Json[] = await api(`${r.repo}/activity?activity_type=force_push`);
    expect(forced).toMatchObject([{ before: second, after: rewritten, actor: { login: 'alice' } }]);
    expect(await api(`${r.repo}/activity?per_page=2`)).toHaveLength(2);
    expect(await api(`${r.repo}/activity?direction=asc&per_page=1`)).toMatchObject([{ after: first }]);
    expect(await api(`${r.repo}/activity?per_page=abc`, 422)).toMatchObject({ message: 'Invalid request' });
  });

  it('get-commit: author and committer logins, files against the first parent, verification; 404 for an unknown commit', async () => {
    const r = await repository('commit');
    const first = await r.alice.commit(
      { 'README.md': 'one\n', 'apps/old.yaml': 'kind: ConfigMap\nname: x\n' },
      'first',
    );
    await r.branchFrom(r.bob, 'main');
    const second = await r.bob.commit(
      {
        'README.md': 'one\ntwo\nthree\n',
        'apps/old.yaml': null,
        'apps/new.yaml': 'kind: ConfigMap\nname: x\n',
        'gone.txt': null,
        'added.txt': 'added\n',
      },
      'second\n\nwith a body',
    );

    const root: Json = await api(`${r.repo}/commits/${first}`);
    expect(root).toMatchObject({
      sha: first,
      parents: [],
      author: { login: 'alice' },
      committer: { login: 'alice' },
      commit: {
        author: { name: 'alice', email: 'alice@users.noreply.github.test', date: expect.stringMatching(TIME) },
        committer: { name: 'alice', email: 'alice@users.noreply.github.test' },
        message: 'first',
        tree: { sha: expect.stringMatching(SHA) },
        verification: { verified: false, reason: 'unsigned', signature: null, payload: null, verified_at: null },
      },
    });
    expect(root['files'].map((f: Json) => [f['filename'], f['status'], f['additions'], f['deletions']])).toEqual([
      ['README.md', 'added', 1, 0],
      ['apps/old.yaml', 'added', 2, 0],
    ]);

    const c: Json = await api(`${r.repo}/commits/${second}`);
    expect(c).toMatchObject({
      sha: second,
      author: { login: 'bob' },
      committer: { login: 'bob' },
      parents: [{ sha: first, url: expect.stringContaining(`/commits/${first}`) }],
      commit: { message: 'second\n\nwith a body', verification: { verified: false, reason: 'unsigned' } },
      stats: { additions: 3, deletions: 0, total: 3 },
    });
    const files = Object.fromEntries(c['files'].map((f: Json) => [f['filename'], f]));
    expect(Object.keys(files).sort()).toEqual(['README.md', 'added.txt', 'apps/new.yaml']);
    expect(files['README.md']).toMatchObject({ status: 'modified', additions: 2, deletions: 0, changes: 2 });
    expect(files['added.txt']).toMatchObject({ status: 'added', additions: 1, sha: expect.stringMatching(SHA) });
    expect(files['apps/new.yaml']).toMatchObject({
      status: 'renamed',
      previous_filename: 'apps/old.yaml',
      additions: 0,
      deletions: 0,
      raw_url: `https://github.test/${OWNER}/${r.name}/raw/${second}/apps/new.yaml`,
      blob_url: `https://github.test/${OWNER}/${r.name}/blob/${second}/apps/new.yaml`,
      contents_url: `${github.url}/repos/${OWNER}/${r.name}/contents/apps/new.yaml?ref=${second}`,
    });
    const removed = await r.alice.commit({ 'README.md': null }, 'remove', 'removal');
    expect((await api(`${r.repo}/commits/${removed}`))['files']).toMatchObject([
      { filename: 'README.md', status: 'removed', additions: 0, deletions: 1 },
    ]);

    // By branch name, heads/<branch> (as octokit encodes it) and a short SHA.
    expect((await api(`${r.repo}/commits/main`))['sha']).toBe(second);
    expect((await api(`${r.repo}/commits/heads%2Fremoval`))['sha']).toBe(removed);
    expect((await api(`${r.repo}/commits/${second.slice(0, 10)}`))['sha']).toBe(second);
    await api(`${r.repo}/commits/${'f'.repeat(40)}`, 404);
    await api(`${r.repo}/commits/nope`, 404);

    // A commit by someone whose address is no GitHub no-reply one: no users.
    const other = await GitWorkspace.clone(r.env, r.url);
    workspaces.push(other);
    const plain = await other.commit({ 'x.txt': 'x\n' }, 'plain', 'plain');
    expect(await api(`${r.repo}/commits/${plain}`)).toMatchObject({
      author: null,
      committer: null,
      commit: { author: { name: 'Test Author', email: 'author@example.test' } },
    });
    // Signed with a key this GitHub does not know: not verified, with the signature and what it signed.
    const keys = mkdtempSync(join(tmpdir(), 'emulator-keys-'));
    try {
      await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'alice', '-f', join(keys, 'alice')]);
      const signed = await r.alice.commit({ 's.txt': 's\n' }, 'signed', 'signed', join(keys, 'alice'));
      const verification = (await api(`${r.repo}/commits/${signed}`))['commit']['verification'];
      expect(verification).toMatchObject({
        verified: false,
        reason: 'unknown_key',
        signature: expect.stringMatching(/^-----BEGIN SSH SIGNATURE-----\n[\s\S]*-----END SSH SIGNATURE-----\n$/),
        verified_at: null,
      });
      expect(verification['payload']).toMatch(/^tree [0-9a-f]{40}\nparent [0-9a-f]{40}\nauthor alice /);
      expect(verification['payload']).toMatch(/\n\nsigned\n$/);
      expect(verification['payload']).not.toContain('gpgsig');
    } finally {
      rmSync(keys, { recursive: true, force: true });
    }

    // Committing as another user in the same workspace.
    const asBob = await r.alice.as('bob').commit({ 'y.txt': 'y\n' }, 'by bob', 'as-bob');
    expect(await api(`${r.repo}/commits/${asBob}`)).toMatchObject({ author: { login: 'bob' } });
    expect(await api(`${r.repo}/activity?ref=as-bob`)).toMatchObject([{ actor: { login: 'bob' } }]);
  });

  it('merge, squash and rebase: the commits each makes, their authors and verification, pull request commits and association', async () => {
    const r = await repository('merges');
    await r.alice.commit({ 'README.md': 'base\n' }, 'base');

    // 1. alice's two commits, merged by bob with a merge commit.
    await r.branchFrom(r.alice, 'one');
    const a1 = await r.alice.commit({ 'a.txt': '1\n' }, 'a1', 'one');
    const a2 = await r.alice.commit({ 'a.txt': '2\n' }, 'a2', 'one');
    const pr1 = await github.openPullRequest(OWNER, r.name, { head: 'one', base: 'main', author: 'alice' });
    expect((await api(`${r.repo}/pulls/${pr1.number}/commits`)).map((c: Json) => c['sha'])).toEqual([a1, a2]);
    const before1 = await r.head();
    const merge1 = await github.merge(OWNER, r.name, pr1.number, 'bob');
    expect(github.mergeCommits(OWNER, r.name, pr1.number)).toEqual([merge1]);
    expect(await r.head()).toBe(merge1);
    const m1: Json = await api(`${r.repo}/commits/${merge1}`);
    expect(m1).toMatchObject({
      parents: [{ sha: before1 }, { sha: a2 }],
      author: { login: 'bob' },
      committer: { login: 'web-flow' },
      commit: {
        author: { name: 'bob', email: 'bob@users.noreply.github.test' },
        committer: { name: 'GitHub', email: 'noreply@github.test' },
        message: `Merge pull request #${pr1.number} from ${OWNER}/one`,
        verification: { verified: true, reason: 'valid', verified_at: expect.stringMatching(TIME) },
      },
      files: [{ filename: 'a.txt', status: 'added' }],
    });
    const list1: Json[] = await api(`${r.repo}/pulls/${pr1.number}/commits`);
    expect(list1.map((c) => [c['sha'], c['author']?.['login'], c['commit']['verification']['verified']])).toEqual([
      [a1, 'alice', false],
      [a2, 'alice', false],
    ]);
    for (const sha of [a1, a2, merge1])
      expect((await api(`${r.repo}/commits/${sha}/pulls`)).map((p: Json) => p['number'])).toEqual([pr1.number]);
    expect(await api(`${r.repo}/pulls/${pr1.number}`)).toMatchObject({
      merged: true,
      state: 'closed',
      merged_at: expect.stringMatching(TIME),
      merged_by: { login: 'bob' },
      merge_commit_sha: merge1,
      head: { sha: a2 },
      commits: 2,
    });

    // 2. bob's two commits, squashed by alice.
    await r.branchFrom(r.bob, 'two');
    const b1 = await r.bob.commit({ 'b.txt': '1\n' }, 'b1', 'two');
    const b2 = await r.bob.commit({ 'b.txt': '1\n2\n', 'c.txt': 'c\n' }, 'b2', 'two');
    const pr2 = await github.openPullRequest(OWNER, r.name, {
      head: 'two',
      base: 'main',
      author: 'bob',
      title: 'Add b and c',
    });
    const squash = await github.merge(OWNER, r.name, pr2.number, 'alice', 'squash');
    expect(github.mergeCommits(OWNER, r.name, pr2.number)).toEqual([squash]);
    const s: Json = await api(`${r.repo}/commits/${squash}`);
    expect(s).toMatchObject({
      parents: [{ sha: merge1 }],
      author: { login: 'bob' },
      committer: { login: 'web-flow' },
      commit: { message: `Add b and c (#${pr2.number})`, verification: { verified: true, reason: 'valid' } },
      stats: { additions: 3, deletions: 0 },
    });
    expect(s['parents']).toHaveLength(1);
    expect(s['files'].map((f: Json) => [f['filename'], f['status']])).toEqual([
      ['b.txt', 'added'],
      ['c.txt', 'added'],
    ]);
    expect((await api(`${r.repo}/pulls/${pr2.number}/commits`)).map((c: Json) => c['sha'])).toEqual([b1, b2]);
    for (const sha of [b1, b2, squash])
      expect((await api(`${r.repo}/commits/${sha}/pulls`)).map((p: Json) => p['number'])).toEqual([pr2.number]);

    // 3. alice's commits rebased by bob onto a base that moved; a later pull request stacked on them stays open.
    await r.branchFrom(r.alice, 'three');
    const c1 = await r.alice.commit({ 'd.txt': '1\n' }, 'c1', 'three');
    const c2 = await r.alice.commit({ 'e.txt': '1\n' }, 'c2', 'three');
    await r.alice.commit({ 'f.txt': '1\n' }, 'c3', 'stacked');
    const stacked = await github.openPullRequest(OWNER, r.name, { head: 'stacked', base: 'main', author: 'alice' });
    const pr3 = await github.openPullRequest(OWNER, r.name, { head: 'three', base: 'main', author: 'alice' });
    await r.branchFrom(r.bob, 'main');
    const moved = await r.bob.commit({ 'README.md': 'base\nmoved\n' }, 'base moves');
    const rebased = await github.merge(OWNER, r.name, pr3.number, 'bob', 'rebase');
    const [r1, r2] = github.mergeCommits(OWNER, r.name, pr3.number);
    expect(rebased).toBe(r2);
    expect(await r.head()).toBe(r2);
    expect([r1, r2]).not.toContain(c1);
    const x1: Json = await api(`${r.repo}/commits/${r1}`);
    const x2: Json = await api(`${r.repo}/commits/${r2}`);
    expect(x1).toMatchObject({
      parents: [{ sha: moved }],
      author: { login: 'alice' },
      committer: { login: 'web-flow' },
      commit: { message: 'c1', verification: { verified: true } },
      files: [{ filename: 'd.txt', status: 'added' }],
    });
    expect(x2).toMatchObject({ parents: [{ sha: r1 }], author: { login: 'alice' }, commit: { message: 'c2' } });
    expect(await api(`${r.repo}/pulls/${pr3.number}`)).toMatchObject({ merge_commit_sha: r2, head: { sha: c2 } });
    expect((await api(`${r.repo}/pulls/${pr3.number}/commits`)).map((c: Json) => c['sha'])).toEqual([c1, c2]);
    for (const sha of [r1, r2])
      expect((await api(`${r.repo}/commits/${sha}/pulls`)).map((p: Json) => p['number'])).toEqual([pr3.number]);
    // The original commits are also in the open stacked pull request (opened first): merged ones come first.
    expect((await api(`${r.repo}/commits/${c1}/pulls`)).map((p: Json) => p['number'])).toEqual([
      pr3.number,
      stacked.number,
    ]);

    // A merged pull request keeps the head it merged when its branch moves on.
    await r.alice.commit({ 'late.txt': '1\n' }, 'late', 'three');
    expect(await api(`${r.repo}/pulls/${pr3.number}`)).toMatchObject({ head: { sha: c2 } });
    expect((await api(`${r.repo}/pulls/${pr3.number}/commits`)).map((c: Json) => c['sha'])).toEqual([c1, c2]);
    await expect(github.merge(OWNER, r.name, pr3.number)).rejects.toThrow('already merged');

    // The merges are activities of their mergers.
    const merges: Json[] = await api(`${r.repo}/activity?activity_type=pr_merge`);
    expect(merges.map((a) => [a['actor']['login'], a['ref'], a['before'], a['after']])).toEqual([
      ['bob', 'refs/heads/main', moved, r2],
      ['alice', 'refs/heads/main', merge1, squash],
      ['bob', 'refs/heads/main', before1, merge1],
    ]);
    expect((await api(`${r.repo}/activity?ref=main&per_page=2`)).map((a: Json) => a['activity_type'])).toEqual([
      'pr_merge',
      'push',
    ]);

    // A conflict: nothing is merged.
    await r.alice.git('checkout', '--quiet', '-B', 'conflict', merge1);
    await r.alice.commit({ 'README.md': 'conflicting\n' }, 'conflicting', 'conflict');
    const pr4 = await github.openPullRequest(OWNER, r.name, { head: 'conflict', base: 'main', author: 'alice' });
    for (const method of ['merge', 'squash', 'rebase'] as const)
      await expect(github.merge(OWNER, r.name, pr4.number, 'bob', method)).rejects.toThrow();
    expect(await r.head()).toBe(r2);
    expect(await api(`${r.repo}/pulls/${pr4.number}`)).toMatchObject({ merged: false, state: 'open' });
  });
});
