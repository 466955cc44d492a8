import { listBranches, type GitSource } from '../source/index.js';
import {
  receiveRegistryNotification,
  reply,
  routeGithubEvent,
  verifyGithub,
  type HttpRequest,
  type HttpResponse,
  type TrackedRepo,
} from '../triggers/index.js';
import type { QueueMessage } from '../model/index.js';
import type { Queue } from './queue.js';

/**
 * A GitHub delivery: without a configured secret 500 (never unverified); verify (signature, size, type) → route (push of a tracked branch → a push
 * message) → enqueue → reply. Nothing is enqueued unless the signature is valid. The queue's
 * deduplication drops a redelivered push.
 */
export async function receiveGithubWebhook(
  req: HttpRequest,
  opts: { secret: string | undefined; tracked: readonly TrackedRepo[]; queue: Queue; maxBytes?: number },
): Promise<HttpResponse> {
  if (!opts.secret) return reply(500, 'the GitHub webhook secret is not configured');
  const verified = await verifyGithub(req, opts.secret, opts.maxBytes);
  if (!verified.ok) return verified.response;
  const routed = routeGithubEvent(verified.delivery, opts.tracked);
  await opts.queue.send(routed.messages);
  return { ...routed.response, body: { ...routed.response.body, delivery: verified.delivery.id } };
}

/** A registry notification: without a configured secret 500; verify the shared secret, parse, enqueue image messages. */
export async function receiveRegistryWebhook(
  req: HttpRequest,
  opts: { secret: string | undefined; queue: Queue },
): Promise<HttpResponse> {
  if (!opts.secret) return reply(500, 'the registry webhook secret is not configured');
  const { response, messages } = receiveRegistryNotification(req, opts.secret);
  await opts.queue.send(messages);
  return response;
}

/**
 * The scheduled fallback: one ls-remote per repository; a push message for the tracked branch's
 * head, deduplicated per drift interval (so an unchanged revision is re-synced, and drift
 * corrected, once per interval, and a moved branch right away); a reload pass and a sweep of
 * preview environments per cluster.
 *
 * SQS drops a repeated deduplication id for five minutes only, less than a drift interval (default
 * 10 minutes): `sent` (kept by the caller across polls) remembers the head and interval each
 * repository's push was last queued for, so the same one is not queued again within the interval
 * (without it every target was synced twice per interval). A new process sends it once more.
 */
export async function pollRepositories(
  repos: ReadonlyArray<TrackedRepo & { source: GitSource }>,
  queue: Queue,
  opts: { now: number; driftIntervalMs: number; clusters?: readonly string[]; sent?: Map<string, string> },
): Promise<QueueMessage[]> {
  const bucket = Math.floor(opts.now / opts.driftIntervalMs);
  // The reload pass and the sweep of preview environments run on every poll (once a minute at most), per cluster.
  const minute = Math.floor(opts.now / 60_000);
  const messages: QueueMessage[] = (opts.clusters ?? []).flatMap((cluster): QueueMessage[] => [
    { type: 'reload', cluster, bucket: minute },
    { type: 'previews', cluster, bucket: minute },
  ]);
  const sending = new Map<string, string>();
  for (const repo of repos) {
    const sha = (await listBranches(repo.source)).get(`refs/heads/${repo.branch}`);
    const key = `${repo.branch}@${sha ?? ''}#${bucket}`;
    if (!sha || opts.sent?.get(repo.url) === key) continue;
    sending.set(repo.url, key);
    messages.push({
      type: 'push',
      repo: repo.url,
      ref: `refs/heads/${repo.branch}`,
      sha,
      paths: null,
      reason: 'poll',
      bucket,
    });
  }
  await queue.send(messages);
  for (const [url, key] of sending) opts.sent?.set(url, key);
  return messages;
}
