import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { uniqueName } from '../helpers/env.js';
import { configMap, gitopsRepo, oneTarget, secret, testEngine, yamlDocs } from '../helpers/engine.js';

/**
 * Repository B names a Secret of repository A's namespace in substituteFrom / helm.valuesFrom
 * (`namespace: <A's namespace>`). readClusterInputs reads any namespace the worker can read, with
 * the worker's cluster-wide identity: nothing ties the namespace read to B's targets. B then
 *  1. writes A's password into a ConfigMap of B's own namespace (readable by B's pods / B's team), and
 *  2. (Git-only, no cluster access needed) publishes it in B's sync error, transformed so the
 *     redaction (which matches the exact value and its base64 form only) does not see it.
 * Safe: B's sync is refused before anything of A's namespace is read; no value of A reaches B's
 * objects or B's results.
 */
const PASSWORD = 'hunter2correcthorsebattery';

describe("one repository's target reads another repository's Secrets", () => {
  it("B's substituteFrom / valuesFrom naming a Secret in A's namespace: refused, A's password reaches neither B's objects nor B's results", async () => {
    const { client } = testEngine();
    const a = await gitopsRepo('r2s-a', { owner: 'acme' });
    const b = await gitopsRepo('r2s-b', { owner: 'other' });
    const nsA = uniqueName('r2s-a');
    const nsB = uniqueName('r2s-b');
    const nsB2 = uniqueName('r2s-b2');
    await a.commit({
      'tidegate.yaml': oneTarget(nsA, 'apps'),
      'apps/secret.yaml': yamlDocs(secret('db', { password: PASSWORD })),
    });
    expect((await a.sync(nsA))[0]?.outcome).toBe('applied');

    await b.commit({
      'tidegate.yaml': stringify({
        targets: [
          {
            name: nsB,
            cluster: 'test',
            path: 'b',
            targetNamespace: nsB,
            wait: false,
            substituteFrom: [{ kind: 'Secret', name: 'db', namespace: nsA }],
          },
          {
            name: nsB2,
            cluster: 'test',
            path: 'chart',
            targetNamespace: nsB2,
            wait: false,
            helm: {
              valuesFrom: [{ kind: 'Secret', name: 'db', namespace: nsA, valuesKey: 'password', targetPath: 'pw' }],
            },
          },
        ],
      }),
      'b/leak.yaml': yamlDocs(configMap('leak', { pw: '${password}' })),
      'chart/Chart.yaml': stringify({ apiVersion: 'v2', name: 'leak', version: '0.1.0' }),
      'chart/templates/cm.yaml': '{{ fail (.Values.pw | splitList "" | join " ") }}\n',
    });
    const results = await b.sync();
    const byName = new Map(results.map((r) => [r.target, r]));
    const leaked = await client.get('v1', 'ConfigMap', nsB, 'leak');
    const published = JSON.stringify(results);
    const spaced = PASSWORD.split('').join(' ');
    expect({
      configMap: leaked?.['data'],
      publishedSpelledOut: published.includes(spaced),
      outcomes: [byName.get(nsB)?.outcome, byName.get(nsB2)?.outcome],
    }).toEqual({ configMap: undefined, publishedSpelledOut: false, outcomes: ['failed', 'failed'] });
    expect(byName.get(nsB)?.error).toMatch(/another repository/);
    expect(byName.get(nsB2)?.error).toMatch(/another repository/);
  }, 120_000);

  it("a Secret A applied into a namespace nobody's target created: B's substituteFrom of it is refused; an unowned Secret there is read; B's declaring it is refused as a takeover", async () => {
    const { client } = testEngine();
    const shared = uniqueName('r2s-shared');
    await client.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: shared } }, { fieldManager: 'test' });
    await client.apply(
      { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'plain', namespace: shared }, stringData: { who: 'ops' } },
      { fieldManager: 'test' },
    );
    const a = await gitopsRepo('r2s-a2', { owner: 'acme' });
    const b = await gitopsRepo('r2s-b3', { owner: 'other' });
    const tA = uniqueName('r2s-a2');
    const tB = uniqueName('r2s-b3');
    await a.commit({
      'tidegate.yaml': stringify({
        targets: [{ name: tA, cluster: 'test', path: 'apps', namespace: shared, wait: false }],
      }),
      'apps/secret.yaml': yamlDocs(secret('db', { password: PASSWORD })),
    });
    expect((await a.sync(tA))[0]?.outcome).toBe('applied');
    const spec = (from: string) => ({
      targets: [
        {
          name: tB,
          cluster: 'test',
          path: 'b',
          targetNamespace: tB,
          wait: false,
          substituteFrom: [{ kind: 'Secret', name: from, namespace: shared }],
        },
      ],
    });
    await b.commit({
      'tidegate.yaml': stringify(spec('db')),
      'b/leak.yaml': yamlDocs(configMap('leak', { pw: '${password}' })),
    });
    const refused = (await b.sync(tB))[0];
    expect([refused?.outcome, refused?.error]).toEqual([
      'failed',
      expect.stringMatching(new RegExp(`Secret ${shared}/db, which belongs to target ${tA} of another repository`)),
    ]);
    expect(await client.get('v1', 'ConfigMap', tB, 'leak')).toBeUndefined();

    await b.commit({
      'tidegate.yaml': stringify(spec('plain')),
      'b/leak.yaml': yamlDocs(configMap('leak', { pw: '${who}' })),
    });
    expect((await b.sync(tB))[0]?.outcome).toBe('applied');
    expect((await client.get('v1', 'ConfigMap', tB, 'leak'))?.['data']).toEqual({ pw: 'ops' });

    // Nor does B take A's Secret over by declaring it there: the takeover is refused, naming A.
    const tB2 = uniqueName('r2s-b4');
    await b.commit({
      'tidegate.yaml': stringify({
        targets: [{ name: tB2, cluster: 'test', path: 'c', namespace: shared, wait: false }],
      }),
      'c/db.yaml': yamlDocs(secret('db', { password: 'chosen-by-b' })),
    });
    const takeover = (await b.sync(tB2))[0];
    expect([takeover?.outcome, takeover?.error]).toEqual([
      'failed',
      expect.stringContaining(`which ${a.url} applies: a target never takes objects from another repository's target`),
    ]);
    const db = await client.get('v1', 'Secret', shared, 'db');
    expect(Buffer.from(String((db?.['data'] as Record<string, string>)['password']), 'base64').toString()).toBe(
      PASSWORD,
    );
  }, 120_000);
});
