import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { localSettings, type LocalSettings } from '../../shared/config/index.js';
import { RenderError } from '../../shared/render/errors.js';
import { render, type RenderOptions } from '../../shared/render/render.js';
import { cachedGitdir, type GitSource } from '../../shared/source/index.js';
import { readTargetState } from '../../shared/state/index.js';
import { syncRepo } from '../../shared/usecases/index.js';
import { uniqueName } from '../helpers/env.js';
import { configMap, gitopsRepo, yamlDocs } from '../helpers/engine.js';

/**
 * Budgets that bound memory and time, not just output. Found with write access to one repository:
 * a chart that allocates without printing, a repository whose pack is small but unpacks to GiBs,
 * and plain YAML whose parse costs ~50-500 times its text. Each is stopped at a deploy-time limit
 * named in the error, with the memory it took measured from outside (/proc), and the worker lives on.
 */

const MiB = 1024 * 1024;
const CHART = stringify({ apiVersion: 'v2', name: 'app', version: '0.1.0' });

/** The test process's peak resident memory from now on (VmHWM, reset): what a sync in it costs. */
function peakFromNow(): () => number {
  writeFileSync('/proc/self/clear_refs', '5');
  const hwm = () => Number(/^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0) * 1024;
  const rss = () => Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0) * 1024;
  const base = rss();
  return () => hwm() - base;
}

const readOr = (path: string): string => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
};

/**
 * Watches, from /proc, the first process running `helm template <release>`: its peak resident
 * memory (with its children) and its environment. Independent of tidegate's own watch.
 */
function watchHelm(release: string) {
  let pid: number | undefined;
  let peak = 0;
  let env = '';
  const tree = (p: number): number[] => [
    p,
    ...readdirSync(`/proc/${p}/task`, { withFileTypes: false }).flatMap((t) =>
      readOr(`/proc/${p}/task/${t}/children`)
        .split(' ')
        .filter((c) => c.trim())
        .flatMap((c) => tree(Number(c))),
    ),
  ];
  const timer = setInterval(() => {
    try {
      if (pid === undefined) {
        for (const entry of readdirSync('/proc')) {
          if (!/^\d+$/.test(entry)) continue;
          const cmd = readOr(`/proc/${entry}/cmdline`).split('\0');
          if (cmd.includes('template') && cmd.includes(release) && /helm$/.test(cmd[0] ?? '')) {
            pid = Number(entry);
            env = readOr(`/proc/${entry}/environ`);
            break;
          }
        }
        return;
      }
      if (!existsSync(`/proc/${pid}/status`)) return;
      const kib = tree(pid).reduce(
        (sum, p) => sum + Number(/^VmRSS:\s+(\d+) kB/m.exec(readOr(`/proc/${p}/status`))?.[1] ?? 0),
        0,
      );
      peak = Math.max(peak, kib * 1024);
    } catch {
      // a process gone between two reads
    }
  }, 5);
  return {
    stop: () => clearInterval(timer),
    get peak() {
      return peak;
    },
    get env() {
      return env.split('\0');
    },
    get seen() {
      return pid !== undefined;
    },
  };
}

describe('attack: a chart that allocates without printing (helm and kustomize are bounded in memory)', () => {
  it('a chart doubling a string 25 times (~1 GiB in helm, 20 bytes of output): that target fails with the memory limit named, helm was stopped near it, the other target of the repository syncs', async () => {
    const repo = await gitopsRepo('bomb');
    const [bomb, ok] = [uniqueName('bomb'), uniqueName('ok')];
    await repo.commit({
      'tidegate.yaml': stringify({
        targets: [
          { name: bomb, cluster: 'c', path: 'bomb', targetNamespace: bomb, wait: false },
          { name: ok, cluster: 'c', path: 'ok', targetNamespace: ok, wait: false },
        ],
      }),
      'bomb/Chart.yaml': CHART,
      'bomb/templates/cm.yaml': `{{- $s := "xxxxxxxx" }}
{{- range until 25 }}{{- $s = printf "%s%s" $s $s }}{{- end }}
apiVersion: v1
kind: ConfigMap
metadata:
  name: bomb
data:
  length: "{{ len $s }}"
`,
      'ok/cm.yaml': yamlDocs(configMap('app', { v: '1' })),
    });
    const helm = watchHelm(bomb);
    const started = Date.now();
    let results;
    try {
      results = await syncRepo(repo.engine, { repo: repo.url });
    } finally {
      helm.stop();
    }
    const limit = localSettings().budgets.render.maxMemoryBytes;
    expect(limit).toBe(512 * MiB);
    const failed = results.find((r) => r.target === bomb);
    expect(failed?.outcome).toBe('failed');
    expect(failed?.error).toMatch(
      /^helm template bomb: used more than 512 MiB of memory \(deploy-time setting render\.maxMemoryMiB\); stopped at \d+ MiB$/,
    );
    expect(helm.seen).toBe(true);
    // Measured from outside: stopped within a sampling interval or two of the limit (unbounded: ~1 GiB).
    expect(helm.peak).toBeGreaterThan(limit * 0.9);
    expect(helm.peak).toBeLessThan(limit + 128 * MiB);
    // GOMEMLIMIT: Go collects garbage before the hard limit (three quarters of it).
    expect(helm.env).toContain('GOMEMLIMIT=384MiB');
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(results.find((r) => r.target === ok)).toMatchObject({ outcome: 'applied' });
    expect(await repo.engine.client.get('v1', 'ConfigMap', ok, 'app')).toMatchObject({ data: { v: '1' } });
    expect((await readTargetState(repo.engine.client, bomb)).lastApplied).toBeUndefined();
  });

  it('a chart printing one 9 MiB document (under render.maxOutputMiB): refused before it is parsed, render.maxFileMiB named', async () => {
    const root = mkdtempSync(join(tmpdir(), 'budget-chart-'));
    mkdirSync(join(root, 'templates'));
    writeFileSync(join(root, 'Chart.yaml'), CHART);
    writeFileSync(
      join(root, 'templates/cm.yaml'),
      'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\ndata:\n  v: "{{ repeat 9437184 "x" }}"\n',
    );
    const err = await render(options(root)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RenderError);
    expect((err as RenderError).message).toMatch(
      /^helm template \.: a YAML document of 9 MiB, more than 8 MiB \(deploy-time setting render\.maxFileMiB\)$/,
    );
  });
});

/** Writes a file of `bytes` zeros (sparse: no memory, no disk) and commits and pushes it. */
async function commitZeros(repo: Awaited<ReturnType<typeof gitopsRepo>>, files: Record<string, number>) {
  for (const [path, bytes] of Object.entries(files)) {
    mkdirSync(join(repo.ws.dir, path, '..'), { recursive: true });
    writeFileSync(join(repo.ws.dir, path), '');
    truncateSync(join(repo.ws.dir, path), bytes);
  }
  await repo.ws.git('add', '--all');
  await repo.ws.git('commit', '--quiet', '-m', 'data');
  await repo.ws.git('push', '--quiet', 'origin', 'HEAD:refs/heads/main');
}

/** What the cache holds of a repository: no exported tree (complete or partial), and its size on disk. */
function cacheOf(settings: LocalSettings, url: string) {
  const base = join(cachedGitdir({ url }, settings.cacheDir), '..');
  const du = (dir: string): number =>
    !existsSync(dir)
      ? 0
      : readdirSync(dir, { withFileTypes: true }).reduce(
          (sum, e) => sum + (e.isDirectory() ? du(join(dir, e.name)) : statSync(join(dir, e.name)).size),
          0,
        );
  const trees = join(base, 'trees');
  return { trees: existsSync(trees) ? readdirSync(trees) : [], bytes: du(base) };
}

describe('attack: a repository that is small on the server and huge unpacked (checkout limits)', () => {
  it('a 300 MiB file of zeros outside every target (a 0.3 MiB pack): the sync fails, permanently, naming source.maxFileMiB; refused by the object header before it is inflated, memory and /tmp stay small', async () => {
    const repo = await gitopsRepo('zeros');
    const name = uniqueName('zeros');
    await repo.commit({
      'tidegate.yaml': stringify({
        targets: [{ name, cluster: 'c', path: 'app', targetNamespace: name, wait: false }],
      }),
      'app/cm.yaml': yamlDocs(configMap('app', { v: '1' })),
    });
    await commitZeros(repo, { 'data/zeros.bin': 300 * MiB });
    const peak = peakFromNow();
    const started = Date.now();
    const err = await syncRepo(repo.engine, { repo: repo.url }).then(
      () => undefined,
      (e: unknown) => e as { message: string; transient?: boolean },
    );
    const took = Date.now() - started;
    expect(err?.message).toMatch(
      /^repository http:\/\/127\.0\.0\.1:\d+\/zeros-\w+\.git is larger than allowed: an object of 300 MiB, more than 64 MiB \(deploy-time setting source\.maxFileMiB\)$/,
    );
    expect(err?.transient).toBe(false); // permanent: the queue does not retry it
    // Unbounded, the checkout inflates it several times over: 1.3 GiB resident and 300 MiB in /tmp.
    expect(peak()).toBeLessThan(100 * MiB);
    expect(took).toBeLessThan(15_000);
    const cache = cacheOf(repo.engine.settings, repo.url);
    expect(cache.trees).toEqual([]);
    expect(cache.bytes).toBeLessThan(MiB);
    expect((await readTargetState(repo.engine.client, name)).lastApplied).toBeUndefined();
  });

  it('one 10 MiB blob at 10 paths (a small pack, 100 MiB exported) with source.maxTreeMiB 64: refused while exporting, before writing past the limit; nothing of it stays in the cache', async () => {
    const repo = await gitopsRepo('tree');
    const name = uniqueName('tree');
    await repo.commit({
      'tidegate.yaml': stringify({
        targets: [{ name, cluster: 'c', path: 'app', targetNamespace: name, wait: false }],
      }),
      'app/cm.yaml': yamlDocs(configMap('app', { v: '1' })),
    });
    await commitZeros(repo, Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`data/${i}/same.bin`, 10 * MiB])));
    const settings = localSettings();
    const limits = { ...settings.budgets.source, maxTreeBytes: 64 * MiB };
    const ctx = { ...repo.engine, gitSource: (url: string): GitSource => ({ url, limits }) };
    const peak = peakFromNow();
    const err = await syncRepo(ctx, { repo: repo.url }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err?.message).toMatch(
      /is larger than allowed: its files are more than 64 MiB \(deploy-time setting source\.maxTreeMiB\)$/,
    );
    expect(peak()).toBeLessThan(150 * MiB);
    const cache = cacheOf(settings, repo.url);
    expect(cache.trees).toEqual([]); // the partial export was removed
    expect(cache.bytes).toBeLessThan(MiB);
  });

  it('more files than source.maxFiles: refused while exporting, nothing left in the cache', async () => {
    const repo = await gitopsRepo('files');
    const name = uniqueName('files');
    await repo.commit({
      'tidegate.yaml': stringify({
        targets: [{ name, cluster: 'c', path: 'app', targetNamespace: name, wait: false }],
      }),
      'app/cm.yaml': yamlDocs(configMap('app', { v: '1' })),
      ...Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`notes/${i}.txt`, `${i}\n`])),
    });
    const settings = localSettings();
    const limits = { ...settings.budgets.source, maxFiles: 50 };
    const ctx = { ...repo.engine, gitSource: (url: string): GitSource => ({ url, limits }) };
    await expect(syncRepo(ctx, { repo: repo.url })).rejects.toThrow(
      /is larger than allowed: more than 50 files \(deploy-time setting source\.maxFiles\)$/,
    );
    expect(cacheOf(settings, repo.url).trees).toEqual([]);
  });
});

const options = (root: string, settings: LocalSettings = localSettings()): RenderOptions => ({
  root,
  path: '.',
  mode: 'auto',
  substitute: {},
  defaultReleaseName: 'app',
  settings,
});

/** `n` ConfigMaps of about 1 KiB each, as one multi-document text. */
const configMaps = (prefix: string, n: number): string =>
  Array.from(
    { length: n },
    (_, i) =>
      `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${prefix}-${i}\ndata:\n${Array.from({ length: 30 }, (_, k) => `  key${k}: "value-${k}-${i}"`).join('\n')}\n`,
  ).join('---\n');

describe('attack: plain YAML whose parse costs far more than its text (parsed within limits)', () => {
  it('60 MiB of plain YAML in 60 files (under render.maxOutputMiB, ~3 GiB and 90 s to parse whole): refused before parsing by render.maxDocuments, in seconds, memory bounded', async () => {
    const root = mkdtempSync(join(tmpdir(), 'budget-yaml-'));
    const one = configMaps('cm', 1400); // ~1 MiB, 1400 documents
    for (let i = 0; i < 60; i++) writeFileSync(join(root, `f${String(i).padStart(2, '0')}.yaml`), one);
    const peak = peakFromNow();
    const started = Date.now();
    const err = await render(options(root)).catch((e: unknown) => e);
    const took = Date.now() - started;
    rmSync(root, { recursive: true, force: true });
    expect(err).toBeInstanceOf(RenderError);
    expect((err as RenderError).message).toBe(
      '.: more than 10000 YAML documents (deploy-time setting render.maxDocuments)',
    );
    expect(took).toBeLessThan(5000);
    expect(peak()).toBeLessThan(200 * MiB);
  });

  it('one 6 MiB file of a flow sequence `[1,1,…]` (under render.maxFileMiB; ~2.8 GiB to parse whole): refused at render.maxDocumentTokens before the document is composed', async () => {
    const root = mkdtempSync(join(tmpdir(), 'budget-yaml-'));
    writeFileSync(
      join(root, 'big.yaml'),
      `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\nitems: [${'1,'.repeat(3 * MiB)}1]\n`,
    );
    const peak = peakFromNow();
    const started = Date.now();
    const err = await render(options(root)).catch((e: unknown) => e);
    const took = Date.now() - started;
    rmSync(root, { recursive: true, force: true });
    expect((err as RenderError).message).toBe(
      'big.yaml (document 1): more than 250000 YAML tokens (deploy-time setting render.maxDocumentTokens)',
    );
    expect(took).toBeLessThan(15_000);
    expect(peak()).toBeLessThan(512 * MiB);
  });

  it('a file over render.maxFileMiB: refused by its size before it is read', async () => {
    const root = mkdtempSync(join(tmpdir(), 'budget-yaml-'));
    writeFileSync(join(root, 'huge.yaml'), '');
    truncateSync(join(root, 'huge.yaml'), 9 * MiB);
    const peak = peakFromNow();
    const err = await render(options(root)).catch((e: unknown) => e);
    rmSync(root, { recursive: true, force: true });
    expect((err as RenderError).message).toBe(
      'huge.yaml: 9 MiB, more than 8 MiB (deploy-time setting render.maxFileMiB)',
    );
    expect(peak()).toBeLessThan(20 * MiB);
  });

  it('a long parse lets the event loop run between documents (the Lease is renewed) and stops at render.timeout', async () => {
    const root = mkdtempSync(join(tmpdir(), 'budget-yaml-'));
    writeFileSync(join(root, 'many.yaml'), configMaps('cm', 5000));
    const settings = localSettings();
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    const err = await render(options(root, { ...settings, render: { ...settings.render, timeoutMs: 300 } })).catch(
      (e: unknown) => e,
    );
    clearInterval(timer);
    rmSync(root, { recursive: true, force: true });
    expect((err as RenderError).message).toBe('many.yaml: took longer than 0.3 s (deploy-time setting render.timeout)');
    expect(ticks).toBeGreaterThan(10);
  });

  it('the same limits with room to spare render the same 5,000 documents', async () => {
    const root = mkdtempSync(join(tmpdir(), 'budget-yaml-'));
    writeFileSync(join(root, 'many.yaml'), configMaps('cm', 5000));
    const out = await render(options(root));
    rmSync(root, { recursive: true, force: true });
    expect(out.objects).toHaveLength(5000);
  });
});
