import { describe, expect, it } from 'vitest';
import type { TargetSpec } from '../config/index.js';
import { affectedTargets, chainMessage, dependencyChains, removalMessages, withDependants } from './affected.js';
import { messageKeys } from './queue.js';

const t = (name: string, extra: Partial<TargetSpec> = {}): TargetSpec =>
  ({ name, cluster: 'prod', path: name, dependsOn: [], source: {}, ...extra }) as TargetSpec;
const names = (chains: Array<{ targets: TargetSpec[] }>) => chains.map((c) => c.targets.map((x) => x.name));

describe('dependency chains: what one sync message carries', () => {
  it.each<[string, TargetSpec[], string[][]]>([
    ['unrelated targets stay apart', [t('a'), t('b')], [['a'], ['b']]],
    ['a dependency comes first', [t('apps', { dependsOn: ['infra'] }), t('infra')], [['infra', 'apps']]],
    [
      'a diamond is one chain, in order',
      [t('d', { dependsOn: ['b', 'c'] }), t('b', { dependsOn: ['a'] }), t('c', { dependsOn: ['a'] }), t('a')],
      [['a', 'b', 'c', 'd']],
    ],
    [
      'a dependency on another cluster is chained too',
      [t('apps', { dependsOn: ['infra'] }), t('infra', { cluster: 'staging' })],
      [['infra', 'apps']],
    ],
    [
      'a dependency not in the set (not affected) leaves the dependant alone',
      [t('apps', { dependsOn: ['infra'] })],
      [['apps']],
    ],
    [
      'two chains and a loner',
      [t('x'), t('b2', { dependsOn: ['b1'] }), t('b1'), t('a2', { dependsOn: ['a1'] }), t('a1')],
      [['x'], ['b1', 'b2'], ['a1', 'a2']],
    ],
  ])('%s', (_name, targets, expected) => {
    expect(names(dependencyChains(targets))).toEqual(expected);
  });

  it('every chain of one dependsOn set names the set, whichever of its targets a push affects', () => {
    const all = [t('apps', { dependsOn: ['infra'] }), t('infra'), t('web', { dependsOn: ['apps'] }), t('x')];
    const setOf = (affected: string[]) =>
      dependencyChains(
        all.filter((x) => affected.includes(x.name)),
        all,
      ).map((c) => c.set);
    expect(setOf(['apps'])).toEqual(['infra']);
    expect(setOf(['web'])).toEqual(['infra']);
    expect(setOf(['infra', 'web'])).toEqual(['infra']);
    expect(setOf(['x', 'apps'])).toEqual(['infra', 'x']);
  });

  it.each<[string, string[], string[]]>([
    ['a dependant and its dependant', ['infra'], ['infra', 'apps', 'web']],
    ['a leaf: itself', ['web'], ['web']],
    ['unrelated targets stay out', ['x'], ['x']],
  ])('withDependants: %s', (_name, given, expected) => {
    const all = [t('apps', { dependsOn: ['infra'] }), t('infra'), t('web', { dependsOn: ['apps'] }), t('x')];
    expect(
      withDependants(all, given)
        .map((x) => x.name)
        .sort(),
    ).toEqual([...expected].sort());
  });
});

describe('affected targets: by the paths their render reads', () => {
  const push = (paths: string[] | null) => ({
    repo: 'https://git.example/acme/gitops.git',
    ref: 'refs/heads/main',
    paths,
  });
  const targets = [t('web', { path: 'apps/web/overlays/prod' }), t('api', { path: 'apps/api' })];
  const inputs = (x: TargetSpec) =>
    x.name === 'web' ? ['apps/web/overlays/prod', 'apps/web/base', 'shared/policies'] : [x.path];
  it.each<[string, string[] | null, string[]]>([
    ['a file of the overlay', ['apps/web/overlays/prod/patch.yaml'], ['web']],
    ['a base outside the target path', ['apps/web/base/deploy.yaml'], ['web']],
    ['a shared directory both could read (only web does)', ['shared/policies/np.yaml'], ['web']],
    ['tidegate.yaml: every target', ['tidegate.yaml'], ['web', 'api']],
    ['a poll (no paths): every target', null, ['web', 'api']],
    ['an unrelated file', ['README.md'], []],
    ['a prefix that is not a directory', ['apps/apiary/x.yaml'], []],
  ])('%s', (_name, paths, expected) => {
    expect(affectedTargets(targets, push(paths), inputs).map((x) => x.name)).toEqual(expected);
  });
});

describe('a removal and the syncs of the same name share a message group', () => {
  const repo = 'https://github.com/acme/gitops.git';
  const revision = { ref: 'refs/heads/main', sha: 'a'.repeat(40) };
  const spec = (name: string, cluster: string, dependsOn: string[] = []) =>
    ({ name, cluster, dependsOn, path: name }) as unknown as TargetSpec;

  it.each([
    // A target of a dependsOn set moved to another cluster: its syncs are in the set's group (named for db).
    ['in a dependsOn set', [spec('db', 'new'), spec('app', 'new', ['db'])]],
    ['alone', [spec('db', 'new'), spec('app', 'new')]],
  ])('%s: the removal of app on its old cluster is in the group of the sync of app', (_name, targets) => {
    const syncOfApp = dependencyChains(targets, targets)
      .map((c) => chainMessage(c, { repo, revision, reason: 'push' }))
      .find((m) => (m.chain ?? [m.target]).includes('app'));
    const [removal] = removalMessages([{ cluster: 'old', target: 'app' }], targets, { repo, revision });
    expect(removal && messageKeys(removal).group).toBe(syncOfApp && messageKeys(syncOfApp).group);
  });

  it('a name no longer declared anywhere is removed in the group of its own name', () => {
    const targets = [spec('db', 'new')];
    const [removal] = removalMessages([{ cluster: 'old', target: 'app' }], targets, { repo, revision });
    expect(removal).toEqual({ type: 'remove', repo, revision, cluster: 'old', target: 'app' });
  });
});
