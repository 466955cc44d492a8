import { errorMessage, isPreviewTarget } from '../model/index.js';
import type { KubeClient } from '../cluster/index.js';
import {
  allTargetStates,
  newestHeartbeat,
  readHeartbeat,
  readPreviews,
  readReloadRegister,
  type PipelineHeartbeat,
  type TargetState,
} from '../state/index.js';
import {
  commitHostsOf,
  inventoryHealth,
  renderStatusPage,
  type PipelineView,
  type QueueCounts,
  type StatusView,
  type TargetView,
} from '../status/index.js';
import { refuseStatusLink, type HttpRequest, type HttpResponse } from '../triggers/index.js';
import type { EngineContext } from './context.js';
import { configAt } from './repo-config.js';

/** Options of the status view: what else is read besides the target states. */
export interface StatusViewOptions {
  /** Read each target's objects and judge their health now (one GET per object). Default true. */
  objects?: boolean;
  /** At most this many objects are read per page (default 2000): targets past it say so instead. */
  maxObjects?: number;
  /**
   * The deployed pipeline: the heartbeat the sync worker records on each cluster (the newest of
   * each field wins) and the queues' counts from SQS. Left out: no pipeline panel from the clusters.
   */
  queues?: () => Promise<QueueCounts>;
  /** Hosts whose repository pages serve /commit/<sha> (commitHostsOf). */
  commitHosts?: readonly string[];
}

/** A target with its objects' health now, or why they could not be read. */
async function withObjects(
  client: KubeClient,
  s: { target: string; state: TargetState },
  signal: AbortSignal | undefined,
): Promise<TargetView> {
  const view: TargetView = { name: s.target, state: s.state };
  if (s.state.removed) return view;
  try {
    return { ...view, objects: await inventoryHealth(client, s.state, { signal }) };
  } catch (err) {
    if (signal?.aborted) throw err;
    return { ...view, objectsError: errorMessage(err) };
  }
}

/**
 * One cluster's targets (with their objects' health, four targets at a time, while the page's
 * budget of objects lasts), sorted by name.
 */
async function targetsOf(
  client: KubeClient,
  states: ReadonlyArray<{ target: string; state: TargetState }>,
  budget: { objects: boolean; left: number; max: number },
  signal: AbortSignal | undefined,
): Promise<TargetView[]> {
  const shown = states.filter((s) => !isPreviewTarget(s.target)).sort((a, b) => a.target.localeCompare(b.target));
  if (!budget.objects) return shown.map((s) => ({ name: s.target, state: s.state }));
  const out: TargetView[] = [];
  for (let i = 0; i < shown.length; i += 4) {
    const batch = shown.slice(i, i + 4).map((s) => {
      if (s.state.inventory.length > budget.left)
        return Promise.resolve<TargetView>({
          name: s.target,
          state: s.state,
          objectsError: `not read: the page reads at most ${budget.max} objects`,
        });
      budget.left -= s.state.inventory.length;
      return withObjects(client, s, signal);
    });
    out.push(...(await Promise.all(batch)));
  }
  return out;
}

/** How many objects a page reads (StatusViewOptions objects, maxObjects), counted down as targets are read. */
function objectBudget(opts: StatusViewOptions): { objects: boolean; left: number; max: number } {
  const max = opts.maxObjects ?? 2000;
  return { objects: opts.objects ?? true, left: max, max };
}

/** One cluster's targets and previews. */
async function clusterView(
  client: KubeClient,
  cluster: string,
  budget: { objects: boolean; left: number; max: number },
  signal: AbortSignal | undefined,
): Promise<StatusView['clusters'][number]> {
  const states = await allTargetStates(client, signal);
  return {
    cluster,
    targets: await targetsOf(client, states, budget, signal),
    previews: await readPreviews(client, signal),
    reloadHolds: (await readReloadRegister(client, signal)).holds,
  };
}

/**
 * What the status page shows, read from the clusters and nothing else: the target states in
 * tidegate-system, each target's objects and their health now, the previews register and (with
 * `queues`) the pipeline's heartbeat; a cluster reached through two aliases is shown once. A
 * cluster that cannot be read is shown with the reason.
 */
export async function statusView(
  ctx: Pick<EngineContext, 'connect' | 'now'>,
  clusters: readonly string[],
  signal?: AbortSignal,
  opts: StatusViewOptions = {},
): Promise<StatusView> {
  const seen = new Set<string>();
  const view: StatusView = {
    generatedAt: (ctx.now?.() ?? new Date()).toISOString(),
    clusters: [],
    ...(opts.commitHosts ? { commitHosts: opts.commitHosts } : {}),
  };
  let heartbeat: PipelineHeartbeat = {};
  const budget = objectBudget(opts);
  for (const cluster of clusters) {
    try {
      const client = await ctx.connect(cluster);
      // Two aliases of one cluster (one kube-system namespace) are shown once.
      const kubeSystem = await client.get('v1', 'Namespace', '', 'kube-system', signal).catch(() => undefined);
      const id = kubeSystem?.metadata.uid ?? cluster;
      if (seen.has(id)) continue;
      seen.add(id);
      view.clusters.push(await clusterView(client, cluster, budget, signal));
      if (opts.queues) heartbeat = newestHeartbeat(heartbeat, await readHeartbeat(client, signal).catch(() => ({})));
    } catch (err) {
      if (signal?.aborted) throw err;
      view.clusters.push({ cluster, targets: [], error: errorMessage(err) });
    }
  }
  if (opts.queues) view.pipeline = await pipelineOf(heartbeat, opts.queues);
  return view;
}

/** The deployed pipeline panel: the worker's heartbeat and the queues' counts (or why they were not read). */
async function pipelineOf(heartbeat: PipelineHeartbeat, queues: () => Promise<QueueCounts>): Promise<PipelineView> {
  const counts = await queues().then(
    (queue) => ({ queue }),
    (err: unknown) => ({ queueError: errorMessage(err) }),
  );
  return {
    heartbeat,
    ...counts,
    source: 'recorded by the sync worker in tidegate-system of each cluster; queue counts from SQS (approximate)',
  };
}

/** GET /status on the deployed API: only with a signed link (refused otherwise), then the page. */
export async function serveStatusPage(
  req: HttpRequest,
  opts: {
    secret: string | undefined;
    ctx: Pick<EngineContext, 'connect' | 'now'>;
    clusters: readonly string[];
    signal?: AbortSignal;
    /** The sync queue's and dead-letter queue's counts (the pipeline panel). */
    queues?: () => Promise<QueueCounts>;
    /** The configured GitHub API URLs (GitHub Enterprise hosts get commit links too). */
    githubApiUrls?: ReadonlyArray<string | undefined>;
  },
): Promise<HttpResponse> {
  if (req.method !== 'GET') return { status: 405, body: { message: 'only GET is accepted' } };
  const query = new URL(req.path, 'http://status.invalid').searchParams;
  const refused = refuseStatusLink(query, opts.secret, opts.ctx.now?.());
  if (refused) return refused;
  const html = renderStatusPage(
    await statusView(opts.ctx, opts.clusters, opts.signal, {
      ...(opts.queues ? { queues: opts.queues } : {}),
      commitHosts: commitHostsOf(opts.githubApiUrls ?? []),
    }),
  );
  return { status: 200, body: { message: 'status page' }, html };
}

/** The status page of the clusters the shell knows and those the repositories' tidegate.yaml (tracked branch) names. */
export async function statusPageOf(
  ctx: EngineContext,
  repos: readonly string[],
  signal?: AbortSignal,
  page: Pick<StatusView, 'pipeline' | 'refreshSeconds'> = {},
): Promise<string> {
  const declared = await Promise.all(
    repos.map((repo) =>
      configAt(ctx, repo).then(
        ({ config }) => config.targets.map((t) => t.cluster),
        () => [] as string[],
      ),
    ),
  );
  const clusters = [...new Set([...(ctx.clusters?.() ?? []), ...declared.flat()])];
  const view = await statusView(ctx, clusters.length ? clusters : [''], signal, {
    commitHosts: commitHostsOf([ctx.settings.githubApiUrl]),
  });
  return renderStatusPage({ ...view, ...page });
}
