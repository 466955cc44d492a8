import type { ChangeAction, ChangeSet } from './changes.js';
import type { ObjectRef } from './objects.js';

/** A commit of the source repository, and the ref it was reached by. */
export interface Revision {
  /** The full ref, e.g. refs/heads/main or refs/tags/v1.2.0; empty for a bare commit. */
  ref: string;
  sha: string;
  /** The annotated tag object the ref named when it was resolved (signature checks read this one, never the ref again). */
  tag?: string | undefined;
}

/** Text cut to a length limit (GitHub's fields, history entries), ending in an ellipsis when cut. */
export const clip = (text: string, max: number): string => (text.length > max ? `${text.slice(0, max - 1)}…` : text);

/** Bounds of what one history entry may carry: the state of a target must fit one ConfigMap. */
export const ENTRY_LIMITS = {
  commitAuthor: 200,
  commitMessage: 200,
  error: 2000,
  heldFor: 1000,
  pinReason: 500,
} as const;

/**
 * The revision of a local working tree (`tidegate sync --dir`): its HEAD commit and a suffix, `+worktree` for
 * a clean tree, `+dirty` for one with uncommitted changes (`--allow-dirty`), or `worktree` outside git. Such a
 * revision is not a commit: nothing can fetch it again, and no approval covers it.
 */
export const WORKTREE_SUFFIX = '+worktree';
export const DIRTY_SUFFIX = '+dirty';
const LOCAL_REVISION = /^(?:[0-9a-f]{4,64}\+(?:worktree|dirty)|worktree)$/;

/** Whether a revision's SHA names a local working tree rather than a commit (clean or dirty). */
export const isLocalRevision = (sha: string): boolean => LOCAL_REVISION.test(sha);

/** Whether a revision's SHA names a working tree with uncommitted changes. */
export const isDirtyRevision = (sha: string): boolean => sha.endsWith(DIRTY_SUFFIX);

/** A SHA for display: 12 characters, with the suffix of a local working tree kept (`+worktree`, `+dirty`). */
export const shortSha = (sha: string): string => {
  const plus = sha.indexOf('+');
  return plus < 0 ? sha.slice(0, 12) : `${sha.slice(0, Math.min(plus, 12))}${sha.slice(plus)}`;
};

export const formatRevision = (r: Revision): string =>
  r.ref ? `${r.ref.replace(/^refs\/(heads|tags)\//, '')}@${shortSha(r.sha)}` : shortSha(r.sha);

export type HealthStatus = 'healthy' | 'progressing' | 'failed' | 'unknown';

export interface ObjectHealth {
  ref: ObjectRef;
  status: HealthStatus;
  message: string;
}

export type SyncOutcome = 'applied' | 'unchanged' | 'failed' | 'suspended' | 'progressing' | 'pinned' | 'held';

/** A chart from a Helm repository as a sync rendered it: the version its range resolved to, and the archive's digest. */
export interface ChartVersion {
  name: string;
  version: string;
  digest: string;
}

/** A Helm hook a sync ran: at which point, how it ended, and whether its delete policy removed it after. */
export interface HookRecord {
  phase: string;
  ref: ObjectRef;
  outcome: 'succeeded' | 'failed';
  deleted?: boolean;
  message?: string;
}

export interface SyncResult {
  target: string;
  /** The repository chart this sync rendered (targets with `chart:`). */
  chart?: ChartVersion;
  revision: Revision;
  outcome: SyncOutcome;
  changeSet: ChangeSet;
  health: { status: HealthStatus; notReady: ObjectHealth[] };
  /** Workloads rolled by the reload pass after apply, and the ConfigMaps/Secrets that changed. */
  reloads?: Array<{ workload: ObjectRef; sources: string[] }>;
  /** Reloads of this target's workloads a reload policy holds (notify, approve, a window); fresh: held first by this sync. */
  reloadsHeld?: Array<{
    workload: ObjectRef;
    sources: string[];
    digest: string;
    kind: 'notify' | 'approval' | 'window';
    reason: string;
    fresh?: boolean;
  }>;
  /** The error that ended the sync, as a message (no secret values). */
  error?: string;
  /** What a reader should know about how the result was made (a chart rendered without lookup). */
  notes?: string[];
  /** The chart's hooks this sync ran, in order (never part of the inventory). */
  hooks?: HookRecord[];
  /** Set when a failed health check rolled the target back to its last healthy revision. */
  rolledBackTo?: Revision;
  /** Outcome "held": what the gate waits for (the change set is then the plan). */
  heldFor?: string;
  /** The sign-offs that let this revision through its gate. */
  approvals?: Approval[];
  /** This revision was recorded as still progressing before; now its rollout has settled (its status is reported again). */
  settled?: boolean;
  /** The same outcome of the same revision was recorded before (a poll's re-sync): nothing new to tell anyone. */
  repeat?: boolean;
  /** The last recorded sync of this revision ended the same way (progressing counts as applied): no news to notify. */
  seen?: boolean;
  startedAt: string;
  durationMs: number;
}

/** How far one sync has come (for a progress line on a terminal). */
export interface SyncProgress {
  target: string;
  phase: 'render' | 'plan' | 'apply' | 'health';
  /** apply: objects applied so far, of total. */
  done?: number;
  total?: number;
  /** health: what is not ready yet, and why. */
  waitingFor?: ObjectHealth[];
}

/** One history entry, as recorded in the cluster. */
/** The commit a revision is: who wrote it and what it says (first line). */
export interface CommitInfo {
  author: string;
  message: string;
}

/** A target held at one revision (after a rollback): pushes and polls change nothing until released. */
export interface Pin {
  revision: Revision;
  reason: string;
  at: string;
  by: string;
}

/** One history entry, as recorded in the cluster. */
export interface HistoryEntry {
  revision: Revision;
  /** The repository chart rendered (its resolved version). */
  chart?: ChartVersion;
  commit?: CommitInfo | undefined;
  /** A rollback (by a person or automatic) rather than a sync of what Git's branch says. */
  kind?: 'sync' | 'rollback' | 'auto-rollback' | 'removal';
  outcome: SyncOutcome;
  health: HealthStatus;
  counts: Record<ChangeAction, number>;
  startedAt: string;
  durationMs: number;
  error?: string;
  /** Who asked (CLI user, approver). */
  by?: string;
  /** A rollback to a revision this target never applied, asked for with --force. */
  forced?: boolean;
  heldFor?: string;
  approvals?: Approval[];
  /** Objects whose out-of-band changes this sync reverted (drift corrected). */
  drift?: number;
  /** Workloads the reload pass after apply rolled. */
  reloads?: number;
  /** From the push webhook's arrival to the end of this sync (pushes only). */
  latencyMs?: number;
}

/** A sign-off: a manual approval of a revision, or an approving review of the pull request that brought it. */
export interface Approval {
  sha: string;
  by: string;
  at: string;
  via: 'cli' | 'comment' | 'review';
}
