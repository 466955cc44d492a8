import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as fs from 'node:fs';
import git from 'isomorphic-git';
import http from 'isomorphic-git/http/node';
import { afterAll, describe, expect, it } from 'vitest';
import { GitWorkspace, createBareRepo } from '../../devenv/index.js';
import { testEnv, uniqueName } from '../helpers/env.js';

describe('git smart-HTTP server (git http-backend)', () => {
  const workspaces: GitWorkspace[] = [];
  afterAll(() => workspaces.forEach((w) => w.remove()));

  it('clones, commits, pushes and fetches over the real protocol', async () => {
    const env = testEnv().git;
    const url = await createBareRepo(env, uniqueName('smoke'));
    const ws = await GitWorkspace.clone(env, url);
    workspaces.push(ws);
    const first = await ws.commit({ 'apps/cm.yaml': 'kind: ConfigMap\n' }, 'first');

    // isomorphic-git (what tidegate uses) clones the pushed commit at depth 1.
    const dir = mkdtempSync(join(tmpdir(), 'iso-'));
    await git.clone({ fs, http, dir, url, ref: 'main', singleBranch: true, depth: 1 });
    expect(await git.resolveRef({ fs, dir, ref: 'HEAD' })).toBe(first);
    expect(readFileSync(join(dir, 'apps/cm.yaml'), 'utf8')).toBe('kind: ConfigMap\n');

    // A second push is seen by fetch.
    const second = await ws.commit({ 'apps/cm.yaml': null, 'apps/new.yaml': 'kind: Secret\n' }, 'second');
    const fetched = await git.fetch({ fs, http, dir, url, ref: 'main', singleBranch: true, depth: 1 });
    expect(fetched.fetchHead).toBe(second);
    expect(second).not.toBe(first);

    // And isomorphic-git can push back (image automation writes to Git this way).
    await git.checkout({ fs, dir, ref: second, force: true });
    fs.writeFileSync(join(dir, 'apps/new.yaml'), 'kind: Secret\nmetadata: {}\n');
    await git.add({ fs, dir, filepath: 'apps/new.yaml' });
    const third = await git.commit({
      fs,
      dir,
      message: 'third',
      author: { name: 'bot', email: 'bot@example.test' },
      parent: [second],
    });
    const pushed = await git.push({ fs, http, dir, url, ref: third, remoteRef: 'refs/heads/main' });
    expect(pushed.ok).toBe(true);
    expect((await ws.git('ls-remote', 'origin', 'refs/heads/main')).split('\t')[0]).toBe(third);
  });

  it('passes protocol v2 through to git', async () => {
    const env = testEnv().git;
    const name = uniqueName('v2');
    await createBareRepo(env, name);
    const res = await fetch(`${env.url}/${name}.git/info/refs?service=git-upload-pack`, {
      headers: { 'git-protocol': 'version=2' },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/x-git-upload-pack-advertisement');
    expect(await res.text()).toContain('version 2');
  });

  it('answers 404 for a repository that does not exist', async () => {
    const res = await fetch(`${testEnv().git.url}/missing-${uniqueName('x')}.git/info/refs?service=git-upload-pack`);
    expect(res.status).toBe(404);
  });
});
