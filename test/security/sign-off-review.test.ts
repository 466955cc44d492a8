import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGitHub, type TestGitHub } from '../../devenv/index.js';
import { approve } from '../../shared/usecases/index.js';
import { testEnv, uniqueName } from '../helpers/env.js';
import { configMapYaml, gatedWorld, tidegateYaml, type TargetDecl, type World } from '../helpers/gates.js';

const TOKEN = 'ghp_sign_off_review_token';

/**
 * Ways past a sign-off gate found in review. Each test asserts what the README promises, so it
 * fails while the way past is open.
 */
describe('sign-off review: ways past a gate', () => {
  let github: TestGitHub;
  beforeAll(async () => {
    github = await startGitHub({ token: TOKEN, gitRoot: testEnv().git.root });
  });
  afterAll(async () => {
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

  it('mallory pushes her change under an e-mail GitHub maps to nobody, then pushes 100 empty commits so her push leaves the activity page tidegate reads: her own /tidegate approve releases it', async () => {
    const { w, prod } = await applied({ manual: true });
    const ws = await w.as('mallory');
    await ws.git('fetch', '--quiet', 'origin', 'main');
    await ws.git('checkout', '--quiet', '-B', 'main', 'FETCH_HEAD');
    writeFileSync(join(ws.dir, 'apps/prod/app.yaml'), configMapYaml('app', { v: 'evil' }));
    await ws.git('add', '--all');
    // Written and committed under an address no GitHub account has verified; pushed as mallory.
    const unmapped = 'm.private@example.test';
    execFileSync('git', ['commit', '--quiet', '-m', 'tune app'], {
      cwd: ws.dir,
      env: {
        ...process.env,
        GIT_CONFIG_NOSYSTEM: '1',
        GIT_CONFIG_GLOBAL: '/dev/null',
        GIT_AUTHOR_NAME: 'M',
        GIT_AUTHOR_EMAIL: unmapped,
        GIT_COMMITTER_NAME: 'M',
        GIT_COMMITTER_EMAIL: unmapped,
      },
    });
    await ws.git('push', '--quiet', 'origin', 'HEAD:refs/heads/main');
    await w.deliver();
    expect(w.failures).toEqual([]);
    expect(await w.data(prod.namespace, 'app')).toEqual({ v: '1' });
    // Held, and tidegate knows who pushed it (the hold names her)...
    expect((await w.state(prod.name)).history.at(-1)).toMatchObject({
      outcome: 'held',
      heldFor: expect.stringContaining('pushed by mallory'),
    });

    // ...until 100 more updates of main (empty commits: nothing any target renders) push hers off the one page read.
    for (let i = 0; i < 100; i++) {
      await ws.git('commit', '--quiet', '--allow-empty', '-m', `noise ${i}`);
      await ws.git('push', '--quiet', 'origin', 'HEAD:refs/heads/main');
    }
    const head = await w.head();
    const { pr } = await w.propose('bob', { 'README.md': 'docs\n' });
    const out = await w.comment('mallory', pr, `/tidegate approve ${head} ${prod.name}`);
    expect(w.failures).toEqual([]);
    // The README: a comment approval is refused when the commenter pushed a commit of the change, and never counts.
    expect(out[0]).toMatchObject({
      kind: 'approved',
      approved: [],
      refused: [expect.stringContaining('nobody approves their own change')],
    });
    expect(await w.data(prod.namespace, 'app')).toEqual({ v: '1' });
  }, 300_000);

  it("an ungated target sharing a gated target's namespace (and depending on it) declares the gated target's object: the gated target's sync of the same push moves its base past the change, and the takeover is judged against nothing", async () => {
    const w = await gatedWorld(github, TOKEN);
    const namespace = uniqueName('shop');
    const prod: TargetDecl = { name: uniqueName('prod'), dir: 'prod', namespace, gate: { manual: true } };
    const side: TargetDecl = {
      name: uniqueName('side'),
      dir: 'side',
      namespace,
      extra: { dependsOn: [prod.name] },
    };
    await w.push('alice', {
      'tidegate.yaml': tidegateYaml([prod, side]),
      'apps/prod/app.yaml': configMapYaml('app', { v: '1' }),
      'apps/side/side.yaml': configMapYaml('side', { v: '1' }),
    });
    await w.deliver();
    await approve(w.ctx, { repo: w.url, target: prod.name, revision: await w.head(), by: 'ops', via: 'cli' });
    expect(await w.data(namespace, 'app')).toEqual({ v: '1' });
    expect(await w.data(namespace, 'side')).toEqual({ v: '1' });

    // mallory pushes straight to main: only the ungated target's files, declaring prod's ConfigMap.
    await w.push('mallory', { 'apps/side/app.yaml': configMapYaml('app', { v: 'evil' }) });
    const from = w.outcomes.length;
    await w.deliver();
    expect(w.failures).toEqual([]);
    // The README: a target taking over an object another target applied is held until the owner's gate signs that change off.
    const live = await w.client.get('v1', 'ConfigMap', namespace, 'app');
    expect({ data: live?.['data'], owner: live?.metadata.labels?.['tidegate.dev/target'] }).toEqual({
      data: { v: '1' },
      owner: prod.name,
    });
    expect(w.results(from).find((r) => r.target === side.name)?.outcome).toBe('held');
  }, 120_000);

  it("without dependsOn: the poll syncs the gated target past the ungated target's change (it renders none of it), then the push's webhook syncs the ungated target, whose takeover of the gated target's object is judged against nothing", async () => {
    const w = await gatedWorld(github, TOKEN);
    const namespace = uniqueName('shop');
    const prod: TargetDecl = { name: uniqueName('prod'), dir: 'prod', namespace, gate: { manual: true } };
    const side: TargetDecl = { name: uniqueName('side'), dir: 'side', namespace };
    await w.push('alice', {
      'tidegate.yaml': tidegateYaml([prod, side]),
      'apps/prod/app.yaml': configMapYaml('app', { v: '1' }),
      'apps/side/side.yaml': configMapYaml('side', { v: '1' }),
    });
    await w.deliver();
    await approve(w.ctx, { repo: w.url, target: prod.name, revision: await w.head(), by: 'ops', via: 'cli' });
    expect(await w.data(namespace, 'app')).toEqual({ v: '1' });

    const sha = await w.push('mallory', { 'apps/side/app.yaml': configMapYaml('app', { v: 'evil' }) });
    // The scheduled poll looks at the branch head (every target), then GitHub's push webhook (the files it changed) arrives.
    await w.queue.send([{ type: 'push', repo: w.url, ref: 'refs/heads/main', sha, paths: null, reason: 'poll' }]);
    await w.queue.idle();
    const from = w.outcomes.length;
    await w.queue.send([
      { type: 'push', repo: w.url, ref: 'refs/heads/main', sha, paths: ['apps/side/app.yaml'], reason: 'push' },
    ]);
    await w.queue.idle();
    expect(w.queue.deadLetters).toEqual([]);
    const live = await w.client.get('v1', 'ConfigMap', namespace, 'app');
    expect({ data: live?.['data'], owner: live?.metadata.labels?.['tidegate.dev/target'] }).toEqual({
      data: { v: '1' },
      owner: prod.name,
    });
    expect(w.results(from).find((r) => r.target === side.name)?.outcome).toBe('held');
  }, 120_000);
});
