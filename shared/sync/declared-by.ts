import { TidegateError, type KubeObject } from '../model/index.js';
import type { SyncRun } from './run.js';

const FLUX_RESOURCES = {
  Kustomization: { group: 'kustomize.toolkit.fluxcd.io', resource: 'kustomizations' },
  HelmRelease: { group: 'helm.toolkit.fluxcd.io', resource: 'helmreleases' },
} as const;

/**
 * A target read from a Flux object that a Kustomization applying as a ServiceAccount declares: in
 * Flux, that ServiceAccount creates the object, so it exists only if its RBAC allows. The
 * apiserver is asked (a SelfSubjectAccessReview made as that ServiceAccount) before anything is
 * read or applied; a refusal fails the sync, naming who may not create what.
 */
export async function checkDeclaredBy(run: SyncRun): Promise<void> {
  const { spec, client, signal } = run.input;
  const origin = spec.origin;
  const by = origin?.declaredBy;
  if (!origin || !by) return;
  const user = `system:serviceaccount:${by.namespace}:${by.name}`;
  const { group, resource } = FLUX_RESOURCES[origin.kind];
  const review = {
    apiVersion: 'authorization.k8s.io/v1',
    kind: 'SelfSubjectAccessReview',
    metadata: {},
    spec: { resourceAttributes: { verb: 'create', group, resource, namespace: origin.namespace, name: origin.name } },
  } as unknown as KubeObject;
  const answer = await client.impersonating(user).create(review, signal);
  const status = answer['status'] as { allowed?: boolean; reason?: string } | undefined;
  if (status?.allowed === true) return;
  throw new TidegateError(
    'PlanFailed',
    `${origin.kind} ${origin.namespace}/${origin.name} (${origin.file}) is declared by a Kustomization applying as ServiceAccount ${by.namespace}/${by.name}, and User "${user}" may not create ${resource}.${group} in namespace ${origin.namespace}${status?.reason ? ` (${status.reason})` : ''}: in Flux it could not exist, so nothing of it is applied`,
  );
}
