import type { KubeObject } from '../model/index.js';
import type { PodSpec } from './references.js';

export interface PodTemplate {
  metadata?: { annotations?: Record<string, string>; labels?: Record<string, string> };
  spec?: PodSpec;
}

/** One entry per workload kind Reloader rolls: where its pod template lives. */
export interface WorkloadAdapter {
  apiVersion: string;
  kind: string;
  /** Path from the object root to the pod template. */
  templatePath: readonly string[];
}

export const WORKLOADS: readonly WorkloadAdapter[] = [
  { apiVersion: 'apps/v1', kind: 'Deployment', templatePath: ['spec', 'template'] },
  { apiVersion: 'apps/v1', kind: 'StatefulSet', templatePath: ['spec', 'template'] },
  { apiVersion: 'apps/v1', kind: 'DaemonSet', templatePath: ['spec', 'template'] },
  // A CronJob's next runs use the new data: its job template is what changes.
  { apiVersion: 'batch/v1', kind: 'CronJob', templatePath: ['spec', 'jobTemplate', 'spec', 'template'] },
];

export function podTemplateOf(obj: KubeObject, adapter: WorkloadAdapter): PodTemplate {
  let node: unknown = obj;
  for (const key of adapter.templatePath) node = (node as Record<string, unknown> | undefined)?.[key];
  return (node ?? {}) as PodTemplate;
}

/** Wraps a partial pod template into a partial object at the adapter's template path. */
export function atTemplatePath(adapter: WorkloadAdapter, template: PodTemplate): Record<string, unknown> {
  return [...adapter.templatePath]
    .reverse()
    .reduce<Record<string, unknown>>((inner, key) => ({ [key]: inner }), template as Record<string, unknown>);
}
