import {
  targetSchema,
  type FluxEntry,
  type ImagePolicySpec,
  type LocalSettings,
  type TargetOrigin,
  type TargetSpec,
} from '../config/index.js';
import { errorMessage, type KubeObject } from '../model/index.js';
import { render, renderInputs, RenderError, UNSET_MARK, type Overlay } from '../render/index.js';
import { FluxObjects, type FluxObject } from './objects.js';
import { list, rec, repoPath, str } from './spec.js';

/** A Kustomization's components (paths relative to its path), as its build adds them. */
const componentsOf = (k: FluxObject | undefined): string[] | undefined =>
  Array.isArray(k?.spec['components'])
    ? (k.spec['components'] as unknown[]).filter((c) => typeof c === 'string')
    : undefined;

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

/** A Kustomization or HelmRelease to map to a target, with the target that declared it. */
export interface Declared {
  obj: FluxObject;
  parent?: string | undefined;
  /** The ServiceAccount that, in Flux, creates it: the one the Kustomization declaring it applies as. */
  declaredBy?: { namespace: string; name: string } | undefined;
  inputs: string[];
  entry: FluxEntry;
}

/**
 * What reading a Flux repository shares between the kinds: the objects found path by path, the
 * findings, target names and the targets made. Each kind's mapping (kustomization.ts,
 * helm-release.ts, sources.ts, images.ts) works on it.
 */
export class FluxReader {
  readonly out: FluxRead = { targets: [], images: [], mapped: [], notes: [], unsupported: [] };
  readonly objects: FluxObjects;
  /** Kustomizations and HelmReleases to map, with the target that declared them. */
  readonly declared: Declared[] = [];
  /** `<flux path>|<namespace>/<name>` of the GitRepositories that are this repository (the flux paths' own). */
  readonly selfSources = new Set<string>();
  /** Anything worked out once per object (its source). */
  readonly memo = new Map<string, unknown>();
  /** Target name → the names of the targets declared inside it (nested Kustomizations, HelmReleases). */
  private readonly children = new Map<string, string[]>();
  private readonly names = new Map<string, string>();
  /** The cluster alias of each flux path read. */
  private readonly clusters = new Map<string, string>();
  /** ConfigMaps the paths read so far render (`<flux path>|<namespace>/<name>`): variables of substituteFrom found in Git. */
  private readonly configMaps = new Map<string, { data: Record<string, string>; inputs: string[] }>();

  constructor(
    readonly root: string,
    private readonly settings: LocalSettings,
    readonly repoUrl: string | undefined,
  ) {
    this.objects = new FluxObjects(root);
  }

  /** Where an object is declared, and the cluster it was read for. */
  at(obj: FluxObject): { file: string; line: number; object: string; cluster: string | undefined } {
    return { file: obj.file, line: obj.line, object: obj.label, cluster: this.clusters.get(obj.scope) };
  }

  /** A field not supported: named with the file and line it was written at (a patch's, when a patch set it). */
  problem(obj: FluxObject, field: string, message: string): void {
    this.out.unsupported.push({ ...this.at(obj), ...this.objects.origin(obj, field), field, message });
  }

  note(obj: FluxObject, field: string, message: string): void {
    this.out.notes.push({ ...this.at(obj), field, message });
  }

  mapped(obj: FluxObject, becomes: string): void {
    this.out.mapped.push({ file: obj.file, object: obj.label, becomes });
  }

  /** The value `make` works out for `key`, once. */
  once<T>(key: string, make: () => T): T {
    if (!this.memo.has(key)) this.memo.set(key, make());
    return this.memo.get(key) as T;
  }

  /**
   * A path rendered as the Kustomization `from` renders it: its patches and images, and (when it has a
   * postBuild) its substitute; variables from substituteFrom are read at sync time, so here they leave a mark.
   */
  private async build(
    path: string,
    from: FluxObject | undefined,
    fromGit: Record<string, string> = {},
  ): Promise<KubeObject[]> {
    const postBuild = rec(from?.spec['postBuild']);
    const substituting = from !== undefined && Object.keys(postBuild).length > 0;
    const overlay = from && (from.spec['patches'] || from.spec['images']);
    const rendered = await render({
      root: this.root,
      path,
      mode: 'auto',
      components: componentsOf(from),
      substitute: substituting ? { ...fromGit, ...(rec(postBuild['substitute']) as Record<string, string>) } : {},
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

  /**
   * The variables of a Kustomization's substituteFrom ConfigMaps that the repository itself declares
   * (in a path read before): a sync substitutes the cluster's, as Flux does, but its Flux objects
   * (a chart version in a HelmRelease) are read from Git, so Git's are what they can be read with.
   * Later entries win, as in Flux; the files declaring them are inputs of what they change.
   */
  private gitVariables(from: FluxObject | undefined): { vars: Record<string, string>; inputs: string[] } {
    const out = { vars: {} as Record<string, string>, inputs: [] as string[] };
    for (const ref of list(rec(from?.spec['postBuild'])['substituteFrom'])) {
      const found =
        from &&
        str(ref['kind']) === 'ConfigMap' &&
        this.configMaps.get(`${from.scope}|${from.namespace}/${str(ref['name']) ?? ''}`);
      if (!from || !found) continue;
      Object.assign(out.vars, found.data);
      out.inputs.push(...found.inputs);
      this.note(
        from,
        'spec.postBuild.substituteFrom',
        `the variables of ConfigMap ${from.namespace}/${str(ref['name'])} are read from the repository to read the Flux objects of its path; a sync substitutes the cluster's, as Flux does`,
      );
    }
    return out;
  }

  /** ConfigMaps of a rendered path, for the substituteFrom of Kustomizations read after it. */
  private keepConfigMaps(built: readonly KubeObject[], namespace: string | undefined, scope: string, inputs: string[]) {
    for (const o of built)
      if (o.kind === 'ConfigMap' && o.apiVersion === 'v1') {
        const data = Object.fromEntries(
          Object.entries(rec(o['data'])).filter((e): e is [string, string] => typeof e[1] === 'string'),
        );
        this.configMaps.set(`${scope}|${namespace ?? o.metadata.namespace ?? 'default'}/${o.metadata.name}`, {
          data,
          inputs,
        });
      }
  }

  /** The Flux objects a path holds, remembered; Kustomizations and HelmReleases are queued as targets. */
  async readPath(path: string, entry: FluxEntry, parent: string | undefined, from: FluxObject | undefined) {
    const namespace = str(from?.spec['targetNamespace']);
    let built: KubeObject[];
    let inputs: string[];
    try {
      // The render proves the path stays inside the repository before anything under it is read.
      if (path.split('/').includes('..') || path.startsWith('/'))
        throw new RenderError([{ file: path, message: 'path leads out of the repository' }]);
      const fromGit = this.gitVariables(from);
      built = await this.build(path, from, fromGit.vars);
      const components = componentsOf(from);
      inputs = [...new Set([...renderInputs(this.root, { path, render: 'auto', components }), ...fromGit.inputs])];
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
    this.keepConfigMaps(built, namespace, entry.path, inputs);
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

  /** One flux path: its root Kustomization (the path syncing itself) becomes the root target, with `fields`. */
  async readEntry(entry: FluxEntry, fields: (rootK: FluxObject) => Record<string, unknown>): Promise<void> {
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
        ...(rootK ? fields(rootK) : { prune: true }),
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

  /** The target name of a Kustomization or HelmRelease (declared by `parent`), decided once. */
  nameOf(obj: FluxObject, entry: FluxEntry, parent?: string): string {
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

  /** Names every declared Kustomization and HelmRelease, and which target declared which. */
  nameAll(): void {
    for (const d of this.declared) {
      const name = this.nameOf(d.obj, d.entry, d.parent);
      if (d.parent) this.children.set(d.parent, [...(this.children.get(d.parent) ?? []), name]);
    }
  }

  addTarget(input: Record<string, unknown>, origin: TargetOrigin, obj: FluxObject | undefined): void {
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
    if (obj) this.mapped(obj, `target ${parsed.data.name}`);
  }

  /** dependsOn of a Kustomization or HelmRelease: the targets named, with what they declare, and the declaring target. */
  dependsOn(obj: FluxObject, parent: string | undefined): string[] {
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
}
