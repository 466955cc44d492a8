import { execFile } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, readFileSync, realpathSync, mkdirSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { promisify } from 'node:util';
import { errorMessage, formatRef, refKey, refOf } from '../model/index.js';
import type { LocalSettings, TargetSpec } from '../config/index.js';
import { locateTool } from './binaries.js';
import { RenderError, type RenderProblem } from './errors.js';
import { parseManifests, type RenderedObject } from './manifests.js';

const run = promisify(execFile);

export type RenderMode = 'auto' | 'yaml' | 'kustomize' | 'helm';

export interface RenderOptions {
  /** The repository checkout. */
  root: string;
  /** The target's path inside it. */
  path: string;
  mode: RenderMode;
  substitute: Readonly<Record<string, string>>;
  helm?:
    { releaseName?: string | undefined; values: readonly string[]; set: Readonly<Record<string, string>> } | undefined;
  /** Release name for helm when none is set (the target name). */
  defaultReleaseName: string;
  /** Namespace helm renders into (the target namespace). */
  namespace?: string | undefined;
  settings: LocalSettings;
  signal?: AbortSignal | undefined;
}

export interface RenderResult {
  mode: Exclude<RenderMode, 'auto'>;
  objects: RenderedObject[];
}

const MAX_OUTPUT = 256 * 1024 * 1024;
const MANIFEST = /\.(ya?ml|json)$/i;

/** Resolves the target path and proves it stays inside the repository (symlinks included). */
function resolveInside(root: string, path: string): string {
  const realRoot = realpathSync(root);
  const full = join(realRoot, path);
  if (!existsSync(full)) throw new RenderError([{ file: path, message: 'path does not exist in the repository' }]);
  const real = realpathSync(full);
  if (real !== realRoot && !real.startsWith(realRoot + sep))
    throw new RenderError([{ file: path, message: 'path resolves outside the repository' }]);
  return real;
}

export function detectMode(dir: string): Exclude<RenderMode, 'auto'> {
  if (['kustomization.yaml', 'kustomization.yml', 'Kustomization'].some((f) => existsSync(join(dir, f))))
    return 'kustomize';
  if (existsSync(join(dir, 'Chart.yaml'))) return 'helm';
  return 'yaml';
}

/** Every manifest file under dir, sorted, skipping dot-directories; symlinks must stay in the repository. */
function manifestFiles(dir: string, realRoot: string, problems: RenderProblem[]): string[] {
  const files: string[] = [];
  const walk = (current: string): void => {
    for (const entry of readdirSync(current, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (entry.name.startsWith('.')) continue;
      const full = join(current, entry.name);
      let isDir = entry.isDirectory();
      if (lstatSync(full).isSymbolicLink()) {
        const real = existsSync(full) ? realpathSync(full) : '';
        if (!real.startsWith(realRoot + sep)) {
          problems.push({ file: relative(realRoot, full), message: 'symbolic link points outside the repository' });
          continue;
        }
        isDir = lstatSync(real).isDirectory();
      }
      if (isDir) walk(full);
      else if (MANIFEST.test(entry.name)) files.push(full);
    }
  };
  walk(dir);
  return files;
}

async function tool(command: string, args: string[], cwd: string, opts: RenderOptions, what: string): Promise<string> {
  const helmHome = join(opts.settings.cacheDir, 'helm');
  mkdirSync(helmHome, { recursive: true });
  try {
    const { stdout } = await run(command, args, {
      cwd,
      maxBuffer: MAX_OUTPUT,
      signal: opts.signal,
      // helm writes caches under HOME; keep them in tidegate's cache (the only writable place in Lambda).
      env: {
        PATH: opts.settings.searchPath,
        HOME: helmHome,
        HELM_CACHE_HOME: join(helmHome, 'cache'),
        HELM_CONFIG_HOME: join(helmHome, 'config'),
        HELM_DATA_HOME: join(helmHome, 'data'),
      },
    });
    return stdout;
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr?.trim();
    throw new RenderError([{ file: what, message: stderr || errorMessage(err) }], { cause: err });
  }
}

/**
 * Renders a target into Kubernetes objects: plain YAML (recursive, multi-document), kustomize
 * (`kubectl kustomize`) or helm (`helm template`); substitutes variables; validates every object.
 * Pure with respect to the cluster. Throws RenderError listing every problem.
 */
export async function render(opts: RenderOptions): Promise<RenderResult> {
  const realRoot = realpathSync(opts.root);
  const dir = resolveInside(opts.root, opts.path);
  const rel = relative(realRoot, dir) || '.';
  const mode = opts.mode === 'auto' ? detectMode(dir) : opts.mode;
  const problems: RenderProblem[] = [];
  let objects: RenderedObject[] = [];
  if (mode === 'yaml') {
    for (const file of manifestFiles(dir, realRoot, problems)) {
      objects.push(...parseManifests(readFileSync(file, 'utf8'), relative(realRoot, file), opts.substitute, problems));
    }
  } else if (mode === 'kustomize') {
    const out = await tool(
      locateTool('kubectl', opts.settings),
      ['kustomize', dir],
      dir,
      opts,
      `kustomize build ${rel}`,
    );
    objects = parseManifests(out, `kustomize build ${rel}`, opts.substitute, problems);
  } else {
    const helm = opts.helm ?? { values: [], set: {} };
    const args = ['template', helm.releaseName ?? opts.defaultReleaseName, dir, '--include-crds'];
    if (opts.namespace) args.push('--namespace', opts.namespace);
    for (const values of helm.values) args.push('--values', resolveInside(dir, values));
    for (const [k, v] of Object.entries(helm.set)) args.push('--set-string', `${k}=${v}`);
    const out = await tool(locateTool('helm', opts.settings), args, dir, opts, `helm template ${rel}`);
    objects = parseManifests(out, `helm template ${rel}`, opts.substitute, problems);
  }
  const seen = new Map<string, string>();
  for (const { object, source } of objects) {
    const key = refKey(refOf(object));
    const first = seen.get(key);
    if (first !== undefined)
      problems.push({ file: source, object: formatRef(refOf(object)), message: `duplicate object (also in ${first})` });
    else seen.set(key, source);
  }
  if (problems.length > 0) throw new RenderError(problems);
  return { mode, objects };
}

/** A target's files rendered as its tidegate.yaml entry says (path, mode, substitutions, helm options, namespace). */
export function renderTarget(
  spec: TargetSpec,
  root: string,
  settings: LocalSettings,
  signal?: AbortSignal,
): Promise<RenderResult> {
  return render({
    root,
    path: spec.path,
    mode: spec.render,
    substitute: spec.substitute,
    helm: spec.helm,
    defaultReleaseName: spec.name,
    namespace: spec.targetNamespace,
    settings,
    signal,
  });
}
