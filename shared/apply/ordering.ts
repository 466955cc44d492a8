import type { KubeObject } from '../model/index.js';

/**
 * Apply stages: cluster definitions first (CRDs, Namespaces, ClusterRoles), then *Class kinds
 * (StorageClass, IngressClass, PriorityClass, ...), then everything else. Prune runs in reverse.
 */
export type Stage = 0 | 1 | 2;
export const STAGE_NAMES: Record<Stage, string> = { 0: 'cluster definitions', 1: 'classes', 2: 'resources' };

const DEFINITIONS = new Set(['CustomResourceDefinition', 'Namespace', 'ClusterRole']);

export function stageOf(kind: string): Stage {
  if (DEFINITIONS.has(kind)) return 0;
  if (kind.endsWith('Class')) return 1;
  return 2;
}

/** Within a stage, the order Helm and Flux use: what others depend on comes first. */
const KIND_ORDER = [
  'CustomResourceDefinition',
  'Namespace',
  'ClusterRole',
  'ResourceQuota',
  'LimitRange',
  'PodSecurityPolicy',
  'PodDisruptionBudget',
  'ServiceAccount',
  'Secret',
  'SecretList',
  'ConfigMap',
  'StorageClass',
  'PersistentVolume',
  'PersistentVolumeClaim',
  'ClusterRoleBinding',
  'Role',
  'RoleBinding',
  'Service',
  'DaemonSet',
  'Pod',
  'ReplicationController',
  'ReplicaSet',
  'Deployment',
  'HorizontalPodAutoscaler',
  'StatefulSet',
  'Job',
  'CronJob',
  'IngressClass',
  'Ingress',
  'APIService',
];
const rank = new Map(KIND_ORDER.map((k, i) => [k, i]));

/** A kind's place in Helm's install order (kinds it does not list come after those it does). */
export const kindRank = (kind: string): number => rank.get(kind) ?? KIND_ORDER.length;

export function compareForApply(a: KubeObject, b: KubeObject): number {
  const stage = stageOf(a.kind) - stageOf(b.kind);
  if (stage !== 0) return stage;
  const kind = kindRank(a.kind) - kindRank(b.kind);
  if (kind !== 0) return kind;
  return (
    a.kind.localeCompare(b.kind) ||
    (a.metadata.namespace ?? '').localeCompare(b.metadata.namespace ?? '') ||
    a.metadata.name.localeCompare(b.metadata.name)
  );
}
