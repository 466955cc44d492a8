import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
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

/**
 * A registry reached over plain http (`insecure: true`) on a host other than loopback: whatever it
 * (or anyone on the path) challenges, the configured credentials are not sent in clear text.
 */
describe('registry over plain http, not on loopback', () => {
  const address = Object.values(networkInterfaces())
    .flat()
    .find((i) => i?.family === 'IPv4' && !i.internal)?.address;
  const received: Array<string | undefined> = [];
  let server: Server;
  let host = '';
  beforeAll(async () => {
    if (!address) throw new Error('this machine has no IPv4 address other than loopback to serve the test from');
    server = createServer((req, res) => {
      received.push(req.headers.authorization);
      const challenge = req.url?.startsWith('/v2/bearer/')
        ? `Bearer realm="http://${host}/token",service="x",scope="repository:bearer/app:pull"`
        : 'Basic realm="registry"';
      if (req.url?.startsWith('/token'))
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"token":"t"}');
      else res.writeHead(401, { 'www-authenticate': challenge }).end();
    });
    await new Promise<void>((resolve) => server.listen(0, address, resolve));
    host = `${address}:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it.each(['basic/app', 'bearer/app'])(
    'a %s challenge over http: no credentials sent, an error saying why',
    async (repository) => {
      received.length = 0;
      const policy = configSchema.parse({
        targets: [{ name: 't', cluster: 'c' }],
        images: [
          { name: 'app', repository: `${host}/${repository}`, insecure: true, policy: { semver: { range: '*' } } },
        ],
      }).images[0]!;
      const secret = { username: 'ghuser', password: 'ghp_never_in_clear_text' };
      await expect(latestImage(policy, { credentials: () => secret })).rejects.toThrow(/401|requires credentials/);
      expect(received.length).toBeGreaterThan(0);
      expect(received.filter((a) => a?.startsWith('Basic '))).toEqual([]);
    },
  );
});
