import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { gitopsRepo } from '../helpers/engine.js';
import { uniqueName } from '../helpers/env.js';

/**
 * Found by a review with write access: a chart's lookup read "the release's namespace", which is
 * whatever the committing repository declares (`namespace:` / `targetNamespace:`), and the endpoint
 * started before any ownership check. So a repository read another repository's Secrets, or
 * tidegate's own state in tidegate-system, into an object in its own namespace or into the sync's
 * error. Now a release namespace another repository's target created, or tidegate-system, is not
 * read (the result says so), as valuesFrom reads neither.
 */
const CHART = stringify({ apiVersion: 'v2', name: 'spy', version: '0.1.0' });

/** Another repository whose target created its namespace and applied `object` there, synced. */
async function victimWith(prefix: string, object: Record<string, unknown>): Promise<string> {
  const victim = await gitopsRepo(prefix);
  const victimNs = uniqueName(prefix);
  await victim.commit({
    'tidegate.yaml': stringify({
      targets: [{ name: victimNs, cluster: 'test', path: 'app', targetNamespace: victimNs, wait: false }],
    }),
    'app/object.yaml': stringify(object),
  });
  const [v] = await victim.sync(victimNs);
  expect(v?.outcome, v?.error).toBe('applied');
  return victimNs;
}

describe('lookup confinement: a release namespace the repository chooses', () => {
  it("a target with `namespace: <another repository's namespace>`: lookup reads nothing there (the result says so), nothing of its Secret reaches the attacker's namespace", async () => {
    // The victim: another repository whose target created its namespace and applied a Secret there.
    const password = 'victim-db-password-0123456789';
    const victimNs = await victimWith('victim', {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'db' },
      stringData: { password },
    });

    // The attacker: its own namespace (target `own`), and a chart target whose release namespace is the victim's.
    const attacker = await gitopsRepo('attacker');
    const own = uniqueName('attacker');
    const spy = uniqueName('spy');
    await attacker.commit({
      'tidegate.yaml': stringify({
        targets: [
          { name: own, cluster: 'test', path: 'own', targetNamespace: own, wait: false },
          { name: spy, cluster: 'test', path: 'chart', namespace: victimNs, dependsOn: [own], wait: false },
        ],
      }),
      'own/cm.yaml': stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'own' }, data: { a: 'b' } }),
      'chart/Chart.yaml': CHART,
      'chart/templates/loot.yaml': `apiVersion: v1
kind: ConfigMap
metadata:
  name: loot
  namespace: ${own}
data:
  secret: {{ (lookup "v1" "Secret" .Release.Namespace "db").data | toJson | quote }}
`,
    });
    const results = await attacker.sync();
    const byName = Object.fromEntries(results.map((r) => [r.target, r]));
    expect(byName[own]?.outcome, byName[own]?.error).toBe('applied');
    const client = attacker.engine.client;
    const loot = (await client.get('v1', 'ConfigMap', own, 'loot'))?.['data'] as Record<string, string> | undefined;
    // SAFE: the victim's Secret never reaches the attacker's objects (nor its result).
    expect(loot?.['secret'] ?? '').not.toContain(Buffer.from(password).toString('base64'));
    expect(JSON.stringify(byName[spy] ?? {})).not.toContain(Buffer.from(password).toString('base64'));
    expect(byName[spy]?.outcome, byName[spy]?.error).toBe('applied');
    expect(loot?.['secret']).toBe('null');
    expect(byName[spy]?.notes?.join(' ')).toMatch(/namespace .* belongs to target .* of another repository/);
  }, 120_000);

  it("a target whose targetNamespace is another repository's namespace, failing the render with that repository's Secret spelled out: lookup reads nothing there, no value in the error", async () => {
    const password = 'victim-api-token-abcdefghij';
    const victimNs = await victimWith('victim2', {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'api' },
      stringData: { token: password },
    });

    const attacker = await gitopsRepo('attacker2');
    const spy = uniqueName('spy2');
    await attacker.commit({
      'tidegate.yaml': stringify({
        targets: [{ name: spy, cluster: 'test', path: 'chart', targetNamespace: victimNs, wait: false }],
      }),
      'chart/Chart.yaml': CHART,
      // The value is spelled out with a separator between characters: redaction matches only the value and its base64.
      'chart/templates/x.yaml': `{{- $s := lookup "v1" "Secret" .Release.Namespace "api" }}
{{- if $s }}{{ fail (printf "LEAK[%s]" (index $s.data "token" | b64dec | splitList "" | join "_")) }}{{ end }}
apiVersion: v1
kind: ConfigMap
metadata:
  name: x
`,
    });
    const [r] = await attacker.sync(spy);
    const spelled = password.split('').join('_');
    // SAFE: refused before reading anything of another repository's namespace; no value in the error.
    expect(r?.error ?? '').not.toContain(spelled);
  }, 120_000);

  it("a target with `namespace: tidegate-system`: lookup reads none of tidegate's own state ConfigMaps", async () => {
    const victimNs = await victimWith('victim3', {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'x' },
      data: { a: 'b' },
    });

    const attacker = await gitopsRepo('attacker3');
    const own = uniqueName('attacker3');
    const spy = uniqueName('spy3');
    await attacker.commit({
      'tidegate.yaml': stringify({
        targets: [
          { name: own, cluster: 'test', path: 'own', targetNamespace: own, wait: false },
          { name: spy, cluster: 'test', path: 'chart', namespace: 'tidegate-system', dependsOn: [own], wait: false },
        ],
      }),
      'own/cm.yaml': stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'own' }, data: { a: 'b' } }),
      'chart/Chart.yaml': CHART,
      'chart/templates/loot.yaml': `{{- $state := lookup "v1" "ConfigMap" .Release.Namespace "tidegate-target-${victimNs}" }}
apiVersion: v1
kind: ConfigMap
metadata:
  name: loot
  namespace: ${own}
data:
  state: {{ $state | toJson | quote }}
  names: {{ range (lookup "v1" "ConfigMap" .Release.Namespace "").items }}{{ .metadata.name }} {{ end }}
`,
    });
    const results = await attacker.sync();
    const byName = Object.fromEntries(results.map((r) => [r.target, r]));
    expect(byName[own]?.outcome, byName[own]?.error).toBe('applied');
    const loot = (await attacker.engine.client.get('v1', 'ConfigMap', own, 'loot'))?.['data'] as
      Record<string, string> | undefined;
    // SAFE: no lookup reads tidegate-system (tidegate's state of another repository's target).
    expect(loot?.['state'] ?? '{}').toBe('{}');
    expect(loot?.['names'] ?? '').not.toContain(`tidegate-target-${victimNs}`);
    expect(byName[spy]?.notes?.join(' ')).toMatch(/namespace tidegate-system is tidegate's own/);
  }, 120_000);
});
