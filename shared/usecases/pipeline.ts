import { ENTRY_LIMITS, clip, errorMessage, type QueueMessage } from '../model/index.js';
import { LeaseBusyError, newestHeartbeat, recordHeartbeat, type PipelineHeartbeat } from '../state/index.js';
import type { EngineContext } from './context.js';
import type { WorkOutcome } from './worker.js';

/**
 * What sent a message: `github` (a webhook: push, pull request, comment), a registry (ecr,
 * distribution, harbor, dockerhub), `poll` (the scheduled fallback), `cli` (an operator's reconcile)
 * or `worker` (a follow-up the worker queued itself: a fan-out's syncs, a woken preview).
 */
export function messageSource(msg: QueueMessage): string {
  switch (msg.type) {
    case 'push':
      if (msg.reason === 'poll') return 'poll';
      if (msg.targets) return 'cli';
      // A webhook's push carries when it was received; one the worker queued (an image update's commit) does not.
      return msg.receivedAt ? 'github' : 'worker';
    case 'image':
      // The poll's fan-out asks each policy's registry: a follow-up of the poll, not the poll itself.
      return msg.source === 'poll' ? 'worker' : msg.source;
    case 'reload':
    case 'previews':
      return 'poll';
    case 'approve':
      return 'github';
    case 'preview':
      return msg.bucket === undefined ? 'github' : 'worker';
    default:
      return 'worker';
  }
}

const SUMMARY: { [K in WorkOutcome['kind']]: (o: Extract<WorkOutcome, { kind: K }>) => string } = {
  'fanned-out': (o) => `fanned out to ${o.targets.length} target(s)`,
  reloaded: (o) => `reload pass on ${o.cluster}: ${o.report.rolled.length} rolled`,
  'images-written': (o) => `${o.updates.length} image update(s) written`,
  synced: (o) =>
    `${o.fannedOut ? `fanned out to ${o.fannedOut.length} target(s); ` : ''}${o.result.target}: ${o.result.outcome}`,
  approved: () => 'approval recorded',
  previewed: () => 'previewed',
  'preview-stopped': () => 'preview stopped',
  'previews-swept': () => 'previews swept',
  ignored: (o) => `ignored: ${o.reason}`,
};

/** One line on how a message's handling went (no values of objects). */
export function outcomeSummary(outcome: WorkOutcome): string {
  return (SUMMARY[outcome.kind] as (o: WorkOutcome) => string)(outcome);
}

/** Any credentials in URLs of a text left out (`https://user:token@host` → `https://host`). */
const redacted = (text: string): string => text.replace(/\/\/[^/\s]*@/g, '//');

/** The failed syncs of an outcome, as one message. */
function failedSyncs(outcome: WorkOutcome): string | undefined {
  if (outcome.kind !== 'synced') return undefined;
  const failed = (outcome.results ?? [outcome.result]).filter((r) => r.outcome === 'failed');
  if (!failed.length) return undefined;
  return failed.map((r) => `sync of ${r.target} failed: ${r.error ?? 'no reason recorded'}`).join('\n');
}

/**
 * Collects what a worker handled (one SQS batch, or the dev server's queue for its life) into a
 * heartbeat: the newest poll, webhook, message and failure. A busy target's Lease is no failure.
 */
export class PipelineRecorder {
  private beat: PipelineHeartbeat = {};

  constructor(private readonly now: () => Date = () => new Date()) {}

  private seen(msg: QueueMessage, sentAt: Date): void {
    const source = messageSource(msg);
    const entry = { source, type: msg.type, sentAt: sentAt.toISOString(), handledAt: this.now().toISOString() };
    const fromOutside = !['poll', 'worker', 'cli'].includes(source);
    this.merge({ message: entry, ...(fromOutside ? { webhook: entry } : {}) });
  }

  /** Field by field, the newer (a later one of the same time wins: it knows how handling went). */
  private merge(beat: PipelineHeartbeat): void {
    this.beat = newestHeartbeat(beat, this.beat);
  }

  /** A message handled, with what came of it. */
  handled(msg: QueueMessage, sentAt: Date, outcome: WorkOutcome): void {
    this.seen(msg, sentAt);
    if (messageSource(msg) === 'poll')
      this.merge({ poll: { at: sentAt.toISOString(), outcome: `${msg.type}: ${outcomeSummary(outcome)}` } });
    const failed = failedSyncs(outcome);
    if (failed) this.error(msg, failed);
  }

  /** A message that failed (it is retried, then dead-lettered). */
  failed(msg: QueueMessage, sentAt: Date, err: unknown): void {
    if (err instanceof LeaseBusyError) return;
    this.seen(msg, sentAt);
    if (messageSource(msg) === 'poll')
      this.merge({ poll: { at: sentAt.toISOString(), outcome: `${msg.type}: failed` } });
    this.error(msg, errorMessage(err));
  }

  /** A poll run by the shell itself (the dev server's interval), with how many messages it queued or why it failed. */
  polled(at: Date, outcome: string): void {
    this.merge({ poll: { at: at.toISOString(), outcome: clip(redacted(outcome), 500) } });
  }

  private error(msg: QueueMessage, message: string): void {
    this.merge({
      error: {
        at: this.now().toISOString(),
        message: clip(redacted(message), ENTRY_LIMITS.error),
        source: messageSource(msg),
        type: msg.type,
      },
    });
  }

  /** What was collected (a copy). */
  heartbeat(): PipelineHeartbeat {
    return { ...this.beat };
  }
}

/**
 * Writes a worker's heartbeat into tidegate-system of each cluster (where the status page reads
 * it), each within `timeoutMs`; a cluster that cannot be written is logged, never thrown: the
 * messages were handled either way.
 */
export async function recordPipeline(
  ctx: Pick<EngineContext, 'connect' | 'logger'>,
  clusters: readonly string[],
  beat: PipelineHeartbeat,
  opts: { timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<void> {
  if (!Object.keys(beat).length) return;
  await Promise.all(
    clusters.map(async (cluster) => {
      const signal = AbortSignal.any([
        AbortSignal.timeout(opts.timeoutMs ?? 3_000),
        ...(opts.signal ? [opts.signal] : []),
      ]);
      // Connecting takes no signal (an EKS describe, once per container): the bound holds for it too.
      const bound = new Promise<never>((_, reject) =>
        signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true }),
      );
      bound.catch(() => undefined); // it fires after the work is done too: never unhandled
      try {
        await Promise.race([ctx.connect(cluster).then((client) => recordHeartbeat(client, beat, signal)), bound]);
      } catch (err) {
        ctx.logger?.warn('pipeline heartbeat not recorded', { cluster, error: errorMessage(err) });
      }
    }),
  );
}
