import { readTargetState, writeTargetState } from '../apply/index.js';
import type { TargetSpec } from '../config/index.js';
import { TidegateError, type Revision, type SyncResult } from '../model/index.js';
import { checkoutRevision, commitInfo } from '../source/index.js';
import { loadConfig } from './config-file.js';
import { headTarget } from './repo-config.js';
import type { EngineContext } from './context.js';
import { syncTarget } from './target-sync.js';

export interface RollbackRequest {
  repo: string;
  target: string;
  /** A full SHA, or a prefix of one in the target's history; default: the last healthy revision before the current one. */
  to?: string | undefined;
  by: string;
  kind?: 'rollback' | 'auto-rollback';
  reason?: string;
  signal?: AbortSignal | undefined;
}

/** The revision a rollback goes to: as asked (full SHA or a history prefix), or the last healthy one that is not the current one. */
function chooseRevision(history: ReadonlyArray<{ revision: Revision; health: string }>, current: Revision | undefined, to: string | undefined): Revision {
  if (to) {
    const known = [...history].reverse().find((h) => h.revision.sha.startsWith(to));
    if (known) return known.revision;
    if (/^[0-9a-f]{40}$/.test(to)) return { ref: 'refs/heads/main', sha: to };
    throw new TidegateError('RevisionUnknown', `revision ${to} is not in the target's history; give the full 40-character SHA`);
  }
  const healthy = [...history].reverse().find((h) => h.health === 'healthy' && h.revision.sha !== current?.sha);
  if (!healthy) throw new TidegateError('NoHealthyRevision', 'the history has no healthy revision other than the current one; give --to <revision>');
  return healthy.revision;
}

/**
 * Rolls a target back: re-renders that revision from Git (never from a stored copy), applies and
 * prunes it, and pins the target there. While pinned, pushes and polls change nothing.
 */
export async function rollback(ctx: EngineContext, req: RollbackRequest): Promise<SyncResult> {
  const { src, spec: current, client } = await headTarget(ctx, req.repo, req.target);
  const state = await readTargetState(client, req.target, req.signal);
  const revision = chooseRevision(state.history, state.lastApplied, req.to);
  const checkout = await checkoutRevision(src, revision, ctx.settings.cacheDir);
  // The target as that revision declared it (its path, render options), else as declared now.
  const spec: TargetSpec = loadConfig(checkout.dir).targets.find((t) => t.name === req.target) ?? current;
  return syncTarget({
    spec, dir: checkout.dir, revision, client, settings: ctx.settings, signal: req.signal,
    commit: await commitInfo(src, revision.sha, ctx.settings.cacheDir),
    rollback: { kind: req.kind ?? 'rollback', by: req.by, reason: req.reason ?? `rolled back to ${revision.sha.slice(0, 12)} by ${req.by}` },
    ...(ctx.logger ? { logger: ctx.logger } : {}),
  });
}

/** Lifts a target's pin; the next push or poll applies the branch again. */
export async function release(ctx: EngineContext, req: { repo: string; target: string }): Promise<boolean> {
  const { client } = await headTarget(ctx, req.repo, req.target);
  const state = await readTargetState(client, req.target);
  if (!state.pin) return false;
  await writeTargetState(client, req.target, { ...state, pin: undefined });
  return true;
}


