import type { KubeObject } from '../model/index.js';

/** The points of a release's life a Helm hook runs at (`helm.sh/hook`); tests are `helm test`'s, never installed. */
export const HOOK_PHASES = [
  'pre-install',
  'post-install',
  'pre-upgrade',
  'post-upgrade',
  'pre-rollback',
  'post-rollback',
  'pre-delete',
  'post-delete',
] as const;
export type HookPhase = (typeof HOOK_PHASES)[number];

export const HOOK_DELETE_POLICIES = ['before-hook-creation', 'hook-succeeded', 'hook-failed'] as const;
export type HookDeletePolicy = (typeof HOOK_DELETE_POLICIES)[number];

/** A chart's hook: when it runs, in what order, and when it is deleted. */
export interface HelmHook {
  phases: HookPhase[];
  weight: number;
  /** As annotated; none annotated is `before-hook-creation`, as in Helm. */
  deletePolicies: HookDeletePolicy[];
}

const list = (value: string | undefined): string[] =>
  (value ?? '')
    .split(',')
    .map((v) => v.trim().toLowerCase())
    .filter(Boolean);

/**
 * The hook an object of a chart's output is, or undefined for a release object. As in Helm, an
 * object annotated `helm.sh/hook` is a hook even when none of its phases is known (it then never
 * runs); an unknown delete policy is ignored, and a weight that is not a whole number is 0.
 */
export function hookOf(object: KubeObject): HelmHook | undefined {
  const annotations = object.metadata.annotations ?? {};
  if (annotations['helm.sh/hook'] === undefined) return undefined;
  const phases = list(annotations['helm.sh/hook']).filter((p): p is HookPhase =>
    (HOOK_PHASES as readonly string[]).includes(p),
  );
  const policies = list(annotations['helm.sh/hook-delete-policy']).filter((p): p is HookDeletePolicy =>
    (HOOK_DELETE_POLICIES as readonly string[]).includes(p),
  );
  const weight = (annotations['helm.sh/hook-weight'] ?? '').trim();
  return {
    phases,
    weight: /^[+-]?\d{1,9}$/.test(weight) ? Number(weight) : 0,
    deletePolicies: policies.length > 0 ? policies : ['before-hook-creation'],
  };
}

/** A Helm test hook (`helm.sh/hook: test`, or the older `test-success`): run by `helm test`, never installed. */
export function isTestHook(object: KubeObject): boolean {
  return list(object.metadata.annotations?.['helm.sh/hook']).some((h) => h === 'test' || h === 'test-success');
}
