import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { cli } from '../helpers/cli.js';
import { testEnv, uniqueName } from '../helpers/env.js';
import { configMap, gitopsRepo } from '../helpers/engine.js';

describe('tidegate history / rollback / release / recover', () => {
  it('shows history, rolls back with a pin visible in status and history, and releases it', async () => {
    const ns = uniqueName('cli-rb');
    const name = uniqueName('cli-rb');
    const repo = await gitopsRepo('cli-rb');
    const k = ['--repo', repo.url, '--kubeconfig', testEnv().kube.kubeconfigPath, '--context', 'tidegate-test'];
    const a = await repo.commit(
      {
        'tidegate.yaml': stringify({
          targets: [{ name, cluster: 'x', path: 'apps', targetNamespace: ns, wait: false }],
        }),
        'apps/a.yaml': stringify(configMap('a', { v: '1' })),
      },
      'first',
    );
    expect((await cli('sync', name, ...k)).code).toBe(0);
    await repo.commit({ 'apps/a.yaml': stringify(configMap('a', { v: '2' })) }, 'second');
    expect((await cli('sync', name, ...k)).code).toBe(0);

    const history = await cli('history', name, ...k);
    expect(
      history.out
        .trim()
        .split('\n')
        .map((l) => l.replace(/^\S+\s+/, '').replace(/ in \d+ ms/, '')),
    ).toEqual([
      expect.stringMatching(
        /^sync +main@[0-9a-f]{12} +applied\/healthy +\+0 ~1 -0 +Test Author <author@example\.test>: second$/,
      ),
      expect.stringMatching(
        /^sync +main@[0-9a-f]{12} +applied\/healthy +\+2 ~0 -0 +Test Author <author@example\.test>: first$/,
      ),
    ]);

    const rb = await cli('rollback', name, '--to', a.slice(0, 8), ...k);
    expect(rb.code).toBe(0);
    expect(rb.out).toContain(`pinned at main@${a.slice(0, 12)}`);
    expect(
      (await cli('status', name, '--kubeconfig', testEnv().kube.kubeconfigPath, '--context', 'tidegate-test')).out,
    ).toContain(`PINNED at main@${a.slice(0, 12)}`);
    expect((await cli('history', name, ...k)).out).toMatch(new RegExp(`^PINNED at main@${a.slice(0, 12)} by `));
    expect((await cli('release', name, ...k)).out).toBe(
      `released ${name}: the next push or poll applies the branch again\n`,
    );
    expect((await cli('release', name, ...k)).out).toBe(`${name} was not pinned\n`);

    const rec = await cli('recover', ...k, '--cluster', 'x');
    expect(rec.out).toMatch(new RegExp(`^\\[1/1\\] ${name} @ main@[0-9a-f]{12}: applied`));
    expect(rec.out).toMatch(/recovered 1 of 1 targets in [\d.]+ s\n$/);
  });
});
