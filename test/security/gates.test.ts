import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { run, startGitHub, type TestGitHub } from '../../devenv/index.js';
import { readTargetState } from '../../shared/state/index.js';
import { approve, handleMessage, syncRepo, type EngineContext } from '../../shared/usecases/index.js';
import { GitHub } from '../../shared/github/index.js';
import type { QueueMessage } from '../../shared/model/index.js';
import { testEnv, uniqueName } from '../helpers/env.js';
import { configMap, gitopsRepo, yamlDocs } from '../helpers/engine.js';
import { prComment } from '../helpers/github.js';

const OWNER = 'acme';
const TOKEN = 'ghp_security_gates_token';

/**
 * Attacks on sign-off gates: a commit cannot loosen the gate that judges it, and the author of a
 * change never signs it off. Each asserts the refusal and that nothing was applied or recorded.
 */
describe('attack: a change that signs itself off', () => {
  let github: TestGitHub;
  const keyDir = mkdtempSync(join(tmpdir(), 'tidegate-attack-keys-'));
  const key = (name: string) => ({
    private: join(keyDir, name),
    public: readFileSync(join(keyDir, `${name}.pub`), 'utf8'),
  });
  beforeAll(async () => {
    github = await startGitHub({ token: TOKEN, gitRoot: testEnv().git.root });
    for (const name of ['release', 'ops'])
      await run('ssh-keygen', [
        '-q',
        '-t',
        'ed25519',
        '-N',
        '',
        '-C',
        `${name}@example.test`,
        '-f',
        join(keyDir, name),
      ]);
  });
  afterAll(async () => {
    expect(github.violations).toEqual([]);
    await github?.stop();
  });

  async function target(gate: Record<string, unknown>, ref?: Record<string, string>) {
    const ns = uniqueName('atk');
    const repo = await gitopsRepo('atk', { owner: OWNER });
    const ctx: EngineContext = {
      ...repo.engine,
      github: () => new GitHub({ apiUrl: github.url, token: TOKEN }),
      // Both keys are deploy-time trusted keys: "ops" for some other target, "release" for this one.
      trustedKeys: (names) =>
        Promise.resolve(
          [
            { name: 'release', key: key('release').public },
            { name: 'ops', key: key('ops').public },
          ].filter((k) => names.includes(k.name)),
        ),
    };
    const files = (g: Record<string, unknown>, v: string) => ({
      'tidegate.yaml': stringify({
        targets: [
          {
            name: ns,
            cluster: 'c',
            path: 'apps',
            targetNamespace: ns,
            wait: false,
            gate: g,
            ...(ref ? { source: { ref } } : {}),
          },
        ],
      }),
      'apps/app.yaml': yamlDocs(configMap('app', { v })),
    });
    const value = async () => (await repo.engine.client.get('v1', 'ConfigMap', ns, 'app'))?.['data'];
    const state = () => readTargetState(repo.engine.client, ns);
    /** A commit of these files, SSH-signed by a key (git runs ssh-keygen -Y sign), pushed to main. */
    const signedCommit = (g: Record<string, unknown>, v: string, signer: string) =>
      repo.ws.commit(files(g, v), `v${v}`, 'main', key(signer).private);
    return { ns, repo, ctx, files, value, state, signedCommit, gate };
  }

  it('a commit adding a key name (trusted for another target) to its own verify.keys and signing with that key is held', async () => {
    const t = await target({ verify: { mode: 'HEAD', keys: ['release'] } });
    const good = await t.signedCommit(t.gate, '1', 'release');
    expect((await syncRepo(t.ctx, { repo: t.repo.url }))[0]).toMatchObject({
      outcome: 'applied',
      revision: { sha: good },
    });

    const attack = await t.signedCommit({ verify: { mode: 'HEAD', keys: ['release', 'ops'] } }, 'evil', 'ops');
    const [held] = await syncRepo(t.ctx, { repo: t.repo.url });
    expect(held?.outcome).toBe('held');
    expect(held?.heldFor).toMatch(
      new RegExp(
        `^signature required \\(HEAD, tidegate.yaml at the last signed-off ${good.slice(0, 12)}\\): commit ${attack.slice(0, 12)}: signed by an SSH key that is not trusted`,
      ),
    );
    expect(await t.value()).toEqual({ v: '1' });
    expect((await t.state()).lastApplied?.sha).toBe(good);
  });

  it('a tag moved between its resolution and the signature check: the tag that was resolved is the one verified, and the sync holds', async () => {
    const t = await target({ verify: { mode: 'Tag', keys: ['release'] } }, { semver: '>=1.0.0' });
    // v1.0.0: an unsigned annotated tag of the attacker's commit.
    await t.repo.commit(t.files(t.gate, 'evil'));
    const evil = (await t.repo.ws.git('rev-parse', 'HEAD')).trim();
    await t.repo.ws.git('tag', '-a', 'v1.0.0', '-m', 'unsigned');
    await t.repo.ws.git('push', '--quiet', 'origin', 'v1.0.0');
    // A release commit whose tag the release key signs.
    await t.repo.commit(t.files(t.gate, 'release'));
    let moved = false;
    const ctx: EngineContext = {
      ...t.ctx,
      // Runs after the tag was resolved and before the signature is read: the tag moves to a signed tag of the release.
      trustedKeys: async (names) => {
        if (!moved) {
          moved = true;
          await t.repo.ws.git(
            '-c',
            'gpg.format=ssh',
            '-c',
            `user.signingkey=${key('release').private}`,
            'tag',
            '-f',
            '-s',
            'v1.0.0',
            '-m',
            'signed',
          );
          await t.repo.ws.git('push', '--quiet', '--force', 'origin', 'v1.0.0');
        }
        return (await t.ctx.trustedKeys?.(names)) ?? [];
      },
    };
    const [held] = await syncRepo(ctx, { repo: t.repo.url });
    expect(moved).toBe(true);
    expect(held).toMatchObject({ outcome: 'held', revision: { ref: 'refs/tags/v1.0.0', sha: evil } });
    expect(held?.heldFor).toBe('signature required (Tag, tidegate.yaml): tag v1.0.0: not signed');
    expect(await t.value()).toBeUndefined();
    expect((await t.state()).lastApplied).toBeUndefined();
    // Resolved afresh, the signed tag and the commit it points at apply.
    const [applied] = await syncRepo(t.ctx, { repo: t.repo.url });
    expect(applied).toMatchObject({ outcome: 'applied', revision: { ref: 'refs/tags/v1.0.0' } });
    expect(await t.value()).toEqual({ v: 'release' });
  });

  async function mergedChange(t: Awaited<ReturnType<typeof target>>, gate: Record<string, unknown>, author: string) {
    await t.repo.ws.git('fetch', '--quiet', 'origin', 'main');
    await t.repo.ws.git('checkout', '--quiet', '-B', `change-${author}`, 'FETCH_HEAD');
    await t.repo.ws.commit(t.files(gate, author), `${author}'s change`, `change-${author}`);
    const pr = (await github.openPullRequest(OWNER, t.repo.name, { head: `change-${author}`, base: 'main', author }))
      .number;
    return { pr, approve: async () => github.review(OWNER, t.repo.name, pr, { user: author, state: 'APPROVED' }) };
  }

  const comment = async (t: Awaited<ReturnType<typeof target>>, pr: number, user: string) => {
    const queued: QueueMessage[] = [];
    const routed = prComment(github, { owner: OWNER, name: t.repo.name, url: t.repo.url }, pr, {
      user,
      body: `/tidegate approve ${t.ns}`,
      id: pr * 100,
    });
    const out = await handleMessage(t.ctx, routed.messages[0]!, {
      send: (m) => Promise.resolve(void queued.push(...m)),
    });
    return { out, queued };
  };

  it("a merge that rewrites approvers to include its author, then the author's /tidegate approve: refused, nothing recorded or applied", async () => {
    const strict = { manual: true, approvers: { users: [], teams: ['acme/sre'] } };
    const t = await target(strict);
    github.addTeamMember('acme', 'sre', 'erin');
    github.grant(OWNER, t.repo.name, 'mallory', 'write');
    await t.repo.commit(t.files(strict, '0'));
    const head0 = (await t.repo.ws.git('rev-parse', 'HEAD')).trim();
    expect(
      (await approve(t.ctx, { repo: t.repo.url, target: t.ns, revision: head0, by: 'erin', via: 'cli' }))[0].outcome,
    ).toBe('applied');

    // mallory's pull request names herself an approver; erin (not the author) merges it.
    const { pr } = await mergedChange(
      t,
      { manual: true, approvers: { users: ['mallory'], teams: ['acme/sre'] } },
      'mallory',
    );
    const merged = await github.merge(OWNER, t.repo.name, pr, 'erin');
    const [held] = await syncRepo(t.ctx, { repo: t.repo.url });
    expect(held).toMatchObject({ outcome: 'held', revision: { sha: merged } });

    const { out, queued } = await comment(t, pr, 'mallory');
    // The approvers that judge her change are the team's as last signed off, not the list her change wrote.
    expect(out).toEqual({ kind: 'approved', approved: [], refused: [`${t.ns}: mallory may not approve it`] });
    expect(queued).toEqual([]);
    expect((await t.state()).approvals).toBeUndefined();
    expect(await t.value()).toEqual({ v: '0' });
  });

  it('approvers named only by the revision being approved do not count: a writer listed there alone is refused', async () => {
    const strict = { manual: true, approvers: { users: [], teams: ['acme/sre'] } };
    const t = await target(strict);
    github.grant(OWNER, t.repo.name, 'mallory', 'write');
    github.grant(OWNER, t.repo.name, 'oscar', 'write');
    await t.repo.commit(t.files(strict, '0'));
    const head0 = (await t.repo.ws.git('rev-parse', 'HEAD')).trim();
    await approve(t.ctx, { repo: t.repo.url, target: t.ns, revision: head0, by: 'erin', via: 'cli' });
    // mallory's change names her accomplice oscar, who then approves it.
    const { pr } = await mergedChange(t, { manual: true, approvers: { users: ['oscar'], teams: [] } }, 'mallory');
    await github.merge(OWNER, t.repo.name, pr, 'mallory');
    const { out, queued } = await comment(t, pr, 'oscar');
    expect(out).toEqual({ kind: 'approved', approved: [], refused: [`${t.ns}: oscar may not approve it`] });
    expect(queued).toEqual([]);
    expect((await t.state()).approvals).toBeUndefined();
    expect(await t.value()).toEqual({ v: '0' });
  });

  it('a pull request author approving their own pull request: by review not counted, by comment refused', async () => {
    const t = await target({ approvals: 1 });
    github.grant(OWNER, t.repo.name, 'alice', 'write');
    await t.repo.commit(t.files({ approvals: 0 }, '0'));
    expect((await syncRepo(t.ctx, { repo: t.repo.url }))[0]?.outcome).toBe('applied');

    const change = await mergedChange(t, { approvals: 1 }, 'alice');
    await change.approve();
    await github.merge(OWNER, t.repo.name, change.pr, 'alice');
    const [held] = await syncRepo(t.ctx, { repo: t.repo.url });
    expect(held?.heldFor).toMatch(
      new RegExp(
        `^2 change\\(s\\) since [0-9a-f]{12} not signed off \\(1 approval\\(s\\) needed, tidegate.yaml\\): [0-9a-f]{12} by alice: #${change.pr}: 0 of 1 approval\\(s\\); not counted: alice \\(opened it\\)`,
      ),
    );
    const { out, queued } = await comment(t, change.pr, 'alice');
    expect(out).toEqual({
      kind: 'approved',
      approved: [],
      refused: [
        expect.stringMatching(new RegExp(`^${t.ns}: alice made [0-9a-f]{12} .*nobody approves their own change$`)),
      ],
    });
    expect(queued).toEqual([]);
    expect((await t.state()).approvals).toBeUndefined();
    expect(await t.value()).toEqual({ v: '0' });
  });
});
