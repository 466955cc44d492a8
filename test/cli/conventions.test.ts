import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import pkg from '../../package.json' with { type: 'json' };
import { ControllerClient, GitWorkspace, createBareRepo } from '../../devenv/index.js';
import { startGitServer, type GitServer } from '../../devenv/git-server.js';
import { KubeClient } from '../../shared/cluster/index.js';
import { bin, cli } from '../helpers/cli.js';
import { configMap, secret, yamlDocs } from '../helpers/engine.js';
import { testEnv, testKubeConfig, uniqueName } from '../helpers/env.js';
import { tempTree } from '../helpers/files.js';
import { motoEnv, testClusterSetting } from '../helpers/lambda.js';

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
    // A settings file in the working directory maps nothing: a commit could have put it there.
    writeFileSync(join(two, 'tidegate.settings.json'), settings);
    const committed = await bin(['diff', `${ns}-p`, '--dir', '.', ...k], { cwd: two });
    expect(committed.code).toBe(2);
    expect(committed.out + committed.err).toContain('cluster alias "prod" resolves to no cluster');
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
    for (const cm of ['one', 'two'])
      expect(before.out).toMatch(new RegExp(`^(├──|└──) ConfigMap/${name}/${cm}  Healthy`, 'm'));
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

const ROOT = join(import.meta.dirname, '..', '..');
const BIN = join(ROOT, 'bin', 'tidegate.js');

interface Run {
  code: number | null;
  out: string;
  err: string;
}

/**
 * The CLI as a user runs it: the built bin in a process of its own, with its own cache and
 * TIDEGATE_GIT_TOKEN when given. With `until`, the process (a server) is interrupted once it is true.
 */
function tidegate(args: string[], opts: { token?: string; until?: () => boolean; timeoutMs?: number } = {}) {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    TIDEGATE_CACHE: mkdtempSync(join(tmpdir(), 'tidegate-conv-cache-')),
    TIDEGATE_GIT_TOKEN: opts.token,
  };
  if (opts.token === undefined) delete env['TIDEGATE_GIT_TOKEN'];
  return new Promise<Run>((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    const started = Date.now();
    const timer = opts.until
      ? setInterval(() => {
          if (opts.until?.() || Date.now() - started > (opts.timeoutMs ?? 60_000)) child.kill('SIGINT');
        }, 200)
      : undefined;
    child.on('close', (code) => {
      if (timer) clearInterval(timer);
      resolve({ code, out, err });
    });
  });
}

const kube = (): string[] => ['--kubeconfig', testEnv().kube.kubeconfigPath, '--context', 'tidegate-test'];
const basic = (token: string): string => `Basic ${Buffer.from(`x-access-token:${token}`).toString('base64')}`;

/** A GitOps checkout on the shared test git server: one target with a ConfigMap and a Secret, committed and pushed. */
async function checkout(prefix: string) {
  const env = testEnv().git;
  const name = uniqueName(prefix);
  const url = await createBareRepo(env, name);
  const ws = await GitWorkspace.clone(env, url);
  await ws.commit(
    {
      'tidegate.yaml': stringify({
        targets: [{ name, cluster: 'test', path: 'apps', targetNamespace: name, wait: false }],
      }),
      'apps/cm.yaml': yamlDocs(configMap('settings', { replicas: '3' })),
      'apps/secret.yaml': yamlDocs(secret('db', { password: 'committed-password-1' })),
      '.gitignore': 'scratch/\n',
    },
    'first',
  );
  const write = (path: string, text: string) => {
    mkdirSync(dirname(join(ws.dir, path)), { recursive: true });
    writeFileSync(join(ws.dir, path), text);
  };
  return { name, url, ws, dir: ws.dir, write, head: async () => (await ws.git('rev-parse', 'HEAD')).trim() };
}

type Checkout = Awaited<ReturnType<typeof checkout>>;

describe('source and credentials', () => {
  const client = new ControllerClient(testKubeConfig());

  /** Ways a working tree differs from its HEAD commit: each makes a sync refuse it, naming the file. */
  const dirt: Array<{ kind: string; make: (c: Checkout) => Promise<void>; file: string }> = [
    {
      kind: 'a modified file',
      make: async (c) => c.write('apps/cm.yaml', yamlDocs(configMap('settings', { replicas: '5' }))),
      file: 'apps/cm.yaml',
    },
    {
      kind: 'a staged new file',
      make: async (c) => {
        c.write('apps/staged.yaml', yamlDocs(configMap('staged', { k: 'v' })));
        await c.ws.git('add', 'apps/staged.yaml');
      },
      file: 'apps/staged.yaml',
    },
    {
      kind: 'an untracked file that is not ignored',
      make: async (c) => c.write('apps/new.yaml', yamlDocs(configMap('untracked', { k: 'v' }))),
      file: 'apps/new.yaml',
    },
    {
      kind: 'a deleted file',
      make: async (c) => void (await c.ws.git('rm', '--quiet', 'apps/secret.yaml')),
      file: 'apps/secret.yaml',
    },
  ];

  it.each(dirt)(
    'sync --dir of a working tree with $kind is refused: exit 2, the file named, --allow-dirty said; nothing applied',
    async ({ make, file }) => {
      const c = await checkout('dirty');
      await make(c);
      const res = await tidegate(['sync', c.name, '--dir', c.dir, ...kube()]);
      expect(res.code).toBe(2);
      expect(res.err).toContain(file);
      expect(res.err).toContain('--allow-dirty');
      expect(res.err).toMatch(/uncommitted changes/);
      expect(await client.get('v1', 'ConfigMap', c.name, 'settings')).toBeUndefined();
    },
  );

  it('an ignored file does not make the tree dirty: sync applies it as <sha>+worktree', async () => {
    const c = await checkout('ignored');
    c.write('scratch/notes.txt', 'mine');
    const res = await tidegate(['sync', c.name, '--dir', c.dir, ...kube()]);
    expect(res.err).toBe('');
    expect(res.code).toBe(0);
    expect(res.out).toContain(`${c.name} @ ${(await c.head()).slice(0, 12)}+worktree: applied`);
  });

  it("a clean sync renders HEAD's files: an ignored file inside the target's path is never applied (found by review)", async () => {
    const c = await checkout('ignoredapps');
    await c.ws.commit({ '.gitignore': 'scratch/\napps/*.local.yaml\n' }, 'ignore local copies');
    c.write('apps/decrypted.local.yaml', yamlDocs(configMap('ignored-not-committed', { k: 'v' })));
    const res = await tidegate(['sync', c.name, '--dir', c.dir, ...kube()]);
    expect(res.code, res.err).toBe(0);
    expect(res.out).toContain(`${c.name} @ ${(await c.head()).slice(0, 12)}+worktree: applied`);
    expect(await client.get('v1', 'ConfigMap', c.name, 'settings')).toBeDefined();
    expect(await client.get('v1', 'ConfigMap', c.name, 'ignored-not-committed')).toBeUndefined();
  });

  it('a submodule changed locally (even with ignore = all) never reaches the cluster under the SHA (found by review)', async () => {
    const c = await checkout('submodule');
    const sub = mkdtempSync(join(tmpdir(), 'conv-sub-'));
    const inSub = (...args: string[]) => execFileSync('git', args, { cwd: sub, stdio: 'pipe' });
    inSub('init', '-q', '-b', 'main');
    writeFileSync(join(sub, 'cm.yaml'), yamlDocs(configMap('from-sub', { v: 'committed' })));
    inSub('add', '.');
    inSub('-c', 'user.name=t', '-c', 'user.email=t@example.com', 'commit', '-qm', 'sub');
    await c.ws.git('-c', 'protocol.file.allow=always', 'submodule', 'add', '-q', sub, 'apps/sub');
    await c.ws.git('config', '-f', '.gitmodules', 'submodule.apps/sub.ignore', 'all');
    await c.ws.git('add', '.gitmodules');
    await c.ws.git('-c', 'user.name=t', '-c', 'user.email=t@example.com', 'commit', '-qm', 'a submodule');
    writeFileSync(join(c.dir, 'apps', 'sub', 'cm.yaml'), yamlDocs(configMap('from-sub', { v: 'LOCALLY-MODIFIED' })));
    const res = await tidegate(['sync', c.name, '--dir', c.dir, ...kube()]);
    // Refused as uncommitted, or applied from HEAD's own files: either way the local edit is not in the cluster.
    if (res.code === 2) expect(res.err).toContain('apps/sub');
    else expect(res.code, res.err).toBe(0);
    const cm = await client.get('v1', 'ConfigMap', c.name, 'from-sub');
    expect(cm?.['data']).not.toEqual({ v: 'LOCALLY-MODIFIED' });
  });

  it('a checkout with no commit yet is refused, never taken for "outside git" (found by review)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'conv-nocommit-'));
    execFileSync('git', ['init', '-q'], { cwd: dir });
    const name = uniqueName('nocommit');
    writeFileSync(
      join(dir, 'tidegate.yaml'),
      stringify({ targets: [{ name, cluster: 'test', path: '.', wait: false }] }),
    );
    const res = await tidegate(['sync', name, '--dir', dir, ...kube()]);
    expect(res.code).toBe(2);
    expect(res.err).toContain('is a git checkout with no commit yet');
  });

  it('--allow-dirty applies the working tree as <sha>+dirty: in the output, status, history and the status page', async () => {
    const c = await checkout('allowdirty');
    c.write('apps/cm.yaml', yamlDocs(configMap('settings', { replicas: '5' })));
    const dirty = `${(await c.head()).slice(0, 12)}+dirty`;
    const res = await tidegate(['sync', c.name, '--dir', c.dir, '--allow-dirty', ...kube()]);
    expect(res.err).toBe('');
    expect(res.code).toBe(0);
    expect(res.out).toContain(`${c.name} @ ${dirty}: applied`);
    expect((await client.get('v1', 'ConfigMap', c.name, 'settings'))?.['data']).toEqual({ replicas: '5' });

    const status = await tidegate(['status', c.name, ...kube()]);
    expect(status.out).toMatch(new RegExp(`^${c.name}: applied ${dirty.replace('+', '\\+')} at `));
    const history = await tidegate(['history', c.name, '--repo', c.url, ...kube()]);
    expect(history.code).toBe(0);
    expect(history.out).toMatch(new RegExp(` sync +${dirty.replace('+', '\\+')}  applied/`));

    // A working tree's revision is no commit: nobody approves it, and rollback never goes to it.
    const approve = await tidegate(['approve', c.name, `${await c.head()}+dirty`, '--repo', c.url, ...kube()]);
    expect(approve.code).toBe(2);
    expect(approve.err).toContain('is neither a commit of the pending change');
    const rollback = await tidegate([
      'rollback',
      c.name,
      '--to',
      `${await c.head()}+dirty`,
      '--repo',
      c.url,
      ...kube(),
    ]);
    expect(rollback.code).toBe(2);
    expect(rollback.err).toContain('was not applied to this target');

    const { statusPageOf } = await import('../../shared/usecases/index.js');
    const { localSettings } = await import('../../shared/config/index.js');
    const page = await statusPageOf(
      { settings: localSettings(), connect: () => Promise.resolve(client), gitSource: (url) => ({ url }) },
      [c.url],
    );
    expect(page).toContain(dirty);
    expect(page).not.toContain(`/commit/${await c.head()}+dirty`);
  });

  it('a dirty tree is never "unchanged" since a sign-off: the same <sha>+dirty with other contents is judged again, and a gate holds it', async () => {
    const c = await checkout('dirtygate');
    c.write('apps/cm.yaml', yamlDocs(configMap('settings', { replicas: '4' })));
    expect((await tidegate(['sync', c.name, '--dir', c.dir, '--allow-dirty', ...kube()])).code).toBe(0);
    expect((await client.get('v1', 'ConfigMap', c.name, 'settings'))?.['data']).toEqual({ replicas: '4' });
    // Other uncommitted contents under the same HEAD, with a manual gate: the name <sha>+dirty is the same, the change is not.
    c.write(
      'tidegate.yaml',
      stringify({
        targets: [
          { name: c.name, cluster: 'test', path: 'apps', targetNamespace: c.name, wait: false, gate: { manual: true } },
        ],
      }),
    );
    c.write('apps/cm.yaml', yamlDocs(configMap('settings', { replicas: '9' })));
    const res = await tidegate(['sync', c.name, '--dir', c.dir, '--allow-dirty', ...kube()]);
    expect(res.out).toContain(`${c.name} @ ${(await c.head()).slice(0, 12)}+dirty: held`);
    expect(res.out).toMatch(/uncommitted changes \(\+dirty\): they are in no commit/);
    expect((await client.get('v1', 'ConfigMap', c.name, 'settings'))?.['data']).toEqual({ replicas: '4' });
  });

  it('diff --dir of a dirty tree is allowed (read-only) and says the tree is dirty, naming the file', async () => {
    const c = await checkout('diffdirty');
    c.write('apps/cm.yaml', yamlDocs(configMap('settings', { replicas: '5' })));
    const res = await tidegate(['diff', c.name, '--dir', c.dir, ...kube()]);
    expect(res.err).toBe('');
    expect(res.code).toBe(1);
    expect(res.out).toMatch(/^the working tree has uncommitted changes \(apps\/cm\.yaml\)/);
    expect(res.out).toContain(`${c.name} @ ${(await c.head()).slice(0, 12)}+dirty: would create`);
    expect(await client.get('v1', 'ConfigMap', c.name, 'settings')).toBeUndefined();
  });

  it('diff says what a sync would do (would create / update / prune) and shows changed values as path: from → to; Secret values stay hidden', async () => {
    const c = await checkout('diffvalues');
    const first = await tidegate(['diff', c.name, '--dir', c.dir, ...kube()]);
    expect(first.code).toBe(1);
    expect(first.out).toContain(
      `${c.name} @ ${(await c.head()).slice(0, 12)}+worktree: would create 3, update 0, prune 0`,
    );
    expect(first.out).toContain(`+ ConfigMap/${c.name}/settings  would create`);
    expect(first.out).not.toMatch(/\bapplied\b/);
    expect((await tidegate(['sync', c.name, '--dir', c.dir, ...kube()])).code).toBe(0);

    await c.ws.commit(
      {
        'apps/cm.yaml': yamlDocs(configMap('settings', { replicas: '5' })),
        'apps/secret.yaml': yamlDocs(secret('db', { password: 'committed-password-2' })),
      },
      'five replicas, a new password',
    );
    const res = await tidegate(['diff', c.name, '--dir', c.dir, ...kube()]);
    expect(res.err).toBe('');
    expect(res.code).toBe(1);
    expect(res.out).toContain('would create 0, update 2, prune 0');
    expect(res.out).toContain(`~ ConfigMap/${c.name}/settings  would update\n      data.replicas: 3 → 5\n`);
    expect(res.out).toContain(`~ Secret/${c.name}/db  would update\n`);
    expect(res.out).not.toContain('committed-password');
    expect(res.out).not.toContain(Buffer.from('committed-password-1').toString('base64'));
    expect(res.out).not.toContain(Buffer.from('committed-password-2').toString('base64'));

    await c.ws.commit({ 'apps/secret.yaml': null }, 'no secret');
    const pruned = await tidegate(['diff', c.name, '--dir', c.dir, ...kube()]);
    expect(pruned.out).toContain(`- Secret/${c.name}/db  would prune`);
  });

  describe('TIDEGATE_GIT_TOKEN goes to its repository’s origin only', () => {
    const token = `tok-${uniqueName('conv')}`;
    let a: GitServer;
    let b: GitServer;
    let urlA = '';
    let urlB = '';
    let wsA: GitWorkspace;
    beforeAll(async () => {
      // Two origins on loopback (other ports): A private, taking only the token; B public, recording what it is sent.
      a = await startGitServer({ root: join(mkdtempSync(join(tmpdir(), 'conv-a-')), 'repos'), token });
      b = await startGitServer({ root: join(mkdtempSync(join(tmpdir(), 'conv-b-')), 'repos') });
      urlA = await createBareRepo(a, 'gitops');
      urlB = await createBareRepo(b, 'other');
      const wsB = await GitWorkspace.clone(b, urlB);
      await wsB.commit({ 'apps/cm.yaml': yamlDocs(configMap('from-b', { k: 'v' })) }, 'b');
      wsB.remove();
      wsA = await GitWorkspace.clone(a, urlA);
    });
    afterAll(async () => {
      wsA.remove();
      await a.stop();
      await b.stop();
    });

    /**
     * Sources a commit nobody approved may name (a target's source.url): B's repository, and a URL
     * that compares equal to A's once its "credentials" are left out (everything up to the @) but whose
     * host is B's (`http://<B>?@<A>/gitops.git`).
     */
    const sources: Array<{ source: string; url: () => string; fetched: boolean }> = [
      { source: "another repository on B's origin", url: () => urlB, fetched: true },
      {
        source: "a URL that reads as A's but whose host is B",
        url: () => `${b.url}?@${new URL(urlA).host}/gitops.git`,
        fetched: false,
      },
    ];

    it.each(sources)(
      'diff --repo <A> naming $source: A is read with the token, B never gets an Authorization header',
      async ({ url, fetched }) => {
        const name = uniqueName('creds');
        await wsA.commit(
          {
            'tidegate.yaml': stringify({
              targets: [
                {
                  name,
                  cluster: 'test',
                  source: { url: url(), ref: { branch: 'main' } },
                  path: 'apps',
                  targetNamespace: name,
                  wait: false,
                },
              ],
            }),
          },
          'a source elsewhere',
        );
        a.received.length = 0;
        b.received.length = 0;
        const res = await tidegate(['diff', name, '--repo', urlA, ...kube()], { token });
        if (fetched) {
          expect(res.err).toBe('');
          expect(res.code).toBe(1);
          expect(res.out).toContain(`+ ConfigMap/${name}/from-b  would create`);
        }
        expect(a.received.length).toBeGreaterThan(0);
        expect(a.received.every((r) => r.authorization === basic(token))).toBe(true);
        expect(b.received.length).toBeGreaterThan(0);
        expect(b.received.filter((r) => r.authorization !== undefined)).toEqual([]);
      },
    );

    it("Lambda: a token the settings give a repository for another URL (sourceTokens) goes to that URL's origin only", async () => {
      const tenantToken = `tenant-${uniqueName('tok')}`;
      const name = uniqueName('creds-l');
      // Normalised, this URL is B's repository (everything up to its @ reads as credentials); its host is A.
      const disguised = `${a.url}?@${new URL(urlB).host}/other.git`;
      await wsA.commit(
        {
          'tidegate.yaml': stringify({
            targets: [
              {
                name,
                cluster: 'c',
                source: { url: disguised, ref: { branch: 'main' } },
                path: 'apps',
                targetNamespace: name,
                wait: false,
              },
            ],
          }),
        },
        'a disguised source',
      );
      const { createRuntime } = await import('../../shared/aws/runtime.js');
      const { syncRepo } = await import('../../shared/usecases/index.js');
      const runtime = await createRuntime('test', {
        ...motoEnv(),
        TIDEGATE_CACHE: mkdtempSync(join(tmpdir(), 'tidegate-conv-cache-')),
        TIDEGATE_SETTINGS: JSON.stringify({
          repositories: [
            { url: urlA, branch: 'main', token: { value: token }, sourceTokens: { [urlB]: { value: tenantToken } } },
          ],
          clusters: { c: testClusterSetting() },
          queueUrl: 'http://127.0.0.1:1/unused',
        }),
      });
      const { engine } = await runtime.git();
      a.received.length = 0;
      b.received.length = 0;
      await syncRepo(engine, { repo: urlA, target: name, dryRun: true });
      // The disguised URL was asked for (on A), never with the tenant's token; A's own requests carry A's token.
      expect(a.received.some((r) => r.path.startsWith('/?@'))).toBe(true);
      expect(a.received.filter((r) => r.authorization === basic(tenantToken))).toEqual([]);
      expect(a.received.filter((r) => r.path.startsWith('/?@') && r.authorization !== undefined)).toEqual([]);
    });

    it('tidegate dev --repo <A>: its poll reads A with the token; the engine it builds gives no URL on another origin the token', async () => {
      a.received.length = 0;
      b.received.length = 0;
      const res = await tidegate(['dev', '--repo', urlA, '--port', '0', '--poll', '1h', ...kube()], {
        token,
        until: () => a.received.some((r) => r.path.endsWith('/git-upload-pack')),
      });
      expect(res.out, res.err).toContain('tidegate dev on http://127.0.0.1:');
      expect(a.received.some((r) => r.path.endsWith('/git-upload-pack'))).toBe(true);
      expect(a.received.every((r) => r.authorization === basic(token))).toBe(true);
      expect(b.received.filter((r) => r.authorization !== undefined)).toEqual([]);
      // The dev server's polls reach only its own repository (a target sourced elsewhere is synced by the CLI):
      // the engine it runs is the one `tidegate dev` builds, asked directly.
      const { localEngine } = await import('../../cli/context.js');
      const { localSettings } = await import('../../shared/config/index.js');
      const engine = localEngine(
        { repo: urlA },
        'tidegate dev',
        localSettings({ ...process.env, TIDEGATE_GIT_TOKEN: token }),
      );
      expect(engine.gitSource(urlA).token).toBe(token);
      expect(engine.gitSource(`${a.url}/another-repo.git`).token).toBe(token);
      expect(engine.gitSource(urlB).token).toBeUndefined();
      expect(engine.gitSource(urlA.replace('http://', 'https://')).token).toBeUndefined();
    }, 90_000);
  });
});
