import {
  errorMessage,
  formatRevision,
  redactUrl,
  type ObjectRef,
  type QueueMessage,
  type SyncResult,
} from '../model/index.js';
import type { NotifyEvent, NotifyEventKind } from '../notify/index.js';
import { repositoryPage } from '../status/index.js';
import type { EngineContext } from './context.js';

const firstLine = (text: string | undefined): string => (text ?? '').split('\n')[0] ?? '';

/**
 * The event a sync result is, if any. A no-op is none, and so is an outcome this revision already
 * had (a poll's re-sync, a redelivery, a rollout still progressing, a failure whose text changed):
 * one message per event and revision. Drift corrected is news each time: each is an edit undone.
 */
function kindOf(r: SyncResult): NotifyEventKind | undefined {
  const kind = eventOf(r);
  return r.seen && kind !== 'drift-corrected' ? undefined : kind;
}

function eventOf(r: SyncResult): NotifyEventKind | undefined {
  if (r.rolledBackTo) return 'rolled-back';
  if (r.outcome === 'failed') return 'failed';
  if (r.outcome === 'held') return 'held';
  if (r.outcome !== 'applied' && r.outcome !== 'progressing') return undefined;
  const changed = r.changeSet.changes.filter((c) => c.action !== 'unchanged' && c.action !== 'skipped');
  return changed.length > 0 && changed.every((c) => c.drift) ? 'drift-corrected' : 'applied';
}

/** The notification of a sync result (names, counts and reasons; never values), or undefined when it is no news. */
export function resultEvent(
  r: SyncResult,
  where: { repo: string; cluster?: string | undefined; how?: string | undefined },
  at: Date = new Date(),
): NotifyEvent | undefined {
  const kind = kindOf(r);
  if (!kind) return undefined;
  const rev = formatRevision(r.revision);
  const counts = { created: 0, configured: 0, deleted: 0 };
  for (const c of r.changeSet.changes) if (c.action in counts) counts[c.action as keyof typeof counts]++;
  const title: Record<NotifyEventKind, string> = {
    applied: `${r.target}: ${rev} applied${r.outcome === 'progressing' ? ', rollout in progress' : ''}`,
    failed: `${r.target}: ${rev} failed`,
    held: `${r.target}: ${rev} held for sign-off`,
    'reload-held': '',
    'rolled-back': `${r.target}: health failed, rolled back to ${r.rolledBackTo ? formatRevision(r.rolledBackTo) : ''}`,
    'drift-corrected': `${r.target}: drift corrected at ${rev}`,
    'image-committed': '',
    'image-proposed': '',
    'preview-published': '',
    'dead-lettered': '',
    alarm: '',
  };
  const text =
    kind === 'failed'
      ? firstLine(r.error)
      : kind === 'held'
        ? `${firstLine(r.heldFor)}${where.how ? `\nTo approve: ${where.how}` : ''}`
        : kind === 'rolled-back'
          ? `pinned there; \`tidegate release ${r.target}\` lets pushes apply again`
          : `${counts.created} created, ${counts.configured} configured, ${counts.deleted} deleted`;
  const page = repositoryPage(where.repo);
  return {
    kind,
    repo: redactUrl(where.repo),
    target: r.target,
    cluster: where.cluster,
    sha: r.revision.sha,
    title: title[kind],
    text,
    fields: [
      ['target', r.target],
      ...(where.cluster ? ([['cluster', where.cluster]] as Array<[string, string]>) : []),
      ['revision', rev],
      ['health', r.health.status],
    ],
    url: page ? `${page}/commit/${r.revision.sha}` : undefined,
    at: at.toISOString(),
  };
}

/** A reload a policy holds, held first now: what changed, why it waits, and how to release it. */
export interface HeldReloadNews {
  workload: ObjectRef;
  target?: string | undefined;
  sources: string[];
  kind: 'notify' | 'approval' | 'window';
  reason: string;
}

/** The notification of a held reload (names and reasons, never values). */
export function reloadHeldEvent(
  h: HeldReloadNews,
  where: { repo?: string | undefined; cluster?: string | undefined },
  at: Date = new Date(),
): NotifyEvent {
  const workload = `${h.workload.kind}/${h.workload.namespace}/${h.workload.name}`;
  const how =
    h.kind === 'approval' && h.target
      ? `\nTo approve: \`tidegate approve ${h.target} --reload\` or a \`/tidegate approve reload ${h.target}\` comment`
      : '';
  return {
    kind: 'reload-held',
    repo: where.repo ? redactUrl(where.repo) : '',
    target: h.target,
    cluster: where.cluster,
    title: `${workload}: ${h.kind === 'notify' ? 'would reload' : 'reload held'} (${h.sources.join(', ')} changed)`,
    text: `${firstLine(h.reason)}${how}`,
    fields: [
      ['workload', workload],
      ...(h.target ? ([['target', h.target]] as Array<[string, string]>) : []),
      ...(where.cluster ? ([['cluster', where.cluster]] as Array<[string, string]>) : []),
      ['sources', h.sources.join(', ')],
    ],
    at: at.toISOString(),
  };
}

/** What a message is about, in a few words (no values). */
function describeMessage(msg: QueueMessage | undefined): { title: string; target?: string; repo: string } {
  const repo = msg && 'repo' in msg && typeof msg.repo === 'string' ? redactUrl(msg.repo) : '';
  if (!msg) return { title: 'a message that is not JSON', repo };
  switch (msg.type) {
    case 'sync':
    case 'remove':
      return { title: `${msg.type} of ${msg.target} at ${msg.revision.sha.slice(0, 12)}`, target: msg.target, repo };
    case 'push':
      return { title: `push of ${msg.sha.slice(0, 12)} to ${msg.ref}`, repo };
    case 'image':
      return { title: `image ${msg.registry}/${msg.repository}${msg.tag ? `:${msg.tag}` : ''}`, repo };
    case 'reload':
    case 'previews':
      return { title: `${msg.type} of cluster ${msg.cluster}`, repo };
    default:
      return { title: msg.type, repo };
  }
}

/**
 * The notification of a message that failed its last delivery: the queue moves it to the
 * dead-letter queue, and nothing retries it until an operator redrives it (`tidegate queue --redrive`).
 */
export function deadLetterEvent(msg: QueueMessage | undefined, why: unknown, at: Date = new Date()): NotifyEvent {
  const { title, target, repo } = describeMessage(msg);
  return {
    kind: 'dead-lettered',
    repo,
    target,
    title: `${title}: failed on every delivery, moved to the dead-letter queue`,
    text: `${firstLine(errorMessage(why))}\nSee \`tidegate queue\`; \`tidegate queue --redrive\` retries it once the cause is fixed.`,
    fields: [['message', msg?.type ?? 'unknown'], ...(target ? ([['target', target]] as Array<[string, string]>) : [])],
    at: at.toISOString(),
  };
}

/** A CloudWatch alarm's state change as the alarm topic delivers it (SNS message JSON). */
export interface AlarmChange {
  AlarmName?: string;
  AlarmDescription?: string | null;
  NewStateValue?: string;
  NewStateReason?: string;
  StateChangeTime?: string;
}

/** The notification of an alarm's state change (the stack's alarms: docs/operations.md says what each means). */
export function alarmEvent(change: AlarmChange, at: Date = new Date()): NotifyEvent {
  const name = change.AlarmName ?? 'an alarm';
  const state = change.NewStateValue ?? 'UNKNOWN';
  return {
    kind: 'alarm',
    repo: '',
    title: state === 'OK' ? `${name}: back to OK` : `${name}: ${state}`,
    text: [firstLine(change.NewStateReason), firstLine(change.AlarmDescription ?? undefined)]
      .filter(Boolean)
      .join('\n'),
    fields: [
      ['alarm', name],
      ['state', state],
    ],
    at: change.StateChangeTime ? new Date(change.StateChangeTime).toISOString() : at.toISOString(),
  };
}

/**
 * Sends events through the context's notifier (none configured: nothing), side by side, so that a
 * message's notifications together take at most the notifier's budget; never fails the work that
 * raised them.
 */
export async function notify(
  ctx: Pick<EngineContext, 'notifier' | 'logger'>,
  events: ReadonlyArray<NotifyEvent | undefined>,
  signal?: AbortSignal,
): Promise<void> {
  const { notifier } = ctx;
  if (!notifier) return;
  await Promise.all(
    events.flatMap((e) =>
      e
        ? [
            notifier
              .notify(e, signal)
              .catch((err: unknown) =>
                ctx.logger?.warn('notification not sent', { event: e.kind, error: (err as Error).name }),
              ),
          ]
        : [],
    ),
  );
}
