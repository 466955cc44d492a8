import type { FluxEntry, LocalSettings } from '../config/index.js';
import { checkFields, SHAPES, UNMAPPED_KINDS } from './fields.js';
import { helmReleaseTarget } from './helm-release.js';
import { mapImages } from './images.js';
import { kustomizationFields, kustomizationFiles, kustomizationTarget } from './kustomization.js';
import { FluxReader, type FluxRead } from './reader.js';
import { str } from './spec.js';

export type { FluxFinding, FluxMapping, FluxRead } from './reader.js';

const SPECIAL: Readonly<Record<string, string>> = {
  'spec.kubeConfig': 'not supported yet: a target applies to the cluster its alias names',
};

/** Every queued Kustomization whose files are this repository's: the Flux objects of its path (read once). */
async function readKustomizations(r: FluxReader): Promise<void> {
  for (let i = 0; i < r.declared.length; i++) {
    const d = r.declared[i];
    if (!d || d.obj.kind !== 'Kustomization') continue;
    const name = r.nameOf(d.obj, d.entry);
    const files = kustomizationFiles(r, d.obj);
    if (files && !files.git && !files.oci && !files.assemble) await r.readPath(files.path, d.entry, name, d.obj);
  }
}

/**
 * Who declared each Kustomization and HelmRelease, as far as ServiceAccounts go: in Flux, an object a
 * Kustomization applying as a ServiceAccount declares is created by that ServiceAccount, so its
 * target records it (origin.declaredBy: a sync asks the apiserver whether it may create the object,
 * and applies as it when the object names none). Parents come before what they declare.
 */
function declaringAccounts(r: FluxReader): void {
  const accounts = new Map<string, { namespace: string; name: string }>();
  for (const d of r.declared) {
    d.declaredBy = d.parent ? accounts.get(d.parent) : undefined;
    const own = str(d.obj.spec['serviceAccountName']);
    const account = own ? { namespace: d.obj.namespace, name: own } : d.declaredBy;
    if (account) accounts.set(r.nameOf(d.obj, d.entry), account);
  }
}

/** Fields of every Flux object found: not supported (refused) or read differently (a note). */
function checkAll(r: FluxReader): void {
  for (const obj of r.objects.all()) {
    const shape = SHAPES[obj.kind];
    const unmapped = UNMAPPED_KINDS[obj.kind];
    if (unmapped) {
      if ('note' in unmapped) r.note(obj, '', unmapped.note);
      else r.problem(obj, '', unmapped.refuse);
      continue;
    }
    if (!shape) {
      r.note(obj, '', 'not read by tidegate');
      continue;
    }
    for (const f of checkFields(obj.spec, shape))
      if (f.note) r.note(obj, f.field, f.note);
      else r.problem(obj, f.field, f.refuse ?? SPECIAL[f.field] ?? 'not supported yet');
  }
}

/**
 * Reads Flux repositories as configuration: each path is rendered as Flux's flux-system Kustomization
 * would render it, and the Kustomizations found (and the ones they declare, path by path) and their
 * HelmReleases become targets; their sources (GitRepository, OCIRepository, HelmRepository, HelmChart,
 * the ExternalArtifacts of an ArtifactGenerator) say where files and charts come from; image
 * policies with an ImageUpdateAutomation become image policies. None of the Flux objects is applied.
 */
export async function readFlux(
  root: string,
  entries: readonly FluxEntry[],
  settings: LocalSettings,
  repoUrl?: string,
): Promise<FluxRead> {
  const reader = new FluxReader(root, settings, repoUrl);
  for (const entry of entries) await reader.readEntry(entry, kustomizationFields);
  await readKustomizations(reader);
  reader.nameAll();
  declaringAccounts(reader);
  for (const d of reader.declared)
    if (d.obj.kind === 'Kustomization') kustomizationTarget(reader, d);
    else helmReleaseTarget(reader, d);
  mapImages(reader);
  checkAll(reader);
  return reader.out;
}
