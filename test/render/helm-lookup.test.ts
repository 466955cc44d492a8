import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { KubeObject, SyncResult } from '../../shared/model/index.js';
import { LOOKUP_READS } from '../../shared/cluster/index.js';
import { configAt, syncCheckout } from '../../shared/usecases/index.js';
import { gitopsRepo } from '../helpers/engine.js';
import { uniqueName } from '../helpers/env.js';

/**
 * A chart's `lookup` reads the cluster during a sync, as under `helm install/upgrade`: a chart that
 * keeps what it generated (a password, a webhook's CA and certificate) renders the same objects again,
 * so a second sync writes nothing. It reads only the release's namespace and a few cluster-scoped
 * kinds; previews (an unreviewed head) render without it and say so.
 */
const CHART = stringify({ apiVersion: 'v2', name: 'keeper', version: '0.1.0' });
const KEEPER = `{{- $auth := lookup "v1" "Secret" .Release.Namespace (printf "%s-auth" .Release.Name) }}
{{- $password := randAlphaNum 24 }}
{{- if $auth }}{{- $password = index $auth.data "password" | b64dec }}{{- end }}
apiVersion: v1
kind: Secret
metadata:
  name: {{ .Release.Name }}-auth
type: Opaque
data:
  password: {{ $password | b64enc | quote }}
---
{{- $tls := lookup "v1" "Secret" .Release.Namespace (printf "%s-webhook-tls" .Release.Name) }}
{{- $crt := "" }}{{- $key := "" }}{{- $ca := "" }}
{{- if $tls }}
{{- $crt = index $tls.data "tls.crt" }}{{- $key = index $tls.data "tls.key" }}{{- $ca = index $tls.data "ca.crt" }}
{{- else }}
{{- $caCert := genCA "keeper-ca" 3650 }}
{{- $cert := genSignedCert (printf "%s-webhook.%s.svc" .Release.Name .Release.Namespace) nil (list (printf "%s-webhook.%s.svc" .Release.Name .Release.Namespace)) 3650 $caCert }}
{{- $crt = $cert.Cert | b64enc }}{{- $key = $cert.Key | b64enc }}{{- $ca = $caCert.Cert | b64enc }}
{{- end }}
apiVersion: v1
kind: Secret
metadata:
  name: {{ .Release.Name }}-webhook-tls
type: kubernetes.io/tls
data:
  tls.crt: {{ $crt | quote }}
  tls.key: {{ $key | quote }}
  ca.crt: {{ $ca | quote }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-webhook-ca
data:
  caBundle: {{ $ca | quote }}
`;

const PROBE = `apiVersion: v1
kind: ConfigMap
metadata:
  name: probe
data:
  ownSecretKeys: {{ (lookup "v1" "Secret" .Release.Namespace "mine").data | keys | sortAlpha | join "," | quote }}
  otherSecret: {{ lookup "v1" "Secret" .Values.other "theirs" | toJson | quote }}
  allSecrets: {{ lookup "v1" "Secret" "" "" | toJson | quote }}
  otherConfigMaps: {{ lookup "v1" "ConfigMap" .Values.other "" | toJson | quote }}
  clusterRole: {{ lookup "rbac.authorization.k8s.io/v1" "ClusterRole" "" "admin" | toJson | quote }}
  otherNamespace: {{ (lookup "v1" "Namespace" "" .Values.other).metadata.name | quote }}
  isInstall: {{ .Release.IsInstall | quote }}
`;

const written = (r: SyncResult | undefined): string[] =>
  (r?.changeSet.changes ?? [])
    .filter((c) => c.action !== 'unchanged')
    .map((c) => `${c.action} ${c.ref.kind}/${c.ref.name}`);

async function chartRepo(templates: Record<string, string>, values = '') {
  const repo = await gitopsRepo('helm-lookup');
  const target = uniqueName('keeper');
  await repo.commit({
    'tidegate.yaml': stringify({
      targets: [{ name: target, cluster: 'test', path: 'chart', targetNamespace: target, wait: false }],
    }),
    'chart/Chart.yaml': CHART,
    'chart/values.yaml': values,
    ...Object.fromEntries(Object.entries(templates).map(([f, t]) => [`chart/templates/${f}`, t])),
  });
  return { repo, target };
}

describe('helm lookup', () => {
  it('a chart calling lookup that renders thousands of objects: at most LOOKUP_READS reads reach the cluster, and the render ends with its own error', async () => {
    const many = `{{- $probe := lookup "v1" "ConfigMap" .Release.Namespace "nothing" }}
{{- range until 3000 }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: cm-{{ . }}
{{- end }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: cm-0
`;
    const { repo, target } = await chartRepo({ 'many.yaml': many });
    const client = repo.engine.client;
    await client.discover();
    const before = client.requestCounts['GET'] ?? 0;
    const [result] = await repo.sync(target);
    expect(result?.outcome).toBe('failed');
    expect(result?.error).toMatch(/duplicate object/);
    expect((client.requestCounts['GET'] ?? 0) - before).toBeLessThanOrEqual(LOOKUP_READS + 20);
    expect(await client.get('v1', 'ConfigMap', target, 'cm-1')).toBeUndefined();
  }, 90_000);

  it('a chart keeping a generated password and a genCA certificate through lookup: the second sync writes nothing', async () => {
    const { repo, target } = await chartRepo({ 'keeper.yaml': KEEPER });
    const [first] = await repo.sync(target);
    expect(first?.outcome, first?.error).toBe('applied');
    const client = repo.engine.client;
    const read = async () =>
      Promise.all(['auth', 'webhook-tls'].map((n) => client.get('v1', 'Secret', target, `${target}-${n}`))) as Promise<
        KubeObject[]
      >;
    const before = await read();
    const [second] = await repo.sync(target);
    expect(second?.outcome, second?.error).toBe('unchanged');
    expect(written(second)).toEqual([]);
    const after = await read();
    expect(after.map((s) => s.metadata.resourceVersion)).toEqual(before.map((s) => s.metadata.resourceVersion));
    expect(after.map((s) => s['data'])).toEqual(before.map((s) => s['data']));
    const ca = await client.get('v1', 'ConfigMap', target, `${target}-webhook-ca`);
    expect((ca?.['data'] as Record<string, string>)['caBundle']).toBe(
      (after[1]?.['data'] as Record<string, string>)['ca.crt'],
    );

    // A change elsewhere in the chart (an upgrade): the generated values are still those in the cluster.
    await repo.commit({
      'chart/templates/extra.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\ndata:\n  a: b\n',
    });
    const [third] = await repo.sync(target);
    expect(written(third), third?.error).toEqual(['created ConfigMap/extra']);
    expect((await read()).map((s) => s['data'])).toEqual(before.map((s) => s['data']));

    // A preview of an unreviewed head renders without lookup, and says so: the certificate shows as a change.
    const { revision, dir, config } = await configAt(repo.engine, repo.url);
    const [preview] = await syncCheckout(repo.engine, {
      config,
      dir,
      revision,
      repo: repo.url,
      target,
      dryRun: true,
      standsFor: 'refs/heads/main',
    });
    expect(preview?.outcome, preview?.error).not.toBe('failed');
    expect(written(preview)).toContain(`configured Secret/${target}-webhook-tls`);
    expect(preview?.notes?.join(' ')).toMatch(/without reading the cluster .* lookup found nothing/);
    // The sync itself (a trusted head) still writes nothing.
    const [fourth] = await repo.sync(target);
    expect(fourth?.outcome, fourth?.error).toBe('unchanged');
    expect(fourth?.notes).toBeUndefined();
  });

  it('a render failing after its lookup read a Secret: its message is withheld (it could quote the value, spelled out)', async () => {
    const { repo, target } = await chartRepo({
      'x.yaml': `{{- $s := lookup "v1" "Secret" .Release.Namespace "api" }}
{{- if $s }}{{ fail (printf "LEAK[%s]" (index $s.data "token" | b64dec | splitList "" | join "_")) }}{{ end }}
apiVersion: v1
kind: ConfigMap
metadata:
  name: x
`,
    });
    const client = repo.engine.client;
    await client.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: target } });
    await client.create({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'api', namespace: target },
      stringData: { token: 'the-api-token-0123' },
    });
    const [result] = await repo.sync(target);
    expect(result?.outcome).toBe('failed');
    expect(result?.error).toBe(
      "helm template chart: the render failed; its message is withheld, as it may quote a value the chart's lookup read from a Secret",
    );
  });

  it('a chart calling lookup with custom resources of its own CRDs: the install reads the cluster too, and the next sync writes nothing', async () => {
    const group = `${uniqueName('l')}.example.com`;
    const crd = stringify({
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: `widgets.${group}` },
      spec: {
        group,
        names: { kind: 'Widget', listKind: 'WidgetList', plural: 'widgets', singular: 'widget' },
        scope: 'Namespaced',
        versions: [
          {
            name: 'v1',
            served: true,
            storage: true,
            schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
          },
        ],
      },
    });
    const { repo, target } = await chartRepo({
      'widget.yaml': `apiVersion: ${group}/v1
kind: Widget
metadata:
  name: w
spec:
  found: {{ (lookup "v1" "ConfigMap" .Release.Namespace "settings") | empty | not | quote }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
`,
    });
    await repo.commit({ 'chart/crds/widgets.yaml': crd });
    // helm builds the install's custom resources against discovery that lists what the chart's CRDs
    // define; its lookup finds the ConfigMap the install creates (as the next sync's will).
    const [install] = await repo.sync(target);
    expect(install?.outcome, install?.error).toBe('applied');
    expect(install?.notes).toBeUndefined();
    const widget = () => repo.engine.client.get(`${group}/v1`, 'Widget', target, 'w');
    expect((await widget())?.['spec']).toEqual({ found: 'true' });
    const [again] = await repo.sync(target);
    expect(again?.outcome, again?.error).toBe('unchanged');
  });

  it("lookup sees the release's namespace and some cluster-scoped kinds; never another namespace's Secrets, nor lists across namespaces", async () => {
    const other = uniqueName('lookup-other');
    const { repo, target } = await chartRepo({ 'probe.yaml': PROBE }, stringify({ other }));
    const client = repo.engine.client;
    for (const ns of [other, target])
      await client.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    await client.create({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'theirs', namespace: other },
      stringData: { token: 'the-other-namespaces-token' },
    });
    await client.create({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'theirs', namespace: other },
      data: { a: 'b' },
    });
    await client.create({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'mine', namespace: target },
      stringData: { password: 'in-the-release-namespace', user: 'me' },
    });
    const [first] = await repo.sync(target);
    expect(first?.outcome, first?.error).toBe('applied');
    const probe = (await client.get('v1', 'ConfigMap', target, 'probe'))?.['data'] as Record<string, string>;
    expect(probe).toEqual({
      ownSecretKeys: 'password,user',
      otherSecret: '{}',
      allSecrets: '{}',
      otherConfigMaps: '{}',
      clusterRole: '{}',
      otherNamespace: other,
      isInstall: 'true',
    });
    // Once applied, the release renders as an upgrade.
    await repo.commit({ 'chart/values.yaml': stringify({ other, bump: 1 }) });
    const [second] = await repo.sync(target);
    expect(second?.outcome, second?.error).toBe('applied');
    expect(
      ((await client.get('v1', 'ConfigMap', target, 'probe'))?.['data'] as Record<string, string>)['isInstall'],
    ).toBe('false');
  });
});
