import { Webhooks, emitterEventNames, type EmitterWebhookEvent } from '@octokit/webhooks';
import { normaliseRepoUrl, type QueueMessage } from '../model/index.js';
import { bodyBytes, reply, type HttpRequest, type HttpResponse } from './http.js';

type PushEvent = EmitterWebhookEvent<'push'>['payload'];
type CommentEvent = EmitterWebhookEvent<'issue_comment'>['payload'];
type PullRequestEvent = EmitterWebhookEvent<'pull_request'>['payload'];

const PREVIEW_ACTIONS = new Set(['opened', 'synchronize', 'reopened']);

/** A pull request into a tracked branch was opened or pushed to: queue its preview; closed (or merged): queue its teardown. */
function routePullRequest(event: PullRequestEvent, tracked: readonly TrackedRepo[]): Routed {
  const ignore = (message: string): Routed => ({ response: reply(202, message), messages: [] });
  const pr = (event as Partial<PullRequestEvent> | null)?.pull_request;
  if (!pr || typeof pr.head?.sha !== 'string' || typeof pr.base?.ref !== 'string')
    return { response: reply(400, 'malformed pull_request payload'), messages: [] };
  if (!PREVIEW_ACTIONS.has(event.action) && event.action !== 'closed')
    return ignore(`ignored: pull request ${event.action}`);
  const repo = trackedRepo(event.repository, tracked);
  if (!repo) return ignore(`ignored: repository ${event.repository.full_name} is not tracked`);
  if (pr.base.ref !== repo.branch) return ignore(`ignored: pull request into ${pr.base.ref}, not ${repo.branch}`);
  if (event.action === 'closed')
    return {
      response: reply(202, `queued teardown of the previews of pull request #${pr.number}`),
      messages: [{ type: 'preview', repo: repo.url, pullRequest: pr.number, head: pr.head.sha, stop: 'closed' }],
    };
  return {
    response: reply(202, `queued preview of pull request #${pr.number} at ${pr.head.sha.slice(0, 12)}`),
    messages: [
      {
        type: 'preview',
        repo: repo.url,
        pullRequest: pr.number,
        head: pr.head.sha,
        // Reopened at the head it was opened (and torn down) at: not a repeat of that first preview.
        ...(event.action === 'reopened' ? { bucket: Date.now() } : {}),
      },
    ],
  };
}

const COMMAND = /^\/tidegate\s+(approve|preview)((?:\s+[a-z0-9-]+)*)\s*$/m;

/**
 * `/tidegate preview stop` tears the pull request's previews down; `/tidegate preview <sha>` names
 * the head the writer reviewed (a pull request from a fork or a non-writer needs it).
 */
function previewCommand(
  repo: TrackedRepo,
  pullRequest: number,
  commenter: string,
  comment: number,
  args: readonly string[],
): Routed {
  if (args[0] === 'stop')
    return {
      response: reply(202, `queued teardown of the previews of pull request #${pullRequest} asked by ${commenter}`),
      messages: [{ type: 'preview', repo: repo.url, pullRequest, requestedBy: commenter, comment, stop: 'command' }],
    };
  const head = args.find((a) => /^[0-9a-f]{7,40}$/.test(a));
  return {
    response: reply(202, `queued preview of pull request #${pullRequest} requested by ${commenter}`),
    messages: [{ type: 'preview', repo: repo.url, pullRequest, requestedBy: commenter, comment, head }],
  };
}

/** The tracked repository a payload's repository is, by any of its URLs. */
function trackedRepo(
  repository: { clone_url?: string; html_url?: string; ssh_url?: string; git_url?: string },
  tracked: readonly TrackedRepo[],
): TrackedRepo | undefined {
  const urls = [repository.clone_url, repository.html_url, repository.ssh_url, repository.git_url]
    .filter((u): u is string => Boolean(u))
    .map(normaliseRepoUrl);
  return tracked.find((t) => urls.includes(normaliseRepoUrl(t.url)));
}

/** `/tidegate approve [target …]`, `/tidegate preview [sha]` or `/tidegate preview stop` in a new comment on a pull request of a tracked repository. */
function routeComment(event: CommentEvent, tracked: readonly TrackedRepo[]): Routed {
  const ignore = (message: string): Routed => ({ response: reply(202, message), messages: [] });
  if (
    typeof event !== 'object' ||
    event === null ||
    typeof event.comment?.body !== 'string' ||
    typeof event.issue !== 'object'
  )
    return { response: reply(400, 'malformed issue_comment payload'), messages: [] };
  if (event.action !== 'created') return ignore(`ignored: comment ${event.action}`);
  const command = COMMAND.exec(event.comment.body);
  if (!command) return ignore('ignored: not a /tidegate command');
  const verb = command[1] as 'approve' | 'preview';
  if (!event.issue.pull_request) return ignore(`ignored: /tidegate ${verb} works on pull requests`);
  const repo = trackedRepo(event.repository, tracked);
  if (!repo) return ignore(`ignored: repository ${event.repository.full_name} is not tracked`);
  const commenter = event.comment.user?.login;
  if (!commenter) return { response: reply(400, 'malformed issue_comment payload: no comment author'), messages: [] };
  const pullRequest = event.issue.number;
  const comment = event.comment.id;
  const args = (command[2] ?? '').trim().split(/\s+/).filter(Boolean);
  if (verb === 'preview') return previewCommand(repo, pullRequest, commenter, comment, args);
  return approveCommand(repo, pullRequest, commenter, comment, args);
}

/**
 * `/tidegate approve [<sha>] [target …]`: a first word of 7 to 40 hex digits names the revision
 * approved; `/tidegate approve reload [target …]` approves the targets' held reloads instead.
 */
function approveCommand(
  repo: TrackedRepo,
  pullRequest: number,
  commenter: string,
  comment: number,
  args: readonly string[],
): Routed {
  if (args[0] === 'reload')
    return {
      response: reply(
        202,
        `queued approval by ${commenter} of the held reloads of ${args.slice(1).join(', ') || 'every target'}`,
      ),
      messages: [
        { type: 'approve', repo: repo.url, pullRequest, commenter, targets: args.slice(1), comment, reload: true },
      ],
    };
  const revision = /^[0-9a-f]{7,40}$/.test(args[0] ?? '') ? args[0] : undefined;
  const targets = revision ? args.slice(1) : [...args];
  return {
    response: reply(
      202,
      `queued approval by ${commenter} of ${revision ? revision.slice(0, 12) : `pull request #${pullRequest}`}`,
    ),
    messages: [
      { type: 'approve', repo: repo.url, pullRequest, commenter, targets, comment, ...(revision ? { revision } : {}) },
    ],
  };
}

/** A repository whose pushes tidegate acts on: the GitOps repository and its tracked branch. */
export interface TrackedRepo {
  url: string;
  branch: string;
}

/** A delivery whose signature checked out: trusted from here on (tests and tools may build one directly). */
export interface GithubDelivery {
  id: string;
  event: string;
  payload: unknown;
}

export type Verified = { ok: true; delivery: GithubDelivery } | { ok: false; response: HttpResponse };

/** GitHub caps payloads at 25 MB; a push of a GitOps repository is far smaller. */
export const DEFAULT_MAX_BODY_BYTES = 5 * 1024 * 1024;

const KNOWN_EVENTS = new Set<string>(emitterEventNames.filter((e) => !e.includes('.')));

/**
 * Verifies a GitHub webhook request: size, content type, X-Hub-Signature-256 (HMAC-SHA256,
 * constant-time compare by @octokit/webhooks), event and delivery headers, JSON body.
 * SHA-1 signatures (X-Hub-Signature) alone are refused.
 */
export async function verifyGithub(
  req: HttpRequest,
  secret: string,
  maxBytes = DEFAULT_MAX_BODY_BYTES,
): Promise<Verified> {
  const fail = (status: number, message: string): Verified => ({ ok: false, response: reply(status, message) });
  if (req.method !== 'POST') return fail(405, 'only POST is accepted');
  if (req.body.length === 0) return fail(400, 'body is empty');
  if (bodyBytes(req.body) > maxBytes) return fail(413, `body larger than ${maxBytes} bytes`);
  const contentType = (req.headers['content-type'] ?? '').split(';')[0]?.trim();
  if (contentType !== 'application/json')
    return fail(415, 'content type must be application/json (set it in the webhook settings)');
  const signature = req.headers['x-hub-signature-256'];
  if (!signature)
    return fail(
      401,
      req.headers['x-hub-signature']
        ? 'SHA-1 signatures are not accepted; X-Hub-Signature-256 is required'
        : 'missing X-Hub-Signature-256',
    );
  const valid = await new Webhooks({ secret }).verify(req.body, signature).catch(() => false);
  if (!valid) return fail(401, 'signature does not match');
  const event = req.headers['x-github-event'];
  const id = req.headers['x-github-delivery'];
  if (!event || !id) return fail(400, 'missing X-GitHub-Event or X-GitHub-Delivery');
  let payload: unknown;
  try {
    payload = JSON.parse(req.body) as unknown;
  } catch {
    return fail(400, 'body is not valid JSON');
  }
  return { ok: true, delivery: { id, event, payload } };
}

export interface Routed {
  response: HttpResponse;
  messages: QueueMessage[];
}

/** GitHub lists at most 20 commits in a push payload; with more, the changed paths are incomplete. */
const MAX_LISTED_COMMITS = 20;

/** What routing reads from a push payload; GitHub always sends it, but a signature proves origin, not shape. */
function malformedPush(payload: unknown): string | undefined {
  const p = payload as Partial<Record<keyof PushEvent, unknown>> | null;
  if (typeof p !== 'object' || p === null || Array.isArray(p)) return 'the payload is not an object';
  if (typeof p.ref !== 'string' || typeof p.after !== 'string') return 'ref or after is missing';
  if (typeof p.repository !== 'object' || p.repository === null) return 'repository is missing';
  if (!Array.isArray(p.commits)) return 'commits is missing';
  return undefined;
}

function routePush(push: PushEvent, tracked: readonly TrackedRepo[]): Routed {
  const ignore = (message: string): Routed => ({ response: reply(202, message), messages: [] });
  const malformed = malformedPush(push);
  if (malformed) return { response: reply(400, `malformed push payload: ${malformed}`), messages: [] };
  if (push.deleted) return ignore(`ignored: ${push.ref} was deleted`);
  if (!push.ref.startsWith('refs/heads/')) return ignore(`ignored: ${push.ref} is not a branch`);
  const branch = push.ref.slice('refs/heads/'.length);
  const repo = trackedRepo(push.repository, tracked);
  if (!repo) return ignore(`ignored: repository ${push.repository.full_name} is not tracked`);
  if (repo.branch !== branch) return ignore(`ignored: branch ${branch} is not tracked (tracking ${repo.branch})`);
  const complete = push.commits.length < MAX_LISTED_COMMITS && !push.forced;
  const paths = complete
    ? [
        ...new Set(push.commits.flatMap((c) => [...(c.added ?? []), ...(c.modified ?? []), ...(c.removed ?? [])])),
      ].sort()
    : null;
  return {
    response: reply(202, `queued ${push.after.slice(0, 12)} of ${branch}`, { sha: push.after }),
    messages: [
      {
        type: 'push',
        repo: repo.url,
        ref: push.ref,
        sha: push.after,
        paths,
        reason: 'push',
        receivedAt: new Date().toISOString(),
      },
    ],
  };
}

/** Turns a verified delivery into queue messages and the reply for GitHub. */
export function routeGithubEvent(delivery: GithubDelivery, tracked: readonly TrackedRepo[]): Routed {
  switch (delivery.event) {
    case 'ping':
      return { response: reply(200, 'pong'), messages: [] };
    case 'push':
      return routePush(delivery.payload as PushEvent, tracked);
    case 'issue_comment':
      return routeComment(delivery.payload as CommentEvent, tracked);
    case 'pull_request':
      return routePullRequest(delivery.payload as PullRequestEvent, tracked);
    default:
      if (!KNOWN_EVENTS.has(delivery.event))
        return { response: reply(400, `unknown event ${delivery.event}`), messages: [] };
      return { response: reply(202, `ignored: tidegate does not act on ${delivery.event} events`), messages: [] };
  }
}
