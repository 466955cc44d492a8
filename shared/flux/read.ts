import { posix } from 'node:path';
import {
  imagePolicySchema,
  targetSchema,
  type FluxEntry,
  type ImagePolicySpec,
  type LocalSettings,
  type TargetOrigin,
  type TargetSpec,
} from '../config/index.js';
import { errorMessage, normaliseRepoUrl, redactUrl, type KubeObject } from '../model/index.js';
import { render, renderInputs, RenderError, UNSET_MARK, type Overlay } from '../render/index.js';
import { checkFields, SHAPES, UNMAPPED_KINDS } from './fields.js';
import { FluxObjects, type FluxObject } from './objects.js';

/** Something said of one Flux object: where it is, which field, and what. */
export interface FluxFinding {
  file: string;
  line: number;
  /** Kind namespace/name */
  object: string;
  field: string;
  message: string;
  /** The cluster alias of the flux path it was read under. */
  cluster?: string | undefined;
}

/** What a Flux object became. */
export interface FluxMapping {
  file: string;
  object: string;
  becomes: string;
}

export interface FluxRead {
  targets: TargetSpec[];
  images: ImagePolicySpec[];
  author?: { name: string; email: string };
  mapped: FluxMapping[];
  notes: FluxFinding[];
  /** Fields tidegate does not support yet, and references it cannot follow: the configuration is refused. */
  unsupported: FluxFinding[];
}

const SPECIAL: Readonly<Record<string, string>> = {
  'spec.serviceAccountName': 'not supported yet: tidegate applies with its own identity, and would not impersonate',
  'spec.kubeConfig': 'not supported yet: a target applies to the cluster its alias names',
  'spec.components': 'not supported yet: put the components in the kustomization.yaml of the path',
  'spec.commonMetadata': 'not supported yet: set the labels in the kustomization.yaml of the path',
};

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const rec = (v: unknown): Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
const list = (v: unknown): Array<Record<string, unknown>> => (Array.isArray(v) ? v.map(rec) : []);
/** A path Flux reads from the source's root ("./apps/production") as a path in the repository. */
const repoPath = (p: unknown): string =>
  posix
    .normalize(str(p) ?? '.')
    .replace(/^\.\/?$/, '.')
    .replace(/\/$/, '');

/** Reads Flux objects into targets (one per Kustomization and HelmRelease), chart sources and image policies. */
class Reader {
  readonly out: FluxRead = { targets: [], images: [], mapped: [], notes: [], unsupported: [] };
  private readonly objects: FluxObjects;
  /** Target name → the names of the targets declared inside it (nested Kustomizations, HelmReleases). */
  private readonly children = new Map<string, string[]>();
  private readonly names = new Map<string, string>();
  /** Kustomizations and HelmReleases to map, with the target that declared them. */
  private readonly declared: Array<{ obj: FluxObject; parent?: string; inputs: string[]; entry: FluxEntry }> = [];
  private readonly selfSources = new Set<string>();
  private readonly sources = new Map<FluxObject, ReturnType<Reader['findSource']>>();

  constructor(
    private readonly root: string,
    private readonly settings: LocalSettings,
    private readonly repoUrl: string | undefined,
  ) {
    this.objects = new FluxObjects(root);
  }

  /** The cluster alias of each flux path read. */
  private readonly clusters = new Map<string, string>();

  /** Where an object is declared, and the cluster it was read for. */
  private at(obj: FluxObject): { file: string; line: number; object: string; cluster: string | undefined } {
    return { file: obj.file, line: obj.line, object: obj.label, cluster: this.clusters.get(obj.scope) };
  }

  problem(obj: FluxObject, field: string, message: string): void {
    this.out.unsupported.push({ ...this.at(obj), field, message });
  }

  /**
   * A path rendered as the Kustomization `from` renders it: its patches and images, and (when it has a
   * postBuild) its substitute; variables from substituteFrom are read at sync time, so here they leave a mark.
   */
  private async build(path: string, from: FluxObject | undefined): Promise<KubeObject[]> {
    const postBuild = rec(from?.spec['postBuild']);
    const substituting = from !== undefined && Object.keys(postBuild).length > 0;
    const overlay = from && (from.spec['patches'] || from.spec['images']);
    const rendered = await render({
      root: this.root,
      path,
      mode: 'auto',
      substitute: substituting ? (rec(postBuild['substitute']) as Record<string, string>) : {},
      lenientSubstitution: substituting,
      ...(overlay
        ? {
            kustomize: {
              patches: list(from.spec['patches']) as unknown as Overlay['patches'],
              images: list(from.spec['images']) as unknown as Overlay['images'],
            },
          }
        : {}),
      defaultReleaseName: 'flux',
      settings: this.settings,
      // Read as configuration, never applied: SOPS-encrypted files are left encrypted.
      encrypted: 'leave',
    });
    return rendered.objects.map((o) => o.object);
  }

  /** The Flux objects a path holds, remembered; Kustomizations and HelmReleases are queued as targets. */
  private async readPath(path: string, entry: FluxEntry, parent: string | undefined, from: FluxObject | undefined) {
    const namespace = str(from?.spec['targetNamespace']);
    let built: KubeObject[];
    let inputs: string[];
    try {
      // The render proves the path stays inside the repository before anything under it is read.
      if (path.split('/').includes('..') || path.startsWith('/'))
        throw new RenderError([{ file: path, message: 'path leads out of the repository' }]);
      built = await this.build(path, from);
      inputs = renderInputs(this.root, { path, render: 'auto' });
    } catch (err) {
      const problems = err instanceof RenderError ? err.problems : [{ file: path, message: errorMessage(err) }];
      for (const p of problems)
        this.out.unsupported.push({
          file: p.file,
          line: 1,
          object: p.object ?? path,
          field: '',
          message: p.message,
          cluster: entry.cluster,
        });
      return [];
    }
    const found = this.objects.add(built, namespace, entry.path, inputs);
    for (const obj of found)
      if (JSON.stringify(obj.spec).includes(UNSET_MARK))
        this.problem(
          obj,
          'spec',
          `uses a variable of ${from?.label ?? 'its Kustomization'} that its postBuild.substitute does not declare (one from substituteFrom is read only at sync time): not supported in Flux objects yet`,
        );
    for (const obj of found)
      if (obj.kind === 'Kustomization' || obj.kind === 'HelmRelease')
        this.declared.push({ obj, parent, inputs, entry });
    return found;
  }

  /** One flux path: its root Kustomization (the path syncing itself) becomes the root target. */
  async readEntry(entry: FluxEntry): Promise<void> {
    this.clusters.set(entry.path, entry.cluster);
    const found = await this.readPath(entry.path, entry, undefined, await this.rootKustomization(entry));
    const rootK = found.find((o) => o.kind === 'Kustomization' && repoPath(o.spec['path']) === entry.path);
    const ref = rec(rootK?.spec['sourceRef']);
    this.selfSources.add(
      `${entry.path}|${str(ref['namespace']) ?? rootK?.namespace ?? 'flux-system'}/${str(ref['name']) ?? 'flux-system'}`,
    );
    const name = `${entry.prefix ?? ''}${rootK?.name ?? 'flux-system'}`;
    this.addTarget(
      {
        ...(rootK ? this.kustomizationFields(rootK) : { prune: true }),
        name,
        cluster: entry.cluster,
        path: entry.path,
        allowEmpty: true,
      },
      this.rootOrigin(entry, rootK),
      rootK,
    );
    for (const d of this.declared) if (d.entry === entry && d.parent === undefined && d.obj !== rootK) d.parent = name;
    if (rootK)
      this.declared.splice(
        this.declared.findIndex((d) => d.obj === rootK),
        1,
      );
  }

  /** The Kustomization of a flux path that syncs the path itself (flux-system), looked at before the path is read as it says. */
  private async rootKustomization(entry: FluxEntry): Promise<FluxObject | undefined> {
    const self = (await this.build(entry.path, undefined).catch(() => [])).find(
      (o) =>
        o.kind === 'Kustomization' &&
        /^kustomize\.toolkit\.fluxcd\.io\//.test(o.apiVersion) &&
        repoPath(rec(o['spec'])['path']) === entry.path,
    );
    return self ? this.objects.peek(self, entry.path) : undefined;
  }

  private rootOrigin(entry: FluxEntry, rootK: FluxObject | undefined): TargetOrigin {
    return {
      kind: 'Kustomization',
      namespace: rootK?.namespace ?? 'flux-system',
      name: rootK?.name ?? 'flux-system',
      file: rootK?.file ?? entry.path,
      root: true,
      inputs: renderInputs(this.root, { path: entry.path, render: 'auto' }),
    };
  }

  /** Every queued Kustomization: its target, and the Flux objects of its own path (read once). */
  async readKustomizations(): Promise<void> {
    for (let i = 0; i < this.declared.length; i++) {
      const d = this.declared[i];
      if (!d || d.obj.kind !== 'Kustomization') continue;
      const name = this.nameOf(d.obj, d.entry);
      const source = this.gitSource(d.obj, rec(d.obj.spec['sourceRef']));
      if (source === 'self') await this.readPath(repoPath(d.obj.spec['path']), d.entry, name, d.obj);
    }
  }

  private nameOf(obj: FluxObject, entry: FluxEntry, parent?: string): string {
    const key = `${obj.scope}|${obj.kind}/${obj.namespace}/${obj.name}`;
    const known = this.names.get(key);
    if (known) return known;
    const base =
      obj.kind === 'Kustomization'
        ? obj.namespace === 'flux-system'
          ? obj.name
          : `${obj.namespace}-${obj.name}`
        : obj.namespace === obj.name || obj.namespace === 'flux-system'
          ? obj.name
          : `${obj.namespace}-${obj.name}`;
    const name = `${entry.prefix ?? ''}${base}`;
    // Two objects wanting one name is refused, never settled by renaming one: a rename would prune
    // and recreate everything the renamed target applied. One pair is settled: a HelmRelease named as
    // the Kustomization that declares it (an app's Kustomization and its release, a common layout)
    // is `<name>-release`. It cannot have existed without that Kustomization, which keeps its name.
    const holder = [...this.names].find(([, n]) => n === name)?.[0];
    const release = `${name}-release`;
    if (holder && obj.kind === 'HelmRelease' && parent === name && ![...this.names.values()].includes(release)) {
      this.names.set(key, release);
      return release;
    }
    if (holder)
      this.problem(
        obj,
        'metadata.name',
        `its target name ${name} is taken by ${holder.slice(holder.indexOf('|') + 1).replace('/', ' ')}: rename one of them`,
      );
    this.names.set(key, name);
    return name;
  }

  /** Where a Kustomization's files (or a chart) come from: this repository, or another Git repository's URL and ref. */
  private gitSource(obj: FluxObject, ref: Record<string, unknown>): ReturnType<Reader['findSource']> {
    if (!this.sources.has(obj)) this.sources.set(obj, this.findSource(obj, ref));
    return this.sources.get(obj);
  }

  private findSource(
    obj: FluxObject,
    ref: Record<string, unknown>,
  ): 'self' | { url: string; ref: Record<string, string> } | undefined {
    const kind = str(ref['kind']) ?? 'GitRepository';
    const ns = str(ref['namespace']) ?? obj.namespace;
    const name = str(ref['name']) ?? '';
    if (kind !== 'GitRepository') {
      this.problem(obj, 'spec.sourceRef', `a ${kind} source is not supported yet`);
      return undefined;
    }
    if (this.selfSources.has(`${obj.scope}|${ns}/${name}`)) return 'self';
    const repo = this.objects.get(obj, 'GitRepository', ns, name);
    if (!repo) {
      this.problem(obj, 'spec.sourceRef', `GitRepository ${ns}/${name} is not declared in the repository`);
      return undefined;
    }
    const url = str(repo.spec['url']) ?? '';
    const gitRef = Object.fromEntries(
      Object.entries(rec(repo.spec['ref'])).filter((e): e is [string, string] => typeof e[1] === 'string'),
    );
    // This repository again: read as itself, unless pinned (a tag, a semver range, a commit), which is
    // fetched at its pin like any other source: never the branch head in its place.
    if (this.repoUrl && normaliseRepoUrl(url) === normaliseRepoUrl(this.repoUrl))
      return gitRef['tag'] || gitRef['semver'] || gitRef['commit'] ? { url: this.repoUrl, ref: gitRef } : 'self';
    if (!/^https:\/\//.test(url)) {
      this.problem(repo, 'spec.url', `${url}: only https:// Git repositories are supported as other sources`);
      return undefined;
    }
    return { url, ref: gitRef };
  }

  private addTarget(input: Record<string, unknown>, origin: TargetOrigin, obj: FluxObject | undefined): void {
    const parsed = targetSchema.safeParse(input);
    if (!parsed.success) {
      for (const issue of parsed.error.issues)
        this.out.unsupported.push({
          file: origin.file,
          line: obj?.line ?? 1,
          object: obj?.label ?? origin.name,
          field: issue.path.join('.'),
          message: issue.message,
          cluster: typeof input['cluster'] === 'string' ? input['cluster'] : undefined,
        });
      return;
    }
    this.out.targets.push({ ...parsed.data, origin });
    if (obj) this.out.mapped.push({ file: obj.file, object: obj.label, becomes: `target ${parsed.data.name}` });
  }

  private kustomizationTarget(d: (typeof this.declared)[number]): void {
    const { obj, entry } = d;
    const spec = obj.spec;
    const source = this.gitSource(obj, rec(spec['sourceRef']));
    if (!source) return;
    const gitRepository = source === 'self' ? undefined : this.gitRepositoryOf(obj);
    if (source !== 'self')
      this.out.notes.push({
        file: obj.file,
        line: obj.line,
        object: obj.label,
        field: 'spec.sourceRef',
        message: `the files come from ${redactUrl(source.url)}: its own Flux objects are not read (a Kustomization or HelmRelease there fails the sync, naming it)`,
      });
    this.addTarget(
      {
        ...this.kustomizationFields(obj),
        name: this.nameOf(obj, entry),
        cluster: entry.cluster,
        ...(source === 'self' ? {} : { source: { url: source.url, ref: source.ref } }),
        path: repoPath(spec['path']),
        dependsOn: this.dependsOn(obj, d.parent),
      },
      // A change of the GitRepository it reads (its URL, its ref) changes the target too.
      {
        kind: 'Kustomization',
        namespace: obj.namespace,
        name: obj.name,
        file: obj.file,
        inputs: [...new Set([...d.inputs, ...(gitRepository?.inputs ?? [])])],
      },
      obj,
    );
  }

  private gitRepositoryOf(obj: FluxObject): FluxObject | undefined {
    const ref = rec(obj.spec['sourceRef']);
    return this.objects.get(obj, 'GitRepository', str(ref['namespace']) ?? obj.namespace, str(ref['name']) ?? '');
  }

  /** What a Kustomization says of its target, whichever it is (the root one too). */
  private kustomizationFields(obj: FluxObject): Record<string, unknown> {
    const spec = obj.spec;
    const postBuild = rec(spec['postBuild']);
    return {
      targetNamespace: str(spec['targetNamespace']),
      prune: spec['prune'] === true,
      // Flux applies an empty build like any other: with prune, what the Kustomization applied goes.
      allowEmpty: true,
      timeout: str(spec['timeout']) ?? str(spec['interval']) ?? '5m',
      wait: spec['wait'] === true || list(spec['healthChecks']).length > 0,
      substitute: rec(postBuild['substitute']),
      substituteFrom: list(postBuild['substituteFrom']).map((s) => ({ ...s, namespace: obj.namespace })),
      suspend: spec['suspend'] === true,
      force: spec['force'] === true,
      ...(rec(spec['decryption'])['provider'] === 'sops' ? { decryption: { provider: 'sops' } } : {}),
      ...(spec['patches'] || spec['images']
        ? { kustomize: { patches: list(spec['patches']), images: list(spec['images']) } }
        : {}),
    };
  }

  /** The chart template of a HelmRelease (its chart.spec, or the HelmChart its chartRef names) and the object holding it. */
  private chartTemplate(obj: FluxObject): { spec: Record<string, unknown>; owner: FluxObject } | undefined {
    const chartRef = rec(obj.spec['chartRef']);
    if (!str(chartRef['kind'])) return { spec: rec(rec(obj.spec['chart'])['spec']), owner: obj };
    const ns = str(chartRef['namespace']) ?? obj.namespace;
    const chart =
      str(chartRef['kind']) === 'HelmChart'
        ? this.objects.get(obj, 'HelmChart', ns, str(chartRef['name']) ?? '')
        : undefined;
    if (chart) return { spec: chart.spec, owner: chart };
    this.problem(
      obj,
      'spec.chartRef',
      `${str(chartRef['kind'])} ${ns}/${str(chartRef['name'])}: only a HelmChart declared in the repository is supported`,
    );
    return undefined;
  }

  /** The chart of a HelmRelease: from a HelmRepository (HTTP or OCI), or a path of this repository. */
  private chartOf(obj: FluxObject, target: string, used: FluxObject[]): Record<string, unknown> | undefined {
    const template = this.chartTemplate(obj);
    if (!template) return undefined;
    const { spec, owner } = template;
    used.push(owner);
    const ref = rec(spec['sourceRef']);
    const kind = str(ref['kind']);
    const ns = str(ref['namespace']) ?? owner.namespace;
    const name = str(ref['name']) ?? '';
    if (kind === 'HelmRepository') {
      const repo = this.objects.get(owner, 'HelmRepository', ns, name);
      if (!repo) {
        this.problem(
          obj,
          'spec.chart.spec.sourceRef',
          `HelmRepository ${ns}/${name} is not declared in the repository`,
        );
        return undefined;
      }
      used.push(repo);
      this.out.mapped.push({ file: repo.file, object: repo.label, becomes: `chart repository of target ${target}` });
      const url = (str(repo.spec['url']) ?? '').replace(/\/+$/, '');
      // The chart's path holds no files (values come from the HelmRelease): the declaring file's directory, so that
      // a push elsewhere does not make it a target to sync.
      return {
        path: obj.file === '(generated)' ? '.' : posix.dirname(obj.file),
        chart: {
          repository: url,
          name: str(spec['chart']),
          version: str(spec['version']) ?? '*',
          insecure: repo.spec['insecure'] === true,
        },
      };
    }
    if (kind === 'GitRepository' && this.gitSource(owner, ref) === 'self')
      return { path: repoPath(spec['chart']), render: 'helm' };
    if (kind !== 'GitRepository')
      this.problem(obj, 'spec.chart.spec.sourceRef', `a chart from a ${kind} is not supported yet`);
    else this.problem(obj, 'spec.chart.spec.sourceRef', 'a chart from another Git repository is not supported yet');
    return undefined;
  }

  private helmReleaseTarget(d: (typeof this.declared)[number]): void {
    const { obj, entry } = d;
    const spec = obj.spec;
    const name = this.nameOf(obj, entry);
    const used: FluxObject[] = [];
    const chart = this.chartOf(obj, name, used);
    if (!chart) return;
    const targetNamespace = str(spec['targetNamespace']);
    const install = rec(spec['install']);
    const mode = str(rec(spec['driftDetection'])['mode']);
    const postRenderers = list(spec['postRenderers']).map((p) => rec(p['kustomize']));
    this.addTarget(
      {
        name,
        cluster: entry.cluster,
        ...chart,
        namespace: targetNamespace ?? obj.namespace,
        createNamespace: install['createNamespace'] === true,
        helm: {
          releaseName: str(spec['releaseName']) ?? (targetNamespace ? `${targetNamespace}-${obj.name}` : obj.name),
          valuesInline: rec(spec['values']),
          valuesFrom: list(spec['valuesFrom']).map((v) => ({ ...v, namespace: obj.namespace })),
          crds: str(install['crds']) === 'Skip' ? 'skip' : 'apply',
        },
        ...(postRenderers.length
          ? {
              kustomize: {
                patches: postRenderers.flatMap((k) => list(k['patches'])),
                images: postRenderers.flatMap((k) => list(k['images'])),
              },
            }
          : {}),
        timeout: str(spec['timeout']) ?? '5m',
        wait: install['disableWait'] !== true,
        dependsOn: this.dependsOn(obj, d.parent),
        suspend: spec['suspend'] === true,
        drift: mode === 'enabled' ? 'correct' : 'warn',
      },
      // A change of its chart source (a HelmRepository's URL, a HelmChart) changes the target too.
      {
        kind: 'HelmRelease',
        namespace: obj.namespace,
        name: obj.name,
        file: obj.file,
        inputs: [...new Set([...d.inputs, ...used.flatMap((o) => o.inputs)])],
      },
      obj,
    );
  }

  /** dependsOn of a Kustomization or HelmRelease: the targets named, with what they declare, and the declaring target. */
  private dependsOn(obj: FluxObject, parent: string | undefined): string[] {
    const deps = new Set<string>();
    if (parent && !this.isRoot(parent)) deps.add(parent);
    for (const dep of list(obj.spec['dependsOn'])) {
      const ns = str(dep['namespace']) ?? obj.namespace;
      const key = `${obj.scope}|${obj.kind}/${ns}/${str(dep['name']) ?? ''}`;
      const name = this.names.get(key);
      if (!name) {
        this.problem(obj, 'spec.dependsOn', `${obj.kind} ${ns}/${str(dep['name'])} is not declared in the repository`);
        continue;
      }
      deps.add(name);
      for (const child of this.descendants(name)) deps.add(child);
    }
    return [...deps];
  }

  private isRoot(name: string): boolean {
    return this.out.targets.some((t) => t.name === name && t.origin?.root);
  }

  private descendants(name: string): string[] {
    const out: string[] = [];
    for (const child of this.children.get(name) ?? []) out.push(child, ...this.descendants(child));
    return out;
  }

  /** Targets of every Kustomization and HelmRelease found, once all of them have names. */
  mapTargets(): void {
    for (const d of this.declared) {
      const name = this.nameOf(d.obj, d.entry, d.parent);
      if (d.parent) this.children.set(d.parent, [...(this.children.get(d.parent) ?? []), name]);
    }
    for (const d of this.declared)
      if (d.obj.kind === 'Kustomization') this.kustomizationTarget(d);
      else this.helmReleaseTarget(d);
  }

  /** Image policies, when an ImageUpdateAutomation writes them back (without one, Flux writes nothing to Git). */
  mapImages(): void {
    const automations = this.objects.ofKind('ImageUpdateAutomation');
    const automation = automations[0];
    if (!automation) return;
    const git = rec(automation.spec['git']);
    const author = rec(rec(rec(git['commit'])['author']));
    if (str(author['name']) && str(author['email']))
      this.out.author = { name: str(author['name']) ?? '', email: str(author['email']) ?? '' };
    const pushBranch = str(rec(git['push'])['branch']);
    const checkoutBranch = str(rec(rec(git['checkout'])['ref'])['branch']);
    const writeBack = pushBranch && pushBranch !== checkoutBranch ? 'pullRequest' : 'commit';
    if (writeBack === 'pullRequest')
      this.out.notes.push({
        file: automation.file,
        line: automation.line,
        object: automation.label,
        field: 'spec.git.push.branch',
        message: 'updates go to a pull request from branch tidegate/images/<policy> instead of a push to this branch',
      });
    for (const policy of this.objects.ofKind('ImagePolicy')) this.mapPolicy(policy, writeBack);
  }

  private mapPolicy(policy: FluxObject, writeBack: 'commit' | 'pullRequest'): void {
    // The same policy under two clusters' paths is one policy of the repository.
    if (this.out.images.some((p) => p.name === policy.name && p.namespace === policy.namespace)) return;
    {
      const ref = rec(policy.spec['imageRepositoryRef']);
      const ns = str(ref['namespace']) ?? policy.namespace;
      const repo = this.objects.get(policy, 'ImageRepository', ns, str(ref['name']) ?? '');
      if (!repo) {
        this.problem(
          policy,
          'spec.imageRepositoryRef',
          `ImageRepository ${ns}/${str(ref['name'])} is not declared in the repository`,
        );
        return;
      }
      const parsed = imagePolicySchema.safeParse({
        name: policy.name,
        namespace: policy.namespace,
        repository: str(repo.spec['image']),
        insecure: repo.spec['insecure'] === true,
        policy: policy.spec['policy'],
        ...(policy.spec['filterTags'] ? { filterTags: policy.spec['filterTags'] } : {}),
        digest: str(policy.spec['digestReflectionPolicy']) === 'Always',
        writeBack,
      });
      if (!parsed.success) {
        for (const issue of parsed.error.issues) this.problem(policy, issue.path.join('.'), issue.message);
        return;
      }
      this.out.images.push(parsed.data);
      this.out.mapped.push({ file: policy.file, object: policy.label, becomes: `image policy ${policy.name}` });
    }
  }

  /** Fields of every Flux object found: not supported (refused) or read differently (a note). */
  checkAll(): void {
    for (const obj of this.objects.all()) {
      const shape = SHAPES[obj.kind];
      const unmapped = UNMAPPED_KINDS[obj.kind];
      if (unmapped) {
        const finding = { ...this.at(obj), field: '' };
        if ('note' in unmapped) this.out.notes.push({ ...finding, message: unmapped.note });
        else this.out.unsupported.push({ ...finding, message: unmapped.refuse });
        continue;
      }
      if (!shape) {
        this.out.notes.push({ ...this.at(obj), field: '', message: 'not read by tidegate' });
        continue;
      }
      for (const f of checkFields(obj.spec, shape)) {
        const finding = { ...this.at(obj), field: f.field };
        if (f.note) this.out.notes.push({ ...finding, message: f.note });
        else this.out.unsupported.push({ ...finding, message: f.refuse ?? SPECIAL[f.field] ?? 'not supported yet' });
      }
    }
  }
}

/**
 * Reads Flux repositories as configuration: each path is rendered as Flux's flux-system Kustomization
 * would render it, and the Kustomizations found (and the ones they declare, path by path) and their
 * HelmReleases become targets; HelmRepositories and GitRepositories become their sources; image
 * policies with an ImageUpdateAutomation become image policies. None of the Flux objects is applied.
 */
export async function readFlux(
  root: string,
  entries: readonly FluxEntry[],
  settings: LocalSettings,
  repoUrl?: string,
): Promise<FluxRead> {
  const reader = new Reader(root, settings, repoUrl);
  for (const entry of entries) await reader.readEntry(entry);
  await reader.readKustomizations();
  reader.mapTargets();
  reader.mapImages();
  reader.checkAll();
  return reader.out;
}
