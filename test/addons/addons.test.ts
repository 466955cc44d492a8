import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, startHelmRepo, startRegistry, type HelmRepo } from '../../devenv/index.js';
import { localSettings } from '../../shared/config/index.js';
import { groupVersionOf } from '../../shared/cluster/index.js';
import { entryRef, type SyncResult } from '../../shared/model/index.js';
import { readTargetState } from '../../shared/state/index.js';
import { syncRepo } from '../../shared/usecases/index.js';
import { removeTarget } from '../../shared/usecases/remove.js';
import { gitopsRepo } from '../helpers/engine.js';
import { testEnv, uniqueName } from '../helpers/env.js';
import { standInControllers } from '../helpers/controllers.js';
import { ADDONS, type AddonChart } from './charts.js';

/**
 * The add-ons EKS clusters run, as Helm installs them (charts in their shapes, served by a Helm
 * repository, or by an OCI registry for those distributed so): installed with their install hooks
 * in order (deleted as their policies say), synced again as a no-op (no certificate or password
 * regenerated: every object keeps its resourceVersion), upgraded by a version bump with upgrade
 * hooks (never install hooks), and removed with their delete hooks, every object pruned. Stand-in
 * controllers finish Jobs and make workloads ready.
 */
const hooksRun = (r: SyncResult | undefined, release: string): string[] =>
  (r?.hooks ?? []).map((h) => `${h.phase} ${h.ref.kind}/${h.ref.name.replace(`${release}-`, '')}`);

/** Add-ons distributed as OCI artifacts (karpenter only so, cert-manager too): served by the test registry. */
const FROM_OCI = new Set(['karpenter', 'cert-manager']);

describe('add-ons as Helm installs them', () => {
  let helm: HelmRepo;
  let registry: Awaited<ReturnType<typeof startRegistry>>;
  const registryDir = mkdtempSync(join(tmpdir(), 'addons-registry-'));
  const stops: Array<() => Promise<void>> = [];
  beforeAll(async () => {
    helm = await startHelmRepo(testEnv().tools.helm);
    registry = await startRegistry(registryDir);
    for (const chart of ADDONS)
      for (const v of ['1.0.0', '1.1.0']) {
        const archive = await helm.publishFiles(chart.files(v));
        if (FROM_OCI.has(chart.name))
          await run(testEnv().tools.helm, ['push', archive, `oci://${registry.host}/charts`, '--plain-http']);
      }
  });
  afterAll(async () => {
    for (const stop of stops) await stop();
    await helm?.stop();
    await registry?.stop();
    rmSync(registryDir, { recursive: true, force: true });
  });
  const sourceOf = (chart: AddonChart, version: string) =>
    FROM_OCI.has(chart.name)
      ? { repository: `oci://${registry.host}/charts`, name: chart.name, version, insecure: true }
      : { repository: helm.url, name: chart.name, version };

  it.each(ADDONS.map((a) => [a.name, a] as [string, AddonChart]))(
    '%s: install hooks in order, a no-op second sync, upgrade hooks on a version bump, delete hooks and a full prune on removal',
    async (_name, chart) => {
      const repo = await gitopsRepo('addon');
      const target = uniqueName(chart.name.slice(0, 12));
      const settings = localSettings();
      const ctx = {
        ...repo.engine,
        settings: { ...settings, render: { ...settings.render, allowedHosts: ['127.0.0.1'] } },
      };
      const client = repo.engine.client;
      stops.push(standInControllers(client, [target]));
      const config = (version: string | undefined) =>
        stringify({
          targets: [
            ...(version
              ? [
                  {
                    name: target,
                    cluster: 'test',
                    path: 'addon',
                    chart: sourceOf(chart, version),
                    helm: { values: ['values.yaml'] },
                    targetNamespace: target,
                    timeout: '60s',
                  },
                ]
              : []),
            { name: `${target}-other`, cluster: 'test', path: 'other' },
          ],
        });
      const commit = (version: string | undefined) =>
        repo.commit({
          'tidegate.yaml': config(version),
          'addon/values.yaml': stringify(chart.values),
          'other/cm.yaml': stringify({
            apiVersion: 'v1',
            kind: 'ConfigMap',
            metadata: { name: `${target}-other`, namespace: 'default' },
          }),
        });
      const sync = async () => (await syncRepo(ctx, { repo: repo.url, target }))[0];

      await commit('1.0.0');
      const install = await sync();
      expect(install?.outcome, install?.error).toBe('applied');
      expect(hooksRun(install, target)).toEqual(chart.hooks.install);
      expect((install?.hooks ?? []).every((h) => h.outcome === 'succeeded')).toBe(true);
      expect(install?.health.status).not.toBe('failed');
      // Install hooks deleted as their policies say; none is in the inventory.
      const state = await readTargetState(client, target);
      const ids = state.inventory.map(entryRef);
      for (const h of install?.hooks ?? []) {
        const info = client.resourceForGroupKind(h.ref.group, h.ref.kind);
        const live = info && (await client.get(groupVersionOf(info), h.ref.kind, h.ref.namespace, h.ref.name));
        expect(live === undefined, `${h.ref.kind}/${h.ref.name}`).toBe(h.deleted === true);
        expect(ids.some((r) => r.kind === h.ref.kind && r.name === h.ref.name)).toBe(false);
      }

      // A second sync: nothing written, every object as it was (no generated value regenerated).
      const versions = async (): Promise<string[]> => {
        const objects = await Promise.all(
          (await readTargetState(client, target)).inventory.map(async (e) => {
            const ref = entryRef(e);
            const live = await client.get(ref.apiVersion, ref.kind, ref.namespace || undefined, ref.name);
            return `${e.id}@${live?.metadata.resourceVersion ?? 'missing'}`;
          }),
        );
        return objects.sort();
      };
      const before = await versions();
      expect(before.join()).not.toMatch(/missing/);
      const again = await sync();
      expect(again?.outcome, JSON.stringify(again?.changeSet.changes.filter((c) => c.action !== 'unchanged'))).toBe(
        'unchanged',
      );
      expect(again?.hooks).toBeUndefined();
      expect(await versions()).toEqual(before);

      // A version bump: upgrade hooks only.
      await commit('1.1.0');
      const upgrade = await sync();
      expect(upgrade?.outcome, upgrade?.error).toBe('applied');
      expect(hooksRun(upgrade, target)).toEqual(chart.hooks.upgrade);
      const bumped = (await readTargetState(client, target)).inventory;
      expect(bumped.length).toBe(before.length);

      // Removed from tidegate.yaml: delete hooks run, every object pruned.
      const sha = await commit(undefined);
      const removal = await removeTarget(ctx, {
        repo: repo.url,
        cluster: 'test',
        target,
        revision: { ref: 'refs/heads/main', sha },
      });
      expect(removal?.outcome, removal?.error).toBe('applied');
      expect(hooksRun(removal, target)).toEqual(chart.hooks.delete);
      expect(removal?.changeSet.changes.filter((c) => c.action === 'deleted').length).toBe(bumped.length);
      expect((await readTargetState(client, target)).removed).toBeDefined();
    },
    120_000,
  );
});
