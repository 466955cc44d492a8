import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { LeaseBusyError } from '../state/index.js';
import { errorMessage, normaliseRepoUrl, type PreviewMessage, type QueueMessage } from '../model/index.js';

/** Where triggers put work: SQS FIFO in Lambda (aws/sqs-queue.ts), an in-memory queue locally. */
export interface Queue {
  send(messages: readonly QueueMessage[]): Promise<void>;
}

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/** Characters SQS takes in a message group or deduplication id. */
const SQS_ID_CHARS = /^[\w!"#$%&'()*+,\-./:;<=>?@[\\\]^`{|}~]+$/;

/**
 * SQS FIFO ids are at most 128 characters of SQS_ID_CHARS. A key that is not one already becomes
 * its readable start (other characters as `_`) and a digest of the whole key, so two keys never
 * end up as one id.
 */
const fit = (key: string): string =>
  key.length <= 128 && SQS_ID_CHARS.test(key)
    ? key
    : `${key.slice(0, 63).replace(/[^\w!"#$%&'()*+,\-./:;<=>?@[\\\]^`{|}~]/g, '_')}~${sha256(key)}`;

/**
 * Whose target a key names: a short digest of the repository (normalised, so two spellings of one
 * URL agree) and, where the message says, the cluster. A target name is unique only within one
 * repository's tidegate.yaml (and per cluster across repositories), so another repository may use the
 * same name: without this its syncs would share our target's message group (SQS hands those out one
 * at a time: its slow syncs would hold ours back) and its deduplication ids could match ours (SQS
 * would drop ours as a repeat). 96 bits of SHA-256: no URL is found whose digest is another's.
 */
const scopeOf = (repo: string, cluster?: string): string => {
  const parts = cluster === undefined ? [normaliseRepoUrl(repo)] : [normaliseRepoUrl(repo), cluster];
  return sha256(JSON.stringify(parts)).slice(0, 24);
};

/**
 * The message group serialises work (one target, one repository, one image at a time);
 * the deduplication id drops repeats of the same work within SQS's five-minute window. Target work
 * (sync, remove) is keyed by repository as well as name (scopeOf): one repository's messages never
 * share a group or a deduplication id with another's.
 */
export function messageKeys(msg: QueueMessage): { group: string; dedup: string } {
  const keys = baseKeys(msg);
  // A copy handed back to the queue (busy, not started) must not be dropped as a repeat of itself.
  return msg.deferrals ? { group: keys.group, dedup: fit(`${keys.dedup}~d${msg.deferrals}`) } : keys;
}

/** A suffix that keeps re-sent copies of one event apart (an optional bucket). */
const bucketOf = (bucket: string | number | undefined): string => (bucket === undefined ? '' : `#${bucket}`);

/** One group per pull request: its previews and its teardown never overlap. */
function previewKeys(msg: PreviewMessage): { group: string; dedup: string } {
  const what = msg.stop ? `preview-stop-${msg.stop}` : 'preview';
  const which = msg.comment === undefined ? `@${msg.head ?? ''}` : `~${msg.comment}`;
  return {
    group: fit(`preview:${msg.repo}#${msg.pullRequest}`),
    dedup: fit(`${what}:${msg.repo}#${msg.pullRequest}${which}${bucketOf(msg.bucket)}`),
  };
}

function baseKeys(msg: QueueMessage): { group: string; dedup: string } {
  switch (msg.type) {
    case 'push':
      return {
        group: fit(`repo:${msg.repo}`),
        dedup: fit(`${msg.reason}:${msg.repo}@${msg.sha}${bucketOf(msg.bucket)}`),
      };
    // A sync names no cluster: target names are unique within one repository's tidegate.yaml, and a
    // dependsOn set (one group for all its syncs) may span clusters. A removal shares the group of
    // the repository's syncs of that name (its dependsOn set's, when the name is still declared in one),
    // so it never overlaps one (a target moved to another cluster, or declared again); its deduplication id names its cluster, so removals of one name
    // on two clusters are not dropped as repeats of each other.
    case 'sync':
      return {
        group: fit(`target:${scopeOf(msg.repo)}:${msg.set ?? msg.target}`),
        dedup: fit(
          `sync:${scopeOf(msg.repo)}:${(msg.chain ?? [msg.target]).join(',')}@${msg.revision.sha}${bucketOf(msg.bucket)}`,
        ),
      };
    case 'remove':
      return {
        group: fit(`target:${scopeOf(msg.repo)}:${msg.set ?? msg.target}`),
        dedup: fit(
          `remove:${scopeOf(msg.repo, msg.cluster)}:${msg.cluster}/${msg.target}@${msg.revision.sha}${bucketOf(msg.bucket)}`,
        ),
      };
    case 'image':
      return {
        group: fit(`image:${msg.registry}/${msg.repository}`),
        dedup: fit(
          `image:${msg.registry}/${msg.repository}:${msg.tag ?? ''}@${msg.digest ?? ''}${bucketOf(msg.bucket)}`,
        ),
      };
    case 'reload':
      return { group: fit(`reload:${msg.cluster}`), dedup: fit(`reload:${msg.cluster}#${msg.bucket}`) };
    case 'approve':
      return { group: fit(`repo:${msg.repo}`), dedup: fit(`approve:${msg.repo}#${msg.comment}`) };
    case 'preview':
      return previewKeys(msg);
    case 'previews':
      return { group: fit(`previews:${msg.cluster}`), dedup: fit(`previews:${msg.cluster}#${msg.bucket}`) };
  }
}

/**
 * The same semantics in memory, for the dev server, the demo and tests: messages of one group are
 * handled one at a time in order, groups in parallel, and a deduplication id seen within the
 * window is dropped. A failed message is retried up to maxAttempts, then dead-lettered; one whose
 * target's lease is busy is tried again a second later without counting as a failure.
 */
export class MemoryQueue implements Queue {
  private readonly groups = new Map<string, QueueMessage[]>();
  private readonly running = new Set<string>();
  private readonly seen = new Map<string, number>();
  private idleWaiters: Array<() => void> = [];
  /** When each queued message was sent (as SQS's SentTimestamp). */
  private readonly sentAt = new WeakMap<QueueMessage, Date>();
  readonly deadLetters: Array<{ message: QueueMessage; error: string }> = [];

  constructor(
    private readonly handle: (msg: QueueMessage, queue: MemoryQueue, sentAt: Date) => Promise<void>,
    private readonly opts: {
      dedupWindowMs?: number;
      maxAttempts?: number;
      busyDelayMs?: number;
      now?: () => number;
    } = {},
  ) {}

  send(messages: readonly QueueMessage[]): Promise<void> {
    const now = (this.opts.now ?? Date.now)();
    for (const m of messages) {
      const { group, dedup } = messageKeys(m);
      const last = this.seen.get(dedup);
      if (last !== undefined && now - last < (this.opts.dedupWindowMs ?? 300_000)) continue;
      this.seen.set(dedup, now);
      this.sentAt.set(m, new Date(now));
      const list = this.groups.get(group) ?? [];
      list.push(m);
      this.groups.set(group, list);
      void this.drain(group);
    }
    return Promise.resolve();
  }

  private async drain(group: string): Promise<void> {
    if (this.running.has(group)) return;
    this.running.add(group);
    try {
      for (let next = this.groups.get(group)?.shift(); next; next = this.groups.get(group)?.shift()) {
        await this.attempt(next);
      }
    } finally {
      this.running.delete(group);
      this.groups.delete(group);
      if (this.running.size === 0) for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  private async attempt(msg: QueueMessage): Promise<void> {
    const max = this.opts.maxAttempts ?? 3;
    for (let attempt = 1, busy = 0; ; attempt++) {
      try {
        await this.handle(msg, this, this.sentAt.get(msg) ?? new Date());
        return;
      } catch (err) {
        // Another writer holds the target (a CLI command): not a failure; try again a little later.
        if (err instanceof LeaseBusyError && busy++ < 60) {
          attempt--;
          await sleep(this.opts.busyDelayMs ?? 1_000);
          continue;
        }
        if (attempt >= max) {
          this.deadLetters.push({ message: msg, error: errorMessage(err) });
          return;
        }
      }
    }
  }

  /** Messages waiting (queued behind others of their group) and in flight (being handled): the queue's depth. */
  depth(): { waiting: number; inFlight: number } {
    const queued = [...this.groups.values()].reduce((n, list) => n + list.length, 0);
    return { waiting: queued, inFlight: this.running.size };
  }

  /** Resolves when nothing is queued or running. */
  idle(): Promise<void> {
    if (this.running.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }
}
