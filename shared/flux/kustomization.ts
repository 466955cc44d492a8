import { posix } from 'node:path';
import { redactUrl } from '../model/index.js';
import type { FluxObject } from './objects.js';
import type { Declared, FluxReader } from './reader.js';
import { filesOf, type Files } from './sources.js';
import { list, rec, repoPath, str } from './spec.js';

/** The files of a Kustomization: its source, and its path in it as a path of that repository. */
export function kustomizationFiles(r: FluxReader, obj: FluxObject): (Files & { path: string }) | undefined {
  const files = filesOf(r, obj, 'spec.sourceRef', obj.spec['sourceRef']);
  return files && { ...files, path: repoPath(posix.join(files.root, repoPath(obj.spec['path']))) };
}

/** What a Kustomization says of its target, whichever it is (the root one too). */
export function kustomizationFields(obj: FluxObject): Record<string, unknown> {
  const spec = obj.spec;
  const postBuild = rec(spec['postBuild']);
  return {
    targetNamespace: str(spec['targetNamespace']),
    // Applied as this ServiceAccount of the Kustomization's namespace (the target's origin), as Flux does.
    serviceAccountName: str(spec['serviceAccountName']),
    prune: spec['prune'] === true,
    // Flux applies an empty build like any other: with prune, what the Kustomization applied goes.
    allowEmpty: true,
    timeout: str(spec['timeout']) ?? str(spec['interval']) ?? '5m',
    wait: spec['wait'] === true || list(spec['healthChecks']).length > 0,
    substitute: rec(postBuild['substitute']),
    substituteFrom: list(postBuild['substituteFrom']).map((s) => ({ ...s, namespace: obj.namespace })),
    suspend: spec['suspend'] === true,
    force: spec['force'] === true,
    ...(rec(spec['decryption'])['provider'] === 'sops' ? { decryption: { provider: 'sops' } } : {}),
    ...(spec['patches'] || spec['images']
      ? { kustomize: { patches: list(spec['patches']), images: list(spec['images']) } }
      : {}),
    ...(Array.isArray(spec['components']) && spec['components'].length > 0 ? { components: spec['components'] } : {}),
    ...(spec['commonMetadata'] ? { commonMetadata: spec['commonMetadata'] } : {}),
    ...(DELETION[String(spec['deletionPolicy'])] ? { deletionPolicy: DELETION[String(spec['deletionPolicy'])] } : {}),
    // Flux leaves these fields as they are once an object exists (its drift ignore rules): tidegate's ignore.
    ignore: list(spec['ignore']).map((rule) => {
      const { group, kind, name, namespace } = rec(rule['target']);
      return { paths: rule['paths'], ...(rule['target'] ? { target: { group, kind, name, namespace } } : {}) };
    }),
  };
}

/** A Kustomization's deletionPolicy as the target's (MirrorPrune: its prune setting decides, the default). */
const DELETION: Readonly<Record<string, string>> = {
  Delete: 'delete',
  WaitForTermination: 'delete',
  Orphan: 'orphan',
};

/** A Kustomization's target: its files (this repository or another's) rendered as Flux builds them. */
export function kustomizationTarget(r: FluxReader, d: Declared): void {
  const { obj, entry } = d;
  const files = kustomizationFiles(r, obj);
  if (!files) return;
  const elsewhere = files.git?.url ?? (files.oci ? String(files.oci['url']) : undefined);
  if (elsewhere)
    r.note(
      obj,
      'spec.sourceRef',
      `the files come from ${redactUrl(elsewhere)}: its own Flux objects are not read (a Kustomization or HelmRelease there fails the sync, naming it)`,
    );
  r.addTarget(
    {
      ...kustomizationFields(obj),
      name: r.nameOf(obj, entry),
      cluster: entry.cluster,
      ...(files.git ? { source: files.git } : {}),
      ...(files.oci ? { artifact: files.oci } : {}),
      ...(files.assemble ? { assemble: files.assemble } : {}),
      path: files.path,
      dependsOn: r.dependsOn(obj, d.parent),
    },
    // A change of the source it reads (a GitRepository's URL or ref, an ArtifactGenerator) changes the target too.
    {
      kind: 'Kustomization',
      namespace: obj.namespace,
      name: obj.name,
      file: obj.file,
      // The directories copy rules read from are the target's files too.
      inputs: [
        ...new Set([
          ...d.inputs,
          ...files.via.flatMap((o) => o.inputs),
          ...(files.assemble ?? []).map(
            (a) =>
              a.from
                .split('/')
                .filter((s) => !/[*?[\]{}!]/.test(s))
                .join('/') || '.',
          ),
        ]),
      ],
      ...(d.declaredBy ? { declaredBy: d.declaredBy } : {}),
    },
    obj,
  );
}
