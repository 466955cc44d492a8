import {
  cpSync,
  existsSync,
  lstatSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  mkdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix, relative, sep } from 'node:path';
import {
  errorMessage,
  formatRef,
  isFluxApiVersion,
  refKey,
  refOf,
  type ChartVersion,
  type KubeObject,
} from '../model/index.js';
import type { LocalSettings, TargetSpec } from '../config/index.js';
import { locateTool } from './binaries.js';
import { RenderError, type RenderProblem } from './errors.js';
import { checkDocuments, parseBudget, parseManifests, type ParseBudget, type RenderedObject } from './manifests.js';
import { runTool, ToolRunError, type ToolFailure } from './tool.js';
import { detectMode, kustomizationFile, readKustomization, type RenderMode } from './inputs.js';
import { vendorRemoteBases, type FetchRemoteBase } from './vendor.js';
import { randomFields, valueAt } from './random.js';
import { OUTSIDE, sandboxCheck } from './sandbox.js';
import { decryption, type Decryption, type EncryptedFiles } from './decrypt.js';
import { assembleArtifact, type CopyRule } from './assemble.js';
import { hookOf, isTestHook, type HelmHook } from './hooks.js';
import { chartCallsLookup } from './lookup-scan.js';

/** A chart's hook as rendered. */
export type HookObject = RenderedObject & { hook: HelmHook };

export interface RenderOptions {
  /** The repository checkout. */
  root: string;
  /** The target's path inside it. */
  path: string;
  mode: RenderMode;
  substitute: Readonly<Record<string, string>>;
  helm?:
    | {
        releaseName?: string | undefined;
        values: readonly string[];
        set: Readonly<Record<string, string>>;
        valuesInline?: Readonly<Record<string, unknown>> | undefined;
        crds?: 'apply' | 'skip' | undefined;
      }
    | undefined;
  /**
   * Where a chart's `lookup` reads the cluster (helm --dry-run=server against a confined endpoint);
   * without it, `lookup` finds nothing.
   */
  lookup?:
    | {
        kubeconfig: string;
        cacheDir: string;
        /** Makes what an install renders readable by the renders after it (LookupEndpoint.seed). */
        seed?: ((objects: readonly KubeObject[]) => void) | undefined;
        /** Whether a lookup has read a Secret: a failed render's messages are then withheld. */
        secretsRead?: (() => boolean) | undefined;
        /** Told when the chart was rendered without lookup after all, and why. */
        skipped?: ((why: string) => void) | undefined;
        /** CRDs of the render the cluster does not serve yet (LookupEndpoint.define). */
        define?: ((crds: readonly KubeObject[]) => void) | undefined;
      }
    | undefined;
  /** The release exists already: the chart renders as an upgrade (.Release.IsUpgrade), not an install. */
  upgrade?: boolean | undefined;
  /** Chart values read from the cluster (valuesFrom), in order: under values files, inline values and set. */
  clusterValues?: ReadonlyArray<Record<string, unknown>> | undefined;
  /** kustomize patches and image overrides applied to the rendered objects. */
  kustomize?: Overlay | undefined;
  /**
   * kustomize Components (paths relative to `path`) added to the path's kustomization, or to the one
   * generated for a path without (its manifests and the directories holding a kustomization), as Flux does.
   */
  components?: readonly string[] | undefined;
  /** Labels and annotations set on every rendered object, over its own (Flux's commonMetadata). */
  commonMetadata?: CommonMetadata | undefined;
  /**
   * Flux objects (isFluxApiVersion) in the output are configuration tidegate reads, never applied;
   * "root": neither are Flux's own components (labelled app.kubernetes.io/part-of: flux); "foreign":
   * the files come from another repository, whose Flux objects tidegate has not read: a
   * Kustomization or HelmRelease there is a problem (it would deploy something nobody applies).
   */
  fluxObjects?: 'config' | 'root' | 'foreign' | undefined;
  /** Undeclared variables become a mark rather than a problem (reading Flux configuration, not applying). */
  lenientSubstitution?: boolean | undefined;
  /** Release name for helm when none is set (the target name). */
  defaultReleaseName: string;
  /** Namespace helm renders into (the target namespace). */
  namespace?: string | undefined;
  settings: LocalSettings;
  signal?: AbortSignal | undefined;
  /** Fetches remote kustomize bases (from allowed hosts); without it, a remote base fails the render. */
  fetchRemoteBase?: FetchRemoteBase | undefined;
  /** A chart from an HTTP(S) Helm repository to render (values files from `path`), instead of a chart in the repository. */
  chart?: ChartSpec | undefined;
  fetchChart?: FetchChart | undefined;
  /** Copy rules of an ExternalArtifact: the path is read in a directory of the repository's files copied so. */
  assemble?: readonly CopyRule[] | undefined;
  /** An OCI artifact whose files are rendered (path within it), instead of the repository's. */
  artifact?: ArtifactSpec | undefined;
  fetchArtifact?: FetchArtifact | undefined;
  /**
   * SOPS-encrypted files (manifests, kustomize patches and secretGenerator sources, helm values
   * files): decrypted with settings.sops, withheld (placeholders), refused, or left as they are.
   * Default: refused.
   */
  encrypted?: EncryptedFiles | undefined;
}

export interface RenderResult {
  mode: Exclude<RenderMode, 'auto'>;
  objects: RenderedObject[];
  /** A chart's hooks (other than tests): run at their points, never part of the release's objects. */
  hooks: HookObject[];
  /** The repository chart rendered: the version the range resolved to, and its digest. */
  chart?: ChartVersion;
  /** Values decrypted from SOPS files: never quoted in a message (see SyncRun.redact). */
  secrets?: readonly string[];
  /** The OCI artifact rendered: the manifest digest its reference resolved to. */
  artifact?: { url: string; digest: string };
}

/** A chart in an HTTP(S) Helm repository: its index.yaml's URL base, name and version (exact or a range). */
export interface ChartSpec {
  repository: string;
  name: string;
  version: string;
  insecure?: boolean | undefined;
  /** oci:// only: tags with a "v" prefix are versions too (a Flux OCIRepository's chart). */
  tagPrefixV?: boolean | undefined;
  /** oci:// only: a cosign signature by one of these trusted keys (by name) must name the chart's manifest. */
  verify?: { provider: 'cosign'; keys: readonly string[] } | undefined;
}

/** What a kustomization's patches and images say, applied over rendered objects. */
export interface Overlay {
  patches: ReadonlyArray<{ patch: string; target?: Record<string, string | undefined> | undefined }>;
  images: ReadonlyArray<{
    name: string;
    newName?: string | undefined;
    newTag?: string | undefined;
    digest?: string | undefined;
  }>;
}

/** Labels and annotations every rendered object gets. */
export interface CommonMetadata {
  labels: Readonly<Record<string, string>>;
  annotations: Readonly<Record<string, string>>;
}

/** Fetches a repository chart by the deadline: the packaged archive (verified, cached) and the version picked. */
export type FetchChart = (chart: ChartSpec, deadline: number) => Promise<ChartVersion & { archive: string }>;

/** An OCI artifact of manifests, as a target names it (Flux's OCIRepository). */
export type ArtifactSpec = NonNullable<TargetSpec['artifact']>;
/** Fetches an OCI artifact by the deadline: its manifest digest and the directory it was extracted to (verified, cached). */
export type FetchArtifact = (artifact: ArtifactSpec, deadline: number) => Promise<{ digest: string; dir: string }>;

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

/**
 * Every manifest file under dir, sorted, skipping dot-directories; symlinks must stay in the repository.
 * With `kustomizations`, a directory holding a kustomization is not walked: it goes there, to be
 * built whole (what Flux does for a path without a kustomization.yaml).
 */
function manifestFiles(dir: string, realRoot: string, problems: RenderProblem[], kustomizations?: string[]): string[] {
  const files: string[] = [];
  const walk = (current: string): void => {
    for (const entry of readdirSync(current, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (entry.name.startsWith('.')) continue;
      const full = join(current, entry.name);
      let isDir = entry.isDirectory();
      if (lstatSync(full).isSymbolicLink()) {
        const real = existsSync(full) ? realpathSync(full) : '';
        if (!real.startsWith(realRoot + sep)) {
          problems.push({ file: relative(realRoot, full), message: OUTSIDE });
          continue;
        }
        isDir = lstatSync(real).isDirectory();
      }
      if (isDir && kustomizations && detectMode(full) === 'kustomize') kustomizations.push(full);
      else if (isDir) walk(full);
      else if (MANIFEST.test(entry.name)) files.push(full);
    }
  };
  walk(dir);
  return files;
}

/** A proxy address nothing listens on: Go's HTTP client in kustomize reaches no host through it. */
const NO_NETWORK = 'http://127.0.0.1:9';

/**
 * The whole environment kustomize and helm run with: no credentials or tokens of this process,
 * caches in tidegate's cache (the only writable place in Lambda), and no network: remote bases are
 * fetched by tidegate beforehand, git may use no protocol, and HTTP goes to a proxy that is not there.
 */
export function toolEnvironment(settings: LocalSettings): Record<string, string> {
  const helmHome = join(settings.cacheDir, 'helm');
  return {
    PATH: settings.searchPath,
    HOME: helmHome,
    HELM_CACHE_HOME: join(helmHome, 'cache'),
    HELM_CONFIG_HOME: join(helmHome, 'config'),
    HELM_DATA_HOME: join(helmHome, 'data'),
    GIT_ALLOW_PROTOCOL: '',
    GIT_TERMINAL_PROMPT: '0',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    HTTP_PROXY: NO_NETWORK,
    HTTPS_PROXY: NO_NETWORK,
    http_proxy: NO_NETWORK,
    https_proxy: NO_NETWORK,
  };
}

const MiB = 1024 * 1024;

/**
 * kustomize or helm within the render's budget: time (render.timeout), output
 * (render.maxOutputMiB) and resident memory with its children (render.maxMemoryMiB), each
 * stopping the tool at once when passed.
 */
async function tool(
  command: string,
  args: string[],
  cwd: string,
  opts: RenderOptions,
  what: string,
  env: Record<string, string> = {},
): Promise<string> {
  mkdirSync(join(opts.settings.cacheDir, 'helm'), { recursive: true });
  const limits = opts.settings.render;
  const memory = opts.settings.budgets.render.maxMemoryBytes;
  try {
    const { stdout } = await runTool(command, args, {
      cwd,
      env: { ...toolEnvironment(opts.settings), ...env },
      budget: {
        timeoutMs: limits.timeoutMs,
        maxOutputBytes: limits.maxBytes,
        maxMemoryBytes: memory,
        signal: opts.signal,
      },
    });
    return stdout;
  } catch (err) {
    const message = err instanceof ToolRunError ? failureMessage(err.failure, limits, memory) : errorMessage(err);
    throw new RenderError([{ file: what, message }], { cause: err });
  }
}

/** Why a tool run failed, as the render's problem: the limit it passed and its deploy-time setting, or the tool's own message. */
function failureMessage(failure: ToolFailure, limits: LocalSettings['render'], memory: number): string {
  switch (failure.kind) {
    case 'output':
      return `output exceeds ${limits.maxBytes / MiB} MiB (deploy-time setting render.maxOutputMiB)`;
    case 'timeout':
      return `took longer than ${limits.timeoutMs / 1000} s (deploy-time setting render.timeout)`;
    case 'memory':
      return `used more than ${memory / MiB} MiB of memory (deploy-time setting render.maxMemoryMiB); stopped at ${Math.round(failure.peakBytes / MiB)} MiB`;
    case 'aborted':
      return failure.stderr.trim() || 'The operation was aborted';
    case 'failed':
      return failure.stderr.trim() || `exited with ${failure.code ?? failure.signal}`;
    case 'spawn':
      return errorMessage(failure.error);
  }
}

/** The parse budget of one render: documents counted across what it parses, time from now. */
const budgetOf = (opts: RenderOptions): ParseBudget =>
  parseBudget(opts.settings.budgets.render, opts.settings.render.timeoutMs, opts.signal);

const mib = (bytes: number): string => `${Math.round((bytes / MiB) * 10) / 10} MiB`;

/**
 * Plain manifests under dir, at most the output limit of them: every file checked against
 * render.maxFileMiB by its size before it is read, the documents of all of them counted against
 * render.maxDocuments before any is parsed, then parsed one document at a time.
 */
async function yamlObjects(
  dir: string,
  realRoot: string,
  rel: string,
  opts: RenderOptions,
  problems: RenderProblem[],
  dec: Decryption,
) {
  const objects: RenderedObject[] = [];
  const budget = budgetOf(opts);
  const maxFile = opts.settings.budgets.render.maxFileBytes;
  let bytes = 0;
  const texts: Array<{ file: string; text: string }> = [];
  // A path found to have no kustomization is read as Flux generates one for it: its manifests, and
  // each directory under it that holds a kustomization built whole (its patch files are not manifests).
  const kustomizations: string[] | undefined = opts.mode === 'auto' ? [] : undefined;
  const files = manifestFiles(dir, realRoot, problems, kustomizations);
  // With components, the kustomization Flux generates is built whole, components appended.
  if (opts.components?.length && problems.length === 0) {
    const generated = [...files, ...(kustomizations ?? [])].map((f) => `./${relative(dir, f).split(sep).join('/')}`);
    return kustomizeObjects(realRoot, rel, opts, problems, dec, opts.components, generated.sort());
  }
  for (const file of files) {
    const size = statSync(file).size;
    const name = relative(realRoot, file);
    if (size > maxFile)
      throw new RenderError([
        {
          file: name,
          message: `${mib(size)}, more than ${mib(maxFile)} (deploy-time setting render.maxFileMiB)`,
        },
      ]);
    bytes += size;
    if (bytes > opts.settings.render.maxBytes) {
      problems.push({
        file: rel,
        message: `manifests exceed ${opts.settings.render.maxBytes / MiB} MiB (deploy-time setting render.maxOutputMiB)`,
      });
      return objects; // the render fails: nothing to parse
    }
    const text = await dec.manifest(readFileSync(file, 'utf8'), name);
    // Counted before anything is parsed: a render past the limit fails at once.
    budget.documents += checkDocuments(text, rel, budget, false);
    texts.push({ file: name, text });
  }
  budget.documents = 0;
  for (const { file, text } of texts)
    objects.push(...(await parseManifests(text, file, opts.substitute, problems, budget, opts.lenientSubstitution)));
  for (const sub of kustomizations ?? [])
    objects.push(...(await toolObjects(sub, realRoot, relative(realRoot, sub), 'kustomize', opts, problems, dec)));
  return objects;
}

/** `kubectl kustomize` or `helm template` of dir, once the sandbox check found nothing that leads out of the repository. */
async function toolObjects(
  dir: string,
  realRoot: string,
  rel: string,
  mode: 'kustomize' | 'helm',
  opts: RenderOptions,
  problems: RenderProblem[],
  dec: Decryption,
  archive?: string,
): Promise<RenderedObject[]> {
  if (mode === 'kustomize') return kustomizeObjects(realRoot, rel, opts, problems, dec);
  const check = sandboxCheck(realRoot, rel, mode, opts.settings.render.allowedHosts);
  if (check.problems.length > 0) throw new RenderError(check.problems);
  return helmObjects(dir, rel, opts, problems, dec, archive);
}

/**
 * `kubectl kustomize` of `rel`; with `components`, in a scratch copy whose kustomization at `rel`
 * gets them appended (as Flux's kustomize-controller does), or, with `generated` (the entries of a
 * path without a kustomization), gets a kustomization of those entries and the components.
 */
async function kustomizeObjects(
  realRoot: string,
  rel: string,
  opts: RenderOptions,
  problems: RenderProblem[],
  dec: Decryption,
  components: readonly string[] = [],
  generated?: readonly string[],
): Promise<RenderedObject[]> {
  const hosts = opts.settings.render.allowedHosts;
  const check = sandboxCheck(realRoot, rel, 'kustomize', hosts, [...components, ...(generated ?? [])]);
  if (check.problems.length > 0) throw new RenderError(check.problems);
  const what = `kustomize build ${rel}`;
  const prepare = components.length > 0 ? (into: string) => addComponents(into, rel, components, generated) : undefined;
  const work =
    check.remote.length > 0
      ? await vendorRemoteBases(
          realRoot,
          rel,
          opts.settings.cacheDir,
          opts.fetchRemoteBase,
          hosts,
          Date.now() + opts.settings.render.timeoutMs,
          prepare,
        )
      : prepare
        ? scratchCopy(realRoot, opts.settings.cacheDir, prepare)
        : realRoot;
  const copied = work !== realRoot;
  let built = work;
  try {
    built = await dec.kustomizeWork(work, rel, copied, opts.settings.cacheDir);
    const at = join(built, rel);
    const out = await tool(locateTool('kubectl', opts.settings), ['kustomize', at], at, opts, what);
    return await parseManifests(out, what, opts.substitute, problems, budgetOf(opts), opts.lenientSubstitution, true);
  } finally {
    if (built !== work) rmSync(built, { recursive: true, force: true });
    if (copied) rmSync(work, { recursive: true, force: true });
  }
}

/** A scratch copy of the checkout (symbolic links as they are), changed by `prepare`; the caller removes it. */
function scratchCopy(realRoot: string, scratchParent: string, prepare: (into: string) => void): string {
  mkdirSync(scratchParent, { recursive: true });
  const scratch = mkdtempSync(join(scratchParent, 'render-'));
  try {
    cpSync(realRoot, scratch, { recursive: true, verbatimSymlinks: true });
    prepare(scratch);
    return scratch;
  } catch (err) {
    rmSync(scratch, { recursive: true, force: true });
    throw err;
  }
}

/**
 * Appends components to the kustomization at `rel` of a scratch copy (to its `components`, as
 * Flux's generator does), or writes one listing `generated` and the components where there is none.
 */
function addComponents(work: string, rel: string, components: readonly string[], generated?: readonly string[]) {
  const existing = generated ? undefined : kustomizationFile(work, rel);
  const file = existing ?? posix.join(rel, 'kustomization.yaml');
  const doc = existing
    ? readKustomization(join(work, existing))
    : { apiVersion: 'kustomize.config.k8s.io/v1beta1', kind: 'Kustomization', resources: [...(generated ?? [])] };
  // The sandbox check refused a kustomization it could not read as one mapping.
  if (!doc) throw new RenderError([{ file, message: 'not one plain YAML mapping: components cannot be added' }]);
  // kustomize matches field names regardless of case: the list kustomize reads is the one extended.
  const key = Object.keys(doc).find((k) => k.toLowerCase() === 'components') ?? 'components';
  const own = Array.isArray(doc[key]) ? (doc[key] as unknown[]) : [];
  rmSync(join(work, file), { force: true }); // a link is replaced, never written through
  writeFileSync(join(work, file), JSON.stringify({ ...doc, [key]: [...own, ...components] })); // JSON: see overlaid()
}

/**
 * How helm renders the release: as an install or an upgrade (.Release.IsInstall, .Release.IsUpgrade);
 * with `lookup` reading the cluster through the confined endpoint when the chart calls it (helm then
 * reads every object it renders too: a chart that never calls lookup never reaches the cluster). An
 * install takes over objects a sync applied before: tidegate keeps no Helm release for helm to check.
 */
async function releaseArgs(
  opts: RenderOptions,
  chart: string,
): Promise<{ args: string[]; env: Record<string, string>; lookup?: RenderOptions['lookup'] }> {
  const args = opts.upgrade ? ['--is-upgrade'] : [];
  if (opts.namespace) args.push('--namespace', opts.namespace);
  const lookup = opts.lookup && (await chartCallsLookup(chart)) ? opts.lookup : undefined;
  if (!lookup) return { args, env: {} };
  args.push('--dry-run=server', '--disable-openapi-validation', '--kubeconfig', lookup.kubeconfig);
  if (!opts.upgrade) args.push('--take-ownership');
  // helm's client would otherwise hold itself to 5 requests a second.
  return { args, env: { KUBECACHEDIR: lookup.cacheDir, HELM_QPS: '1000', HELM_BURST_LIMIT: '1000' }, lookup };
}

/** The `--values` and `--set-string` arguments: files from the cluster, the repository (decrypted) and inline values, then set. */
async function valuesArgs(dir: string, rel: string, opts: RenderOptions, dec: Decryption, scratch: string) {
  const helm = opts.helm ?? { values: [], set: {} };
  const args: string[] = [];
  const file = (name: string, values: Readonly<Record<string, unknown>>): string => {
    writeFileSync(join(scratch, name), JSON.stringify(values), { mode: 0o600 });
    return join(scratch, name);
  };
  (opts.clusterValues ?? []).forEach((values, i) => args.push('--values', file(`from-${i}.json`, values)));
  // A SOPS-encrypted values file is decrypted into the scratch directory (or, withheld, left out).
  for (const values of helm.values) {
    const decrypted = await dec.valuesFile(resolveInside(dir, values), posix.join(rel, values), scratch);
    if (decrypted) args.push('--values', decrypted);
  }
  if (helm.valuesInline && Object.keys(helm.valuesInline).length > 0)
    args.push('--values', file('inline.json', helm.valuesInline));
  for (const [k, v] of Object.entries(helm.set)) args.push('--set-string', `${k}=${v}`);
  return args;
}

/**
 * `helm template` of a chart (in the repository, or a fetched archive) with its values; test hooks
 * and, when asked, CRDs left out; other hooks marked as such; release objects marked as Helm's.
 */
async function helmObjects(
  dir: string,
  rel: string,
  opts: RenderOptions,
  problems: RenderProblem[],
  dec: Decryption,
  archive?: string,
) {
  const chart = archive ?? dir;
  const release = await releaseArgs(opts, chart);
  // Values from the cluster and inline values go through files of their own (they may hold secrets: mode 0600, removed after).
  const scratch = mkdtempSync(join(tmpdir(), 'tidegate-values-'));
  try {
    const values = await valuesArgs(dir, rel, opts, dec, scratch);
    const unbuildable = (err: unknown) => err instanceof RenderError && UNBUILDABLE.test(err.message);
    const server = () => helmRelease(dir, rel, opts, problems, chart, [...release.args, ...values], release);
    try {
      return await server();
    } catch (err) {
      if (!release.lookup || !unbuildable(err)) throw err;
    }
    // helm reading the cluster builds every object it renders with the cluster's API: a custom
    // resource whose CRD this sync is to install first cannot be. The endpoint's discovery then lists
    // what the chart's CRDs define (found by a render without the cluster), and helm renders again;
    // failing that, the chart is rendered without lookup (the next sync, the CRDs in place, reads the cluster).
    const client = await releaseArgs({ ...opts, lookup: undefined }, chart);
    const offline = (found: RenderProblem[]) =>
      helmRelease(dir, rel, opts, found, chart, [...client.args, ...values], client);
    if (release.lookup.define) {
      release.lookup.define((await offline([])).map((r) => r.object).filter(isCrd));
      try {
        return await server();
      } catch (err) {
        if (!unbuildable(err)) throw err;
      }
    }
    release.lookup.skipped?.(LOOKUP_SKIPPED);
    return await offline(problems);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

const UNBUILDABLE = /unable to build kubernetes objects from release manifest/;
const isCrd = (o: KubeObject): boolean =>
  o.kind === 'CustomResourceDefinition' && o.apiVersion.startsWith('apiextensions.k8s.io/');
const LOOKUP_SKIPPED =
  "the chart was rendered without reading the cluster: its lookup found nothing (the chart's custom resources need CRDs this sync installs; the next sync reads the cluster)";

/** One release render: the seed render of an install reading the cluster, then the two renders compared for random values. */
async function helmRelease(
  dir: string,
  rel: string,
  opts: RenderOptions,
  problems: RenderProblem[],
  chart: string,
  extraArgs: string[],
  release: { env: Record<string, string>; lookup?: RenderOptions['lookup'] },
) {
  const helm = opts.helm ?? { values: [], set: {} };
  // Test hooks (helm.sh/hook: test) are run by `helm test`, never installed: not part of the release.
  const args = [
    'template',
    helm.releaseName ?? opts.defaultReleaseName,
    chart,
    ...(helm.crds === 'skip' ? [] : ['--include-crds']),
    '--skip-tests',
    ...extraArgs,
  ];
  const what = opts.chart ? `helm template ${opts.chart.name}` : `helm template ${rel}`;
  // `helm template --skip-tests` skips only what Helm sees as a hook: a test hook inside a List
  // is seen by tidegate alone, once the List is expanded.
  const template = async (found: RenderProblem[]) =>
    (
      await parseManifests(
        await tool(locateTool('helm', opts.settings), args, dir, opts, what, release.env),
        what,
        opts.substitute,
        found,
        budgetOf(opts),
        false,
        true,
      )
    ).filter((r) => !isTestHook(r.object) && !(helm.crds === 'skip' && r.object.kind === 'CustomResourceDefinition'));
  const owner = { release: helm.releaseName ?? opts.defaultReleaseName, namespace: opts.namespace ?? 'default' };
  const marked = (object: KubeObject) => (hookOf(object) ? object : withReleaseOwner(object, owner));
  // An install renders once more, first: its lookups then find what the install creates, as the next
  // upgrade's will (a chart computing a checksum of a Secret it keeps through lookup renders it alike).
  if (release.lookup?.seed && !opts.upgrade) release.lookup.seed((await template([])).map((r) => marked(r.object)));
  // Rendered twice: what differs between two renders of the same inputs is generated at random by the chart.
  const [first, second] = [await template(problems), await template([])];
  const random = randomFields(
    first.map((r) => r.object),
    second.map((r) => r.object),
  );
  return first.map((r): RenderedObject | HookObject => {
    const hook = hookOf(r.object);
    if (hook) return { ...r, hook };
    const fields = random.get(refKey(refOf(r.object)));
    return { ...r, object: marked(r.object), ...(fields ? { random: fields } : {}) };
  });
}

/**
 * A release object marked as Helm marks what it installs (managed-by Helm, the release's name and
 * namespace): charts that look up their own objects check these before they keep or render them.
 */
function withReleaseOwner(object: KubeObject, owner: { release: string; namespace: string }): KubeObject {
  const { metadata } = object;
  return {
    ...object,
    metadata: {
      ...metadata,
      labels: { ...metadata.labels, 'app.kubernetes.io/managed-by': 'Helm' },
      annotations: {
        ...metadata.annotations,
        'meta.helm.sh/release-name': owner.release,
        'meta.helm.sh/release-namespace': owner.namespace,
      },
    },
  };
}

/** kustomize's patches and images over rendered objects: the objects and a kustomization naming them, built by kustomize. */
async function overlaid(objects: RenderedObject[], overlay: Overlay, opts: RenderOptions, problems: RenderProblem[]) {
  if (overlay.patches.length === 0 && overlay.images.length === 0) return objects;
  const scratch = mkdtempSync(join(tmpdir(), 'tidegate-overlay-'));
  try {
    const before = new Map(objects.map((o) => [refKey(refOf(o.object)), o]));
    // JSON (a YAML subset kustomize reads): a YAML writer may fold a deeply indented string into
    // another value, or leave `off` unquoted for YAML 1.1 readers; JSON has one way to write each value.
    writeFileSync(join(scratch, 'objects.yaml'), objects.map((o) => JSON.stringify(o.object)).join('\n---\n'), {
      mode: 0o600,
    });
    const kustomization = {
      apiVersion: 'kustomize.config.k8s.io/v1beta1',
      kind: 'Kustomization',
      resources: ['objects.yaml'],
      ...(overlay.patches.length ? { patches: overlay.patches } : {}),
      ...(overlay.images.length ? { images: overlay.images } : {}),
    };
    writeFileSync(join(scratch, 'kustomization.yaml'), JSON.stringify(kustomization));
    const what = 'patches and images';
    const out = await tool(locateTool('kubectl', opts.settings), ['kustomize', scratch], scratch, opts, what);
    // A patched field is no longer the chart's: random fields are kept only where the patches left the value alone.
    return (await parseManifests(out, what, {}, problems, budgetOf(opts), false, true)).map((r) => {
      const was = before.get(refKey(refOf(r.object)));
      const random = was?.random?.filter((f) => valueAt(was.object, f.path) === valueAt(r.object, f.path));
      return { object: r.object, source: was?.source ?? what, ...(random?.length ? { random } : {}) };
    });
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** An object with common labels and annotations set over its own (Flux's commonMetadata, after the build). */
function withMetadata(rendered: RenderedObject, common: CommonMetadata): RenderedObject {
  const { labels, annotations } = common;
  if (Object.keys(labels).length === 0 && Object.keys(annotations).length === 0) return rendered;
  const metadata = rendered.object.metadata;
  return {
    ...rendered,
    object: {
      ...rendered.object,
      metadata: {
        ...metadata,
        ...(Object.keys(labels).length ? { labels: { ...metadata.labels, ...labels } } : {}),
        ...(Object.keys(annotations).length ? { annotations: { ...metadata.annotations, ...annotations } } : {}),
      },
    },
  };
}

/** A Flux object (read as configuration) or, in the root path, one of Flux's own components. */
function isFluxObject(object: KubeObject, mode: 'config' | 'root'): boolean {
  if (isFluxApiVersion(object.apiVersion)) return true;
  if (mode !== 'root') return false;
  if (
    object.kind === 'CustomResourceDefinition' &&
    /\.(toolkit\.fluxcd\.io|extensions\.fluxcd\.io|fluxcd\.controlplane\.io)$/.test(String(object.metadata.name))
  )
    return true;
  return object.metadata.labels?.['app.kubernetes.io/part-of'] === 'flux';
}

/** Kustomizations and HelmReleases of another repository's files: what they deploy would be left out. */
function unreadFluxObjects(objects: ReadonlyArray<{ object: KubeObject; source: string }>): RenderProblem[] {
  return objects
    .filter(
      ({ object }) => isFluxApiVersion(object.apiVersion) && ['Kustomization', 'HelmRelease'].includes(object.kind),
    )
    .map(({ object, source }) => ({
      file: source,
      object: formatRef(refOf(object)),
      message: `a ${object.kind} in another repository (a tenant's) is not read by tidegate yet, so what it deploys would be left out: make that repository one of the deploy-time settings' repositories, or declare it in this one`,
    }));
}

/** Objects rendered twice (the same kind, namespace and name), each after its first. */
function duplicates(objects: ReadonlyArray<{ object: KubeObject; source: string }>): RenderProblem[] {
  const problems: RenderProblem[] = [];
  const seen = new Map<string, string>();
  for (const { object, source } of objects) {
    const key = refKey(refOf(object));
    const first = seen.get(key);
    if (first !== undefined)
      problems.push({ file: source, object: formatRef(refOf(object)), message: `duplicate object (also in ${first})` });
    else seen.set(key, source);
  }
  return problems;
}

const WITHHELD =
  'the render failed; its message is withheld, as it may quote a value decrypted from a SOPS file (render it where the keys are: tidegate render <target>)';
const WITHHELD_LOOKUP =
  "the render failed; its message is withheld, as it may quote a value the chart's lookup read from a Secret";

/**
 * Renders a target into Kubernetes objects: plain YAML (recursive, multi-document), kustomize
 * (`kubectl kustomize`) or helm (`helm template`); substitutes variables; validates every object.
 * Pure with respect to the cluster. Throws RenderError listing every problem. Nothing outside the
 * repository checkout is read, and every render is bounded in time, output and memory.
 */
export async function render(opts: RenderOptions): Promise<RenderResult> {
  const dec = decryption(opts.encrypted ?? 'refuse', opts.settings.sops);
  try {
    return await renderWith(opts, dec);
  } catch (err) {
    // A render that decrypted values, or whose lookup read a Secret, fails without its messages: a
    // tool's (helm's fail, a schema error) or a check's (an object named after a value) may quote a
    // value, whole or transformed.
    const read = opts.lookup?.secretsRead?.() === true;
    if (!(err instanceof RenderError) || (dec.values.length === 0 && !read)) throw err;
    const own = err.problems.filter((p) => p.quotesNothing);
    const withheld = [...new Set(err.problems.filter((p) => !p.quotesNothing).map((p) => dec.redact(p.file)))];
    const message = dec.values.length > 0 ? WITHHELD : WITHHELD_LOOKUP;
    throw new RenderError([...own, ...withheld.map((file) => ({ file, message }))]);
  }
}

/** What follows the build: Flux objects taken out, the overlay's patches and images, the common metadata. */
async function afterBuild(built: RenderedObject[], opts: RenderOptions, problems: RenderProblem[]) {
  let objects = built;
  const flux = opts.fluxObjects;
  if (flux === 'foreign') problems.push(...unreadFluxObjects(objects));
  if (flux) objects = objects.filter((o) => !isFluxObject(o.object, flux === 'root' ? 'root' : 'config'));
  if (opts.kustomize && problems.length === 0) objects = await overlaid(objects, opts.kustomize, opts, problems);
  const common = opts.commonMetadata;
  return common ? objects.map((o) => withMetadata(o, common)) : objects;
}

async function renderWith(given: RenderOptions, dec: Decryption): Promise<RenderResult> {
  if (given.assemble) {
    // An ExternalArtifact's files: the repository's, copied as its generator's rules say.
    const dir = mkdtempSync(join(tmpdir(), 'tidegate-artifact-'));
    try {
      assembleArtifact(given.root, given.assemble, dir, given.settings.render.maxBytes);
      return await renderFiles({ ...given, root: dir, assemble: undefined }, dec);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  if (!given.artifact) return renderFiles(given, dec);
  // An artifact's files stand in for the repository's: its directory is the root the path is in.
  const artifact = await fetchedArtifact(given.artifact, given);
  const result = await renderFiles({ ...given, root: artifact.dir }, dec);
  return { ...result, artifact: { url: given.artifact.url, digest: artifact.digest } };
}

async function renderFiles(opts: RenderOptions, dec: Decryption): Promise<RenderResult> {
  const realRoot = realpathSync(opts.root);
  const dir = resolveInside(opts.root, opts.path);
  const rel = relative(realRoot, dir) || '.';
  const mode = opts.chart ? 'helm' : opts.mode === 'auto' ? detectMode(dir) : opts.mode;
  const problems: RenderProblem[] = [];
  const chart = opts.chart ? await repositoryChart(opts.chart, opts) : undefined;
  if (opts.components?.length && mode === 'helm')
    throw new RenderError([{ file: rel, message: 'components are added to a kustomize build, not to a chart' }]);
  const built =
    mode === 'yaml'
      ? await yamlObjects(dir, realRoot, rel, opts, problems, dec)
      : mode === 'kustomize'
        ? await kustomizeObjects(realRoot, rel, opts, problems, dec, opts.components)
        : await toolObjects(dir, realRoot, rel, mode, opts, problems, dec, chart?.archive);
  const isHook = (o: RenderedObject): o is HookObject => 'hook' in o;
  const objects = await afterBuild(
    built.filter((o) => !isHook(o)),
    opts,
    problems,
  );
  const common = opts.commonMetadata;
  const hooks = built.filter(isHook).map((h) => (common ? { ...withMetadata(h, common), hook: h.hook } : h));
  problems.push(...duplicates(objects), ...duplicates(hooks), ...dec.leftovers([...objects, ...hooks]));
  if (problems.length > 0) throw new RenderError(problems);
  return {
    mode,
    objects,
    hooks,
    ...(dec.values.length > 0 ? { secrets: dec.values } : {}),
    ...(chart ? { chart: { name: chart.name, version: chart.version, digest: chart.digest } } : {}),
  };
}

/** An OCI artifact fetched within the render's time limit; what went wrong as a render problem of tidegate.yaml. */
async function fetchedArtifact(artifact: ArtifactSpec, opts: RenderOptions): Promise<{ digest: string; dir: string }> {
  if (!opts.fetchArtifact)
    throw new RenderError([{ file: 'tidegate.yaml', message: `artifact ${artifact.url}: no registry access here` }]);
  try {
    return await opts.fetchArtifact(artifact, Date.now() + opts.settings.render.timeoutMs);
  } catch (err) {
    throw new RenderError([{ file: 'tidegate.yaml', message: errorMessage(err) }], { cause: err });
  }
}

/** A repository chart fetched within the render's time limit; what went wrong as a render problem of tidegate.yaml. */
async function repositoryChart(chart: ChartSpec, opts: RenderOptions): Promise<ChartVersion & { archive: string }> {
  if (!opts.fetchChart)
    throw new RenderError([{ file: 'tidegate.yaml', message: `chart ${chart.name}: no chart repository access here` }]);
  try {
    return await opts.fetchChart(chart, Date.now() + opts.settings.render.timeoutMs);
  } catch (err) {
    throw new RenderError([{ file: 'tidegate.yaml', message: errorMessage(err) }], { cause: err });
  }
}

/** What a sync read from the cluster for a target before rendering it (substituteFrom, valuesFrom). */
export interface ClusterInputs {
  /** Variables from substituteFrom; the target's own substitute wins over them. */
  substitute?: Readonly<Record<string, string>>;
  values?: ReadonlyArray<Record<string, unknown>>;
  /** What was read from Secrets: never quoted in a message (see SyncRun.redact). */
  secrets?: readonly string[];
  /** Secret values (and SOPS-encrypted files) are withheld from this render: placeholders stand in. */
  withheld?: boolean;
}

/** A target's files rendered as its tidegate.yaml entry says (path, mode, substitutions, helm options, namespace). */
export function renderTarget(
  spec: TargetSpec,
  root: string,
  settings: LocalSettings,
  signal?: AbortSignal,
  fetchRemoteBase?: FetchRemoteBase,
  fetchChart?: FetchChart,
  fromCluster: ClusterInputs = {},
  fetchArtifact?: FetchArtifact,
  release: Pick<RenderOptions, 'lookup' | 'upgrade'> = {},
): Promise<RenderResult> {
  return render({
    ...release,
    fetchRemoteBase,
    fetchChart,
    fetchArtifact,
    chart: spec.chart,
    artifact: spec.artifact,
    assemble: spec.assemble,
    root,
    path: spec.path,
    mode: spec.render,
    substitute: { ...fromCluster.substitute, ...spec.substitute },
    helm: spec.helm,
    clusterValues: fromCluster.values,
    kustomize: spec.kustomize,
    components: spec.components,
    commonMetadata: spec.commonMetadata,
    fluxObjects: spec.origin
      ? spec.origin.root
        ? 'root'
        : spec.source.url || spec.artifact || spec.assemble
          ? 'foreign'
          : 'config'
      : undefined,
    encrypted: spec.decryption ? (fromCluster.withheld ? 'withhold' : 'decrypt') : 'refuse',
    defaultReleaseName: spec.name,
    namespace: spec.targetNamespace ?? spec.namespace,
    settings,
    signal,
  });
}
