import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { GitWorkspace, createBareRepo } from '../../devenv/index.js';
import { startGitServer, type GitServer } from '../../devenv/git-server.js';
import { cli } from '../helpers/cli.js';
import { configMap, yamlDocs } from '../helpers/engine.js';
import { testEnv, uniqueName } from '../helpers/env.js';

const RUNS = Number(process.env['TIDEGATE_MODEL_RUNS'] ?? 40);
const SEED = Number(process.env['TIDEGATE_MODEL_SEED'] ?? 20261207);
const TOKEN = `tok-${uniqueName('creds-model')}`;

/** What B received that carries the token: a header (Basic or Bearer, decoded) or the request line. */
const tokenSentTo = (server: GitServer): string[] =>
  server.received.flatMap((q) => {
    const header = q.authorization ?? '';
    const decoded = Buffer.from(header.replace(/^Basic /, ''), 'base64').toString();
    return [header, decoded, decodeURIComponent(q.path)].some((t) => t.includes(TOKEN))
      ? [`${q.method} ${q.path} ${header}`]
      : [];
  });

/**
 * "Credentials go only where they belong", as a model-based property test against two real git
 * servers on loopback (other ports: other origins). A is the private GitOps repository the
 * operator's TIDEGATE_GIT_TOKEN is for; B is anyone else's server, recording what it is sent. A
 * writer to A commits whatever tidegate.yaml it likes (a target whose source names B in the
 * spellings that make URLs look alike), and the operator runs read-only commands against A. After
 * every step:
 *
 * 1. B has never been sent the token (in an Authorization header, its path or query: what a URL's
 *    own user and password send is the writer's, not the operator's);
 * 2. the token appears in no output of any command.
 */

/** URLs a writer can name for a target's source, each reaching B (host and port) whatever it looks like. */
function spellings(a: URL, b: URL): string[] {
  return [
    `${b.origin}/other.git`,
    `${b.origin}?@${a.host}/gitops.git`,
    `${b.origin}#@${a.host}/gitops.git`,
    `${b.origin}/?@${a.host}/gitops.git`,
    `http://x-access-token@${b.host}/other.git`,
    `http://${a.hostname}@${b.host}/other.git`,
    `http://${a.host}@${b.host}/other.git`,
    `http://${b.host}\\@${a.host}/gitops.git`,
    `HTTP://${b.host}/other.git`,
    `http://localhost:${b.port}/other.git`,
    `http://[::ffff:127.0.0.1]:${b.port}/other.git`,
    `${b.origin}/other.git?from=${encodeURIComponent(a.href)}`,
    `${b.origin}//other.git`,
  ];
}

interface Model {
  commits: number;
}
interface Real {
  ws: GitWorkspace;
  urlA: string;
  outputs: string[];
}

class CommitSource implements fc.AsyncCommand<Model, Real> {
  constructor(readonly spelling: number) {}
  check = (): boolean => true;
  async run(m: Model, r: Real): Promise<void> {
    const url = spellings(new URL(r.urlA), new URL(B.url))[this.spelling] ?? '';
    await r.ws.commit(
      {
        'tidegate.yaml': stringify({
          targets: [
            {
              name: TARGET,
              cluster: 'tidegate-test',
              source: { url, ref: { branch: 'main' } },
              path: 'apps',
              targetNamespace: TARGET,
              wait: false,
            },
            { name: `${TARGET}-own`, cluster: 'tidegate-test', path: 'apps', targetNamespace: TARGET, wait: false },
          ],
        }),
      },
      `source from ${url}`,
    );
    m.commits += 1;
  }
  toString = (): string => `commit source #${this.spelling}`;
}

class CommitApps implements fc.AsyncCommand<Model, Real> {
  constructor(readonly value: string) {}
  check = (): boolean => true;
  async run(m: Model, r: Real): Promise<void> {
    await r.ws.commit({ 'apps/cm.yaml': yamlDocs(configMap('own', { v: this.value })) }, 'apps');
    m.commits += 1;
  }
  toString = (): string => `commit apps ${this.value}`;
}

class Operator implements fc.AsyncCommand<Model, Real> {
  constructor(readonly verb: 'diff' | 'render' | 'diff-own') {}
  check = (m: Readonly<Model>): boolean => m.commits > 0;
  async run(_m: Model, r: Real): Promise<void> {
    const k = ['--kubeconfig', testEnv().kube.kubeconfigPath];
    const res =
      this.verb === 'render'
        ? await cli('render', TARGET, '--repo', r.urlA, ...k)
        : await cli('diff', this.verb === 'diff' ? TARGET : `${TARGET}-own`, '--repo', r.urlA, ...k);
    r.outputs.push(res.out, res.err);
  }
  toString = (): string => `operator ${this.verb}`;
}

let A: GitServer;
let B: GitServer;
const TARGET = uniqueName('cm');

describe('credentials go only where they belong (model-based, two real git servers)', () => {
  let urlA = '';
  let ws: GitWorkspace;
  const saved = process.env['TIDEGATE_GIT_TOKEN'];

  beforeAll(async () => {
    A = await startGitServer({ root: join(mkdtempSync(join(tmpdir(), 'creds-a-')), 'repos'), token: TOKEN });
    B = await startGitServer({ root: join(mkdtempSync(join(tmpdir(), 'creds-b-')), 'repos') });
    urlA = await createBareRepo(A, 'gitops');
    const urlB = await createBareRepo(B, 'other');
    const wsB = await GitWorkspace.clone(B, urlB);
    await wsB.commit({ 'apps/cm.yaml': yamlDocs(configMap('from-b', { k: 'v' })) }, 'b');
    wsB.remove();
    ws = await GitWorkspace.clone(A, urlA);
    await ws.commit({ 'apps/cm.yaml': yamlDocs(configMap('own', { v: '0' })) }, 'first');
    // This file runs in a process of its own (vitest forks): the operator's shell has the token.
    process.env['TIDEGATE_GIT_TOKEN'] = TOKEN;
  });
  afterAll(async () => {
    if (saved === undefined) delete process.env['TIDEGATE_GIT_TOKEN'];
    else process.env['TIDEGATE_GIT_TOKEN'] = saved;
    ws.remove();
    await A.stop();
    await B.stop();
  });

  it('B is never sent the token, and the token is in no output, after any sequence of steps', async () => {
    const count = spellings(new URL(urlA), new URL(B.url)).length;
    const commands = [
      fc.integer({ min: 0, max: count - 1 }).map((i) => new CommitSource(i)),
      fc.stringMatching(/^[a-z0-9]{1,6}$/).map((v) => new CommitApps(v)),
      fc.constantFrom<'diff' | 'render' | 'diff-own'>('diff', 'render', 'diff-own').map((v) => new Operator(v)),
    ];
    await fc.assert(
      fc.asyncProperty(fc.commands(commands, { maxCommands: 8 }), async (cmds) => {
        const real: Real = { ws, urlA, outputs: [] };
        await fc.asyncModelRun(
          () => ({ model: { commits: 0 }, real }),
          [...cmds].flatMap((c) => [
            c,
            // The invariant, checked after every step against what the servers received.
            {
              check: () => true,
              run: () => {
                expect(tokenSentTo(B)).toEqual([]);
                for (const text of real.outputs) expect(text).not.toContain(TOKEN);
                return Promise.resolve();
              },
              toString: () => 'invariant',
            } as fc.AsyncCommand<Model, Real>,
          ]),
        );
      }),
      { numRuns: RUNS, seed: SEED, endOnFailure: true },
    );
    // The runs did reach both servers: A with the token, B without it.
    expect(tokenSentTo(A).length).toBeGreaterThan(0);
    expect(B.received.length).toBeGreaterThan(0);
  }, 600_000);

  it('every spelling, committed and diffed once: B gets no credentials but what the URL itself holds', async () => {
    B.received.length = 0;
    for (let i = 0; i < spellings(new URL(urlA), new URL(B.url)).length; i++) {
      const real: Real = { ws, urlA, outputs: [] };
      const model: Model = { commits: 0 };
      await new CommitSource(i).run(model, real);
      await new Operator('diff').run(model, real);
      const sent = B.received.splice(0).filter((q) => q.authorization !== undefined);
      const own = new URL(spellings(new URL(urlA), new URL(B.url))[i] ?? '');
      // Only a URL that names a user sends one, and then only its own user and password.
      if (!own.username) expect(sent, `spelling #${i}`).toEqual([]);
      for (const q of sent)
        expect(Buffer.from((q.authorization ?? '').replace(/^Basic /, ''), 'base64').toString(), `spelling #${i}`).toBe(
          `${decodeURIComponent(own.username)}:${decodeURIComponent(own.password)}`,
        );
      expect(real.outputs.join('')).not.toContain(TOKEN);
    }
  }, 300_000);
});
