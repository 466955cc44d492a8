import type { Revision } from './sync.js';

/** What every queue message may carry. */
interface MessageBase {
  /** How often it was handed back without failing (its target busy, no time left to start it): part of its deduplication id. */
  deferrals?: number;
}

/** A push to a tracked repository (or a poll that found its head): which targets it touches is decided by the worker. */
export interface PushMessage extends MessageBase {
  type: 'push';
  repo: string;
  /** Full ref, e.g. refs/heads/main. */
  ref: string;
  sha: string;
  /** Paths the push changed; null means "consider every target" (polls, forced pushes, truncated lists). */
  paths: string[] | null;
  reason: 'push' | 'poll';
  /** For polls: the drift-interval bucket, so a poll re-syncs an unchanged revision once per interval. */
  bucket?: number;
  /** When the webhook was received (ISO): push→applied latency is measured from here. */
  receivedAt?: string | undefined;
  /** Only these targets (and what depends on them): an operator's `tidegate reconcile <target>`. */
  targets?: string[] | undefined;
}

/** Sync one target (or a dependency chain of targets, in order) to one exact revision. */
export interface SyncMessage extends MessageBase {
  type: 'sync';
  repo: string;
  /** The target, or the first of the chain. */
  target: string;
  /** Targets connected by dependsOn, in dependency order (target first): synced in one run, a dependant never before its dependency. */
  chain?: string[];
  /** The dependsOn set of the targets (its first target), when not `target`: the message group of every sync of the set. */
  set?: string;
  revision: Revision;
  reason: string;
  bucket?: number;
  /** When the push that queued it was received (ISO), for push→applied latency. */
  receivedAt?: string | undefined;
}

/** A target this repository owns on a cluster left tidegate.yaml: prune its objects and archive its state. */
export interface RemoveMessage extends MessageBase {
  type: 'remove';
  repo: string;
  cluster: string;
  target: string;
  /** The dependsOn set the name is synced in at that revision (moved to another cluster), when not `target`: the message group of its syncs. */
  set?: string;
  /** The revision whose tidegate.yaml no longer declares it (the branch head is checked again before removing). */
  revision: Revision;
  /** Keeps a removal asked for again (a poll's interval, an approval) apart from an earlier one at the same revision. */
  bucket?: number;
}

/** A new image (tag and/or digest) was pushed to a registry. */
export interface ImageMessage extends MessageBase {
  type: 'image';
  /** Registry host, e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com */
  registry: string;
  repository: string;
  tag?: string | undefined;
  digest?: string | undefined;
  /** Where it came from; `poll` is the scheduled fallback asking the registry itself. */
  source: 'ecr' | 'distribution' | 'harbor' | 'dockerhub' | 'poll';
  bucket?: number;
}

/** Run the reload pass over a cluster's namespaces in scope (catches out-of-band ConfigMap/Secret changes). */
export interface ReloadMessage extends MessageBase {
  type: 'reload';
  cluster: string;
  bucket: number;
}

/** A `/tidegate approve [target …]` comment on a pull request (verified webhook; who may approve is checked by the worker). */
export interface ApproveMessage extends MessageBase {
  type: 'approve';
  repo: string;
  pullRequest: number;
  commenter: string;
  /** Named targets, or empty: every target of the repository with a manual gate, and those held now. */
  targets: string[];
  /** The revision approved (a SHA or a prefix of at least 7 characters); default: the merge commit of the merged pull request commented on. */
  revision?: string | undefined;
  /** The comment's id (deduplication). */
  comment: number;
  /** `/tidegate approve reload [target …]`: approves the reloads those targets' reload.approve holds, not a revision. */
  reload?: boolean | undefined;
}

/**
 * Preview what merging a pull request would do: queued when it is opened or pushed to (head: the
 * commit the event named), or by a `/tidegate preview` comment (requestedBy, comment). The pull
 * request itself (head, base, author, fork) is read from GitHub when the preview runs.
 */
export interface PreviewMessage extends MessageBase {
  type: 'preview';
  repo: string;
  pullRequest: number;
  head?: string | undefined;
  requestedBy?: string | undefined;
  comment?: number | undefined;
  /** Tear the pull request's preview environments down: it was closed or merged, or someone said `/tidegate preview stop`. */
  stop?: 'closed' | 'command' | undefined;
  /** A waiting preview woken because a slot freed (keeps its copy apart from the event that queued it first). */
  bucket?: number | undefined;
}

/** The scheduled pass over a cluster's preview environments: tear down expired ones, start waiting ones when a slot frees. */
export interface PreviewSweepMessage extends MessageBase {
  type: 'previews';
  cluster: string;
  bucket: number;
}

export type QueueMessage =
  | PushMessage
  | SyncMessage
  | RemoveMessage
  | ImageMessage
  | ReloadMessage
  | ApproveMessage
  | PreviewMessage
  | PreviewSweepMessage;
