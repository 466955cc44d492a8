import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { ACTIVITY_FILE, run, startGitHub, type MergeMethod, type TestGitHub } from '../../devenv/index.js';
import { SYSTEM_NAMESPACE } from '../../shared/apply/index.js';
import { approve, release, rollback } from '../../shared/usecases/index.js';
import { readTargetState } from '../../shared/state/index.js';
import { testEnv, uniqueName } from '../helpers/env.js';
import { OWNER, gatedWorld, type World } from '../helpers/gates.js';

const TOKEN = 'ghp_gates_model_token';
const RUNS = Number(process.env['TIDEGATE_MODEL_RUNS'] ?? 50);
const SEED = Number(process.env['TIDEGATE_MODEL_SEED'] ?? 20261207);
const WRITERS = ['alice', 'bob', 'carol', 'mallory', 'tidegate-bot'];
const READERS = ['dave'];
const FORK_AUTHOR = 'frank';
const ABSENT = '(absent)';

/**
 * The sign-off invariant, as a model-based property test against the real apiserver, git server
 * and test GitHub. People with write access, reviewers, a read-only user, a fork's author and the
 * image bot act as they can (direct pushes, pull requests, pushes to a pull request's head,
 * reviews, `/tidegate approve` comments, merges by each method, renaming, removing or adding
 * targets, changing the gate, rollback and release); after every step:
 *
 * 1. the gated object (ConfigMap `app` that target `g` applied) holds content that some commit R of
 *    main gives it, and every commit between the revision last signed off for it and R that changes
 *    what declares or renders it is signed off under its gate, by people who made none of it
 *    (checked here from git, GitHub's records and the approvals asked for, by rules of this file's
 *    own: not by tidegate's);
 * 2. a Secret's value appears in nothing tidegate published (comments, check runs, statuses,
 *    target states).
 */

type GateKind = 'none' | 'approvals1' | 'approvals2' | 'manual' | 'both';
const GATES: Record<GateKind, Record<string, unknown>> = {
  none: {},
  approvals1: { approvals: 1 },
  approvals2: { approvals: 2 },
  manual: { manual: true },
  both: { approvals: 1, manual: true },
};

/** What tidegate.yaml declares: the gated target (by its first name, a second one, or removed), its gate, a target `x` declaring the same object. */
interface Decl {
  g: 'g' | 'g2' | null;
  gate: GateKind;
  x: boolean;
}

/** A change to the repository's files: the gated object's value (optionally carrying the Secret), the ungated target's, a file nothing renders, the declarations. */
interface Change {
  g?: string;
  leak?: 'value' | 'name';
  x?: string;
  u?: string;
  notes?: string;
  decl?: Decl;
}

interface Sequence {
  w: World;
  names: { g: string; g2: string; x: string; u: string };
  ns: { gated: string; ungated: string };
  secret: string;
  bare: string;
  prs: Array<{ number: number; branch: string; author: string; fork: boolean }>;
  /** Approvals asked for (comments and the command line), with who and which revision. */
  asked: Array<{ by: string; sha: string; via: 'comment' | 'cli' }>;
  /** The oracle's view: the last revision signed off for the object, its content and owner, the gate judging the next change. */
  signed: { sha: string; content: string; owner: string | undefined; gate: GateKind; paths: string[] };
  /** Owner and content of every revision signed off so far (a rollback may bring one back). */
  seen: Set<string>;
  log: string[];
}

const value = fc.constantFrom('a', 'b', 'c', 'd');
const declArb: fc.Arbitrary<Decl> = fc.record({
  g: fc.constantFrom<Decl['g']>('g', 'g', 'g2', null),
  gate: fc.constantFrom<GateKind>('none', 'approvals1', 'approvals2', 'manual', 'both'),
  x: fc.boolean(),
});
const changeArb: fc.Arbitrary<Change> = fc.oneof(
  fc.record(
    { g: value, leak: fc.constantFrom<Change['leak']>(undefined, undefined, 'value', 'name') },
    { requiredKeys: ['g'] },
  ),
  fc.record({ u: value }),
  fc.record({ notes: value }),
  fc.record({ decl: declArb, x: value }, { requiredKeys: ['decl'] }),
  fc.record({ decl: declArb, g: value }),
);
const writer = fc.constantFrom(...WRITERS);
const anyone = fc.constantFrom(...WRITERS, ...READERS, FORK_AUTHOR);

describe('gates: the sign-off invariant under what writers, reviewers, outsiders and bots can do', () => {
  let github: TestGitHub;
  beforeAll(async () => {
    github = await startGitHub({ token: TOKEN, gitRoot: testEnv().git.root });
  });
  afterAll(async () => {
    expect(github.violations).toEqual([]);
    await github?.stop();
  });

  const git = async (s: Sequence, ...args: string[]) => (await run('git', ['--git-dir', s.bare, ...args])).trim();
  const fileAt = (s: Sequence, sha: string, path: string) =>
    run('git', ['--git-dir', s.bare, 'show', `${sha}:${path}`]).then(
      (t) => t,
      () => undefined,
    );
  const isAncestor = (s: Sequence, a: string, b: string) =>
    run('git', ['--git-dir', s.bare, 'merge-base', '--is-ancestor', a, b]).then(
      () => true,
      () => false,
    );

  function tidegateYaml(s: Sequence, d: Decl): string {
    const targets: Array<Record<string, unknown>> = [
      { name: s.names.u, cluster: 'c', path: 'apps/u', targetNamespace: s.ns.ungated, wait: false },
    ];
    if (d.g)
      targets.push({
        name: d.g === 'g' ? s.names.g : s.names.g2,
        cluster: 'c',
        path: 'apps/g',
        targetNamespace: s.ns.gated,
        wait: false,
        substituteFrom: [{ kind: 'Secret', name: 'vars' }],
        gate: GATES[d.gate],
      });
    if (d.x) targets.push({ name: s.names.x, cluster: 'c', path: 'apps/x', targetNamespace: s.ns.gated, wait: false });
    return stringify({ targets });
  }

  const cm = (name: string, data: Record<string, string>) =>
    stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data });

  function files(s: Sequence, c: Change): Record<string, string | null> {
    const out: Record<string, string | null> = {};
    if (c.g !== undefined) out['apps/g/app.yaml'] = cm('app', { v: c.leak === 'value' ? `${c.g}-\${TOKEN}` : c.g });
    if (c.leak === 'name') out['apps/g/leak.yaml'] = cm('leak-${TOKEN}', { v: '1' });
    if (c.u !== undefined) out['apps/u/app.yaml'] = cm('app', { v: c.u });
    if (c.notes !== undefined) out['notes.txt'] = `${c.notes}\n`;
    if (c.decl) {
      out['tidegate.yaml'] = tidegateYaml(s, c.decl);
      if (c.decl.x) out['apps/x/app.yaml'] = cm('app', { v: `x-${c.x ?? 'a'}` });
    }
    return out;
  }

  // ---- the oracle: what the gated object may hold, from git, GitHub's records and the approvals asked for ----

  /** The targets declaring the gated object at a revision: name, path, gate, and what each would make it hold. */
  async function declarations(
    s: Sequence,
    sha: string,
  ): Promise<Array<{ name: string; path: string; gate: GateKind; content: string }>> {
    const cfg = parse((await fileAt(s, sha, 'tidegate.yaml')) ?? 'targets: []') as {
      targets: Array<{
        name: string;
        path: string;
        targetNamespace: string;
        gate?: Record<string, unknown>;
        substituteFrom?: unknown[];
      }>;
    };
    const out = [];
    for (const t of cfg.targets.filter((x) => x.targetNamespace === s.ns.gated)) {
      const text = await fileAt(s, sha, `${t.path}/app.yaml`);
      if (!text) continue;
      const data = JSON.stringify((parse(text) as { data: Record<string, string> }).data);
      const gate = (Object.entries(GATES).find(([, g]) => JSON.stringify(g) === JSON.stringify(t.gate ?? {}))?.[0] ??
        'none') as GateKind;
      out.push({
        name: t.name,
        path: t.path,
        gate,
        content: t.substituteFrom ? data.replaceAll('${TOKEN}', s.secret) : data,
      });
    }
    return out;
  }

  /** What the oracle keeps of a revision it accepted for the object: its owner there, the owner's gate and the paths declaring it. */
  async function acceptedAt(
    s: Sequence,
    sha: string,
    content: string,
    owner: string | undefined,
  ): Promise<Sequence['signed']> {
    const decls = await declarations(s, sha);
    const own = decls.find((d) => d.name === owner);
    return { sha, content, owner, gate: own?.gate ?? 'none', paths: decls.map((d) => d.path) };
  }

  const loginOf = (email: string): string | undefined =>
    email.endsWith('@users.noreply.github.test') ? email.split('@')[0] : undefined;

  /** Who wrote and committed a commit (GitHub users), and whether GitHub made it (its merge, squash or rebase). */
  async function madeBy(s: Sequence, sha: string) {
    const [author, committer, parents] = (await git(s, 'log', '-1', '--format=%ae%x00%ce%x00%P', sha)).split('\0');
    const byGitHub = committer === 'noreply@github.test';
    const people = new Set<string>();
    const a = loginOf(author ?? '');
    if (a && !(byGitHub && (parents ?? '').split(' ').length > 1)) people.add(a);
    const c = loginOf(committer ?? '');
    if (c && !byGitHub) people.add(c);
    return { people, byGitHub };
  }

  const activities = (s: Sequence) =>
    readFileSync(join(s.bare, ACTIVITY_FILE), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map(
        (l) => JSON.parse(l) as { before: string; after: string; ref: string; activity_type: string; actor: string },
      );

  /** Whoever pushed a commit onto a ref (a push, force push or the ref's creation; GitHub's own merges are not pushes). */
  async function pushers(s: Sequence, sha: string, ref: string): Promise<Set<string>> {
    const out = new Set<string>();
    for (const a of activities(s)) {
      if (a.ref !== ref || a.activity_type === 'pr_merge' || /^0+$/.test(a.after)) continue;
      const brought = (await git(s, 'rev-list', a.after, ...(/^0+$/.test(a.before) ? [] : [`^${a.before}`]))).split(
        '\n',
      );
      if (brought.includes(sha)) out.add(a.actor);
    }
    return out;
  }

  /** The merged pull request that brought a commit, and the users whose approvals of it count for that commit. */
  async function reviewers(s: Sequence, sha: string, byGitHub: boolean): Promise<Set<string> | undefined> {
    for (const pr of github.pulls(OWNER, s.w.name)) {
      if (!pr['merged']) continue;
      const made = github.mergeCommits(OWNER, s.w.name, pr.number);
      const own = (await git(s, 'rev-list', '--reverse', pr.head.sha, `^${pr.base.sha}`)).split('\n').filter(Boolean);
      const index = own.indexOf(sha);
      if (index < 0 && !(byGitHub && made.includes(sha))) continue;
      const involved = new Set([pr.user['login'] as string]);
      for (const c of own) for (const p of (await madeBy(s, c)).people) involved.add(p);
      for (const a of activities(s))
        if (a.ref === `refs/heads/${pr.head.ref}` && a.activity_type !== 'pr_merge') involved.add(a.actor);
      const res = await fetch(`${github.url}/repos/${OWNER}/${s.w.name}/pulls/${pr.number}/reviews`, {
        headers: { authorization: `token ${TOKEN}` },
      });
      const latest = new Map<string, { state: string; commit_id: string }>();
      for (const r of (await res.json()) as Array<{ user: { login: string }; state: string; commit_id: string }>)
        if (r.state !== 'COMMENTED') latest.set(r.user.login, r);
      const out = new Set<string>();
      for (const [user, r] of latest) {
        const at = own.indexOf(r.commit_id);
        const covers = index >= 0 ? at >= index : r.commit_id === pr.head.sha;
        if (r.state === 'APPROVED' && covers && WRITERS.includes(user) && !involved.has(user)) out.add(user);
      }
      return out;
    }
    return undefined;
  }

  /** Whether every commit of (from, to] that touches what declares or renders the object is signed off under `gate`. */
  async function signedOff(
    s: Sequence,
    from: string,
    to: string,
    gate: GateKind,
    paths: string[],
  ): Promise<string | true> {
    if (gate === 'none') return true;
    if (!(await isAncestor(s, from, to))) return `${from.slice(0, 8)} is not an ancestor of ${to.slice(0, 8)}`;
    const count = gate === 'approvals2' ? 2 : gate === 'manual' ? 0 : 1;
    const manual = gate === 'manual' || gate === 'both';
    const commits = (await git(s, 'rev-list', to, `^${from}`)).split('\n').filter(Boolean);
    const relevantPaths = ['tidegate.yaml', ...paths];
    const relevant: string[] = [];
    for (const c of commits) {
      const changed = (
        await git(s, 'diff-tree', '--no-commit-id', '--name-only', '-r', '-m', '--first-parent', '--root', c)
      ).split('\n');
      if (changed.some((p) => relevantPaths.some((r) => p === r || p.startsWith(`${r}/`)))) relevant.push(c);
    }
    const involvedIn = async (c: string) => {
      const { people } = await madeBy(s, c);
      for (const p of await pushers(s, c, 'refs/heads/main')) people.add(p);
      return people;
    };
    /** A command-line approval is trusted; a comment counts when a writer made none of the relevant commits up to the revision it names. */
    const counts = async (a: Sequence['asked'][number]): Promise<boolean> => {
      if (a.via === 'cli') return true;
      if (!WRITERS.includes(a.by)) return false;
      for (const other of relevant)
        if ((await isAncestor(s, other, a.sha)) && (await involvedIn(other)).has(a.by)) return false;
      return true;
    };
    for (const c of relevant) {
      const { byGitHub } = await madeBy(s, c);
      const signers = new Set((await reviewers(s, c, byGitHub)) ?? []);
      let manualBy = 0;
      for (const a of s.asked) {
        if (!(await isAncestor(s, c, a.sha)) || !(await counts(a))) continue;
        signers.add(a.by);
        manualBy++;
      }
      if (signers.size < count || (manual && manualBy === 0))
        return `${c.slice(0, 8)} has ${signers.size} of ${count} approval(s)${manual ? `, ${manualBy} manual` : ''}`;
    }
    return true;
  }

  /**
   * The invariant: the gated object holds what a signed-off revision gives it, with the owner that
   * revision gives it (a move to another target needs the old owner's gate, as a change does).
   */
  async function check(s: Sequence): Promise<void> {
    const live = await s.w.client.get('v1', 'ConfigMap', s.ns.gated, 'app');
    const content = live ? JSON.stringify(live['data']) : ABSENT;
    const owner = live?.metadata.labels?.['tidegate.dev/target'];
    const same = content === s.signed.content && owner === s.signed.owner;
    // The revision signed off for the object may move on without a change (a re-sync, a change of nothing it reads): it must be signed off too.
    const recorded = owner ? (await readTargetState(s.w.client, owner)).signedOff?.revision.sha : undefined;
    if (same && recorded && recorded !== s.signed.sha && (await isAncestor(s, s.signed.sha, recorded))) {
      const ok = await signedOff(s, s.signed.sha, recorded, s.signed.gate, s.signed.paths);
      if (ok !== true)
        throw new Error(
          `invariant: ${owner} recorded ${recorded.slice(0, 8)} as signed off, but ${ok}\n${s.log.join('\n')}`,
        );
      s.signed = await acceptedAt(s, recorded, content, owner);
    }
    const key = `${owner}=${content}`;
    if (!same && s.signed.gate === 'none') {
      // No gate judges the object now (its owner is ungated, signed off so): any change may happen to it.
      s.signed = await acceptedAt(s, await s.w.head(), content, owner);
      s.seen.add(key);
    } else if (!same && !s.seen.has(key)) {
      const why: string[] = [];
      let accepted: Sequence['signed'] | undefined;
      for (const r of (await git(s, 'rev-list', 'main')).split('\n').filter(Boolean)) {
        const decls = await declarations(s, r);
        const gives = owner
          ? decls.some((d) => d.name === owner && d.content === content)
          : !decls.some((d) => d.name === s.signed.owner);
        if (!gives) continue;
        const paths = [...new Set([...s.signed.paths, ...decls.map((d) => d.path)])];
        const ok = await signedOff(s, s.signed.sha, r, s.signed.gate, paths);
        if (ok === true) {
          accepted = await acceptedAt(s, r, content, owner);
          break;
        }
        why.push(`${r.slice(0, 8)}: ${ok}`);
      }
      if (!accepted)
        throw new Error(
          `invariant: the gated object holds ${content} (owner ${owner ?? 'none'}), which no signed-off revision gives it (${why.join('; ') || 'no revision of main gives it'})\n${s.log.join('\n')}`,
        );
      s.signed = accepted;
      s.seen.add(key);
    }
    const published = JSON.stringify([
      github.pulls(OWNER, s.w.name).map((p) => github.comments(OWNER, s.w.name, p.number)),
      github.checkRuns(OWNER, s.w.name),
      (await git(s, 'rev-list', '--all'))
        .split('\n')
        .filter(Boolean)
        .map((sha) => github.statuses(OWNER, s.w.name, sha)),
      // Target states as shown (history, holds, approvals); the inventory names objects as they are in the cluster.
      await Promise.all(
        Object.values(s.names).map(async (n) => {
          const state = await s.w.client.get('v1', 'ConfigMap', SYSTEM_NAMESPACE, `tidegate-target-${n}`);
          const data = (state?.['data'] ?? {}) as Record<string, string>;
          return [data['history'], data['approvals'], data['signedOff']];
        }),
      ),
    ]);
    if (published.includes(s.secret))
      throw new Error(`invariant: the Secret's value was published\n${s.log.join('\n')}`);
    if (s.w.failures.length) throw new Error(`a message failed: ${s.w.failures.join('; ')}\n${s.log.join('\n')}`);
  }

  // ---- the alphabet ----

  type Cmd = fc.AsyncCommand<object, Sequence>;
  const step = (
    label: string,
    fn: (s: Sequence) => Promise<void>,
    when: (s: Sequence) => boolean = () => true,
  ): Cmd => ({
    check: () => true,
    run: async (_m, s) => {
      if (!when(s)) return;
      s.log.push(label);
      await fn(s);
      await check(s);
    },
    toString: () => label,
  });
  const open = (s: Sequence) =>
    s.prs.filter((p) => github.pulls(OWNER, s.w.name).find((x) => x.number === p.number)?.state === 'open');
  const pick = <T>(list: T[], i: number): T | undefined => (list.length ? list[i % list.length] : undefined);

  /** A pull request's whole life in one step: opened, maybe pushed to again (by its author or another writer), reviewed, merged. */
  const pullRequestLife = fc
    .record({
      author: anyone,
      change: changeArb,
      later: fc.option(fc.tuple(anyone, changeArb), { nil: undefined }),
      reviewers: fc.subarray([...WRITERS, ...READERS, FORK_AUTHOR], { maxLength: 3 }),
      reviewBeforeLater: fc.boolean(),
      merger: writer,
      method: fc.constantFrom<MergeMethod>('merge', 'squash', 'rebase'),
    })
    .map((p) =>
      step(
        `${p.author} opens ${JSON.stringify(p.change)}${p.later ? `, ${p.later[0]} pushes ${JSON.stringify(p.later[1])} ${p.reviewBeforeLater ? 'after' : 'before'} the reviews` : ''}, ${p.reviewers.join(' and ') || 'nobody'} approve(s), ${p.merger} merges (${p.method})`,
        async (s) => {
          const fork = p.author === FORK_AUTHOR;
          const { pr, branch } = await s.w.propose(p.author, files(s, p.change));
          s.prs.push({ number: pr, branch, author: p.author, fork });
          s.log.push(`  (#${pr})`);
          const later = async () => {
            if (!p.later) return;
            const [user, change] = p.later;
            if ((fork && user !== FORK_AUTHOR) || (!fork && !WRITERS.includes(user) && user !== p.author)) return;
            await s.w.pushTo(user, branch, files(s, change));
          };
          if (!p.reviewBeforeLater) await later();
          for (const r of p.reviewers) await s.w.review(r, pr);
          if (p.reviewBeforeLater) await later();
          try {
            await s.w.merge(p.merger, pr, p.method);
          } catch {
            return; // a conflict: GitHub would not merge it either
          }
          await s.w.deliver();
        },
      ),
    );

  const commands = [
    pullRequestLife,
    pullRequestLife,
    fc.tuple(writer, changeArb).map(([user, c]) =>
      step(`${user} pushes ${JSON.stringify(c)} straight to main`, async (s) => {
        await s.w.push(user, files(s, c));
        await s.w.deliver();
      }),
    ),
    fc.tuple(anyone, changeArb).map(([user, c]) =>
      step(`${user} opens a pull request ${JSON.stringify(c)}`, async (s) => {
        const fork = user === FORK_AUTHOR;
        const { pr, branch } = await s.w.propose(user, files(s, c));
        if (fork) await github.updatePullRef(OWNER, s.w.name, pr, await s.w.head(branch));
        s.prs.push({ number: pr, branch, author: user, fork });
      }),
    ),
    fc.tuple(anyone, fc.nat(), changeArb).map(([user, i, c]) =>
      step(`${user} pushes ${JSON.stringify(c)} to pull request #${i}`, async (s) => {
        const pr = pick(open(s), i);
        if (!pr || (pr.fork && user !== FORK_AUTHOR) || (!pr.fork && !WRITERS.includes(user) && user !== pr.author))
          return;
        s.log.push(`  (#${pr.number})`);
        await s.w.pushTo(user, pr.branch, files(s, c));
      }),
    ),
    fc.tuple(anyone, fc.nat()).map(([user, i]) =>
      step(`${user} approves pull request #${i}`, async (s) => {
        const pr = pick(open(s), i);
        if (pr) await s.w.review(user, pr.number);
      }),
    ),
    fc.tuple(writer, fc.nat(), fc.constantFrom<MergeMethod>('merge', 'squash', 'rebase')).map(([user, i, method]) =>
      step(`${user} merges pull request #${i} (${method})`, async (s) => {
        const pr = pick(open(s), i);
        if (!pr) return;
        s.log.push(`  (#${pr.number})`);
        try {
          await s.w.merge(user, pr.number, method);
        } catch {
          return; // a conflict: GitHub would not merge it either
        }
        await s.w.deliver();
      }),
    ),
    fc.tuple(anyone, fc.nat(), fc.boolean()).map(([user, i, head]) =>
      step(
        `${user} comments /tidegate approve on pull request #${i} (${head ? 'the head of main' : 'the pull request'})`,
        async (s) => {
          const pr = pick(s.prs, i);
          if (!pr) return;
          const sha = await s.w.head();
          const body = head ? `/tidegate approve ${sha.slice(0, 12)}` : '/tidegate approve';
          const merged = github.pulls(OWNER, s.w.name).find((p) => p.number === pr.number)?.['merge_commit_sha'] as
            string | undefined;
          s.asked.push({ by: user, sha: head ? sha : (merged ?? ''), via: 'comment' });
          if (!head && !merged) s.asked.pop();
          await s.w.comment(user, pr.number, body);
        },
      ),
    ),
    fc.constant(
      step('ops approves the head of main on the command line', async (s) => {
        const gate = await s.w.state(s.names.g);
        const name = gate.repo ? s.names.g : s.names.g2;
        const sha = await s.w.head();
        s.asked.push({ by: 'ops', sha, via: 'cli' });
        await approve(s.w.ctx, { repo: s.w.url, target: name, revision: sha, by: 'ops', via: 'cli' }).catch(
          () => undefined,
        );
      }),
    ),
    fc.constant(step('the poll looks at main again', (s) => s.w.deliver())),
    fc.constant(
      step(
        'ops rolls the gated target back to its last healthy revision, then releases it at the next step',
        async (s) => {
          const state = await s.w.state(s.names.g);
          if (!state.lastApplied || state.removed) return;
          await rollback(s.w.ctx, { repo: s.w.url, target: s.names.g, by: 'ops', reason: 'incident' }).catch(
            () => undefined,
          );
          await check(s);
          await release(s.w.ctx, { repo: s.w.url, target: s.names.g }).catch(() => undefined);
          await s.w.deliver();
        },
      ),
    ),
    fc.nat().map((i) =>
      step(`the preview of pull request #${i} runs`, async (s) => {
        const pr = pick(open(s), i);
        if (!pr) return;
        await s.w.queue.send([
          { type: 'preview', repo: s.w.url, pullRequest: pr.number, head: await s.w.head(pr.branch) },
        ]);
        await s.w.queue.idle();
      }),
    ),
  ];

  /** A repository whose gated target `g` applied {v: start}, signed off by ops; an ungated target beside it. */
  async function start(gate: GateKind): Promise<Sequence> {
    const w = await gatedWorld(github, TOKEN, {
      prefix: 'model',
      writers: WRITERS,
      readers: [...READERS, FORK_AUTHOR],
    });
    const s: Sequence = {
      w,
      names: { g: uniqueName('g'), g2: uniqueName('g2'), x: uniqueName('x'), u: uniqueName('u') },
      ns: { gated: uniqueName('gated'), ungated: uniqueName('ungated') },
      secret: `s3cret-${uniqueName('v')}`,
      bare: join(testEnv().git.root, `${OWNER}/${w.name}.git`),
      prs: [],
      asked: [],
      signed: { sha: '', content: '', owner: undefined, gate, paths: ['apps/g'] },
      seen: new Set(),
      log: [`gate: ${gate}`],
    };
    await w.client.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: s.ns.gated } });
    await w.client.create({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'vars', namespace: s.ns.gated },
      stringData: { TOKEN: s.secret },
    });
    // The first state, reviewed by two and merged, then signed off on the command line where the gate asks for it.
    await w.push('alice', { 'README.md': 'the GitOps repository\n' });
    const first = await w.propose('alice', files(s, { g: 'start', u: 'start', decl: { g: 'g', gate, x: false } }));
    for (const r of ['bob', 'carol']) await w.review(r, first.pr);
    const sha = await w.merge('alice', first.pr);
    await w.deliver();
    if (gate === 'manual' || gate === 'both')
      await approve(w.ctx, { repo: w.url, target: s.names.g, revision: sha, by: 'ops', via: 'cli' });
    const data = await w.data(s.ns.gated, 'app');
    expect(data).toEqual({ v: 'start' });
    s.signed = { sha, content: JSON.stringify(data), owner: s.names.g, gate, paths: ['apps/g'] };
    s.seen.add(`${s.names.g}=${s.signed.content}`);
    return s;
  }

  /** The property: a gate, then a sequence of steps from the alphabet, the invariant checked after each. */
  const property = () =>
    fc.asyncProperty(
      fc.constantFrom<GateKind>('approvals1', 'approvals2', 'manual', 'both'),
      fc.commands(commands, { maxCommands: 10, size: '+1' }),
      async (gate, cmds) => {
        const s = await start(gate);
        await fc.asyncModelRun(() => ({ model: {}, real: s }), cmds);
        if (process.env['TIDEGATE_MODEL_DEBUG']) console.log(s.log.join('\n'));
      },
    );

  /** Counterexamples the long mode found, replayed at every run (seed and path of fast-check's report). */
  const REGRESSIONS = [
    // A signed-off change named an object after a Secret value; a preview's withheld render listed it to prune, by name.
    { seed: 20261207, path: '355', runs: 2000 },
  ];

  it.each(REGRESSIONS)(
    'regression: seed $seed, path $path of the $runs-sequence long mode',
    async ({ seed, path }) => {
      await fc.assert(property(), { seed, path, numRuns: 1, endOnFailure: true });
    },
    120_000,
  );

  it(
    `holds after every step (${RUNS} sequences, seed ${SEED})`,
    async () => {
      await fc.assert(property(), {
        numRuns: RUNS,
        seed: SEED,
        endOnFailure: process.env['TIDEGATE_MODEL_SHRINK'] !== '1',
      });
    },
    Math.max(600_000, RUNS * 20_000),
  );
});
