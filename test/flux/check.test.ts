import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cli } from '../helpers/cli.js';
import { fluxRepository } from './fixture.js';

/** `tidegate flux check`: the migration report of a Flux repository, from its working tree. */
describe('tidegate flux check', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flux-check-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  for (const [path, text] of Object.entries(fluxRepository('c0ffee', 'https://charts.example.com/podinfo'))) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }

  it('lists what each Flux object becomes and what is read differently, exit 0 when everything is supported', async () => {
    const { code, out, err } = await cli('flux', 'check', '--dir', dir);
    expect(err).toBe('');
    expect(code).toBe(0);
    expect(out).toContain('Flux paths: clusters/production (cluster production)');
    expect(out).toContain(
      'HelmRelease podinfo-c0ffee/podinfo (apps/base/podinfo/release.yaml) → target production-podinfo-c0ffee-podinfo',
    );
    expect(out).toContain(
      'Kustomization flux-system/infra-configs (clusters/production/infrastructure.yaml) → target production-infra-configs',
    );
    expect(out).toMatch(/spec\.storageNamespace|spec\.install\.remediation: a failed sync is recorded/);
    expect(out).toContain('Not supported yet (0)');
  });

  it('names what is not supported, every problem of an object at once under it (file, line, cluster), and exits 1; --output json gives the same lists', async () => {
    writeFileSync(
      join(dir, 'clusters/production/secrets.yaml'),
      'apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: secrets\n  namespace: flux-system\nspec:\n  path: ./apps/production\n  prune: true\n  sourceRef: { kind: GitRepository, name: flux-system }\n  namePrefix: a-\n  kubeConfig: { secretRef: { name: remote } }\n',
    );
    const { code, out } = await cli('flux', 'check', '--dir', dir);
    expect(code).toBe(1);
    expect(out).toContain('Not supported yet (2)');
    expect(out).toContain(
      [
        '  clusters/production/secrets.yaml:1 Kustomization flux-system/secrets (cluster production)',
        '      spec.namePrefix: not supported yet',
        '      spec.kubeConfig: not supported yet: a target applies to the cluster its alias names',
      ].join('\n'),
    );
    const json = await cli('flux', 'check', '--dir', dir, '--output', 'json');
    expect(json.code).toBe(1);
    const report = JSON.parse(json.out) as {
      unsupported: Array<{ field: string; cluster: string }>;
      mapped: unknown[];
    };
    expect(report.unsupported.map((u) => [u.field, u.cluster])).toEqual([
      ['spec.namePrefix', 'production'],
      ['spec.kubeConfig', 'production'],
    ]);
  });
});
