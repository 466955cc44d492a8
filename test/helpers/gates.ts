import { afterAll } from 'vitest';
import { stringify } from 'yaml';
import {
  GitWorkspace,
  createBareRepo,
  type ControllerClient,
  type MergeMethod,
  type TestGitHub,
} from '../../devenv/index.js';
import { GitHub } from '../../shared/github/index.js';
import type { FloorPolicy } from '../../shared/config/index.js';
import type { KubeObject, QueueMessage, SyncResult } from '../../shared/model/index.js';
import { MemoryQueue, handleMessage, type EngineContext, type WorkOutcome } from '../../shared/usecases/index.js';
import { readTargetState } from '../../shared/state/index.js';
import { prComment } from './github.js';
import { testEngine, yamlDocs } from './engine.js';
import { testEnv, uniqueName } from './env.js';

export const OWNER = 'acme';

/** One target of a gated repository's tidegate.yaml: its files under apps/<dir>, into its own namespace. */
export interface TargetDecl {
  name: string;
  dir: string;
  namespace: string;
  gate?: Record<string, unknown>;
  extra?: Record<string, unknown>;
}

export const tidegateYaml = (targets: readonly TargetDecl[]): string =>
  stringify({
    targets: targets.map((t) => ({
      name: t.name,
      cluster: 'c',
      path: `apps/${t.dir}`,
      targetNamespace: t.namespace,
      wait: false,
      ...(t.gate ? { gate: t.gate } : {}),
      ...t.extra,
    })),
  });

export const configMapYaml = (name: string, data: Record<string, string>): string =>
  yamlDocs({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data } as KubeObject);

/**
 * A GitOps repository acme/<name> on the test git server and the test GitHub, with people acting
 * as they can on GitHub: pushing as themselves (the git server records who), opening pull requests,
 * reviewing, merging by each method, commenting `/tidegate` commands. tidegate runs as the worker
 * does: every push delivered as a push message, its fan-out and every message it queues handled by
 * the engine against the real apiserver.
 */
export async function gatedWorld(
  github: TestGitHub,
  token: string,
  opts: { prefix?: string; floor?: FloorPolicy; writers?: string[]; readers?: string[] } = {},
) {
  const env = testEnv().git;
  const name = uniqueName(opts.prefix ?? 'gated');
  const url = await createBareRepo(env, `${OWNER}/${name}`);
  for (const user of opts.writers ?? ['alice', 'bob', 'carol', 'mallory']) github.grant(OWNER, name, user, 'write');
  for (const user of opts.readers ?? ['dave']) github.grant(OWNER, name, user, 'read');
  const engine = testEngine();
  const client: ControllerClient = engine.client;
  const api = new GitHub({ apiUrl: github.url, token });
  const ctx: EngineContext = {
    ...engine,
    github: () => api,
    clusters: () => ['c'],
    repositories: [{ url, branch: 'main' }],
    ...(opts.floor ? { floor: (c: string) => (c === 'c' ? opts.floor : undefined) } : {}),
  };
  const outcomes: WorkOutcome[] = [];
  const failures: string[] = [];
  const queue = new MemoryQueue(
    async (msg: QueueMessage, q) => {
      outcomes.push(await handleMessage(ctx, msg, q));
    },
    { dedupWindowMs: 0, maxAttempts: 1 },
  );
  const workspaces = new Map<string, GitWorkspace>();
  afterAll(() => workspaces.forEach((w) => w.remove()));
  const as = async (user: string): Promise<GitWorkspace> => {
    let ws = workspaces.get(user);
    if (!ws) {
      ws = await GitWorkspace.clone(env, url, { user });
      workspaces.set(user, ws);
    }
    return ws;
  };
  const head = async (branch = 'main'): Promise<string> => {
    const ws = await as('alice');
    return (await ws.git('ls-remote', 'origin', `refs/heads/${branch}`)).split('\t')[0] ?? '';
  };
  /** Checks out `branch` at the remote's `from` (main), commits the files and pushes, as `user`. */
  const commitOn = async (
    user: string,
    branch: string,
    files: Record<string, string | null>,
    message: string,
    from = branch,
  ) => {
    const ws = await as(user);
    if (await head(from)) {
      await ws.git('fetch', '--quiet', 'origin', from);
      await ws.git('checkout', '--quiet', '-B', branch, 'FETCH_HEAD');
    }
    return ws.commit(files, message, branch);
  };
  let branches = 0;
  let comments = 0;
  const world = {
    github,
    name,
    url,
    ctx,
    client,
    outcomes,
    failures,
    queue,
    as,
    head,
    /** `user` pushes a commit straight onto main. */
    push: (user: string, files: Record<string, string | null>, message = `${user} pushes`) =>
      commitOn(user, 'main', files, message),
    /** `user` branches off main, commits and opens a pull request into main. */
    propose: async (user: string, files: Record<string, string | null>, message = `${user} proposes`) => {
      const branch = `${user}-change-${++branches}`;
      await commitOn(user, branch, files, message, 'main');
      const pr = await github.openPullRequest(OWNER, name, { head: branch, base: 'main', author: user });
      return { pr: pr.number, branch };
    },
    /** `user` pushes a commit onto a branch (a pull request's head). */
    pushTo: (user: string, branch: string, files: Record<string, string | null>, message = `${user} pushes`) =>
      commitOn(user, branch, files, message),
    review: (user: string, pr: number, state: 'APPROVED' | 'CHANGES_REQUESTED' = 'APPROVED') =>
      github.review(OWNER, name, pr, { user, state }),
    merge: (by: string, pr: number, method: MergeMethod = 'merge') => github.merge(OWNER, name, pr, by, method),
    /** GitHub delivers the push of main's head: the worker fans it out and handles what it queues. */
    deliver: async (): Promise<void> => {
      const sha = await head();
      await queue.send([{ type: 'push', repo: url, ref: 'refs/heads/main', sha, paths: null, reason: 'push' }]);
      await queue.idle();
      failures.push(...queue.deadLetters.splice(0).map((d) => d.error));
    },
    /** `user` comments on a pull request; a /tidegate command is handled as the worker would. */
    comment: async (user: string, pr: number, body: string): Promise<WorkOutcome[]> => {
      const routed = prComment(github, { owner: OWNER, name, url }, pr, { user, body, id: 1000 + ++comments });
      const before = outcomes.length;
      await queue.send(routed.messages);
      await queue.idle();
      failures.push(...queue.deadLetters.splice(0).map((d) => d.error));
      return outcomes.slice(before);
    },
    /** The results of the syncs (and removals) handled since `from` (an index into outcomes). */
    results: (from = 0): SyncResult[] =>
      outcomes.slice(from).flatMap((o) => (o.kind === 'synced' ? (o.results ?? [o.result]) : [])),
    data: async (namespace: string, configMap: string) =>
      (await client.get('v1', 'ConfigMap', namespace, configMap))?.['data'] as Record<string, string> | undefined,
    state: (target: string) => readTargetState(client, target),
  };
  return world;
}

export type World = Awaited<ReturnType<typeof gatedWorld>>;
