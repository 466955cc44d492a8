import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import pkg from '../../package.json' with { type: 'json' };
import { KubeClient } from '../../shared/cluster/index.js';
import { bin, cli } from '../helpers/cli.js';
import { configMap, yamlDocs } from '../helpers/engine.js';
import { testEnv, testKubeConfig, uniqueName } from '../helpers/env.js';
import { tempTree } from '../helpers/files.js';

/** Every verb path of the CLI, as a user types it before --help. */
const VERBS = [
  'sync',
  'diff',
  'render',
  'validate',
  'settings check',
  'flux check',
  'status',
  'get targets',
  'tree',
  'events',
  'history',
  'rollback',
  'release',
  'approve',
  'recover',
  'suspend',
  'resume',
  'reconcile',
  'queue',
  'status-link',
  'dev',
  'demo',
  'completion',
];

describe('CLI conventions: help, version, options', () => {
  it.each(VERBS)(
    '`tidegate %s --help` and `tidegate help …`: its own usage, options, exit codes and an example',
    async (verb) => {
      const words = verb.split(' ');
      const help = await cli(...words, '--help');
      expect(help.code).toBe(0);
      expect(help.out).toMatch(new RegExp(`^Usage: tidegate ${verb} `));
      expect(help.out).toContain('Exit codes: ');
      expect(help.out).toMatch(
        /Examples?:\n {2}\$ tidegate |Examples?:\n {2}\$ \S+=\S+ tidegate |Examples?:\n {2}\$ source <\(tidegate/,
      );
      expect(help.out).toContain('--kubeconfig <file>'); // the global options, on every verb's help
      const viaHelp = await cli('help', ...words);
      expect(viaHelp).toEqual(help);
    },
  );

  it('--version and -v print the version; no verb prints usage and exits 2; an unknown verb is refused with a suggestion', async () => {
    expect(await cli('--version')).toEqual({ code: 0, out: `${pkg.version}\n`, err: '' });
    expect(await cli('-v')).toEqual({ code: 0, out: `${pkg.version}\n`, err: '' });
    const none = await cli();
    expect(none.code).toBe(2);
    expect(none.err).toContain('Usage: tidegate [options] [command]');
    const typo = await cli('sycn');
    expect(typo).toMatchObject({ code: 2, out: '' });
    expect(typo.err).toContain("unknown command 'sycn'");
    expect(typo.err).toContain('sync');
  });

  it.each([
    [['dev', '--repo', 'https://example.invalid/r', '--port', 'abc'], /--port <n>.*'abc' is invalid.*port number/],
    [
      ['dev', '--repo', 'https://example.invalid/r', '--poll', 'soon'],
      /--poll must be a duration above zero such as 30s or 5m, not "soon"/,
    ],
    [['dev'], /required option '--repo <url>'/],
    [['status', '-o', 'xml'], /'xml' is invalid.*text, json, yaml/],
    [['sync', '--wait', 'forever'], /--wait must be a duration such as 30s or 5m, not "forever"/],
    [['status-link', '--url', 'https://x.invalid', '--ttl', '0s'], /--ttl must be a duration of at most 744h/],
    [['history', 'web'], /required option '--repo <url>'/],
    [['render'], /missing required argument 'target'/],
    [['completion', 'powershell'], /'powershell' is invalid.*bash, zsh, fish/],
    [['sync', '--no-such-option'], /unknown option '--no-such-option'/],
  ])('%j: a clear error, exit 2, nothing run', async (args, message) => {
    const res = await cli(...args);
    expect(res.code).toBe(2);
    expect(res.out).toBe('');
    expect(res.err).toMatch(/^tidegate: /);
    expect(res.err).toMatch(message);
  });

  it('completion bash: the verbs, their subcommands and options, and option values, as bash completes them', async () => {
    const script = (await cli('completion', 'bash')).out;
    const complete = (...words: string[]): string[] =>
      execFileSync(
        'bash',
        [
          '-c',
          `eval "$(cat)"; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _tidegate; printf '%s\\n' "\${COMPREPLY[@]}"`,
        ],
        { input: script },
      )
        .toString()
        .split('\n')
        .filter(Boolean);
    expect(complete('tidegate', 'sy')).toEqual(['sync']);
    expect(complete('tidegate', 'st')).toEqual(['status', 'status-link']);
    expect(complete('tidegate', 'get', '')).toContain('targets');
    expect(complete('tidegate', 'settings', 'c')).toEqual(['check']);
    expect(complete('tidegate', 'sync', '--all')).toEqual(['--allow-dirty']);
    expect(complete('tidegate', 'status', '-o', '')).toEqual(['text', 'json', 'yaml']);
    expect(complete('tidegate', 'completion', '')).toEqual(['bash', 'zsh', 'fish']);
    const zsh = (await cli('completion', 'zsh')).out;
    expect(zsh).toMatch(/^#compdef tidegate\n/);
    expect(zsh).toContain('bashcompinit');
    expect(zsh).toContain('complete -o default -F _tidegate tidegate');
    const fish = (await cli('completion', 'fish')).out;
    for (const verb of VERBS.map((v) => v.split(' ')[0] ?? ''))
      expect(fish).toMatch(new RegExp(`-n __fish_use_subcommand -a ${verb} -d `));
    expect(fish).toContain("complete -c tidegate -s o -l output -xa 'text json yaml'");
  });
});

describe('CLI conventions: clusters and targets, on the test apiserver', () => {
  const { kube } = testEnv();
  const k = ['--kubeconfig', kube.kubeconfigPath];
  const name = uniqueName('conv');
  let dir: string;

  beforeAll(async () => {
    // The target's cluster alias is the test kubeconfig's context name: it resolves with no --context.
    dir = tempTree({
      'tidegate.yaml': stringify({
        targets: [{ name, cluster: 'tidegate-test', path: 'apps', targetNamespace: name, wait: false }],
      }),
      'apps/cm.yaml': yamlDocs([configMap('one', { a: '1' }), configMap('two', { b: '2' })]),
    });
    const synced = await cli('sync', name, '--dir', dir, ...k);
    expect(synced.code, synced.err).toBe(0);
  });

  it('an alias that is no context, in no settings and given no --context: diff and sync fail naming it and what was looked up; nothing applied', async () => {
    const ns = uniqueName('nowhere');
    const two = tempTree({
      'tidegate.yaml': stringify({
        targets: [
          { name: `${ns}-p`, cluster: 'prod', path: 'apps', targetNamespace: ns, wait: false },
          { name: `${ns}-s`, cluster: 'staging', path: 'apps', targetNamespace: ns, wait: false },
        ],
      }),
      'apps/cm.yaml': yamlDocs(configMap('x', { a: '1' })),
    });
    const diff = await cli('diff', '--dir', two, ...k);
    expect(diff.code).toBe(2);
    const sync = await cli('sync', '--dir', two, ...k);
    expect(sync.code).toBe(1);
    for (const alias of ['prod', 'staging'])
      expect(sync.out).toContain(
        `cluster alias "${alias}" resolves to no cluster: kubeconfig ${kube.kubeconfigPath} has no context "${alias}" (contexts: tidegate-test)`,
      );
    const client = new KubeClient(testKubeConfig());
    try {
      expect(await client.get('v1', 'Namespace', undefined, ns)).toBeUndefined();
    } finally {
      client.close();
    }
    // Chosen explicitly, it is used: --context, or the settings mapping the alias to the cluster's server.
    expect((await cli('diff', `${ns}-p`, '--dir', two, ...k, '--context', 'tidegate-test')).code).toBe(1);
    const settings = JSON.stringify({ clusters: { prod: { server: kube.server, caData: 'x', token: { ssm: 't' } } } });
    const mapped = await bin(['diff', `${ns}-p`, '--dir', two, ...k], { env: { TIDEGATE_SETTINGS: settings } });
    expect(mapped.code, mapped.err).toBe(1);
    expect(mapped.out).toContain(`${ns}-p @ worktree: `);
  });

  it.each([
    [
      ['status', 'no-such-target'],
      /no target "no-such-target" has been synced to context tidegate-test \(targets there: .*conv/,
    ],
    [['tree', 'no-such-target'], /no target "no-such-target"/],
    [['events', 'no-such-target'], /no target "no-such-target"/],
    [['status', '--cluster', 'nope'], /cluster alias "nope" resolves to no cluster/],
    [['get', 'targets', '--cluster', 'nope'], /cluster alias "nope" resolves to no cluster/],
  ])('%j: exit 2 naming what is unknown', async (args, message) => {
    const res = await cli(...args, ...k);
    expect(res.code).toBe(2);
    expect(res.err).toMatch(message);
  });

  it('sync, diff and render of an unknown target exit 2 naming it', async () => {
    for (const verb of ['sync', 'diff', 'render']) {
      const res = await cli(verb, 'no-such-target', '--dir', dir, ...k);
      expect(res.code).toBe(2);
      expect(res.err).toContain('no-such-target');
    }
  });

  it('get targets: a table (ready, suspended, held, pinned, revision, age); -o json and -o yaml say the same', async () => {
    const text = await cli('get', 'targets', ...k);
    expect(text.code, text.err).toBe(0);
    const [header, ...rows] = text.out.trimEnd().split('\n');
    expect(header?.split(/\s{2,}/)).toEqual([
      'TARGET',
      'READY',
      'SUSPENDED',
      'HELD',
      'PINNED',
      'REVISION',
      'AGE',
      'MESSAGE',
    ]);
    const row = rows.find((r) => r.startsWith(`${name} `))?.split(/\s{2,}/);
    expect(row?.slice(0, 6)).toEqual([name, 'True', 'False', 'False', 'False', 'worktree']);
    expect(row?.[6]).toMatch(/^\d+s$|^\d+m$/);
    const json = JSON.parse((await cli('get', 'targets', ...k, '-o', 'json')).out) as {
      targets: Array<{ target: string }>;
    };
    const yaml = parse((await cli('get', 'targets', ...k, '-o', 'yaml')).out) as typeof json;
    expect(json.targets.find((t) => t.target === name)).toMatchObject({
      ready: 'True',
      pinned: false,
      revision: 'worktree',
    });
    expect(yaml.targets.find((t) => t.target === name)).toEqual(json.targets.find((t) => t.target === name));
    // -A reads every cluster alias of tidegate.yaml in --dir: a CLUSTER column.
    const all = await cli('get', 'targets', '-A', '--dir', dir, ...k);
    expect(all.out.split('\n')[0]).toMatch(/^CLUSTER\s+TARGET\s+READY/);
    expect(all.out).toMatch(new RegExp(`^tidegate-test\\s+${name}\\s+True`, 'm'));
  });

  it('tree: each object of the inventory with its health now; an object deleted out of band is Missing, exit 1', async () => {
    const before = await cli('tree', name, ...k);
    expect(before.code, before.err).toBe(0);
    expect(before.out).toContain(`${name} @ worktree (context tidegate-test)`);
    expect(before.out).toMatch(new RegExp(`├── ConfigMap/${name}/one\\s+Healthy`));
    const client = new KubeClient(testKubeConfig());
    try {
      await client.delete({ apiVersion: 'v1', group: '', kind: 'ConfigMap', namespace: name, name: 'two' });
    } finally {
      client.close();
    }
    const after = await cli('tree', name, ...k, '-o', 'json');
    expect(after.code).toBe(1);
    const objects = (JSON.parse(after.out) as { objects: Array<{ ref: { name: string }; status: string }> }).objects;
    expect(objects.find((o) => o.ref.name === 'two')?.status).toBe('Missing');
    expect(objects.find((o) => o.ref.name === 'one')?.status).toBe('Healthy');
  });

  it('events: the target’s syncs from the cluster, newest first, without --repo; into a pipe that closes, exit 0', async () => {
    writeFileSync(join(dir, 'apps', 'cm.yaml'), yamlDocs([configMap('one', { a: '2' }), configMap('two', { b: '2' })]));
    expect((await cli('sync', name, '--dir', dir, ...k)).code).toBe(0);
    const events = await cli('events', name, ...k);
    expect(events.code, events.err).toBe(0);
    const [header, newest, oldest] = events.out.trimEnd().split('\n');
    expect(header?.split(/\s{2,}/)).toEqual(['AGE', 'TYPE', 'REASON', 'REVISION', 'CHANGES', 'MESSAGE']);
    expect(newest).toMatch(/Normal\s+sync\/applied\s+worktree\s+\+1 ~1 -0/); // "two" recreated, "one" changed
    expect(oldest).toMatch(/Normal\s+sync\/applied\s+worktree\s+\+3 ~0 -0/); // the Namespace and both
    const piped = await bin(['events', name, ...k], { firstChunkOnly: true });
    expect(piped.err).toBe('');
    expect(piped.code).toBe(0);
  });
});
