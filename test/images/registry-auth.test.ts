import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushImage, startRegistry, type Registry } from '../../devenv/index.js';
import { configSchema } from '../../shared/config/schema.js';
import { latestImage } from '../../shared/images/index.js';

/**
 * A registry that requires bearer tokens, as GHCR and Docker Hub do: the distribution registry
 * with token auth, its tokens signed by a token server and trusted through a JWKS file.
 */
describe('registry with the bearer token challenge (distribution + token server)', () => {
  let registry: Registry;
  const dir = mkdtempSync(join(tmpdir(), 'tidegate-reg-auth-'));
  const user = { username: 'robot', password: 's3cret-registry-password' };
  beforeAll(async () => {
    registry = await startRegistry(dir, { tokenAuth: user });
    for (const tag of ['1.0.0', '1.4.0', '2.0.0-rc.1', '1.4.0.sig']) await pushImage(registry, 'team/api', tag);
  });
  afterAll(async () => {
    await registry?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const policy = (digest = false) =>
    configSchema.parse({
      targets: [{ name: 't', cluster: 'c' }],
      images: [
        {
          name: 'api',
          repository: `${registry.host}/team/api`,
          insecure: true,
          policy: { semver: { range: '>=1.0.0' } },
          digest,
        },
      ],
    }).images[0]!;

  it('answers the challenge with basic credentials for a token and picks the tag by policy (digest too)', async () => {
    const anonymous = await fetch(`${registry.url}/v2/team/api/tags/list`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toMatch(
      /^Bearer realm="http:\/\/127\.0\.0\.1:\d+\/token",service="tidegate-test-registry",scope="repository:team\/api:pull"/,
    );
    const latest = await latestImage(policy(true), {
      credentials: (host) => (host === registry.host ? user : undefined),
    });
    expect(latest).toMatchObject({ name: `${registry.host}/team/api`, tag: '1.4.0' });
    const manifest = await fetch(`${registry.url}/v2/team/api/manifests/1.4.0`, {
      method: 'HEAD',
      headers: { authorization: 'Bearer x' },
    });
    expect(manifest.status).toBe(401); // a forged token is refused: the digest below came through a real token
    expect(latest.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('without credentials, or with a wrong password, fails with the reason and no tag', async () => {
    await expect(latestImage(policy())).rejects.toThrow(`listing tags of ${registry.host}/team/api: HTTP 401`);
    await expect(
      latestImage(policy(), { credentials: () => ({ username: 'robot', password: 'wrong' }) }),
    ).rejects.toThrow(/token request to 127\.0\.0\.1:\d+ failed: HTTP 401/);
  });
});
