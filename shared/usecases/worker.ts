import { refKey, type QueueMessage, type ReloadMessage, type SyncResult } from '../model/index.js';
import type { ReloadReport } from '../reload/index.js';
import { reloadWithPolicies, type PolicyReloadResult } from '../sync/index.js';
import { notify, reloadHeldEvent } from './notify.js';
import { approveFromComment, type CommentApproval } from './approve.js';
import { reloadPassOptions, type EngineContext } from './context.js';
import { fanOutAndSync } from './fan-out.js';
import { updateImages, type ImageOutcome } from './image-updates.js';
import { previewPullRequest, stopPreview, sweepPreviewsOf, type PreviewOutcome } from './preview.js';
import type { SweepReport } from './preview-env.js';
import type { Queue } from './queue.js';
import { removeMessage } from './remove.js';
import { syncMessage } from './sync-message.js';

export type WorkOutcome =
  | { kind: 'fanned-out'; targets: string[] }
  | { kind: 'reloaded'; cluster: string; report: ReloadReport }
  | ImageOutcome
  | { kind: 'synced'; result: SyncResult; results?: SyncResult[]; fannedOut?: string[] }
  | ({ kind: 'approved' } & CommentApproval)
  | ({ kind: 'previewed' } & PreviewOutcome)
  | ({ kind: 'preview-stopped' } & PreviewOutcome)
  | ({ kind: 'previews-swept' } & SweepReport)
  | { kind: 'ignored'; reason: string };

/** What a reload pass did, logged: counts, then each target whose holds could not be recorded and each workload that failed. */
function logReload(ctx: EngineContext, cluster: string, { report, unrecorded }: PolicyReloadResult): void {
  ctx.logger?.info('reload pass', {
    cluster,
    rolled: report.rolled.length,
    recorded: report.recorded.length,
    debounced: report.debounced?.length ?? 0,
    held: report.held?.length ?? 0,
  });
  for (const { target, reason } of unrecorded)
    ctx.logger?.warn('held reloads not recorded', { cluster, target: target ?? '', reason });
  for (const { workload, reason } of report.failed)
    ctx.logger?.warn('workload not reloaded', { cluster, workload: refKey(workload), reason });
}

/** The reload pass over one cluster under the reload policies; new holds notified. */
async function reload(ctx: EngineContext, msg: ReloadMessage, signal?: AbortSignal): Promise<WorkOutcome> {
  const client = await ctx.connect(msg.cluster);
  const result = await reloadWithPolicies(client, { ...reloadPassOptions(ctx), signal });
  logReload(ctx, msg.cluster, result);
  const events = result.fresh.map((h) => reloadHeldEvent(h, { cluster: msg.cluster }, ctx.now?.()));
  await notify(ctx, events, signal);
  return { kind: 'reloaded', cluster: msg.cluster, report: result.report };
}

/**
 * Handles one queue message. A push fans out into one sync message per affected target (its
 * message group serialises that target), the first of them synced right away (fanOutAndSync); a
 * sync runs the engine. A failed sync is a result; an
 * exception (git or the apiserver unreachable) is thrown so the queue retries the message.
 */
export async function handleMessage(
  ctx: EngineContext,
  msg: QueueMessage,
  queue: Queue,
  signal?: AbortSignal,
): Promise<WorkOutcome> {
  switch (msg.type) {
    case 'push':
      return fanOutAndSync(ctx, msg, queue, signal);
    case 'sync':
      return syncMessage(ctx, msg, signal);
    case 'remove':
      return removeMessage(ctx, msg, signal);
    case 'reload':
      return reload(ctx, msg, signal);
    case 'image':
      return updateImages(ctx, msg, queue, signal);
    case 'approve':
      return { kind: 'approved', ...(await approveFromComment(ctx, msg, queue, signal)) };
    case 'preview':
      return msg.stop
        ? { kind: 'preview-stopped', ...(await stopPreview(ctx, msg, queue, signal)) }
        : { kind: 'previewed', ...(await previewPullRequest(ctx, msg, queue, signal)) };
    case 'previews':
      return { kind: 'previews-swept', ...(await sweepPreviewsOf(ctx, msg.cluster, queue, signal)) };
  }
}
