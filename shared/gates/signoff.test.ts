import { describe, expect, it } from 'vitest';
import { strictest } from './policy.js';
import { judgeRange, type JudgedCommit, type RangeToJudge } from './signoff.js';
import type { Approval } from '../model/index.js';

const gate = (policy: { approvals?: number; manual?: boolean }) =>
  strictest([
    {
      from: 'tidegate.yaml',
      policy: { approvals: policy.approvals ?? 0, manual: policy.manual ?? false, windows: [] },
    },
  ]);

/** Commits a → b → c (c the candidate), each covered by the approvals naming it or a later one. */
const order = ['a', 'b', 'c'];
const range = (
  commits: JudgedCommit[],
  approvals: Approval[],
  g = gate({ approvals: 1 }),
  extra: Partial<RangeToJudge> = {},
): RangeToJudge => ({
  gate: g,
  target: 'prod',
  candidate: 'c',
  base: 'base',
  commits,
  forward: true,
  truncated: false,
  approvals,
  covers: (sha) => new Set(order.slice(0, order.indexOf(sha) + 1)),
  ...extra,
});
const commit = (sha: string, extra: Partial<JudgedCommit> = {}): JudgedCommit => ({
  sha,
  by: 'mallory',
  involved: ['mallory'],
  relevant: true,
  unreviewed: 'pushed straight to main, not through a merged pull request',
  ...extra,
});
const approval = (by: string, sha = 'c', via: Approval['via'] = 'comment'): Approval => ({ sha, by, at: 't', via });

describe('judgeRange: which commits of a change are signed off', () => {
  it.each([
    ['no gate: nothing to judge', range([commit('c')], [], gate({})), true],
    ['a direct push, no approval', range([commit('c')], []), false],
    ['a direct push approved by someone who made none of it', range([commit('c')], [approval('carol')]), true],
    ['a direct push approved by its own pusher', range([commit('c')], [approval('mallory')]), false],
    [
      'an approval naming an earlier commit covers nothing after it',
      range([commit('a'), commit('c')], [approval('carol', 'a')]),
      false,
    ],
    [
      'a commit that changes nothing the target renders needs nothing',
      range([commit('c', { relevant: false })], []),
      true,
    ],
    [
      'reviewers of the pull request that brought it',
      range([commit('c', { pullRequest: { number: 1, approvers: ['carol'], notCounted: [] } })], []),
      true,
    ],
    [
      'two approvals needed, one review and one comment by another',
      range(
        [commit('c', { pullRequest: { number: 1, approvers: ['carol'], notCounted: [] } })],
        [approval('bob')],
        gate({ approvals: 2 }),
      ),
      true,
    ],
    [
      'two approvals needed, the same person twice',
      range(
        [commit('c', { pullRequest: { number: 1, approvers: ['carol'], notCounted: [] } })],
        [approval('carol')],
        gate({ approvals: 2 }),
      ),
      false,
    ],
    [
      'manual: a review is no manual approval',
      range(
        [commit('c', { pullRequest: { number: 1, approvers: ['carol'], notCounted: [] } })],
        [],
        gate({ manual: true }),
      ),
      false,
    ],
    [
      'manual: the command line counts, whoever made it',
      range([commit('c')], [approval('mallory', 'c', 'cli')], gate({ manual: true })),
      true,
    ],
    [
      'who pushed it cannot be told: no comment counts',
      range([commit('c', { pusherUnknown: true })], [approval('carol')]),
      false,
    ],
    [
      'who pushed it cannot be told: the command line counts',
      range([commit('c', { pusherUnknown: true })], [approval('ops', 'c', 'cli')]),
      true,
    ],
    [
      'a rewritten branch: only an approval of the candidate itself',
      range([], [approval('carol', 'b')], gate({ approvals: 1 }), { forward: false }),
      false,
    ],
    [
      'a rewritten branch approved at the candidate',
      range([], [approval('carol', 'c')], gate({ approvals: 1 }), { forward: false }),
      true,
    ],
    [
      'a range longer than listed, approved at the candidate',
      range(
        [commit('c', { pullRequest: { number: 1, approvers: ['carol'], notCounted: [] } })],
        [approval('bob', 'c')],
        gate({ approvals: 1 }),
        { truncated: true },
      ),
      true,
    ],
  ])('%s', (_, r, signed) => {
    const verdict = judgeRange(r);
    expect(verdict.missing === undefined).toBe(signed);
  });

  it('the hold names each commit not signed off with who made it, and how to approve', () => {
    const verdict = judgeRange(
      range([commit('a'), commit('c', { by: 'bob (pushed by mallory)' })], [approval('mallory')]),
    );
    expect(verdict.missing).toBe(
      '2 change(s) since base not signed off (1 approval(s) needed, tidegate.yaml): a by mallory: pushed straight to main, not through a merged pull request; 0 of 1 approval(s); c by bob (pushed by mallory): pushed straight to main, not through a merged pull request; 0 of 1 approval(s); approvals not counted (their approver made a commit they cover): mallory; approve with `tidegate approve prod c` or a `/tidegate approve c prod` comment by someone who made none of them',
    );
  });
});
