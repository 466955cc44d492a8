import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { LineCounter, parseAllDocuments } from 'yaml';
import type { KubeObject } from '../model/index.js';

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
}

const FLUX_API = /\.toolkit\.fluxcd\.io\//;
/** At most this many files are read to find where Flux objects are declared. */
const FILE_LIMIT = 20_000;

/** The Flux objects a YAML text declares: kind/name and the line each starts on. */
function fluxDocuments(text: string): Array<[string, number]> {
  if (!text.includes('toolkit.fluxcd.io')) return [];
  const counter = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: counter });
  if (!Array.isArray(docs)) return [];
  return docs.flatMap((doc): Array<[string, number]> => {
    let value: Partial<KubeObject> | null;
    try {
      value = doc.toJS({ maxAliasCount: 100 }) as Partial<KubeObject> | null;
    } catch {
      return [];
    }
    if (!value || typeof value.apiVersion !== 'string' || !FLUX_API.test(value.apiVersion)) return [];
    return [
      [
        `${value.kind}/${String(value.metadata?.name)}`,
        counter.linePos(doc.contents?.range?.[0] ?? doc.range?.[0] ?? 0).line,
      ],
    ];
  });
}

/** The Flux objects read so far, by kind, namespace and name; and where in the repository each is written. */
export class FluxObjects {
  private readonly byKey = new Map<string, FluxObject>();
  private index: Map<string, { file: string; line: number }> | undefined;

  constructor(private readonly root: string) {}

  /** Files declaring Flux objects: kind/name → file and line (namespaces may be set by a kustomization, so not part of the key). */
  private declarations(): Map<string, { file: string; line: number }> {
    if (this.index) return this.index;
    const index = new Map<string, { file: string; line: number }>();
    let budget = FILE_LIMIT;
    const walk = (dir: string): void => {
      for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
        if (entry.name.startsWith('.') || budget-- <= 0) continue;
        const full = join(dir, entry.name);
        if (entry.isDirectory()) walk(full);
        else if (entry.isFile() && /\.ya?ml$/i.test(entry.name) && statSync(full).size < 4 * 1024 * 1024)
          for (const [key, line] of fluxDocuments(readFileSync(full, 'utf8')))
            if (!index.has(key)) index.set(key, { file: relative(this.root, full), line });
      }
    };
    walk(this.root);
    this.index = index;
    return index;
  }

  /** Takes the Flux objects among rendered ones (namespace: their own, else the one their Kustomization sets); returns the new ones. */
  add(objects: readonly KubeObject[], namespace: string | undefined, scope: string): FluxObject[] {
    const added: FluxObject[] = [];
    for (const o of objects) {
      if (!FLUX_API.test(o.apiVersion)) continue;
      const ns = namespace ?? o.metadata.namespace ?? 'default';
      const key = `${scope}|${o.kind}/${ns}/${o.metadata.name}`;
      if (this.byKey.has(key)) continue;
      const where = this.declarations().get(`${o.kind}/${o.metadata.name}`) ?? { file: '(generated)', line: 1 };
      const spec = o['spec'];
      const obj: FluxObject = {
        kind: o.kind,
        namespace: ns,
        name: o.metadata.name,
        label: `${o.kind} ${ns}/${o.metadata.name}`,
        spec: typeof spec === 'object' && spec !== null ? (spec as Record<string, unknown>) : {},
        ...where,
        scope,
      };
      this.byKey.set(key, obj);
      added.push(obj);
    }
    return added;
  }

  /** The object of this kind, namespace and name read under the same flux path as `from`. */
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
