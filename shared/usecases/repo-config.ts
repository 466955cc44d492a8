import { existsSync, lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { KubeClient } from '../cluster/index.js';
import {
  CONFIG_LIMIT_BYTES,
  ConfigError,
  parseConfig,
  targetProblems,
  type FluxEntry,
  type LocalSettings,
  type TargetSpec,
  type TidegateConfig,
} from '../config/index.js';
import { readFlux, type FluxRead } from '../flux/index.js';
import { TargetNotFoundError, TidegateError, normaliseRepoUrl, type Revision } from '../model/index.js';
import { checkoutRevision, readRepoFile, resolveRevision, type GitSource } from '../source/index.js';
import type { EngineContext } from './context.js';

export const CONFIG_FILE = 'tidegate.yaml';

/**
 * Whether a directory holds Flux objects of its own (a flux bootstrap writes clusters/<name>/flux-system/):
 * its YAML files that are regular files of at most 4 MiB, as the Flux objects are read.
 */
const holdsFlux = (root: string, dir: string): boolean =>
  [dir, join(dir, 'flux-system')].some((d) => {
    const full = join(root, d);
    if (!existsSync(full)) return false;
    return readdirSync(full, { withFileTypes: true }).some((e) => {
      if (!e.isFile() || !/\.ya?ml$/.test(e.name) || lstatSync(join(full, e.name)).size > FLUX_FILE_LIMIT) return false;
      return readRepoFile(root, join(d, e.name), FLUX_FILE_LIMIT)?.includes('kustomize.toolkit.fluxcd.io') === true;
    });
  });
const FLUX_FILE_LIMIT = 4 * 1024 * 1024;

/**
 * A repository in Flux's layout: one flux path per clusters/<name>/, cluster alias <name>, target names
 * prefixed with "<name>-" (always: adding a second cluster directory later must not rename any target).
 */
export function fluxLayout(dir: string): FluxEntry[] {
  const clusters = join(dir, 'clusters');
  if (!existsSync(clusters)) return [];
  const names = readdirSync(clusters, { withFileTypes: true })
    .filter((e) => e.isDirectory() && !e.name.startsWith('.') && holdsFlux(dir, join('clusters', e.name)))
    .map((e) => e.name)
    .sort();
  return names.map((name) => ({ path: `clusters/${name}`, cluster: name, prefix: `${name}-` }));
}

/** The flux paths of a checkout: tidegate.yaml's, or (without one) those of a Flux layout. */
export function fluxEntries(dir: string): FluxEntry[] {
  const text = configText(dir);
  return text !== undefined ? parseConfig(text).flux : fluxLayout(dir);
}

/** tidegate.yaml of a checkout (a regular file of the repository, at most CONFIG_LIMIT_BYTES); undefined without one. */
const configText = (dir: string): string | undefined => readRepoFile(dir, CONFIG_FILE, CONFIG_LIMIT_BYTES);

/** The Flux objects of the configuration's flux paths as targets and image policies; refused with every problem at once. */
async function withFlux(
  config: TidegateConfig,
  dir: string,
  settings: LocalSettings,
  repo: string | undefined,
): Promise<TidegateConfig & { fluxRead?: FluxRead }> {
  if (config.flux.length === 0) return config;
  const flux = await readFlux(dir, config.flux, settings, repo);
  const targets = [...config.targets, ...flux.targets];
  const problems = [
    ...flux.unsupported.map((f) => ({
      file: f.file,
      line: f.line,
      field: [f.object, f.field].filter(Boolean).join(' '),
      message: f.message,
    })),
    ...targetProblems(targets).map((p) => ({
      file: CONFIG_FILE,
      line: 1,
      field: `target ${p.target}`,
      message: p.message,
    })),
  ];
  if (problems.length > 0) throw new ConfigError(problems);
  const defaultAuthor = config.imageAutomation.author.name === 'tidegate';
  return {
    ...config,
    targets,
    images: [...config.images, ...flux.images],
    ...(flux.author && defaultAuthor ? { imageAutomation: { author: flux.author } } : {}),
    fluxRead: flux,
  };
}

/**
 * Reads and validates tidegate.yaml from a checkout, with the targets of its flux paths; without a
 * tidegate.yaml, a repository in Flux's layout (clusters/<name>/) is read as if it listed them.
 */
export async function loadConfig(
  dir: string,
  settings: LocalSettings,
  opts: { label?: string; repo?: string | undefined } = {},
): Promise<TidegateConfig & { fluxRead?: FluxRead }> {
  const label = opts.label ?? CONFIG_FILE;
  const text = configText(dir);
  if (text !== undefined) return withFlux(parseConfig(text, label), dir, settings, opts.repo);
  const flux = fluxLayout(dir);
  if (flux.length === 0)
    throw new TidegateError(
      'ConfigMissing',
      `${label} not found at the root of the repository (nor a Flux layout: clusters/<name>/ with Flux Kustomizations)`,
    );
  return withFlux(parseConfig(JSON.stringify({ flux }), label), dir, settings, opts.repo);
}

/** The branch of a repository the shell tracks (deploy-time settings, the CLI's --branch); main when it names none. */
export function trackedBranch(ctx: Pick<EngineContext, 'repositories'>, repo: string): string {
  return ctx.repositories?.find((r) => normaliseRepoUrl(r.url) === normaliseRepoUrl(repo))?.branch ?? 'main';
}

/**
 * tidegate.yaml of a GitOps repository at a revision, or at the head of a branch (default: the tracked branch),
 * with the checkout it was read from.
 */
export async function configAt(
  ctx: EngineContext,
  repo: string,
  at: Revision | { branch: string } = { branch: trackedBranch(ctx, repo) },
): Promise<{ revision: Revision; dir: string; config: TidegateConfig }> {
  const src = ctx.gitSource(repo);
  const revision = 'sha' in at ? at : await resolveRevision(src, at);
  const { dir } = await checkoutRevision(src, revision, ctx.settings.cacheDir);
  return { revision, dir, config: await keptConfig(dir, ctx.settings, repo) };
}

/**
 * The configurations this process read last, per settings: a checkout of a revision never changes,
 * and every sync message of one push reads the same revision. Read again for each message, a Flux
 * fleet's configuration (every Kustomization's path rendered) made a push of N targets cost N².
 * A read that failed is not kept.
 */
const keptConfigs = new WeakMap<LocalSettings, Map<string, Promise<TidegateConfig>>>();
const KEPT_CONFIGS = 4;

function keptConfig(dir: string, settings: LocalSettings, repo: string): Promise<TidegateConfig> {
  const kept = keptConfigs.get(settings) ?? new Map<string, Promise<TidegateConfig>>();
  keptConfigs.set(settings, kept);
  const key = JSON.stringify([repo, dir]);
  const known = kept.get(key);
  if (known) return known;
  const read = loadConfig(dir, settings, { repo });
  kept.set(key, read);
  read.catch(() => kept.delete(key));
  for (const old of [...kept.keys()].slice(0, -KEPT_CONFIGS)) kept.delete(old);
  return read;
}

/** A target as the head of a branch of the GitOps repository declares it (default: the tracked branch), and a client for its cluster. */
export async function headTarget(
  ctx: EngineContext,
  repo: string,
  target: string,
  branch = trackedBranch(ctx, repo),
): Promise<{ src: GitSource; head: Revision; spec: TargetSpec; client: KubeClient }> {
  const { revision: head, config } = await configAt(ctx, repo, { branch });
  const spec = config.targets.find((t) => t.name === target);
  if (!spec) throw new TargetNotFoundError(target, CONFIG_FILE);
  return { src: ctx.gitSource(repo), head, spec, client: await ctx.connect(spec.cluster) };
}
