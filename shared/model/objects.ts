/** A Kubernetes object as tidegate handles it: any kind, known by apiVersion/kind/metadata. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  [field: string]: unknown;
}

export interface ObjectMeta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  resourceVersion?: string;
  generation?: number;
  uid?: string;
  deletionTimestamp?: string;
  managedFields?: ManagedFieldsEntry[];
  [field: string]: unknown;
}

export interface ManagedFieldsEntry {
  /** When this manager last wrote the object. */
  time?: string;
  manager?: string;
  operation?: string;
  apiVersion?: string;
  fieldsType?: string;
  fieldsV1?: Record<string, unknown>;
  subresource?: string;
}

/** Identifies one object: group (empty for the core group), kind, namespace (empty when cluster-scoped), name. */
export interface ObjectRef {
  group: string;
  kind: string;
  namespace: string;
  name: string;
}

export function groupOf(apiVersion: string): string {
  const slash = apiVersion.indexOf('/');
  return slash < 0 ? '' : apiVersion.slice(0, slash);
}

export function refOf(obj: Pick<KubeObject, 'apiVersion' | 'kind' | 'metadata'>): ObjectRef {
  return {
    group: groupOf(obj.apiVersion),
    kind: obj.kind,
    namespace: obj.metadata.namespace ?? '',
    name: obj.metadata.name,
  };
}

/** `Kind/namespace/name` (or `Kind/name`), with the group when not core: how refs are shown to people. */
export function formatRef(ref: ObjectRef): string {
  const kind = ref.group ? `${ref.kind}.${ref.group}` : ref.kind;
  return ref.namespace ? `${kind}/${ref.namespace}/${ref.name}` : `${kind}/${ref.name}`;
}

/** A stable key for maps and inventories: `group_kind_namespace_name` (as Flux's inventory ids). */
export function refKey(ref: ObjectRef): string {
  return `${ref.namespace}_${ref.name}_${ref.group}_${ref.kind}`;
}

export function parseRefKey(key: string): ObjectRef {
  const [namespace = '', name = '', group = '', kind = ''] = key.split('_');
  return { namespace, name, group, kind };
}

/** One object tidegate applied for a target: its ref key, apiVersion and desired-state hash (empty: reserved, not applied yet). */
export interface InventoryEntry {
  id: string;
  v: string;
  /**
   * The desired-state hash; for an object with values a chart generates, followed by `:` and a digest
   * of the values tidegate applied there (only values of that digest are kept from the cluster).
   */
  h: string;
}

export const entryRef = (e: InventoryEntry): ObjectRef & { apiVersion: string } => ({
  ...parseRefKey(e.id),
  apiVersion: e.v,
});

/**
 * Flux's API groups: the toolkit's (*.toolkit.fluxcd.io), its source extensions (ArtifactGenerator)
 * and the Flux Operator's (FluxInstance, ResourceSet). Objects of these are Flux configuration, never
 * applied as they are.
 */
const FLUX_API_VERSION = /^([a-z0-9-]+\.toolkit\.fluxcd\.io|source\.extensions\.fluxcd\.io|fluxcd\.controlplane\.io)\//;
export const isFluxApiVersion = (apiVersion: string): boolean => FLUX_API_VERSION.test(apiVersion);
