import { errorMessage, isPreviewTarget } from '../model/index.js';
import { allTargetStates, readPreviews } from '../state/index.js';
import { renderStatusPage, type StatusView } from '../status/index.js';
import { refuseStatusLink, type HttpRequest, type HttpResponse } from '../triggers/index.js';
import type { EngineContext } from './context.js';
import { configAt } from './repo-config.js';

/**
 * What the status page shows, read from the clusters and nothing else: the target states in
 * tidegate-system and the previews register; a cluster reached through two aliases is shown once.
 * A cluster that cannot be read is shown with the reason.
 */
export async function statusView(
  ctx: Pick<EngineContext, 'connect' | 'now'>,
  clusters: readonly string[],
  signal?: AbortSignal,
): Promise<StatusView> {
  const seen = new Set<string>();
  const view: StatusView = { generatedAt: (ctx.now?.() ?? new Date()).toISOString(), clusters: [] };
  for (const cluster of clusters) {
    try {
      const client = await ctx.connect(cluster);
      // Two aliases of one cluster (one kube-system namespace) are shown once.
      const kubeSystem = await client.get('v1', 'Namespace', '', 'kube-system', signal).catch(() => undefined);
      const id = kubeSystem?.metadata.uid ?? cluster;
      if (seen.has(id)) continue;
      seen.add(id);
      const states = await allTargetStates(client, signal);
      view.clusters.push({
        cluster,
        targets: states
          .filter((s) => !isPreviewTarget(s.target))
          .map((s) => ({ name: s.target, state: s.state }))
          .sort((a, b) => a.name.localeCompare(b.name)),
        previews: await readPreviews(client, signal),
      });
    } catch (err) {
      if (signal?.aborted) throw err;
      view.clusters.push({ cluster, targets: [], error: errorMessage(err) });
    }
  }
  return view;
}

/** GET /status on the deployed API: only with a signed link (refused otherwise), then the page. */
export async function serveStatusPage(
  req: HttpRequest,
  opts: {
    secret: string | undefined;
    ctx: Pick<EngineContext, 'connect' | 'now'>;
    clusters: readonly string[];
    signal?: AbortSignal;
  },
): Promise<HttpResponse> {
  if (req.method !== 'GET') return { status: 405, body: { message: 'only GET is accepted' } };
  const query = new URL(req.path, 'http://status.invalid').searchParams;
  const refused = refuseStatusLink(query, opts.secret, opts.ctx.now?.());
  if (refused) return refused;
  const html = renderStatusPage(await statusView(opts.ctx, opts.clusters, opts.signal));
  return { status: 200, body: { message: 'status page' }, html };
}

/** The status page of the clusters the shell knows and those the repositories' tidegate.yaml (tracked branch) names. */
export async function statusPageOf(
  ctx: EngineContext,
  repos: readonly string[],
  signal?: AbortSignal,
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
  return renderStatusPage(await statusView(ctx, clusters.length ? clusters : [''], signal));
}
