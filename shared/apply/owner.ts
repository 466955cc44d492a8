import { createHash } from 'node:crypto';
import type { KubeObject } from '../model/index.js';

/** Field manager of every apply tidegate makes for a target. */
export const FIELD_MANAGER = 'tidegate';
/** Labels set on every object tidegate applies; prune deletes only objects carrying them. */
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const TARGET_LABEL = 'tidegate.dev/target';
/** `tidegate.dev/prune: disabled` keeps an object in the cluster when it leaves Git. */
export const PRUNE_ANNOTATION = 'tidegate.dev/prune';
/** Flux's annotation for the same, honoured alike (repositories written for Flux use it). */
export const FLUX_PRUNE_ANNOTATION = 'kustomize.toolkit.fluxcd.io/prune';
/** Namespace holding inventories and history. */
export const SYSTEM_NAMESPACE = 'tidegate-system';

/**
 * The owner labels of an object a target applies. A chart's objects keep the managed-by value Helm
 * gives what it installs ("Helm"): charts look their own objects up by it (and by Helm's release
 * annotations) before they render or keep them. Anything else is managed by tidegate.
 */
export function ownerLabels(target: string, labels?: Readonly<Record<string, string>>): Record<string, string> {
  return { [MANAGED_BY_LABEL]: labels?.[MANAGED_BY_LABEL] === 'Helm' ? 'Helm' : 'tidegate', [TARGET_LABEL]: target };
}

/** The target that applied an object, by its owner labels (its target label, managed by tidegate or, for a chart's, Helm). */
export function appliedBy(labels: Readonly<Record<string, string>> | undefined): string | undefined {
  const managedBy = labels?.[MANAGED_BY_LABEL];
  return managedBy === 'tidegate' || managedBy === 'Helm' ? labels?.[TARGET_LABEL] : undefined;
}

export function isOwnedBy(obj: KubeObject, target: string): boolean {
  return appliedBy(obj.metadata.labels) === target;
}

/** JSON with object keys sorted at every level: one encoding per value. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** Hash of the desired state of an object, recorded in the inventory to tell drift from Git changes. */
export const desiredHash = (obj: KubeObject): string =>
  createHash('sha256').update(canonicalJson(obj)).digest('hex').slice(0, 32);
