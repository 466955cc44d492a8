import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { KubeClient } from '../cluster/index.js';
import { orderTargets, parseConfig, type LocalSettings, type TargetSpec, type TidegateConfig } from '../config/index.js';
import { TidegateError, type Revision, type SyncResult } from '../model/index.js';
import { checkoutRevision, resolveRevision, type GitSource } from '../source/index.js';
import type { Logger } from '../telemetry/index.js';
import { syncTarget } from './target-sync.js';

/** What the engine needs from its shell (Lambda, CLI, tests). */
export interface EngineContext {
  settings: LocalSettings;
  /** A client for a cluster alias (EKS from deploy-time settings, a kubeconfig context locally). */
  connect(cluster: string): Promise<KubeClient>;
  /** Credentials for a repository URL. */
  gitSource(url: string): GitSource;
  logger?: Logger;
  now?: () => Date;
}

export interface RepoSyncRequest {
  /** The GitOps repository holding tidegate.yaml. */
  repo: string;
  /** One target, or every target in dependency order. */
  target?: string | undefined;
  /** The exact commit (from a webhook); default: the head of main. */
  revision?: Revision | undefined;
  dryRun?: boolean;
  signal?: AbortSignal | undefined;
}

export const CONFIG_FILE = 'tidegate.yaml';

export class TargetNotFoundError extends TidegateError {
  constructor(target: string, file: string) {
    super('TargetNotFound', `${file} declares no target named "${target}"`);
  }
}

/** Reads and validates tidegate.yaml from a checkout. */
export function loadConfig(dir: string, label = CONFIG_FILE): TidegateConfig {
  const file = join(dir, CONFIG_FILE);
  if (!existsSync(file)) throw new TidegateError('ConfigMissing', `${label} not found at the root of the repository`);
  return parseConfig(readFileSync(file, 'utf8'), label);
}

/** The revision a target applies: the requested commit for the config repository, else its own ref. */
async function targetRevision(ctx: EngineContext, spec: TargetSpec, repo: string, configRevision: Revision): Promise<{ url: string; revision: Revision }> {
  const url = spec.source.url ?? repo;
  const ref = spec.source.ref ?? {};
  const tracksConfig = url === repo && !ref.tag && !ref.semver && !ref.commit && `refs/heads/${ref.branch ?? 'main'}` === configRevision.ref;
  return { url, revision: tracksConfig ? configRevision : await resolveRevision(ctx.gitSource(url), ref) };
}

/**
 * Syncs one target, or all targets of the repository in dependency order (a target whose
 * dependency failed in this run is not synced). Each result says what happened; failures are
 * results too.
 */
export async function syncRepo(ctx: EngineContext, req: RepoSyncRequest): Promise<SyncResult[]> {
  const configRevision = req.revision ?? (await resolveRevision(ctx.gitSource(req.repo), {}));
  const configCheckout = await checkoutRevision(ctx.gitSource(req.repo), configRevision, ctx.settings.cacheDir);
  const config = loadConfig(configCheckout.dir);
  let targets = orderTargets(config.targets);
  if (req.target !== undefined) {
    const one = targets.find((t) => t.name === req.target);
    if (!one) throw new TargetNotFoundError(req.target, CONFIG_FILE);
    targets = [one];
  }
  const clients = new Map<string, Promise<KubeClient>>();
  const client = (alias: string): Promise<KubeClient> => {
    if (!clients.has(alias)) clients.set(alias, ctx.connect(alias));
    return clients.get(alias) as Promise<KubeClient>;
  };
  const failed = new Set<string>();
  const results: SyncResult[] = [];
  for (const spec of targets) {
    const blocked = spec.dependsOn.filter((d) => failed.has(d));
    const { url, revision } = await targetRevision(ctx, spec, req.repo, configRevision);
    if (blocked.length > 0) {
      failed.add(spec.name);
      results.push({ target: spec.name, revision, outcome: 'failed', changeSet: { changes: [] }, health: { status: 'unknown', notReady: [] }, error: `not synced: dependency ${blocked.join(', ')} failed`, startedAt: new Date().toISOString(), durationMs: 0 });
      continue;
    }
    const dir = url === req.repo && revision.sha === configRevision.sha ? configCheckout.dir : (await checkoutRevision(ctx.gitSource(url), revision, ctx.settings.cacheDir)).dir;
    const result = await syncTarget({
      spec, dir, revision, client: await client(spec.cluster), settings: ctx.settings,
      ...(req.dryRun ? { dryRun: true } : {}), signal: req.signal, ...(ctx.logger ? { logger: ctx.logger } : {}), ...(ctx.now ? { now: ctx.now } : {}),
    });
    if (result.outcome === 'failed') failed.add(spec.name);
    results.push(result);
  }
  return results;
}
