import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startGitHub, startGitServer } from '../../devenv/index.js';

/**
 * A GitHub App with a fresh RSA key, the test GitHub that knows it, and a git server of its own
 * that accepts the App's unexpired installation tokens (and `seed-token`, for the test's own pushes).
 */
export async function startGitHubApp(app: { id: number; installationId: number; tokenTtlSeconds: number }) {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  const root = join(mkdtempSync(join(tmpdir(), 'tidegate-app-')), 'repos');
  const github = await startGitHub({ token: 'ghp_not_used_by_tidegate', gitRoot: root, app: { ...app, publicKey } });
  const git = await startGitServer({ root, token: 'seed-token', accepts: (t) => github.tokenValid(t) });
  return { privateKey, github, git, stop: async () => Promise.all([github.stop(), git.stop()]) };
}
