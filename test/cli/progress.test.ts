import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { main } from '../../cli/main.js';
import { testEnv, uniqueName } from '../helpers/env.js';
import { configMap, deployment, yamlDocs } from '../helpers/engine.js';
import { tempTree } from '../helpers/files.js';

const ROOT = join(import.meta.dirname, '..', '..');
const BIN = join(ROOT, 'bin', 'tidegate.js');
const ESC = '\x1b';

/** The built CLI (as installed) as a process; through `script` it gets a terminal, otherwise pipes. */
function runBin(args: string[], opts: { terminal?: boolean; interruptAfterMs?: number } = {}) {
  const line = ['node', BIN, ...args].map((a) => `'${a}'`).join(' ');
  const [cmd, argv] = opts.terminal ? ['script', ['-qec', line, '/dev/null']] : ['node', [BIN, ...args]];
  return new Promise<{ code: number | null; out: string; err: string }>((resolve, reject) => {
    const child = spawn(cmd as string, argv as string[], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    if (opts.interruptAfterMs) setTimeout(() => child.kill('SIGINT'), opts.interruptAfterMs);
    child.on('close', (code) => resolve({ code, out, err }));
  });
}

/**
 * A working tree of one target: 20 ConfigMaps and a Deployment no controller rolls out (the test
 * apiserver runs none), so health waits for it until the target's timeout.
 */
function tree(timeout = '3s') {
  const name = uniqueName('prog');
  const dir = tempTree(
    {
      'tidegate.yaml': stringify({
        targets: [{ name, cluster: 'test', path: 'apps', targetNamespace: name, timeout }],
      }),
      'apps/objects.yaml': yamlDocs([
        ...Array.from({ length: 20 }, (_, i) => configMap(`cm-${i}`, { i: String(i) })),
        deployment('web'),
      ]),
    },
    'progress-',
  );
  return { name, k: ['--dir', dir, '--kubeconfig', testEnv().kube.kubeconfigPath, '--context', 'tidegate-test'] };
}

describe('CLI progress: on a terminal one line rewritten in place, plain when piped', () => {
  it('a sync on a terminal shows objects applied of total and what health waits for, then clears the line', async () => {
    const { name, k } = tree();
    let out = '';
    let err = '';
    const code = await main(['sync', name, ...k], {
      out: (t) => (out += t),
      err: (t) => (err += t),
      tty: true,
    });
    expect(code).toBe(0); // still progressing at the deadline: recorded as progressing, not a failure
    expect(err).toContain(`${name}: applied 22/22 objects`); // 21 and the target's namespace
    expect(err).toContain(`${name}: waiting for Deployment.apps/${name}/web: waiting for the controller to observe`);
    expect(err.endsWith('\r\x1b[2K')).toBe(true); // cleared before the results are printed
    expect(out).toContain(`${name} @ worktree: progressing`);
    expect(out).not.toContain(ESC);
  });

  it('the built CLI: through a terminal it draws progress; piped, the same sync prints no escape codes and no carriage returns', async () => {
    const a = tree();
    const onTerminal = await runBin(['sync', a.name, ...a.k], { terminal: true });
    expect(onTerminal.code, onTerminal.err).toBe(0);
    expect(onTerminal.out).toContain(`${ESC}[2K`); // `script` merges stderr into its output
    expect(onTerminal.out).toContain(`${a.name}: applied 22/22 objects`);

    const b = tree();
    const piped = await runBin(['sync', b.name, ...b.k]);
    expect(piped.code, piped.err).toBe(0);
    expect(piped.out).toContain(`${b.name} @ worktree: progressing`);
    expect(piped.out + piped.err).not.toContain(ESC);
    expect(piped.out + piped.err).not.toContain('\r');
  });

  it('status --watch piped: prints the state once while it does not change, and exits 0 on Ctrl-C', async () => {
    const { name, k } = tree('1s');
    const quiet = { out: () => undefined, err: () => undefined };
    expect(await main(['sync', name, ...k], quiet)).toBe(0);
    const watched = await runBin(
      ['status', name, '--kubeconfig', testEnv().kube.kubeconfigPath, '--context', 'tidegate-test', '--watch'],
      {
        interruptAfterMs: 5000, // two or three rounds of 2 s
      },
    );
    expect(watched.code).toBe(0);
    expect(watched.out.split(`${name}:`).length - 1).toBe(1);
    expect(watched.out).not.toContain(ESC);
  });
});
