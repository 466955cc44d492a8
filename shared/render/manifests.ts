import { createHash } from 'node:crypto';
import type { Document, ScalarTag, Tags } from 'yaml';
import { errorMessage, type KubeObject } from '../model/index.js';
import { RenderError, type RenderProblem } from './errors.js';
import type { RandomField } from './random.js';
import { substituteVariables, unsetValue } from './substitute.js';
import { DocumentTooLarge, TICK, documentMarkers, parseDocuments, yamlDocuments } from './yaml.js';

/** An object and where it came from (a repository file, or the kustomize/helm command that made it). */
export interface RenderedObject {
  object: KubeObject;
  source: string;
  /** Strings the chart generates at random (found by rendering twice): a live value of their shape is kept. */
  random?: RandomField[];
}

/**
 * An integer written with a leading zero is octal, as Helm, kubectl and kustomize read it (Go's YAML
 * libraries keep YAML 1.1's octals: a volume's `defaultMode: 0755` is 493), where YAML 1.2 reads 755.
 * Booleans stay YAML 1.2's (`yes` is a string), as kustomize, and so Flux, reads them.
 */
const OCTAL: ScalarTag = {
  identify: () => false,
  default: true,
  tag: 'tag:yaml.org,2002:int',
  test: /^[-+]?0[0-7]+$/,
  resolve: (text: string) => Number.parseInt(text, 8),
};
const KUBE_YAML = { customTags: (tags: Tags) => [OCTAL, ...tags] };

/** Objects opt out of variable substitution with this annotation set to "disabled". */
export const SUBSTITUTE_ANNOTATION = 'tidegate.dev/substitute';

/** Flux's annotation for the same. */
const FLUX_SUBSTITUTE = 'kustomize.toolkit.fluxcd.io/substitute';

const NAME = /^[a-z0-9]([-a-z0-9.:]*[a-z0-9])?$/i;
const MAX_ALIASES = 100;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Checks that a document is a Kubernetes object; returns the problem, or null. */
function validateObject(doc: Record<string, unknown>): string | null {
  if (typeof doc['apiVersion'] !== 'string' || doc['apiVersion'] === '') return 'apiVersion is missing or not a string';
  if (typeof doc['kind'] !== 'string' || doc['kind'] === '') return 'kind is missing or not a string';
  const meta = doc['metadata'];
  if (!isRecord(meta)) return 'metadata is missing';
  if (typeof meta['name'] !== 'string' || meta['name'] === '') return 'metadata.name is missing';
  if (!NAME.test(meta['name']) || meta['name'].length > 253)
    return `metadata.name "${meta['name']}" is not a valid object name`;
  if (meta['namespace'] !== undefined && typeof meta['namespace'] !== 'string')
    return 'metadata.namespace is not a string';
  return null;
}

const label = (doc: Record<string, unknown>, index: number): string => {
  const meta = isRecord(doc['metadata']) ? doc['metadata'] : {};
  return typeof doc['kind'] === 'string' && typeof meta['name'] === 'string'
    ? `${doc['kind']}/${meta['name']}`
    : `document ${index + 1}`;
};

/**
 * The problem of variables neither declared nor defaulted. In a Secret, what looks like a variable may
 * be part of a value: its names are not repeated.
 */
function missingVariables(doc: Record<string, unknown>, missing: readonly string[]): string {
  const what =
    doc['kind'] === 'Secret'
      ? `${missing.length} \${…} reference${missing.length > 1 ? 's' : ''} (names not shown: this is a Secret)`
      : `variable${missing.length > 1 ? 's' : ''} ${missing.map((v) => `\${${v}}`).join(', ')}`;
  return `${what} not declared in substitute and without a default (write $\${…} for a literal \${…})`;
}

/** An object that opts out of substitution (tidegate's annotation, or Flux's). */
function substitutionDisabled(value: Record<string, unknown>): boolean {
  const meta = isRecord(value['metadata']) ? value['metadata'] : {};
  const annotations = isRecord(meta['annotations']) ? meta['annotations'] : {};
  return annotations[SUBSTITUTE_ANNOTATION] === 'disabled' || annotations[FLUX_SUBSTITUTE] === 'disabled';
}

/** Kubernetes-looking documents: they declare apiVersion or kind. Others (values files, CI config) are not objects. */
const looksLikeObject = (doc: Record<string, unknown>): boolean => 'apiVersion' in doc || 'kind' in doc;

/** kustomization.yaml files and other kustomize/helm inputs, never objects for the cluster. */
const isBuildInput = (doc: Record<string, unknown>): boolean =>
  typeof doc['apiVersion'] === 'string' && doc['apiVersion'].startsWith('kustomize.config.k8s.io/');

const MiB = 1024 * 1024;
const mib = (bytes: number): string => `${Math.round((bytes / MiB) * 10) / 10} MiB`;

/**
 * What parsing the YAML of one render may take (deploy-time settings render.*): documents are
 * counted across every text parsed with the same budget.
 */
export interface ParseBudget {
  /** render.maxDocumentTokens */
  maxDocumentTokens: number;
  /** render.maxFileMiB: the largest document of a tool's output (a repository file is checked by its size before it is read). */
  maxDocumentBytes: number;
  /** render.maxDocuments */
  maxDocuments: number;
  /** Documents parsed (or about to be) so far. */
  documents: number;
  /** render.timeout, from the start of the render: checked between documents. */
  deadline: number;
  timeoutMs: number;
  signal?: AbortSignal | undefined;
}

export const parseBudget = (
  render: { maxDocumentTokens: number; maxFileBytes: number; maxDocuments: number },
  timeoutMs: number,
  signal?: AbortSignal,
): ParseBudget => ({
  maxDocumentTokens: render.maxDocumentTokens,
  maxDocumentBytes: render.maxFileBytes,
  maxDocuments: render.maxDocuments,
  documents: 0,
  deadline: Date.now() + timeoutMs,
  timeoutMs,
  signal,
});

export const tooManyDocuments = (budget: ParseBudget): string =>
  `more than ${budget.maxDocuments} YAML documents (deploy-time setting render.maxDocuments)`;

/** Lets the event loop run (the Lease's renewal, the deadline's timer) and stops at the deadline or the caller's abort. */
async function breathe(budget: ParseBudget, source: string): Promise<void> {
  await new Promise<void>((resolve) => setImmediate(resolve));
  if (budget.signal?.aborted)
    throw new RenderError([{ file: source, message: 'The operation was aborted' }], { cause: budget.signal.reason });
  if (Date.now() > budget.deadline)
    throw new RenderError([
      { file: source, message: `took longer than ${budget.timeoutMs / 1000} s (deploy-time setting render.timeout)` },
    ]);
}

/**
 * Refuses, before parsing, a text whose documents are past the budget: more documents than are
 * left, or (a tool's output) a document larger than render.maxFileMiB. The documents it holds at
 * least (its `---` markers).
 */
export function checkDocuments(text: string, source: string, budget: ParseBudget, checkSize: boolean): number {
  const { markers, longest } = documentMarkers(text);
  if (budget.documents + markers > budget.maxDocuments)
    throw new RenderError([{ file: source, message: tooManyDocuments(budget) }]);
  if (checkSize && longest > budget.maxDocumentBytes)
    throw new RenderError([
      {
        file: source,
        message: `a YAML document of ${mib(longest)}, more than ${mib(budget.maxDocumentBytes)} (deploy-time setting render.maxFileMiB)`,
      },
    ]);
  return markers;
}

const tokensProblem = (source: string, err: DocumentTooLarge): RenderError =>
  new RenderError([
    {
      file: source,
      object: `document ${err.document}`,
      message: `more than ${err.maxTokens} YAML tokens (deploy-time setting render.maxDocumentTokens)`,
    },
  ]);

/**
 * Parses a multi-document YAML (or JSON) text into objects: substitutes variables per document,
 * expands `List` kinds, ignores documents that are not Kubernetes objects, and reports every
 * invalid object with the file it came from. Within the budget: documents are composed one at a
 * time, each of at most render.maxDocumentTokens tokens, at most render.maxDocuments of them,
 * and the event loop runs between them (a limit passed throws a RenderError naming it).
 */
export async function parseManifests(
  text: string,
  source: string,
  vars: Readonly<Record<string, string>>,
  problems: RenderProblem[],
  budget: ParseBudget,
  /** Undeclared variables become a mark (unsetValue) instead of a problem: a render that only reads the configuration. */
  lenient = false,
  /** A tool's output: its documents are checked against render.maxFileMiB before parsing (a file was, by its size). */
  toolOutput = false,
): Promise<RenderedObject[]> {
  checkDocuments(text, source, budget, toolOutput);
  const key = parsedKey(text, source, vars, lenient, budget.maxDocumentTokens);
  const hit = parsed.get(key);
  if (hit) {
    // The budget counts a remembered parse's documents as it counted them the first time.
    budget.documents += hit.documents;
    if (budget.documents > budget.maxDocuments)
      throw new RenderError([{ file: source, message: tooManyDocuments(budget) }]);
    parsed.delete(key);
    parsed.set(key, hit); // the most recently used last
    problems.push(...structuredClone(hit.problems));
    return structuredClone(hit.objects);
  }
  const [documentsBefore, problemsBefore] = [budget.documents, problems.length];
  const objects = await parseText(text, source, vars, problems, budget, lenient);
  remember(key, text.length, {
    objects: structuredClone(objects),
    problems: structuredClone(problems.slice(problemsBefore)),
    documents: budget.documents - documentsBefore,
  });
  return objects;
}

/**
 * Parses that are remembered, by a digest of the text and everything else the result depends on:
 * a warm worker syncing an unchanged repository (a poll, a push touching another file) does not
 * parse the same YAML again. The result is a pure function of the key; copies go in and out, so no
 * caller sees another's objects. Bounded by the bytes of the texts (PARSED_BYTES).
 */
const parsed = new Map<
  string,
  { objects: RenderedObject[]; problems: RenderProblem[]; documents: number; bytes: number }
>();
let parsedBytes = 0;
const PARSED_BYTES = 8 * 2 ** 20;

const parsedKey = (
  text: string,
  source: string,
  vars: Readonly<Record<string, string>>,
  lenient: boolean,
  maxTokens: number,
): string =>
  createHash('sha256')
    .update(JSON.stringify([source, Object.entries(vars).sort(), lenient, maxTokens]))
    .update('\0')
    .update(text)
    .digest('base64');

function remember(
  key: string,
  bytes: number,
  entry: { objects: RenderedObject[]; problems: RenderProblem[]; documents: number },
): void {
  if (bytes > PARSED_BYTES / 4) return;
  parsedBytes -= parsed.get(key)?.bytes ?? 0; // two parses of one text at once: the second replaces the first
  parsed.set(key, { ...entry, bytes });
  parsedBytes += bytes;
  for (const [k, v] of parsed) {
    if (parsedBytes <= PARSED_BYTES) break;
    parsed.delete(k);
    parsedBytes -= v.bytes;
  }
}

async function parseText(
  text: string,
  source: string,
  vars: Readonly<Record<string, string>>,
  problems: RenderProblem[],
  budget: ParseBudget,
  lenient: boolean,
): Promise<RenderedObject[]> {
  const objects: RenderedObject[] = [];
  const substituting = Object.keys(vars).length > 0 || lenient;
  // What is needed of a document, taken while the parser holds it: its first error, or its value
  // and (to substitute variables in) its text.
  const read = (doc: Document.Parsed): Read => {
    if (doc.errors.length > 0) return { error: doc.errors[0]?.message.split('\n')[0] ?? '' };
    try {
      const value = doc.toJS({ maxAliasCount: MAX_ALIASES }) as unknown;
      const substitute = substituting && isRecord(value) && looksLikeObject(value) && !substitutionDisabled(value);
      // Not folded at 80 columns: a long flow sequence stays on one line, as many tokens as it was.
      return { value, text: substitute ? doc.toString({ lineWidth: 0 }) : undefined };
    } catch (err) {
      return { thrown: err };
    }
  };
  let index = -1;
  const docs = yamlDocuments(text, budget.maxDocumentTokens, { prettyErrors: false, ...KUBE_YAML }, read);
  for (;;) {
    let next: IteratorResult<Read | typeof TICK>;
    try {
      next = docs.next();
    } catch (err) {
      if (err instanceof DocumentTooLarge) throw tokensProblem(source, err);
      throw err;
    }
    if (next.done) break;
    if (next.value === TICK) {
      await breathe(budget, source);
      continue;
    }
    index++;
    if (++budget.documents > budget.maxDocuments)
      throw new RenderError([{ file: source, message: tooManyDocuments(budget) }]);
    const value = documentValue(next.value, { source, index, vars, lenient, budget, problems });
    if (value !== NOTHING) collect(value, source, index, objects, problems);
  }
  return objects;
}

/** What yamlDocuments takes of a document for parseManifests. */
type Read = { error: string } | { thrown: unknown } | { value: unknown; text?: string | undefined };

const NOTHING = Symbol('nothing');

/**
 * A document's value, its variables substituted (its text parsed again, within the token budget),
 * or NOTHING with the problem recorded.
 */
function documentValue(
  doc: Read,
  at: {
    source: string;
    index: number;
    vars: Readonly<Record<string, string>>;
    lenient: boolean;
    budget: ParseBudget;
    problems: RenderProblem[];
  },
): unknown {
  const { source, index, problems } = at;
  // The library's text may end with content of the document (an unresolved alias names what follows
  // its `*`, which may be a value of a Secret): only the reason before the first colon is kept.
  const invalid = (reason: string): typeof NOTHING => {
    problems.push({ file: source, object: `document ${index + 1}`, message: `invalid YAML: ${reason}` });
    return NOTHING;
  };
  if ('error' in doc) return invalid(doc.error);
  if ('thrown' in doc) return invalid(errorMessage(doc.thrown).split(/:\s/)[0] ?? '');
  const value = doc.value;
  if (doc.text === undefined || !isRecord(value)) return value;
  const result = substituteVariables(doc.text, at.vars, at.lenient ? unsetValue : undefined);
  if (result.missing.length > 0) {
    problems.push({ file: source, object: label(value, index), message: missingVariables(value, result.missing) });
    return NOTHING;
  }
  try {
    // Written out again, a document may take more tokens (a flow sequence as a block one): twice the budget.
    return parseDocuments(result.text, 2 * at.budget.maxDocumentTokens, KUBE_YAML)[0]?.toJS({
      maxAliasCount: MAX_ALIASES,
    }) as unknown;
  } catch (err) {
    if (err instanceof DocumentTooLarge)
      throw tokensProblem(source, new DocumentTooLarge(index + 1, at.budget.maxDocumentTokens));
    return invalid(errorMessage(err).split(/:\s/)[0] ?? '');
  }
}

function collect(
  value: unknown,
  source: string,
  index: number,
  objects: RenderedObject[],
  problems: RenderProblem[],
): void {
  if (value === null || value === undefined) return; // empty document
  if (!isRecord(value)) {
    problems.push({ file: source, object: `document ${index + 1}`, message: 'is not a mapping' });
    return;
  }
  if (!looksLikeObject(value) || isBuildInput(value)) return;
  if (typeof value['kind'] === 'string' && value['kind'].endsWith('List') && Array.isArray(value['items'])) {
    for (const item of value['items']) collect(item, source, index, objects, problems);
    return;
  }
  const problem = validateObject(value);
  if (problem) {
    problems.push({ file: source, object: label(value, index), message: problem });
    return;
  }
  objects.push({ object: value as KubeObject, source });
}
