import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { serveLookups } from '../../shared/cluster/index.js';
import { testEngine } from '../helpers/engine.js';
import { uniqueName } from '../helpers/env.js';

/** Probe: raw requests to the lookup endpoint (what a holder of its token could send), confined to one namespace. */
describe('lookup endpoint path tricks (review probe)', () => {
  it('encoded slashes, dot segments, double slashes and query parameters never reach outside the scope', async () => {
    const { client } = testEngine();
    await client.discover();
    const mine = uniqueName('probe-mine');
    const other = uniqueName('probe-other');
    for (const ns of [mine, other])
      await client.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    await client.create({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'theirs', namespace: other },
      stringData: { token: 'other-namespace-token-value' },
    });
    const lookup = await serveLookups(client, { namespace: mine });
    try {
      const server = (
        JSON.parse(readFileSync(lookup.kubeconfig, 'utf8')) as { clusters: Array<{ cluster: { server: string } }> }
      ).clusters[0]!.cluster.server;
      const paths = [
        `/api/v1%2Fnamespaces%2F${other}%2Fsecrets%2Ftheirs`,
        `/api/v1%2fnamespaces%2f${other}%2fsecrets`,
        `/apis/apps%2Fv1%2F..%2F..%2Fapi%2Fv1%2Fnamespaces%2F${other}%2Fsecrets`,
        `/api/v1/namespaces/${mine}/secrets/..%2F..%2F${other}%2Fsecrets%2Ftheirs`,
        `/api/v1/namespaces/${mine}%2F..%2F${other}/secrets/theirs`,
        `/api/v1/namespaces/${mine}/../${other}/secrets/theirs`,
        `/api/v1/namespaces/${mine}/%2e%2e/%2e%2e/namespaces/${other}/secrets/theirs`,
        `//api/v1/namespaces/${other}/secrets/theirs`,
        `/api/v1/namespaces/${mine}/secrets?fieldSelector=metadata.namespace%3D${other}`,
        `/api/v1/secrets`,
        `/api/v1/namespaces/${mine}/secrets/x/../../../../namespaces/${other}/secrets/theirs`,
        `/api/v1/namespaces/${mine}/secrets;/../../${other}/secrets/theirs`,
      ];
      const answers: string[] = [];
      for (const p of paths) {
        const res = await fetch(`${server}${p}`);
        const text = await res.text();
        answers.push(`${res.status} ${p} ${text.includes('b3RoZXItbmFtZXNwYWNlLXRva2VuLXZhbHVl') ? 'LEAKED' : ''}`);
      }
      console.log(answers.join('\n'));
      expect(answers.filter((a) => a.endsWith('LEAKED'))).toEqual([]);
    } finally {
      await lookup.close();
    }
  });
});
