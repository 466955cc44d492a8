import { posix } from 'node:path';
import { valid } from 'semver';
import { normaliseRepoUrl, redactUrl } from '../model/index.js';
import { CHART_LAYER } from '../source/index.js';
import type { FluxObject } from './objects.js';
import type { FluxReader } from './reader.js';
import { list, rec, refOf, repoPath, str } from './spec.js';

/**
 * Where a Kustomization's files (or a chart directory) come from: a directory of this repository, or
 * of another Git repository at a ref; with the source objects whose change changes the target.
 */
export interface Files {
  /** Another Git repository (else this one). */
  git?: { url: string; ref: Record<string, string> } | undefined;
  /** An OCI artifact of manifests (an OCIRepository) instead of a Git repository. */
  oci?: Record<string, unknown> | undefined;
  /** Copy rules of an ExternalArtifact over this repository's files: the path is read in what they copy. */
  assemble?: Array<{ from: string; to: string; exclude?: string[] }> | undefined;
  /** The directory of the repository that the source's root is (an ExternalArtifact's files are read in place). */
  root: string;
  /** The source objects read to get here (their files are the target's inputs too). */
  via: FluxObject[];
}

/** The files a `sourceRef` names, or undefined (said why). Worked out once per object. */
export function filesOf(r: FluxReader, obj: FluxObject, field: string, ref: unknown): Files | undefined {
  return r.once(`files|${obj.scope}|${obj.label}|${field}`, () => findFiles(r, obj, field, ref));
}

function findFiles(r: FluxReader, obj: FluxObject, field: string, ref: unknown): Files | undefined {
  const { kind, namespace, name } = refOf(ref, obj, 'GitRepository');
  if (kind === 'GitRepository') return gitFiles(r, obj, field, namespace, name);
  if (kind === 'ExternalArtifact') return artifactFiles(r, obj, field, namespace, name);
  if (kind === 'OCIRepository') return ociFiles(r, obj, field, namespace, name);
  r.problem(obj, field, `a ${kind} source is not supported yet`);
  return undefined;
}

/** One copy rule over this repository's files, as a repository path and an artifact path. */
function copyRule(
  r: FluxReader,
  generator: FluxObject,
  sources: ReadonlyMap<string, Record<string, unknown>>,
  rule: Record<string, unknown>,
): { rule: NonNullable<Files['assemble']>[number]; via: FluxObject[] } | undefined {
  const [, alias = '', path = ''] = /^@([^/]+)\/(.*)$/.exec(str(rule['from']) ?? '') ?? [];
  const to = /^@artifact\/(.*)$/.exec(str(rule['to']) ?? '')?.[1];
  const source = sources.get(alias);
  const files = source && filesOf(r, generator, `spec.sources[alias=${alias}]`, source);
  if (to === undefined || !files || files.git || files.oci) return undefined;
  const exclude = list(rule['exclude']).length ? (rule['exclude'] as unknown[]).map(String) : undefined;
  return { rule: { from: posix.join(files.root, path), to, ...(exclude ? { exclude } : {}) }, via: files.via };
}

/**
 * An ExternalArtifact whose copy rules rearrange this repository's files: the target's path is read
 * in a directory the rules copy them into at render time (render/assemble.ts). Rules over another
 * source's files are refused.
 */
function copiedFiles(
  r: FluxReader,
  generator: FluxObject,
  at: string,
  copy: Array<Record<string, unknown>>,
  artifact: string,
): Files | undefined {
  const sources = new Map(list(generator.spec['sources']).map((s) => [str(s['alias']) ?? '', s]));
  const assemble: NonNullable<Files['assemble']> = [];
  const via: FluxObject[] = [generator];
  for (const [i, rule] of copy.entries()) {
    const read = copyRule(r, generator, sources, rule);
    if (!read) {
      r.problem(
        generator,
        `${at}.copy[${i}]`,
        'a copy rule over another source than this repository, or not @<alias>/<path> to @artifact/<path>: not read yet',
      );
      return undefined;
    }
    via.push(...read.via);
    assemble.push(read.rule);
  }
  r.mapped(generator, `the files of ExternalArtifact ${artifact}: copied by its rules at every sync`);
  return { root: '.', assemble, via };
}

/** An OCIRepository's verify: cosign with a Secret's public keys, as the trusted key of that name (fields.ts refuses the rest). */
function cosignOf(repo: FluxObject): { verify?: { provider: 'cosign'; keys: string[] } } {
  const verify = rec(repo.spec['verify']);
  const key = (str(verify['provider']) ?? 'cosign') === 'cosign' ? str(rec(verify['secretRef'])['name']) : undefined;
  return key ? { verify: { provider: 'cosign', keys: [key] } } : {};
}

/** The reference an OCIRepository names, as Flux picks it: a digest, else a semver range, else a tag (latest when none). */
function ociRef(repo: FluxObject): Record<string, string> {
  const ref = rec(repo.spec['ref']);
  const digest = str(ref['digest']);
  const semver = str(ref['semver']);
  return digest ? { digest } : semver ? { semver } : { tag: str(ref['tag']) ?? 'latest' };
}

/** The manifests of an OCIRepository (an artifact `flux push artifact` made): the layer Flux extracts, read at sync time. */
function ociFiles(r: FluxReader, obj: FluxObject, field: string, ns: string, name: string): Files | undefined {
  const repo = r.objects.get(obj, 'OCIRepository', ns, name);
  if (!repo) {
    r.problem(obj, field, `OCIRepository ${ns}/${name} is not declared in the repository`);
    return undefined;
  }
  const url = str(repo.spec['url']) ?? '';
  const layer = rec(repo.spec['layerSelector']);
  if (str(layer['operation']) === 'copy') {
    r.problem(
      repo,
      'spec.layerSelector.operation',
      'a copied layer holds no manifests to build: only extract is read for a Kustomization',
    );
    return undefined;
  }
  return {
    oci: {
      url,
      ref: ociRef(repo),
      insecure: repo.spec['insecure'] === true,
      ...(str(layer['mediaType']) ? { mediaType: str(layer['mediaType']) } : {}),
      ...cosignOf(repo),
    },
    root: '.',
    via: [repo],
  };
}

function gitFiles(r: FluxReader, obj: FluxObject, field: string, ns: string, name: string): Files | undefined {
  if (r.selfSources.has(`${obj.scope}|${ns}/${name}`)) return { root: '.', via: [] };
  const repo = r.objects.get(obj, 'GitRepository', ns, name);
  if (!repo) {
    r.problem(obj, field, `GitRepository ${ns}/${name} is not declared in the repository`);
    return undefined;
  }
  const url = str(repo.spec['url']) ?? '';
  const gitRef = Object.fromEntries(
    Object.entries(rec(repo.spec['ref'])).filter((e): e is [string, string] => typeof e[1] === 'string'),
  );
  // This repository again: read as itself, unless pinned (a tag, a semver range, a commit), which is
  // fetched at its pin like any other source: never the branch head in its place.
  if (r.repoUrl && normaliseRepoUrl(url) === normaliseRepoUrl(r.repoUrl))
    return gitRef['tag'] || gitRef['semver'] || gitRef['commit']
      ? { git: { url: r.repoUrl, ref: gitRef }, root: '.', via: [repo] }
      : { root: '.', via: [repo] };
  if (!/^https:\/\//.test(url)) {
    r.problem(repo, 'spec.url', `${url}: only https:// Git repositories are supported as other sources`);
    return undefined;
  }
  return { git: { url, ref: gitRef }, root: '.', via: [repo] };
}

/** A copy rule of an ArtifactGenerator as a directory moved whole: `@alias/<from>/**` to `@artifact/<to>/`. */
function wholeDirectory(rule: Record<string, unknown>): { alias: string; from: string; to: string } | undefined {
  const from = /^@([^/]+)\/(?:(.*)\/)?\*\*$/.exec(str(rule['from']) ?? '');
  const to = /^@artifact\/(.*?)\/?$/.exec(str(rule['to']) ?? '');
  const strategy = str(rule['strategy']);
  if (!from?.[1] || !to || rule['exclude'] !== undefined || (strategy && strategy !== 'Overwrite')) return undefined;
  return { alias: from[1], from: repoPath(from[2] ?? '.'), to: repoPath(to[1] || '.') };
}

/** The directory of the source a moved directory keeps its place under (`apps` for apps/base → base), if any. */
function rootOf(rule: { from: string; to: string }): string | undefined {
  if (rule.to === '.') return rule.from;
  if (rule.from === rule.to) return '.';
  return rule.from.endsWith(`/${rule.to}`) ? rule.from.slice(0, -(rule.to.length + 1)) : undefined;
}

/**
 * The files of an ExternalArtifact that an ArtifactGenerator of the repository makes, read in place:
 * when its copy rules move directories of one source whole, each to the place it has under one
 * directory of that source, the artifact is that directory (Flux's own example: `@monorepo/apps/base/**`
 * to `@artifact/base/`, `@monorepo/apps/production/**` to `@artifact/production/` is `apps/`).
 */
function artifactFiles(r: FluxReader, obj: FluxObject, field: string, ns: string, name: string): Files | undefined {
  const generator = r.objects
    .ofKind('ArtifactGenerator')
    .find(
      (g) => g.scope === obj.scope && g.namespace === ns && list(g.spec['artifacts']).some((a) => a['name'] === name),
    );
  if (!generator) {
    r.problem(obj, field, `no ArtifactGenerator in the repository makes ExternalArtifact ${ns}/${name}`);
    return undefined;
  }
  const index = list(generator.spec['artifacts']).findIndex((a) => a['name'] === name);
  const at = `spec.artifacts[${index}]`;
  const copy = list(list(generator.spec['artifacts'])[index]?.['copy']);
  const strategies = copy.map((c) => str(c['strategy'])).filter((st) => st && st !== 'Overwrite');
  if (strategies.length > 0) {
    r.problem(generator, `${at}.copy`, `copy strategy ${strategies.join(', ')}: not supported yet (Overwrite is)`);
    return undefined;
  }
  const rules = copy.map(wholeDirectory);
  const roots = new Set(rules.map((rule) => (rule ? `${rule.alias}|${rootOf(rule)}` : undefined)));
  const only = roots.size === 1 ? [...roots][0] : undefined;
  if (!only || only.endsWith('|undefined')) return copiedFiles(r, generator, at, copy, `${ns}/${name}`);
  const [alias, dir] = only.split('|') as [string, string];
  const source = list(generator.spec['sources']).find((s) => s['alias'] === alias);
  if (!source) {
    r.problem(generator, `${at}.copy`, `no source has the alias ${alias}`);
    return undefined;
  }
  const files = filesOf(r, generator, `spec.sources[alias=${alias}]`, source);
  if (!files) return undefined;
  r.mapped(generator, `the files of ExternalArtifact ${ns}/${name}: ${dir === '.' ? 'the repository' : dir}/`);
  return { ...files, root: posix.join(files.root, dir), via: [...files.via, generator] };
}

/** The chart of a HelmRelease from an OCIRepository, as a target's chart (or undefined, said why). */
export function ociChart(r: FluxReader, repo: FluxObject, target: string): Record<string, unknown> | undefined {
  const url = str(repo.spec['url']) ?? '';
  const at = /^oci:\/\/([^/]+\/(?:.*\/)?)([^/]+)$/.exec(url);
  if (!at?.[1] || !at[2]) {
    r.problem(repo, 'spec.url', `${redactUrl(url)}: not an oci://<registry>/<repository> URL`);
    return undefined;
  }
  const mediaType = str(rec(repo.spec['layerSelector'])['mediaType']);
  if (mediaType && mediaType !== CHART_LAYER) {
    r.problem(repo, 'spec.layerSelector.mediaType', `only the Helm chart layer (${CHART_LAYER}) is read as a chart`);
    return undefined;
  }
  const { digest, semver, tag = 'latest' } = ociRef(repo);
  const pin = digest ? { digest } : semver ? { version: semver } : valid(tag) === tag ? { version: tag } : { tag };
  r.mapped(repo, `chart source of target ${target}`);
  return {
    chart: {
      repository: `oci://${at[1].replace(/\/$/, '')}`,
      name: at[2],
      ...pin,
      // A semver ref picks among tags as the OCIRepository does: v1.21.1 is a version.
      ...(semver ? { tagPrefixV: true } : {}),
      insecure: repo.spec['insecure'] === true,
      ...cosignOf(repo),
    },
  };
}
