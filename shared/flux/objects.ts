import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { LineCounter } from 'yaml';
import { DEFAULT_BUDGETS } from '../config/index.js';
import { parseDocuments } from '../render/index.js';
import { isFluxApiVersion, type KubeObject } from '../model/index.js';

/** A Flux object found in the repository, with the file (and line) that declares it. */
export interface FluxObject {
  kind: string;
  namespace: string;
  name: string;
  /** "Kind namespace/name" */
  label: string;
  spec: Record<string, unknown>;
  file: string;
  line: number;
  /** The flux path it was read under: two clusters' paths may declare objects of the same names. */
  scope: string;
  /** The repository paths whose change may change it (those the path that declares it reads). */
  inputs: string[];
}

/** At most this many files are read to find where Flux objects are declared. */
const FILE_LIMIT = 20_000;

/** The Flux objects a YAML text declares (also as items of a List): kind/name, the line of the document, and its namespace if it says one. */
function fluxDocuments(text: string): Array<[string, number, string | undefined, unknown]> {
  // A cheap look before parsing: every Flux API group (the toolkit's, fluxcd.controlplane.io) has this in it.
  if (!text.includes('fluxcd.')) return [];
  const counter = new LineCounter();
  let docs;
  try {
    // Within the render's YAML budget: a file that would not be rendered declares nothing here either.
    docs = parseDocuments(text, DEFAULT_BUDGETS.render.maxDocumentTokens, { lineCounter: counter });
  } catch {
    return [];
  }
  return docs.flatMap((doc): Array<[string, number, string | undefined, unknown]> => {
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch {
      return [];
    }
    const line = counter.linePos(doc.contents?.range?.[0] ?? doc.range?.[0] ?? 0).line;
    const items = (v: unknown): Array<Partial<KubeObject>> => {
      const o = v as (Partial<KubeObject> & { items?: unknown }) | null;
      if (!o || typeof o !== 'object') return [];
      return Array.isArray(o.items) && String(o.kind).endsWith('List') ? o.items.flatMap(items) : [o];
    };
    return items(value)
      .filter((o) => typeof o.apiVersion === 'string' && isFluxApiVersion(o.apiVersion))
      .map((o): [string, number, string | undefined, unknown] => [
        `${o.kind}/${String(o.metadata?.name)}`,
        line,
        typeof o.metadata?.namespace === 'string' ? o.metadata.namespace : undefined,
        (o as { spec?: unknown }).spec,
      ]);
  });
}

type Declaration = { file: string; line: number; namespace?: string | undefined; spec?: unknown };

/** The Flux objects read so far, by kind, namespace and name; and where in the repository each is written. */
export class FluxObjects {
  private readonly byKey = new Map<string, FluxObject>();
  private index: Map<string, Declaration[]> | undefined;

  constructor(private readonly root: string) {}

  /** Files declaring Flux objects: kind/name → every file and line (namespaces may be set by a kustomization, so not part of the key). */
  private declarations(): Map<string, Declaration[]> {
    if (this.index) return this.index;
    const index = new Map<string, Declaration[]>();
    let budget = FILE_LIMIT;
    const walk = (dir: string): void => {
      for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
        if (entry.name.startsWith('.') || budget-- <= 0) continue;
        const full = join(dir, entry.name);
        if (entry.isDirectory()) walk(full);
        else if (entry.isFile() && /\.ya?ml$/i.test(entry.name) && statSync(full).size < 4 * 1024 * 1024)
          for (const [key, line, namespace, spec] of fluxDocuments(readFileSync(full, 'utf8')))
            index.set(key, [...(index.get(key) ?? []), { file: relative(this.root, full), line, namespace, spec }]);
      }
    };
    walk(this.root);
    this.index = index;
    return index;
  }

  /**
   * Where an object is declared: of the files declaring its kind and name, one the rendered path
   * reads, saying its namespace (or none: a kustomization may set it) before one saying another.
   */
  private where(
    kind: string,
    name: string,
    inputs: readonly string[],
    namespace?: string,
  ): { file: string; line: number } {
    const candidates = this.declarations().get(`${kind}/${name}`) ?? [];
    const read = (file: string) => inputs.some((dir) => dir === '.' || file === dir || file.startsWith(`${dir}/`));
    const fits = (c: Declaration) => c.namespace === undefined || namespace === undefined || c.namespace === namespace;
    const found =
      candidates.find((c) => read(c.file) && fits(c)) ??
      candidates.find((c) => read(c.file)) ??
      candidates.find(fits) ??
      candidates[0];
    return found ? { file: found.file, line: found.line } : { file: '(generated)', line: 1 };
  }

  /**
   * Where a field of an object was written: its own document when that has it, else a document of
   * the same kind and name the object's path reads (a kustomize patch) that has it; else its own.
   */
  origin(obj: FluxObject, field: string): { file: string; line: number } {
    const path = field
      .replace(/^spec\.?/, '')
      .split(/\.|\[(\d+)\]/)
      .filter((k): k is string => k !== undefined && k !== '');
    if (path.length === 0) return { file: obj.file, line: obj.line };
    const has = (spec: unknown) =>
      path.reduce<unknown>(
        (node, key) => (node !== null && typeof node === 'object' ? (node as Record<string, unknown>)[key] : undefined),
        spec,
      ) !== undefined;
    const candidates = (this.declarations().get(`${obj.kind}/${obj.name}`) ?? []).filter(
      (c) =>
        (c.namespace === undefined || c.namespace === obj.namespace) &&
        obj.inputs.some((dir) => dir === '.' || c.file === dir || c.file.startsWith(`${dir}/`)),
    );
    const own = candidates.find((c) => c.file === obj.file && c.line === obj.line);
    if (!own || has(own.spec)) return { file: obj.file, line: obj.line };
    const patch = candidates.find((c) => c !== own && has(c.spec));
    return patch ? { file: patch.file, line: patch.line } : { file: obj.file, line: obj.line };
  }

  /** Takes the Flux objects among rendered ones (namespace: their own, else the one their Kustomization sets); returns the new ones. */
  add(objects: readonly KubeObject[], namespace: string | undefined, scope: string, inputs: string[]): FluxObject[] {
    const added: FluxObject[] = [];
    for (const o of objects) {
      if (!isFluxApiVersion(o.apiVersion)) continue;
      const ns = namespace ?? o.metadata.namespace ?? 'default';
      const key = `${scope}|${o.kind}/${ns}/${o.metadata.name}`;
      if (this.byKey.has(key)) continue;
      const where = this.where(o.kind, o.metadata.name, inputs, o.metadata.namespace);
      const spec = o['spec'];
      const obj: FluxObject = {
        kind: o.kind,
        namespace: ns,
        name: o.metadata.name,
        label: `${o.kind} ${ns}/${o.metadata.name}`,
        spec: typeof spec === 'object' && spec !== null ? (spec as Record<string, unknown>) : {},
        ...where,
        scope,
        inputs,
      };
      this.byKey.set(key, obj);
      added.push(obj);
    }
    return added;
  }

  /** The object of this kind, namespace and name read under the same flux path as `from`. */
  /** A rendered Flux object as this reader would take it (not remembered): to look at a Kustomization before reading its path. */
  peek(o: KubeObject, scope: string): FluxObject {
    const spec = o['spec'];
    const ns = o.metadata.namespace ?? 'default';
    return {
      kind: o.kind,
      namespace: ns,
      name: o.metadata.name,
      label: `${o.kind} ${ns}/${o.metadata.name}`,
      spec: typeof spec === 'object' && spec !== null ? (spec as Record<string, unknown>) : {},
      ...this.where(o.kind, o.metadata.name, [], o.metadata.namespace),
      scope,
      inputs: [],
    };
  }

  get(from: FluxObject, kind: string, namespace: string, name: string): FluxObject | undefined {
    return this.byKey.get(`${from.scope}|${kind}/${namespace}/${name}`);
  }

  ofKind(kind: string): FluxObject[] {
    return [...this.byKey.values()].filter((o) => o.kind === kind);
  }

  all(): FluxObject[] {
    return [...this.byKey.values()];
  }
}
