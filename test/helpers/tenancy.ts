import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import type { KubeObject } from '../../shared/model/index.js';
import { testEngine } from './engine.js';

const RBAC = { apiGroup: 'rbac.authorization.k8s.io' };

/** The objects of infra/namespaced-rbac.yaml, as shipped. */
export const shippedRbac = (): KubeObject[] =>
  parseAllDocuments(readFileSync(new URL('../../infra/namespaced-rbac.yaml', import.meta.url), 'utf8')).map(
    (d) => d.toJS() as KubeObject,
  );

/**
 * A tenant namespace as docs/deploy.md (step 5) and docs/configuration.md (Tenancy) set one up: a ServiceAccount `deployer` bound to `admin` there
 * only and, with `impersonate`, the documented RoleBinding of tidegate-impersonate to tidegate's group.
 */
export async function tenantNamespace(ns: string, opts: { impersonate: boolean }): Promise<void> {
  const { client } = testEngine();
  await client.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  await client.create({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'deployer', namespace: ns } });
  await client.create({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: { name: 'deployer-admin', namespace: ns },
    roleRef: { ...RBAC, kind: 'ClusterRole', name: 'admin' },
    subjects: [{ kind: 'ServiceAccount', name: 'deployer', namespace: ns }],
  } as KubeObject);
  if (opts.impersonate)
    await client.create({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'tidegate-impersonate', namespace: ns },
      roleRef: { ...RBAC, kind: 'ClusterRole', name: 'tidegate-impersonate' },
      subjects: [{ ...RBAC, kind: 'Group', name: 'tidegate' }],
    } as KubeObject);
}
