import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, startHelmRepo, startRegistry, type HelmRepo } from '../../devenv/index.js';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { createRuntime } from '../../shared/aws/runtime.js';
import { localSettings } from '../../shared/config/index.js';
import { readTargetState } from '../../shared/state/index.js';
import { syncRepo } from '../../shared/usecases/index.js';
import { gitopsRepo } from '../helpers/engine.js';
import { testEnv, uniqueName } from '../helpers/env.js';
import { awsConfig, testClusterSetting, useMotoEnv } from '../helpers/lambda.js';

/**
 * Charts from an HTTP Helm repository (a local one: index.yaml and archives made by helm package
 * and helm repo index): a version range resolves to the newest match at sync time, the archive is
 * checked against index.yaml's digest and cached by it, values come from Git.
 */
const CONFIG = `apiVersion: v1
kind: ConfigMap
metadata:
  name: web
data:
  chartVersion: {{ .Chart.Version | quote }}
  greeting: {{ .Values.greeting | quote }}
`;

describe('charts from Helm repositories', () => {
  let helm: HelmRepo;
  beforeAll(async () => {
    helm = await startHelmRepo(testEnv().tools.helm);
    for (const v of ['0.1.0', '0.2.0', '1.0.0'])
      await helm.publish('web', v, { 'config.yaml': CONFIG }, 'greeting: from the chart\n');
  });
  afterAll(() => helm?.stop());

  async function chartTarget(chart: Record<string, unknown>, allowedHosts = ['127.0.0.1']) {
    const repo = await gitopsRepo('chart-repo');
    const target = uniqueName('chart');
    const commit = (c: Record<string, unknown>, values: string) =>
      repo.commit({
        'tidegate.yaml': stringify({
          targets: [
            {
              name: target,
              cluster: 'test',
              path: 'apps/web',
              chart: c,
              helm: { values: ['values.yaml'] },
              targetNamespace: target,
              wait: false,
            },
          ],
        }),
        'apps/web/values.yaml': values,
      });
    await commit(chart, 'greeting: from git\n');
    const settings = localSettings();
    const ctx = { ...repo.engine, settings: { ...settings, render: { ...settings.render, allowedHosts } } };
    const sync = async () => (await syncRepo(ctx, { repo: repo.url }))[0];
    const live = () => repo.engine.client.get('v1', 'ConfigMap', target, 'web');
    return { repo, target, commit, sync, live, ctx };
  }

  it('a version range renders the newest match with values from Git, records the version and digest in history; a newer release is picked up by the next sync', async () => {
    const t = await chartTarget({ repository: helm.url, name: 'web', version: '^0.1.0' });
    const first = await t.sync();
    expect(first?.outcome, first?.error).toBe('applied');
    expect(first?.chart).toMatchObject({ name: 'web', version: '0.1.0' });
    expect((await t.live())?.['data']).toEqual({ chartVersion: '0.1.0', greeting: 'from git' });
    const wide = await chartTarget({ repository: helm.url, name: 'web', version: '>=0.1.0 <1.0.0' });
    expect((await wide.sync())?.chart?.version).toBe('0.2.0');

    await helm.publish('web', '0.1.5', { 'config.yaml': CONFIG });
    const second = await t.sync();
    expect(second?.outcome, second?.error).toBe('applied');
    expect((await t.live())?.['data']).toEqual({ chartVersion: '0.1.5', greeting: 'from git' });
    const history = (await readTargetState(t.repo.engine.client, t.target)).history;
    expect(history.map((e) => e.chart?.version)).toEqual(['0.1.0', '0.1.5']);
    expect(history[1]?.chart?.digest).toMatch(/^[0-9a-f]{64}$/);

    // Nothing new: the cached archive is used, nothing is written.
    const before = helm.requests.filter((p) => p.endsWith('.tgz')).length;
    const third = await t.sync();
    expect(third?.outcome, third?.error).toBe('unchanged');
    expect(helm.requests.filter((p) => p.endsWith('.tgz')).length).toBe(before);
  });

  it('refused, nothing applied: an archive whose digest is not the one in index.yaml, a host not listed, a redirect, a range nothing matches', async () => {
    await helm.publish('tampered', '1.0.0', { 'config.yaml': CONFIG });
    helm.tamper('tampered', '1.0.0');
    const cases: Array<[Record<string, unknown>, string[] | undefined, RegExp]> = [
      [
        { repository: helm.url, name: 'tampered', version: '1.0.0' },
        undefined,
        /the archive of version 1\.0\.0 has digest [0-9a-f]{64}, the repository says [0-9a-f]{64}/,
      ],
      [
        { repository: helm.url, name: 'web', version: '1.0.0' },
        [],
        /host 127\.0\.0\.1 is not listed in the deploy-time setting render\.allowedHosts/,
      ],
      [{ repository: helm.url, name: 'web', version: '^2.0.0' }, undefined, /no version matches \^2\.0\.0/],
    ];
    for (const [chart, hosts, error] of cases) {
      const t = await chartTarget(chart, hosts);
      const res = await t.sync();
      expect(res?.outcome).toBe('failed');
      expect(res?.error).toMatch(error);
      expect(await t.live()).toBeUndefined();
    }
    helm.redirect = true;
    try {
      const t = await chartTarget({ repository: helm.url, name: 'web', version: '1.0.0' });
      const res = await t.sync();
      expect(res?.error).toMatch(/answered with a redirect \(HTTP 302\); redirects are not followed/);
      expect(await t.live()).toBeUndefined();
    } finally {
      helm.redirect = false;
    }
  });

  it('from an HTTP repository behind basic auth: the registryCredentials of its host are sent to it (index and archive), and only to it; without them nothing is applied', async () => {
    const user = { username: 'charts-reader', password: 'http-chart-repo-password' };
    const locked = await startHelmRepo(testEnv().tools.helm, { basicAuth: user });
    try {
      await locked.publish('private', '1.2.0', { 'config.yaml': CONFIG }, 'greeting: private\n');
      const chart = { repository: locked.url, name: 'private', version: '1.x' };
      const t = await chartTarget(chart);
      const host = new URL(locked.url).host;
      const ctx = { ...t.ctx, registry: { credentials: (h: string) => (h === host ? user : undefined) } };
      const [res] = await syncRepo(ctx, { repo: t.repo.url });
      expect(res?.outcome, res?.error).toBe('applied');
      expect((await t.live())?.['data']).toEqual({ chartVersion: '1.2.0', greeting: 'from git' });

      // Credentials of another host are not sent: the repository answers 401 and nothing is applied.
      const other = await chartTarget(chart);
      const refusedCtx = {
        ...other.ctx,
        registry: { credentials: (h: string) => (h === 'elsewhere.example' ? user : undefined) },
      };
      const [refused] = await syncRepo(refusedCtx, { repo: other.repo.url });
      expect(refused?.outcome).toBe('failed');
      expect(refused?.error).toMatch(/index\.yaml answered HTTP 401/);
      expect(refused?.error).not.toContain(user.password);
      expect(await other.live()).toBeUndefined();
    } finally {
      await locked.stop();
    }
  });

  it('from an OCI registry with token auth (charts pushed with helm push): the deploy-time registryCredentials of its host (a secret) answer the challenge, a range picks the newest tag; without credentials nothing is applied', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'chart-oci-'));
    const user = { username: 'charts-robot', password: 'chart-registry-password' };
    const registry = await startRegistry(dir, { tokenAuth: user });
    try {
      for (const v of ['0.1.0', '0.2.0', '1.0.0']) {
        const archive = await helm.publish('ociweb', v, { 'config.yaml': CONFIG }, 'greeting: from the chart\n');
        await run(testEnv().tools.helm, [
          'push',
          archive,
          `oci://${registry.host}/charts`,
          '--plain-http',
          '--username',
          user.username,
          '--password',
          user.password,
        ]);
      }
      const chart = { repository: `oci://${registry.host}/charts`, name: 'ociweb', version: '<1.0.0', insecure: true };
      // The deployed runtime: registryCredentials of the deploy-time settings, the password in Secrets Manager (moto).
      const secret = `tidegate/${uniqueName('oci-chart')}`;
      await new SecretsManagerClient(awsConfig()).send(
        new CreateSecretCommand({ Name: secret, SecretString: user.password }),
      );
      const t = await chartTarget(chart);
      useMotoEnv({
        repositories: [{ url: t.repo.url, branch: 'main' }],
        clusters: { test: testClusterSetting() },
        render: { allowedHosts: ['127.0.0.1'] },
        registryCredentials: { [registry.host]: { username: user.username, password: { secretsManager: secret } } },
        queueUrl: 'http://127.0.0.1:1/unused',
      });
      process.env['TIDEGATE_HELM'] = testEnv().tools.helm; // the kubectl/helm layer
      const runtime = await createRuntime('test');
      const { engine } = await runtime.git();
      const [res] = await syncRepo(engine, { repo: t.repo.url });
      expect(res?.outcome, res?.error).toBe('applied');
      expect(res?.chart).toMatchObject({ name: 'ociweb', version: '0.2.0' });
      expect((await t.live())?.['data']).toEqual({ chartVersion: '0.2.0', greeting: 'from git' });

      const anonymous = await chartTarget(chart);
      const refused = await anonymous.sync();
      expect(refused?.outcome).toBe('failed');
      expect(refused?.error).toMatch(/chart ociweb <1\.0\.0 from oci:\/\/127\.0\.0\.1:\d+\/charts: .*HTTP 401/);
      expect(refused?.error).not.toContain(user.password);
      expect(await anonymous.live()).toBeUndefined();
    } finally {
      await registry.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
