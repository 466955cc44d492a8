import { cachedGitdir, fetchTagObject, verifyRevision } from '../source/index.js';
import type { TargetSpec, VerifyMode } from '../config/index.js';
import { evaluateGate, isOpen, signedOff, strictest, type GateSource, type GateVerdict } from '../gates/index.js';
import { repoName } from '../github/index.js';
import type { Revision } from '../model/index.js';
import type { TargetState } from '../state/index.js';
import type { EngineContext } from './context.js';

function gateSources(ctx: EngineContext, spec: TargetSpec, state: TargetState): GateSource[] {
  const floor = ctx.floor?.(spec.cluster);
  const sources: GateSource[] = [{ from: 'tidegate.yaml', policy: spec.gate }];
  if (state.gate && state.lastApplied)
    sources.push({
      from: `tidegate.yaml at the last applied ${state.lastApplied.sha.slice(0, 12)}`,
      policy: state.gate,
    });
  if (floor) sources.push({ from: `the floor of cluster ${spec.cluster}`, policy: floor });
  return sources;
}

/**
 * The target's gate: the strictest of its tidegate.yaml at this revision, at the last applied
 * revision (so a commit cannot lower the gate it is judged by) and the cluster's floor. Sign-offs
 * are given once per revision: the revision already applied is judged by the change windows only.
 */
export function gateOf(
  ctx: EngineContext,
  spec: TargetSpec,
  revision: Revision,
  url: string | undefined,
): (state: TargetState) => Promise<GateVerdict> {
  return async (state) => {
    const sources = gateSources(ctx, spec, state);
    // The revision that runs now passed its sign-offs when it was applied: re-syncs of it are not held for them again.
    const gate = state.lastApplied?.sha === revision.sha ? signedOff(strictest(sources)) : strictest(sources);
    if (isOpen(gate)) return { approvals: [] };
    const github = url ? ctx.github?.(url) : undefined;
    return evaluateGate({
      gate,
      revision,
      now: ctx.now?.() ?? new Date(),
      manualApprovals: state.approvals ?? [],
      github: github && url ? { client: github, repo: repoName(url) } : undefined,
      verify: url ? (mode, names) => verifySignatures(ctx, url, revision, mode, names) : undefined,
    });
  };
}

/** The revision's signatures against the named trusted keys; why they are not trusted, or nothing. */
async function verifySignatures(
  ctx: EngineContext,
  url: string,
  revision: Revision,
  mode: VerifyMode,
  names: string[],
): Promise<string | undefined> {
  const keys = (await ctx.trustedKeys?.(names)) ?? [];
  if (keys.length === 0)
    return `none of the trusted keys ${names.join(', ')} is configured (deploy-time setting trustedKeys)`;
  const src = ctx.gitSource(url);
  return (
    await verifyRevision(cachedGitdir(src, ctx.settings.cacheDir), revision, mode, keys, (r) =>
      fetchTagObject(src, ctx.settings.cacheDir, r),
    )
  ).problem;
}
