import { parseAllDocuments } from 'yaml';
import { errorMessage, type KubeObject } from '../model/index.js';
import type { RenderProblem } from './errors.js';
import type { RandomField } from './random.js';
import { substituteVariables, unsetValue } from './substitute.js';

/** An object and where it came from (a repository file, or the kustomize/helm command that made it). */
export interface RenderedObject {
  object: KubeObject;
  source: string;
  /** Strings the chart generates at random (found by rendering twice): a live value of their shape is kept. */
  random?: RandomField[];
}

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

/**
 * Parses a multi-document YAML (or JSON) text into objects: substitutes variables per document,
 * expands `List` kinds, ignores documents that are not Kubernetes objects, and reports every
 * invalid object with the file it came from.
 */
export function parseManifests(
  text: string,
  source: string,
  vars: Readonly<Record<string, string>>,
  problems: RenderProblem[],
  /** Undeclared variables become a mark (unsetValue) instead of a problem: a render that only reads the configuration. */
  lenient = false,
): RenderedObject[] {
  const objects: RenderedObject[] = [];
  const substituting = Object.keys(vars).length > 0 || lenient;
  const docs = parseAllDocuments(text, { prettyErrors: false });
  if (!Array.isArray(docs)) return objects; // an empty stream
  docs.forEach((doc, index) => {
    if (doc.errors.length > 0) {
      problems.push({
        file: source,
        object: `document ${index + 1}`,
        message: `invalid YAML: ${doc.errors[0]?.message.split('\n')[0] ?? ''}`,
      });
      return;
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: MAX_ALIASES });
      if (substituting && isRecord(value) && looksLikeObject(value)) {
        if (!substitutionDisabled(value)) {
          const result = substituteVariables(doc.toString(), vars, lenient ? unsetValue : undefined);
          if (result.missing.length > 0) {
            problems.push({
              file: source,
              object: label(value, index),
              message: missingVariables(value, result.missing),
            });
            return;
          }
          value = parseAllDocuments(result.text)[0]?.toJS({ maxAliasCount: MAX_ALIASES }) as unknown;
        }
      }
    } catch (err) {
      // The library's text may end with content of the document (an unresolved alias names what follows
      // its `*`, which may be a value of a Secret): only the reason before the first colon is kept.
      const reason = errorMessage(err).split(/:\s/)[0] ?? '';
      problems.push({ file: source, object: `document ${index + 1}`, message: `invalid YAML: ${reason}` });
      return;
    }
    collect(value, source, index, objects, problems);
  });
  return objects;
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
