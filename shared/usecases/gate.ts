import { cachedGitdir, fetchTagObject, rangeUpTo, verifyRevision, type GitSource } from '../source/index.js';
import type { GatePolicy, TargetSpec, VerifyMode } from '../config/index.js';
import {
  evaluateGate,
  isOpen,
  judgeRange,
  strictest,
  windowHold,
  type EffectiveGate,
  type GateSource,
  type RangeVerdict,
} from '../gates/index.js';
import {
  TargetOwnedElsewhereError,
  isDirtyRevision,
  isPreviewTarget,
  normaliseRepoUrl,
  redactUrl,
  type Approval,
  type Revision,
} from '../model/index.js';
import { readTargetState, statesOfRepo, type JudgedFrom, type TargetState } from '../state/index.js';
import type { TargetGate } from '../sync/index.js';
import { renderInputs } from '../render/index.js';
import { githubFor, sourceFor, type EngineContext } from './context.js';
import { CONFIG_FILE, trackedBranch } from './repo-config.js';
import { judgeCommits, onlyApprovers } from './signoff.js';

/** Why a gate that asks for signatures, approvals or a manual approval holds a working tree with uncommitted changes. */
const DIRTY_HOLD =
  'the working tree has uncommitted changes (+dirty): they are in no commit, so no signature, review or approval covers them; commit and push them';

type GateChecks = Pick<Parameters<typeof evaluateGate>[0], 'verify' | 'range'>;

/** The checks of a gate for a dirty working tree: no signature and no sign-off of its commits covers it. */
const DIRTY_CHECKS: GateChecks = {
  verify: () => Promise.resolve(DIRTY_HOLD),
  range: () => Promise.resolve({ missing: DIRTY_HOLD, approvals: [] }),
};

/** Inputs a state keeps at most (a target reading more is taken to read everything). */
const INPUTS_LIMIT = 200;

function gateSources(
  ctx: EngineContext,
  cluster: string,
  policy: GatePolicy | undefined,
  state: TargetState,
): GateSource[] {
  const floor = ctx.floor?.(cluster);
  const sources: GateSource[] = policy ? [{ from: 'tidegate.yaml', policy }] : [];
  const last = state.signedOff?.revision ?? state.lastApplied;
  if (state.gate && last)
    sources.push({ from: `tidegate.yaml at the last signed-off ${last.sha.slice(0, 12)}`, policy: state.gate });
  if (floor) sources.push({ from: `the floor of cluster ${cluster}`, policy: floor });
  return sources;
}

/** The approvers no change can edit: the floor's, else those of tidegate.yaml as last signed off. */
export const trustedApprovers = (ctx: EngineContext, cluster: string, state: TargetState): GatePolicy['approvers'] =>
  ctx.floor?.(cluster)?.approvers ?? (state.signedOff || state.lastApplied ? state.gate?.approvers : undefined);

/** The revision a target's change is judged from: its last signed-off revision (before that state field existed: the last applied). */
const baseOf = (state: TargetState): Revision | undefined => state.signedOff?.revision ?? state.lastApplied;

/** Outcomes after which a revision ran on the cluster. */
const RAN = new Set(['applied', 'unchanged', 'progressing']);

/**
 * Where the first change of a target is judged from: the newest revision its repository applied on
 * the cluster (any target) other than the candidate itself, or, when nothing else of the repository
 * was applied there, the candidate as a whole.
 */
async function firstJudgedFrom(
  ctx: EngineContext,
  cluster: string,
  repo: string,
  self: string,
  candidate: Revision,
): Promise<JudgedFrom> {
  const states = await statesOfRepo(await ctx.connect(cluster), repo);
  const applied = states
    .filter((s) => s.target !== self && !isPreviewTarget(s.target))
    .flatMap((s) => s.state.history)
    .filter((h) => h.kind !== 'removal' && RAN.has(h.outcome) && h.revision.sha !== candidate.sha)
    .sort((a, b) => b.startedAt.localeCompare(a.startedAt))[0];
  return applied ? { exclude: [applied.revision.sha] } : { exclude: [], first: candidate.sha };
}

interface Judged {
  verdict: RangeVerdict;
  /** The commits of the range (approvals naming them are used up when the change applies). */
  commits: string[];
}

/** Judges the commits of one change against a gate's approvals and manual approvals. */
async function judgeChange(
  ctx: EngineContext,
  req: {
    gate: EffectiveGate;
    target: string;
    url: string;
    repo?: string | undefined;
    branch: string;
    candidate: Revision;
    base: Revision | undefined;
    judgedFrom: JudgedFrom | undefined;
    inputs: readonly string[];
    approvals: readonly Approval[];
    /** Who may sign off, from a source the change cannot edit (else the candidate's list, which can only narrow). */
    approvers: GatePolicy['approvers'];
  },
): Promise<Judged> {
  const exclude = req.base ? [req.base.sha] : (req.judgedFrom?.exclude ?? []);
  const { range, commits: all } = await judgeCommits(ctx, {
    url: req.url,
    repo: req.repo,
    branch: req.branch,
    candidate: req.candidate,
    exclude,
    first: req.base ? undefined : req.judgedFrom?.first,
    inputs: req.inputs,
  });
  const commits = await onlyApprovers(githubFor(ctx, req.repo, req.url), all, req.approvers);
  const verdict = judgeRange({
    gate: req.gate,
    target: req.target,
    candidate: req.candidate.sha,
    base: req.base?.sha,
    commits,
    forward: range.forward,
    truncated: range.truncated,
    approvals: req.approvals,
    covers: (sha) => rangeUpTo(range, sha),
  });
  return { verdict, commits: range.commits.map((c) => c.sha) };
}

export interface GateRequest {
  /** The GitOps repository (tidegate.yaml) and its revision. */
  repo: string | undefined;
  config: Revision;
  /** The checkout of the target's files: the GitOps checkout, or its own source's. */
  dir: string;
  /** The checkout of the GitOps repository. */
  configDir: string;
}

/** The paths a target renders at a revision, with tidegate.yaml and the files declaring it (Flux objects). */
export const targetInputs = (spec: TargetSpec, dir: string): string[] =>
  limited([CONFIG_FILE, ...renderInputs(dir, spec), ...(spec.origin?.inputs ?? [])]);

/** The changes a target's gate judges: the GitOps repository's (tidegate.yaml, and the target's files when they are there), and its own source's when that is another repository or ref. */
function changesToJudge(
  ctx: EngineContext,
  spec: TargetSpec,
  revision: Revision,
  req: GateRequest & { repo: string },
  state: TargetState,
  from: JudgedFrom | undefined,
): Array<Omit<Parameters<typeof judgeChange>[1], 'gate' | 'target' | 'approvals' | 'approvers'>> {
  const base = baseOf(state);
  const recorded = state.signedOff?.inputs ?? [];
  const branch = trackedBranch(ctx, req.repo);
  if (req.dir === req.configDir)
    return [
      {
        url: req.repo,
        branch,
        candidate: req.config,
        base,
        judgedFrom: from,
        inputs: [...targetInputs(spec, req.dir), ...recorded],
      },
    ];
  const config = state.signedOff?.config;
  return [
    {
      url: req.repo,
      branch,
      candidate: req.config,
      base: config ? { ref: req.config.ref, sha: config } : undefined,
      judgedFrom: from,
      inputs: [CONFIG_FILE, ...(spec.origin?.inputs ?? [])],
    },
    {
      url: spec.source.url ?? req.repo,
      repo: req.repo,
      branch: revision.ref.replace(/^refs\/heads\//, ''),
      candidate: revision,
      base,
      judgedFrom: base ? undefined : { exclude: [], first: revision.sha },
      inputs: [...renderInputs(req.dir, spec), ...recorded],
    },
  ];
}

/**
 * A target's gate: its change (every commit since its last signed-off revision that changes what
 * it renders, see judgeCommits) judged by the strictest of its tidegate.yaml at this revision, at
 * its last signed-off revision, and the cluster's floor; and the objects it would take from other
 * targets, judged by their owners' gates.
 */
export function gateOf(ctx: EngineContext, spec: TargetSpec, revision: Revision, req: GateRequest): TargetGate {
  const sameSource = req.dir === req.configDir;
  const url = spec.source.url ?? req.repo;
  const inputs = sameSource
    ? targetInputs(spec, req.dir)
    : limited([CONFIG_FILE, ...(spec.origin?.inputs ?? []), ...renderInputs(req.dir, spec)]);
  return {
    inputs,
    config: sameSource ? undefined : req.config.sha,
    judge: async (state) => {
      const gate = strictest(gateSources(ctx, spec.cluster, spec.gate, state));
      const base = baseOf(state);
      const repo = req.repo;
      const first =
        base || state.judgedFrom || !repo
          ? undefined
          : await firstJudgedFrom(ctx, spec.cluster, repo, spec.name, req.config);
      const consumed: string[] = [];
      const range = async (): Promise<RangeVerdict> => {
        if (!repo)
          return {
            missing: 'the working tree has no repository to list the commits of its change from',
            approvals: [],
          };
        const parts: Judged[] = [];
        for (const change of changesToJudge(ctx, spec, revision, { ...req, repo }, state, state.judgedFrom ?? first))
          parts.push(
            await judgeChange(ctx, {
              ...change,
              gate,
              target: spec.name,
              approvals: state.approvals ?? [],
              approvers: trustedApprovers(ctx, spec.cluster, state) ?? spec.gate.approvers,
            }),
          );
        consumed.push(...parts.flatMap((p) => p.commits));
        const missing = parts.map((p) => p.verdict.missing).filter(Boolean);
        return missing.length
          ? { missing: missing.join('; '), approvals: [] }
          : { approvals: parts.flatMap((p) => p.verdict.approvals) };
      };
      // A working tree with uncommitted changes (<sha>+dirty) is in no commit: nothing signed or reviewed it,
      // and the same name stands for whatever the tree holds, so it is never "unchanged" since a sign-off.
      const dirty = isDirtyRevision(revision.sha) || isDirtyRevision(req.config.sha);
      const verify: GateChecks['verify'] = url
        ? (mode, names) => verifySignatures(ctx, sourceFor(ctx, req.repo, url), revision, mode, names)
        : undefined;
      const verdict = await evaluateGate({
        gate,
        now: ctx.now?.() ?? new Date(),
        unchanged: !dirty && base?.sha === revision.sha && (sameSource || state.signedOff?.config === req.config.sha),
        ...(dirty ? DIRTY_CHECKS : { verify, range }),
      });
      return { ...verdict, ...(first ? { judgedFrom: first } : {}), consumed };
    },
    takeovers: (owners, taker, signal) =>
      judgeTakeovers(
        ctx,
        spec,
        req,
        owners,
        inputs,
        { base: baseOf(taker.state), judgedFrom: taker.state.judgedFrom ?? taker.judgedFrom },
        signal,
      ),
  };
}

const limited = (inputs: readonly string[]): string[] => {
  const unique = [...new Set(inputs)];
  return unique.length > INPUTS_LIMIT ? ['.'] : unique;
};

/**
 * Objects a sync would take over from other targets (by the owner labels of the live objects).
 * Another repository's target: refused. One of this repository whose gate is open or that was
 * removed: taken. A gated one: held until that gate signs the change off (the commits since that
 * target's last signed-off revision that change what either target renders, with the approvals
 * recorded for it).
 */
async function judgeTakeovers(
  ctx: EngineContext,
  spec: TargetSpec,
  req: GateRequest,
  owners: ReadonlyMap<string, string[]>,
  inputs: readonly string[],
  taker: { base?: Revision | undefined; judgedFrom?: JudgedFrom | undefined },
  signal?: AbortSignal,
): Promise<string | undefined> {
  const client = await ctx.connect(spec.cluster);
  const holds: string[] = [];
  for (const [owner, objects] of owners) {
    if (isPreviewTarget(owner)) continue;
    const state = await readTargetState(client, owner, signal);
    if (!state.repo || state.removed) continue;
    const what = `${objects.length} object(s) of target ${owner} (${objects.slice(0, 3).join(', ')}${objects.length > 3 ? ', …' : ''})`;
    if (!req.repo || normaliseRepoUrl(state.repo) !== normaliseRepoUrl(req.repo))
      throw new TargetOwnedElsewhereError(
        `target ${spec.name} would take over ${what}, which ${redactUrl(state.repo)} applies: a target never takes objects from another repository's target`,
      );
    const hold = await ownerHold(ctx, {
      cluster: spec.cluster,
      owner,
      state,
      repo: req.repo,
      candidate: req.config,
      taker: { name: spec.name, from: taker, inputs },
    });
    if (hold) holds.push(`takes over ${what}, whose gate ${hold}`);
  }
  return holds.length ? holds.join('; ') : undefined;
}

/**
 * Why the gate of a target as last signed off (with the cluster's floor) does not sign off a change
 * of its objects made elsewhere (taken over by another target, or pruned as the target left
 * tidegate.yaml); undefined when it does.
 */
export async function ownerHold(
  ctx: EngineContext,
  req: {
    cluster: string;
    owner: string;
    state: TargetState;
    repo: string;
    candidate: Revision;
    /** The target taking the objects over: its own commits since it last signed off (or was judged from) are part of the change. */
    taker?: {
      name: string;
      from: { base?: Revision | undefined; judgedFrom?: JudgedFrom | undefined };
      inputs: readonly string[];
    };
  },
): Promise<string | undefined> {
  const gate = strictest(gateSources(ctx, req.cluster, undefined, req.state));
  if (isOpen(gate)) return undefined;
  const windows = windowHold(gate, ctx.now?.() ?? new Date());
  if (windows) return `holds: ${windows}`;
  if (gate.approvals.count === 0 && !gate.manual.required) return undefined;
  const common = {
    gate,
    target: req.owner,
    url: req.repo,
    branch: trackedBranch(ctx, req.repo),
    candidate: req.candidate,
    approvals: req.state.approvals ?? [],
    approvers: trustedApprovers(ctx, req.cluster, req.state),
  };
  // The owner's side: what moved its objects in its own files or tidegate.yaml since it last signed off.
  const parts = [
    await judgeChange(ctx, {
      ...common,
      base: baseOf(req.state),
      judgedFrom: req.state.judgedFrom,
      inputs: [CONFIG_FILE, ...(req.state.signedOff?.inputs ?? [])],
    }),
  ];
  // The taker's side: the owner's signed-off revision may have moved past the taker's commits (they change nothing the owner renders).
  if (req.taker)
    parts.push(
      await judgeChange(ctx, {
        ...common,
        base: req.taker.from.base,
        judgedFrom: req.taker.from.judgedFrom,
        inputs: req.taker.inputs,
      }),
    );
  const missing = parts.map((p) => p.verdict.missing).filter(Boolean);
  return missing.length ? missing.join('; ') : undefined;
}

/** The revision's signatures against the named trusted keys; why they are not trusted, or nothing. */
async function verifySignatures(
  ctx: EngineContext,
  src: GitSource,
  revision: Revision,
  mode: VerifyMode,
  names: string[],
): Promise<string | undefined> {
  const keys = (await ctx.trustedKeys?.(names)) ?? [];
  if (keys.length === 0)
    return `none of the trusted keys ${names.join(', ')} is configured (deploy-time setting trustedKeys)`;
  return (
    await verifyRevision(cachedGitdir(src, ctx.settings.cacheDir), revision, mode, keys, (r) =>
      fetchTagObject(src, ctx.settings.cacheDir, r),
    )
  ).problem;
}
