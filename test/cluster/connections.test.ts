import { describe, expect, it } from 'vitest';
import { mapLimit } from '../../shared/apply/index.js';
import { EndpointAuth, KubeClient } from '../../shared/cluster/index.js';
import { kubeConfigFromFile } from '../../shared/cluster/kubeconfig.js';
import { freePort } from '../../devenv/index.js';
import { testEnv } from '../helpers/env.js';

/**
 * A TLS handshake (and a secure context built from the CA and client certificate) costs more CPU
 * than the request it carries: the client keeps its connections alive whichever way the cluster is
 * given, a kubeconfig (the CLI) or endpoint + CA + token (Lambda).
 */
describe('KubeClient connections', () => {
  const clients: Array<[string, () => KubeClient]> = [
    ['a kubeconfig (client certificate)', () => new KubeClient(kubeConfigFromFile(testEnv().kube.kubeconfigPath))],
    [
      'endpoint, CA and token',
      () => {
        const { server, caPem, token } = testEnv().kube;
        return new KubeClient(new EndpointAuth({ server, caPem, token }));
      },
    ],
  ];

  it.each(clients)('with %s, 60 requests 4 at a time open at most 4 connections', async (_, make) => {
    const client = make();
    try {
      await client.discover();
      const answers = await mapLimit(
        Array.from({ length: 60 }, (_, i) => i),
        4,
        () => client.get('v1', 'Namespace', undefined, 'default'),
      );
      expect(answers.every((a) => a?.metadata.name === 'default')).toBe(true);
      expect(client.totalRequests).toBe(62);
      expect(client.connectionsOpened).toBeGreaterThan(0);
      expect(client.connectionsOpened).toBeLessThanOrEqual(4);
    } finally {
      client.close();
    }
  });

  it('aborted while waiting to retry an unreachable apiserver: the error is the reason given (a deadline, a lost lease)', async () => {
    const server = `https://127.0.0.1:${await freePort()}`; // nothing listens there
    const client = new KubeClient(new EndpointAuth({ server, caPem: testEnv().kube.caPem }), undefined, {
      retry: { baseMs: 1000, maxMs: 1000 },
    });
    const deadline = new AbortController();
    const reason = new Error('deadline reached');
    setTimeout(() => deadline.abort(reason), 300);
    await expect(client.discover(deadline.signal)).rejects.toBe(reason);
    expect(client.retries).toBeGreaterThan(0);
    client.close();
  });
});
