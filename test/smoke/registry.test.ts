import { createServer } from 'node:http';
import { describe, expect, it } from 'vitest';
import { freePort, pushImage, setNotificationTarget, waitForEvent, type RegistryEvent } from '../../devenv/index.js';
import { testEnv, uniqueName } from '../helpers/env.js';

describe('OCI registry (distribution)', () => {
  it('accepts a pushed image, lists its tag and notifies the push', async () => {
    const reg = testEnv().registry;
    const repo = `smoke/${uniqueName('app')}`;
    const digest = await pushImage(reg, repo, '1.2.3');
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);

    const tags = (await (await fetch(`${reg.url}/v2/${repo}/tags/list`)).json()) as { name: string; tags: string[] };
    expect(tags).toEqual({ name: repo, tags: ['1.2.3'] });

    const event = await waitForEvent(
      reg,
      (e) => e.action === 'push' && e.target.repository === repo && e.target.tag === '1.2.3',
    );
    expect(event.target.digest).toBe(digest);
    expect(event.target.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
  });

  it('forwards notifications to the URL a test points it at', async () => {
    const reg = testEnv().registry;
    const received: RegistryEvent[] = [];
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push(...(JSON.parse(Buffer.concat(chunks).toString('utf8')) as { events: RegistryEvent[] }).events);
        res.writeHead(200).end();
      });
    });
    const port = await freePort();
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    try {
      await setNotificationTarget(reg, `http://127.0.0.1:${port}/hook`);
      const repo = `smoke/${uniqueName('fwd')}`;
      await pushImage(reg, repo, 'v1');
      await waitForEvent(reg, (e) => e.target.repository === repo && e.target.tag === 'v1');
      await expect
        .poll(
          () => received.some((e) => e.action === 'push' && e.target.repository === repo && e.target.tag === 'v1'),
          { timeout: 10_000 },
        )
        .toBe(true);
    } finally {
      await setNotificationTarget(reg, null);
      server.close();
    }
  });
});
