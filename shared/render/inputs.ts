import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { join, posix, relative, sep } from 'node:path';
import { isMap, isScalar, isSeq, visit } from 'yaml';
import type { TargetSpec } from '../config/index.js';
import { BuildInputTooLarge, buildInputDocuments, parseBuildInput, readBuildInput } from './yaml.js';

const KUSTOMIZATION_FILES = ['kustomization.yaml', 'kustomization.yml', 'Kustomization'];

export type RenderMode = 'auto' | 'yaml' | 'kustomize' | 'helm';

/** How a directory renders: a kustomization, a chart, or plain manifests. */
export function detectMode(dir: string): Exclude<RenderMode, 'auto'> {
  if (KUSTOMIZATION_FILES.some((f) => existsSync(join(dir, f)))) return 'kustomize';
  if (existsSync(join(dir, 'Chart.yaml'))) return 'helm';
  return 'yaml';
}

/** Fields of a kustomization that name local files or directories (each a string, or objects with a path). */
const PATH_LISTS = [
  'resources',
  'bases',
  'components',
  'crds',
  'patchesStrategicMerge',
  'generators',
  'transformers',
  'validators',
  'configurations',
];
const PATH_OBJECTS = ['patches', 'patchesJson6902', 'replacements'];
const GENERATORS = ['configMapGenerator', 'secretGenerator'];

/** Whether a kustomization entry names something fetched over the network rather than a local path. */
export const isRemote = (ref: string): boolean =>
  /^[a-z][a-z0-9+.-]*:\/\//i.test(ref) ||
  /^(github\.com|gitlab\.com|bitbucket\.org)\//.test(ref) ||
  ref.includes('?ref=') ||
  ref.startsWith('git@') ||
  ref.startsWith('git::');

const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
const objects = (v: unknown): Array<Record<string, unknown>> =>
  Array.isArray(v) ? v.filter((x): x is Record<string, unknown> => x !== null && typeof x === 'object') : [];

/**
 * A field as kustomize reads it: its YAML goes through Go's encoding/json, which matches field
 * names without regard to case, so `Resources:` is `resources:`. Every key matching is taken.
 */
/** Go's case folding of a field name (strings.EqualFold): letter case, and the two letters that fold to ASCII ones (ſ → s, K → k). */
const fold = (key: string): string =>
  key
    .toLowerCase()
    .replace(/\u017f/g, 's')
    .replace(/\u212a/g, 'k');
const field = (obj: Record<string, unknown>, name: string): unknown[] =>
  Object.entries(obj)
    .filter(([k]) => fold(k) === fold(name))
    .map(([, v]) => v);
const listField = (obj: Record<string, unknown>, name: string): unknown[] =>
  field(obj, name).flatMap((v) => (Array.isArray(v) ? v : [v]));

/** Files a configMapGenerator or secretGenerator reads (`files` entries may be `key=path`). */
const generatorFiles = (gen: Record<string, unknown>): string[] =>
  ['files', 'envs', 'env']
    .flatMap((k) => strings(listField(gen, k)))
    .map((f) => (f.includes('=') ? f.slice(f.indexOf('=') + 1) : f));

/** Every path or URL a kustomization file names (local ones relative to its directory). */
function namedPaths(kustomization: Record<string, unknown>): string[] {
  const out = PATH_LISTS.flatMap((key) => strings(listField(kustomization, key)));
  out.push(
    ...PATH_OBJECTS.flatMap((key) =>
      objects(listField(kustomization, key)).flatMap((item) => strings(listField(item, 'path'))),
    ),
  );
  out.push(...GENERATORS.flatMap((key) => objects(listField(kustomization, key)).flatMap(generatorFiles)));
  out.push(...objects(field(kustomization, 'openapi')).flatMap((o) => strings(listField(o, 'path'))));
  return out;
}

/**
 * A kustomization file's content, or undefined when it is not exactly one YAML mapping (kustomize
 * would read its first document only, so a file with more must not pass unread). Merge keys apply
 * as in Go's YAML.
 */
export function readKustomization(file: string): Record<string, unknown> | undefined {
  // At most 1 MiB and 200,000 YAML tokens (BuildInputTooLarge past them): a kustomization is read whole.
  const text = readBuildInput(file);
  // Directives (%YAML 1.1) and tags (!!binary, !<…>) are read differently by Go's YAML: not accepted at all.
  if (/^%/m.test(text)) return undefined;
  const docs = buildInputDocuments(text, { merge: true });
  if (!Array.isArray(docs) || docs.length !== 1) return undefined;
  const [doc] = docs;
  if (!doc || doc.errors.length > 0 || doc.warnings.length > 0) return undefined;
  let tagged = false;
  visit(doc, (_key, node) => {
    if ((isScalar(node) || isMap(node) || isSeq(node)) && node.tag) tagged = true;
  });
  if (tagged) return undefined;
  const value: unknown = doc.toJS({ maxAliasCount: 1000 });
  return value !== null && typeof value === 'object' && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

/** The path as it really is (symbolic links resolved), relative to the repository; undefined when missing or outside. */
export function realRelative(realRoot: string, rel: string): string | undefined {
  const full = join(realRoot, rel);
  if (!existsSync(full)) return undefined;
  const real = relative(realRoot, realpathSync(full)).split(sep).join('/') || '.';
  return real.startsWith('..') ? undefined : real;
}

/** One entry of a kustomization: the file naming it, the entry as written and, for a local one, its path from the repository root. */
export interface KustomizationEntry {
  kustomization: string;
  entry: string;
  path?: string;
}

/** The kustomization file in a directory of the repository (a relative path), if any. */
export const kustomizationFile = (root: string, dir: string): string | undefined =>
  KUSTOMIZATION_FILES.map((f) => posix.join(dir, f)).find((f) => existsSync(join(root, f)));

/**
 * Every entry of the kustomization at `path` and of every local kustomization it reaches, paths
 * normalised from the repository root (one starting with ".." leaves it), and the kustomization
 * files that could not be read as one YAML mapping. A base reached through a symbolic link is read
 * where the link leads, as kustomize does.
 */
export function kustomizationTree(
  root: string,
  path: string,
): { entries: KustomizationEntry[]; unreadable: Array<{ file: string; reason: string }> } {
  const entries: KustomizationEntry[] = [];
  const unreadable: Array<{ file: string; reason: string }> = [];
  const seen = new Set<string>();
  const walk = (named: string, depth: number): void => {
    const dir = realRelative(root, named) ?? named;
    const file = kustomizationFile(root, dir);
    if (!file || seen.has(dir)) return;
    if (depth > 20) {
      // kustomize has no depth limit: what is not checked here is not rendered.
      unreadable.push({ file, reason: 'bases nest deeper than 20 levels' });
      return;
    }
    seen.add(dir);
    let doc: Record<string, unknown> | undefined;
    try {
      doc = readKustomization(join(root, file));
    } catch (err) {
      if (err instanceof BuildInputTooLarge) {
        unreadable.push({ file, reason: `${err.message}: it is not read` });
        return;
      }
      doc = undefined;
    }
    if (!doc) {
      unreadable.push({
        file,
        reason: 'not one plain YAML mapping (one document, no tags or directives): kustomize would read it otherwise',
      });
      return;
    }
    for (const entry of namedPaths(doc)) {
      if (/[\n\r]/.test(entry)) {
        unreadable.push({ file, reason: 'an inline plugin configuration (YAML text as an entry) is not supported' });
        continue;
      }
      if (isRemote(entry)) {
        entries.push({ kustomization: file, entry });
        continue;
      }
      const local = posix.normalize(posix.join(dir, entry));
      entries.push({ kustomization: file, entry, path: local });
      if (!local.startsWith('..') && existsSync(join(root, local)) && statSync(join(root, local)).isDirectory())
        walk(local, depth + 1);
    }
  };
  walk(path, 0);
  return { entries, unreadable };
}

/** Local chart dependencies (`repository: file://../common`) of a chart directory, recursively. */
function chartDependencies(root: string, dir: string, inputs: Set<string>, depth: number): void {
  if (depth > 10 || !existsSync(join(root, dir, 'Chart.yaml'))) return;
  let chart: { dependencies?: Array<{ repository?: unknown }> } | undefined;
  try {
    chart = parseBuildInput(join(root, dir, 'Chart.yaml')) as typeof chart;
  } catch {
    return;
  }
  for (const dep of chart?.dependencies ?? []) {
    if (typeof dep.repository !== 'string' || !dep.repository.startsWith('file://')) continue;
    const path = posix.normalize(posix.join(dir, dep.repository.slice('file://'.length)));
    if (path.startsWith('..') || inputs.has(path)) continue;
    inputs.add(path);
    chartDependencies(root, path, inputs, depth + 1);
  }
}

/** At most this many files and directories are looked at for symbolic links, per target. */
const LINK_WALK_LIMIT = 50_000;

/**
 * Where symbolic links under the inputs lead (the render follows those that stay inside the
 * repository): each place reached through one is an input too, and is walked in turn.
 */
function linkedInputs(root: string, inputs: Set<string>): void {
  const seen = new Set<string>();
  let budget = LINK_WALK_LIMIT;
  const visit = (rel: string): void => {
    if (seen.has(rel) || budget-- <= 0) return;
    seen.add(rel);
    const real = realRelative(root, rel); // undefined outside the repository: the render refuses it
    if (real === undefined) return;
    if (real !== rel) {
      inputs.add(real);
      visit(real);
      return;
    }
    const full = join(root, rel);
    if (!statSync(full).isDirectory()) return;
    for (const entry of readdirSync(full)) if (!entry.startsWith('.')) visit(posix.join(rel, entry));
  };
  for (const input of [...inputs]) visit(input);
}

/**
 * The paths of the repository (directories and files, relative to its root) that a target's render
 * reads: its path and its components, the bases, components, patches and generator files of its kustomizations
 * (followed through every local kustomization they name), the local dependencies of its chart,
 * its values files, and wherever a symbolic link among them leads. A push that changes any of them
 * affects the target.
 */
export function renderInputs(
  repoRoot: string,
  spec: Pick<TargetSpec, 'path' | 'render'> & {
    helm?: { values: readonly string[] } | undefined;
    components?: readonly string[] | undefined;
  },
): string[] {
  const root = realpathSync(repoRoot);
  const path = posix.normalize(spec.path);
  const inputs = new Set<string>([path]);
  const mode =
    spec.render === 'auto' ? (existsSync(join(root, path)) ? detectMode(join(root, path)) : 'yaml') : spec.render;
  // A path without a kustomization (auto) builds each directory under it that holds one whole, as Flux does.
  const built = mode === 'kustomize' ? [path] : spec.render === 'auto' ? kustomizationsUnder(root, path) : [];
  // Components are built with the path (added to its kustomization): each is read, with what it names.
  for (const local of componentDirs(path, spec.components)) {
    inputs.add(local);
    built.push(local);
  }
  for (const dir of built)
    for (const { path: local } of kustomizationTree(root, dir).entries)
      if (local !== undefined && !local.startsWith('..')) inputs.add(local);
  if (mode === 'helm') chartDependencies(root, path, inputs, 0);
  for (const values of spec.helm?.values ?? []) inputs.add(posix.normalize(posix.join(path, values)));
  linkedInputs(root, inputs);
  return [...inputs];
}

/** A target's components as paths of the repository; one leading out of it is left out (the render refuses it). */
const componentDirs = (path: string, components: readonly string[] = []): string[] =>
  components
    .map((c) => posix.normalize(posix.join(path, c)))
    .filter((local) => !local.startsWith('..') && !posix.isAbsolute(local));

/** The directories under `path` (not through links, not below one another) that hold a kustomization. */
function kustomizationsUnder(root: string, path: string): string[] {
  const found: string[] = [];
  const walk = (dir: string, depth: number): void => {
    if (depth > 20 || !existsSync(join(root, dir))) return;
    for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
      if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
      const sub = posix.join(dir, entry.name);
      if (kustomizationFile(root, sub)) found.push(sub);
      else walk(sub, depth + 1);
    }
  };
  walk(path, 0);
  return found;
}

/** At most this many files go into the digest of a target's inputs. */
const DIGEST_FILE_LIMIT = 20_000;

/**
 * A digest of the contents of the files under the given repository paths (sorted, paths included):
 * equal digests mean the render read the same files.
 */
export function inputsDigest(repoRoot: string, paths: readonly string[]): string {
  const root = realpathSync(repoRoot);
  const hash = createHash('sha256');
  let budget = DIGEST_FILE_LIMIT;
  const visit = (rel: string): void => {
    if (budget-- <= 0) return;
    const real = realRelative(root, rel);
    if (real === undefined) return;
    const full = join(root, real);
    if (!existsSync(full)) return;
    if (statSync(full).isDirectory()) {
      for (const entry of readdirSync(full).sort()) if (!entry.startsWith('.')) visit(posix.join(rel, entry));
      return;
    }
    hash.update(`${rel}\0`).update(readFileSync(full)).update('\0');
  };
  for (const path of [...new Set(paths)].sort()) visit(path);
  return hash.digest('hex');
}
