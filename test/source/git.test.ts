import { existsSync, lstatSync, mkdtempSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GitWorkspace, createBareRepo } from '../../devenv/index.js';
import { startGitServer, type GitServer } from '../../devenv/git-server.js';
import { checkoutRevision, listBranches, resolveRevision } from '../../shared/source/index.js';
import { SourceError } from '../../shared/source/git.js';
import { uniqueName } from '../helpers/env.js';

describe('source: fetch exactly one commit over HTTP with token auth', () => {
  let server: GitServer;
  let ws: GitWorkspace;
  let url: string;
  const token = 'test-token-123';
  const cache = mkdtempSync(join(tmpdir(), 'src-cache-'));
  const shas: string[] = [];

  beforeAll(async () => {
    server = await startGitServer({ root: mkdtempSync(join(tmpdir(), 'git-auth-')), token });
    url = await createBareRepo(server, uniqueName('src'));
    ws = await GitWorkspace.clone(server, url);
    const { chmodSync, mkdirSync, writeFileSync } = await import('node:fs');
    writeFileSync(join(ws.dir, 'run.sh'), '#!/bin/sh\n');
    chmodSync(join(ws.dir, 'run.sh'), 0o755);
    shas.push(await ws.commit({ 'app/cm.yaml': 'v: 1\n' }, 'one'));
    void mkdirSync;
    await ws.git('tag', '-a', 'v1.0.0', '-m', 'release 1.0.0');
    shas.push(await ws.commit({ 'app/cm.yaml': 'v: 2\n' }, 'two'));
    await ws.git('tag', 'v1.2.0');
    await ws.git('tag', 'v2.0.0-rc.1');
    await ws.git('tag', 'not-semver');
    await ws.git('push', '--quiet', 'origin', '--tags');
    shas.push(await ws.commit({ 'app/cm.yaml': 'v: 3\n' }, 'three'));
  });
  afterAll(async () => {
    ws.remove();
    await server.stop();
  });

  it('refuses without the token, with a clear error', async () => {
    await expect(resolveRevision({ url })).rejects.toThrow(SourceError);
    await expect(resolveRevision({ url })).rejects.toThrow(/cannot list refs of http:\/\/127\.0\.0\.1:\d+\/.*\.git/);
  });

  it.each([
    ['a branch', {}, 'refs/heads/main', 2],
    ['an annotated tag (peeled to its commit)', { tag: 'v1.0.0' }, 'refs/tags/v1.0.0', 0],
    ['a semver range (highest match, pre-releases excluded)', { semver: '>=1.0.0' }, 'refs/tags/v1.2.0', 1],
    ['a semver range that admits the pre-release', { semver: '>=2.0.0-rc.0' }, 'refs/tags/v2.0.0-rc.1', 1],
  ])('resolves %s', async (_case, ref, expectedRef, shaIndex) => {
    const rev = await resolveRevision({ url, token }, ref);
    // An annotated tag keeps the tag object it was resolved through (its signature is checked on that one).
    expect(rev).toEqual({ ref: expectedRef, sha: shas[shaIndex as number], ...(rev.tag ? { tag: rev.tag } : {}) });
    if ('tag' in ref) expect(rev.tag).toMatch(/^[0-9a-f]{40}$/);
    if ('tag' in ref) expect(rev.tag).not.toBe(rev.sha);
  });

  it('lists branch heads with one ls-remote', async () => {
    const before = server.requests.get('info/refs') ?? 0;
    expect((await listBranches({ url, token })).get('refs/heads/main')).toBe(shas[2]);
    expect(server.requests.get('info/refs')).toBe(before + 1);
  });

  it('checks out an older commit of a branch that moved on, with modes and nothing else', async () => {
    const co = await checkoutRevision({ url, token }, { ref: 'refs/heads/main', sha: shas[0] as string }, cache);
    expect(readFileSync(join(co.dir, 'app/cm.yaml'), 'utf8')).toBe('v: 1\n');
    expect(statSync(join(co.dir, 'run.sh')).mode & 0o111).not.toBe(0);
    const head = await checkoutRevision({ url, token }, { ref: 'refs/heads/main', sha: shas[2] as string }, cache);
    expect(readFileSync(join(head.dir, 'app/cm.yaml'), 'utf8')).toBe('v: 3\n');
    expect(existsSync(join(head.dir, 'run.sh'))).toBe(true);
  });

  it('reuses the cached checkout without touching the server', async () => {
    const rev = { ref: 'refs/heads/main', sha: shas[2] as string };
    await checkoutRevision({ url, token }, rev, cache);
    const before = [...server.requests.values()].reduce((a, b) => a + b, 0);
    const again = await checkoutRevision({ url, token }, rev, cache);
    expect([...server.requests.values()].reduce((a, b) => a + b, 0)).toBe(before);
    expect(readFileSync(join(again.dir, 'app/cm.yaml'), 'utf8')).toBe('v: 3\n');
  });

  it('keeps symlinks as symlinks', async () => {
    await ws.git('checkout', '--quiet', 'main');
    const { symlinkSync } = await import('node:fs');
    symlinkSync('app/cm.yaml', join(ws.dir, 'link.yaml'));
    const sha = await ws.commit({}, 'symlink');
    const co = await checkoutRevision({ url, token }, { ref: 'refs/heads/main', sha }, cache);
    expect(lstatSync(join(co.dir, 'link.yaml')).isSymbolicLink()).toBe(true);
    expect(readlinkSync(join(co.dir, 'link.yaml'))).toBe('app/cm.yaml');
  });

  it('a cached checkout written to in place (content, a new file, a file turned into a link) is exported again from Git, not used', async () => {
    const { appendFileSync, rmSync, symlinkSync, writeFileSync } = await import('node:fs');
    const revision = { ref: 'refs/heads/main', sha: shas[2] ?? '' };
    const first = await checkoutRevision({ url, token }, revision, cache);
    for (const tamper of [
      () => appendFileSync(join(first.dir, 'app/cm.yaml'), 'tampered: true\n'),
      () => writeFileSync(join(first.dir, 'app/extra.yaml'), 'kind: ConfigMap\n'),
      () => {
        rmSync(join(first.dir, 'app/cm.yaml'));
        symlinkSync('/etc/hostname', join(first.dir, 'app/cm.yaml'));
      },
    ]) {
      tamper();
      const again = await checkoutRevision({ url, token }, revision, cache);
      expect(again.dir).toBe(first.dir);
      expect(lstatSync(join(again.dir, 'app/cm.yaml')).isFile()).toBe(true);
      expect(readFileSync(join(again.dir, 'app/cm.yaml'), 'utf8')).toBe('v: 3\n');
      expect(existsSync(join(again.dir, 'app/extra.yaml'))).toBe(false);
    }
  });

  it('says so when a commit is not on the branch', async () => {
    await expect(
      checkoutRevision({ url, token }, { ref: 'refs/heads/main', sha: 'f'.repeat(40) }, cache),
    ).rejects.toThrow(/is not reachable from main/);
  });
});
