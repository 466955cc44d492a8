import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import git from 'isomorphic-git';
import * as openpgp from 'openpgp';
import { beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { run } from '../../devenv/index.js';
import { syncRepo, type EngineContext } from '../../shared/usecases/index.js';
import type { TrustedKey } from '../../shared/source/index.js';
import { uniqueName } from '../helpers/env.js';
import { configMap, gitopsRepo, yamlDocs } from '../helpers/engine.js';

/**
 * Signature verification against the real git server: SSH signatures made by git itself
 * (gpg.format=ssh, ssh-keygen), OpenPGP signatures made with openpgp.js through isomorphic-git's
 * signing hook (binary detached signatures, as gpg makes for git).
 */
describe('commit and tag signatures (gate verify)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tidegate-keys-'));
  const keys: Record<string, { private: string; public: string }> = {};
  beforeAll(async () => {
    for (const name of ['release', 'intruder']) {
      await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `${name}@example.test`, '-f', join(dir, name)]);
      keys[`ssh-${name}`] = { private: join(dir, name), public: readFileSync(join(dir, `${name}.pub`), 'utf8') };
      const pgp = await openpgp.generateKey({
        type: 'ecc',
        curve: 'ed25519Legacy',
        userIDs: [{ name, email: `${name}@example.test` }],
        format: 'armored',
      });
      keys[`pgp-${name}`] = { private: pgp.privateKey, public: pgp.publicKey };
    }
  });
  const trusted = (): TrustedKey[] => [
    { name: 'release-ssh', key: keys['ssh-release']?.public ?? '' },
    { name: 'release-pgp', key: keys['pgp-release']?.public ?? '' },
  ];

  async function signedRepo(verify: Record<string, unknown>, ref?: Record<string, string>) {
    const ns = uniqueName('sig');
    const repo = await gitopsRepo('sig');
    const ctx: EngineContext = {
      ...repo.engine,
      trustedKeys: (names) => Promise.resolve(trusted().filter((k) => names.includes(k.name))),
    };
    const files = (v: string) => ({
      'tidegate.yaml': stringify({
        targets: [
          {
            name: ns,
            cluster: 'c',
            path: 'apps',
            targetNamespace: ns,
            wait: false,
            gate: { verify },
            ...(ref ? { source: { ref } } : {}),
          },
        ],
      }),
      'apps/app.yaml': yamlDocs(configMap('app', { v })),
    });
    const write = (v: string) => {
      for (const [path, text] of Object.entries(files(v))) {
        fs.mkdirSync(join(repo.ws.dir, path, '..'), { recursive: true });
        writeFileSync(join(repo.ws.dir, path), text);
      }
    };
    /** git commit -S with an SSH key (git runs ssh-keygen -Y sign). */
    const sshCommit = async (v: string, key: string) => {
      write(v);
      await repo.ws.git('add', '--all');
      await repo.ws.git(
        '-c',
        'gpg.format=ssh',
        '-c',
        `user.signingkey=${key}`,
        'commit',
        '--quiet',
        '-S',
        '-m',
        `ssh-signed ${v}`,
      );
      await repo.ws.git('push', '--quiet', 'origin', 'HEAD:refs/heads/main');
      return (await repo.ws.git('rev-parse', 'HEAD')).trim();
    };
    /** An OpenPGP-signed commit (isomorphic-git's onSign with openpgp.js). */
    const pgpCommit = async (v: string, armoredKey: string) => {
      write(v);
      await repo.ws.git('add', '--all');
      const author = {
        name: 'Signer',
        email: 'signer@example.test',
        timestamp: Math.floor(Date.now() / 1000),
        timezoneOffset: 0,
      };
      const sha = await git.commit({
        fs,
        dir: repo.ws.dir,
        message: `pgp-signed ${v}`,
        author,
        committer: author,
        signingKey: armoredKey,
        onSign: async ({ payload, secretKey }) => ({
          signature: await openpgp.sign({
            message: await openpgp.createMessage({ binary: Buffer.from(payload) }),
            signingKeys: await openpgp.readPrivateKey({ armoredKey: secretKey }),
            detached: true,
            format: 'armored',
          }),
        }),
      });
      await repo.ws.git('push', '--quiet', 'origin', 'HEAD:refs/heads/main');
      return sha;
    };
    const unsignedCommit = async (v: string) => repo.commit(files(v), `unsigned ${v}`);
    const value = async () => (await repo.engine.client.get('v1', 'ConfigMap', ns, 'app'))?.['data'];
    const sync = async () => (await syncRepo(ctx, { repo: repo.url }))[0];
    return { ns, repo, ctx, sshCommit, pgpCommit, unsignedCommit, value, sync };
  }

  it('HEAD: commits signed by a trusted SSH or OpenPGP key apply; unsigned and untrusted-key commits are held with the reason', async () => {
    const s = await signedRepo({ mode: 'HEAD', keys: ['release-ssh', 'release-pgp'] });
    const ssh = await s.sshCommit('1', keys['ssh-release']?.private ?? '');
    const first = await s.sync();
    expect(first?.heldFor).toBeUndefined();
    expect(first).toMatchObject({ outcome: 'applied', revision: { sha: ssh } });
    expect(await s.value()).toEqual({ v: '1' });

    const unsigned = await s.unsignedCommit('2');
    expect((await s.sync())?.heldFor).toBe(
      `signature required (HEAD, tidegate.yaml at the last signed-off ${ssh.slice(0, 12)}): commit ${unsigned.slice(0, 12)}: not signed`,
    );

    await s.sshCommit('3', keys['ssh-intruder']?.private ?? '');
    expect((await s.sync())?.heldFor).toMatch(
      /: signed by an SSH key that is not trusted \(ed25519 [A-Za-z0-9+/]{43}\)$/,
    );

    await s.pgpCommit('4', keys['pgp-intruder']?.private ?? '');
    expect((await s.sync())?.heldFor).toMatch(
      /: signed by an OpenPGP key that is not trusted \(key ID [0-9a-f]{16}\)$/,
    );
    expect(await s.value()).toEqual({ v: '1' });

    const pgp = await s.pgpCommit('5', keys['pgp-release']?.private ?? '');
    expect(await s.sync()).toMatchObject({ outcome: 'applied', revision: { sha: pgp } });
    expect(await s.value()).toEqual({ v: '5' });
  });

  it('Tag: a release tag signed by a trusted key applies; an unsigned annotated tag is held', async () => {
    const s = await signedRepo({ mode: 'Tag', keys: ['release-ssh'] }, { semver: '>=1.0.0' });
    await s.unsignedCommit('1');
    await s.repo.ws.git(
      '-c',
      'gpg.format=ssh',
      '-c',
      `user.signingkey=${keys['ssh-release']?.private ?? ''}`,
      'tag',
      '-s',
      'v1.0.0',
      '-m',
      'release 1.0.0',
    );
    await s.repo.ws.git('push', '--quiet', 'origin', 'v1.0.0');
    const tagged = await s.sync();
    expect(tagged?.heldFor).toBeUndefined();
    expect(tagged).toMatchObject({ outcome: 'applied', revision: { ref: 'refs/tags/v1.0.0' } });

    await s.unsignedCommit('2');
    await s.repo.ws.git('tag', '-a', 'v1.1.0', '-m', 'release 1.1.0 (not signed)');
    await s.repo.ws.git('push', '--quiet', 'origin', 'v1.1.0');
    expect((await s.sync())?.heldFor).toBe(
      `signature required (Tag, tidegate.yaml at the last signed-off ${tagged?.revision.sha.slice(0, 12)}): tag v1.1.0: not signed`,
    );
    expect(await s.value()).toEqual({ v: '1' });
  });
});
