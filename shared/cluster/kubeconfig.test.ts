import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { kubeConfigForAlias, type AliasCluster } from './kubeconfig.js';

const ARN = (account: string, name = 'main', region = 'eu-west-1') =>
  `arn:aws:eks:${region}:${account}:cluster/${name}`;

/** A kubeconfig of these contexts (each its own cluster and server), the first one current. */
function kubeconfig(contexts: Array<{ name: string; server: string }>): string {
  const path = join(mkdtempSync(join(tmpdir(), 'kubeconfig-')), 'config');
  writeFileSync(
    path,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      'current-context': contexts[0]?.name,
      clusters: contexts.map((c) => ({ name: c.name, cluster: { server: c.server } })),
      users: [{ name: 'u', user: { token: 't' } }],
      contexts: contexts.map((c) => ({ name: c.name, context: { cluster: c.name, user: 'u' } })),
    }),
  );
  return path;
}

describe('a cluster alias resolves explicitly, never to whatever context is current', () => {
  const path = kubeconfig([
    { name: 'dev', server: 'https://dev.example:6443' },
    { name: 'staging', server: 'https://staging.example:6443' },
    { name: ARN('222222222222'), server: 'https://b.eks.example' },
    { name: ARN('111111111111'), server: 'https://a.eks.example' },
  ]);
  const main = (roleArn?: string): AliasCluster => ({
    eks: { name: 'main', region: 'eu-west-1', ...(roleArn ? { roleArn } : {}) },
  });
  it.each<[string, string, string | undefined, Record<string, AliasCluster>, string | RegExp]>([
    ['a context of that name', 'staging', undefined, {}, 'staging'],
    ['--context, over a context of that name', 'staging', 'dev', {}, 'dev'],
    ['no such context, no settings', 'prod', undefined, {}, /"prod" resolves to no cluster.*contexts: dev, staging/],
    ['a server the settings name', 'prod', undefined, { prod: { server: 'https://staging.example:6443/' } }, 'staging'],
    [
      'an EKS cluster whose account the settings pin (roleArn)',
      'prod',
      undefined,
      { prod: main('arn:aws:iam::111111111111:role/x') },
      ARN('111111111111'),
    ],
    [
      'an EKS cluster of that name in two accounts, none pinned',
      'prod',
      undefined,
      { prod: main() },
      /matches more than one kubeconfig context/,
    ],
    [
      'an EKS cluster in another region',
      'prod',
      undefined,
      { prod: { eks: { name: 'main', region: 'us-east-1' } } },
      /resolves to no cluster.*EKS cluster main \(us-east-1\)/,
    ],
    [
      'regex characters in a name are literal',
      'prod',
      undefined,
      { prod: { eks: { name: 'ma.n', region: 'eu-west-1' } } },
      /resolves to no cluster/,
    ],
    ['the current context, for a command given no alias', '', undefined, {}, 'dev'],
  ])('%s', (_, alias, context, settings, expected) => {
    const resolve = () => kubeConfigForAlias(path, alias, context, settings).getCurrentContext();
    if (typeof expected === 'string') expect(resolve()).toBe(expected);
    else expect(resolve).toThrow(expected);
  });
});
