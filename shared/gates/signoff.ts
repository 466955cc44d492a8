import { clip, type Approval } from '../model/index.js';
import type { EffectiveGate } from './policy.js';

/** A commit of the range a gate judges, with what is known of who made it and who signed it off. */
export interface JudgedCommit {
  sha: string;
  /** How a hold names it: the author (and pusher) as far as known. */
  by: string;
  /** Everyone who wrote, committed or pushed it (GitHub logins; git identities without GitHub). */
  involved: readonly string[];
  /** It changes a file the target renders, or tidegate.yaml: part of the target's change. */
  relevant: boolean;
  /** Who pushed it cannot be told (the branch's activity does not reach back to it): no approval but the command line's counts for it. */
  pusherUnknown?: boolean | undefined;
  /** The merged pull request that brought it: who approved its head as merged (and may), and who was not counted and why. */
  pullRequest?: { number: number; approvers: readonly string[]; notCounted: readonly string[] } | undefined;
  /** Why no pull request covers it (pushed straight to the branch, a merge GitHub did not make, no GitHub API). */
  unreviewed?: string | undefined;
}

/** Everything one gate judges: its policy, the commits since its last signed-off revision, the approvals recorded for it. */
export interface RangeToJudge {
  gate: EffectiveGate;
  target: string;
  candidate: string;
  /** The last signed-off revision (undefined before the first). */
  base?: string | undefined;
  commits: readonly JudgedCommit[];
  /** The base is an ancestor of the candidate (the branch was not rewritten or moved back). */
  forward: boolean;
  /** The range holds more commits than were listed. */
  truncated: boolean;
  /** Approvals recorded for this target (manual: the CLI or a /tidegate approve comment), each naming a revision. */
  approvals: readonly Approval[];
  /** The commits of the range an approval of `sha` covers: that commit and its ancestors in the range. */
  covers: (sha: string) => ReadonlySet<string>;
}

export interface RangeVerdict {
  /** Why the change is not signed off (undefined: every commit of it is). */
  missing?: string;
  /** The sign-offs that count, for history. */
  approvals: Approval[];
}

const short = (sha: string): string => sha.slice(0, 12);
/** Unsigned commits a hold names one by one (the rest are counted). */
const LISTED = 4;

/** An approval counts for a commit it covers unless its approver wrote, committed or pushed a relevant commit it covers (the CLI is trusted as its cluster credentials). */
function eligible(a: Approval, r: RangeToJudge, covered: ReadonlySet<string>): boolean {
  if (a.via === 'cli') return true;
  return !r.commits.some((c) => c.relevant && covered.has(c.sha) && (c.pusherUnknown || c.involved.includes(a.by)));
}

interface Counted {
  a: Approval;
  covered: ReadonlySet<string>;
}

/** A rewritten history, or a range longer than was listed: only approvals of the candidate itself sign it off. */
function wholeRangeProblem(
  r: RangeToJudge,
  counted: readonly Counted[],
  signers: Map<string, Approval>,
): string | undefined {
  if (r.forward && !r.truncated) return undefined;
  const whole = counted.filter(({ a }) => a.sha === r.candidate).map(({ a }) => a);
  const need = Math.max(r.gate.approvals.count, r.gate.manual.required ? 1 : 0);
  for (const a of whole) signers.set(`${a.by}/${a.via}`, a);
  if (whole.length >= need) return undefined;
  const why = r.forward
    ? `more than ${r.commits.length} commits since ${short(r.base ?? '')}`
    : `the branch was rewritten or moved back: ${r.base ? short(r.base) : 'the last signed-off revision'} is not an ancestor of ${short(r.candidate)}`;
  return `${why}; ${need} approval(s) of ${short(r.candidate)} itself needed, ${whole.length} given`;
}

/** Why one commit of the change is not signed off (undefined: it is; its signers are added). */
function commitProblem(
  r: RangeToJudge,
  c: JudgedCommit,
  counted: readonly Counted[],
  signers: Map<string, Approval>,
): string | undefined {
  const count = r.gate.approvals.count;
  const reviews = c.pullRequest?.approvers ?? [];
  const manualBy = counted.filter(({ covered }) => covered.has(c.sha)).map(({ a }) => a);
  const people = new Set([...reviews, ...manualBy.map((a) => a.by)]);
  const why: string[] = [];
  if (count > 0 && people.size < count) {
    const have = `${people.size} of ${count} approval(s)${people.size ? ` (${[...people].join(', ')})` : ''}`;
    why.push(
      c.pullRequest
        ? `#${c.pullRequest.number}: ${have}${c.pullRequest.notCounted.length ? `; not counted: ${c.pullRequest.notCounted.join(', ')}` : ''}`
        : `${c.unreviewed ?? 'not through a merged pull request'}; ${have}`,
    );
  }
  if (r.gate.manual.required && manualBy.length === 0) why.push('no manual approval');
  if (why.length) return `${short(c.sha)} by ${c.by}: ${why.join('; ')}`;
  for (const u of reviews) signers.set(`${u}/review`, { sha: r.candidate, by: u, at: '', via: 'review' });
  for (const a of manualBy) signers.set(`${a.by}/${a.via}`, a);
  return undefined;
}

/** The hold: what the gate needs, how to give it, the commits not signed off (the first few), approvals that did not count. */
function holdMessage(r: RangeToJudge, problems: readonly string[], refusedBy: readonly string[]): string {
  const what = [
    r.gate.approvals.count > 0 ? `${r.gate.approvals.count} approval(s)` : '',
    r.gate.manual.required ? 'a manual approval' : '',
  ]
    .filter(Boolean)
    .join(' and ');
  const from = [...new Set([r.gate.approvals.from, r.gate.manual.from].filter(Boolean))].join(', ');
  const hint = `\`tidegate approve ${r.target} ${short(r.candidate)}\` or a \`/tidegate approve ${short(r.candidate)} ${r.target}\` comment by someone who made none of them`;
  const listed = problems.slice(0, LISTED).map((p) => clip(p, 200));
  const more = problems.length > LISTED ? `; and ${problems.length - LISTED} more` : '';
  const refused = refusedBy.length
    ? `; approvals not counted (their approver made a commit they cover): ${refusedBy.join(', ')}`
    : '';
  return clip(
    `${problems.length} change(s) since ${r.base ? short(r.base) : 'the start'} not signed off (${what} needed, ${from}): ${listed.join('; ')}${more}${refused}; approve with ${hint}`,
    1000,
  );
}

/**
 * Whether a gate's change is signed off: every commit of the range that changes what the target
 * renders needs, for `approvals: N`, N approvers (reviewers of the merged pull request's head that
 * brought it, or approvals naming a revision that contains it) and, for `manual`, an approval
 * naming a revision that contains it. Nobody counts for a commit they wrote, committed or pushed.
 * A rewritten history, or a range longer than was listed, is signed off only by approvals of the
 * candidate itself.
 */
export function judgeRange(r: RangeToJudge): RangeVerdict {
  if (r.gate.approvals.count === 0 && !r.gate.manual.required) return { approvals: [] };
  const signers = new Map<string, Approval>();
  const all = r.approvals.map((a) => ({ a, covered: r.covers(a.sha) }));
  const counted = all.filter(({ a, covered }) => eligible(a, r, covered));
  const refusedBy = [...new Set(all.filter((x) => !counted.includes(x) && x.covered.size > 0).map((x) => x.a.by))];
  const problems = [
    wholeRangeProblem(r, counted, signers),
    ...r.commits.filter((c) => c.relevant).map((c) => commitProblem(r, c, counted, signers)),
  ].filter((p): p is string => p !== undefined);
  return problems.length === 0
    ? { approvals: [...signers.values()] }
    : { missing: holdMessage(r, problems, refusedBy), approvals: [] };
}
