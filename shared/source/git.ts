import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import git, { type HttpClient } from 'isomorphic-git';
import nodeHttp from 'isomorphic-git/http/node';
import semver from 'semver';
import {
  errorMessage,
  ENTRY_LIMITS,
  clip,
  redactUrl,
  type CommitInfo,
  type Revision,
  type TokenSource,
} from '../model/index.js';
import { localSettings, type SourceRef } from '../config/index.js';

/**
 * The limits of a source that names none: this process's (the deploy-time settings' source
 * section in TIDEGATE_SETTINGS, as localSettings reads them, or their defaults).
 */
const processLimits = (): SourceLimits => localSettings().budgets.source;
import { COMPLETE_MARKER, treeSeal } from './tree-check.js';
import { SourceError } from './errors.js';
import {
  ObjectSizes,
  RepositoryTooLargeError,
  meteredHttp,
  mib,
  tooLarge,
  type FetchMeter,
  type SourceLimits,
} from './pack-budget.js';

export { SourceError } from './errors.js';
export { RepositoryTooLargeError, type SourceLimits } from './pack-budget.js';

export interface GitSource {
  url: string;
  /** HTTP(S) token auth: a personal or fine-grained token, or a source of GitHub App installation tokens (asked before each use). */
  token?: string | TokenSource | undefined;
  username?: string | undefined;
  /** The HTTP client git uses (default: Node's, following redirects); remote render bases pass one that refuses other hosts. */
  http?: HttpClient | undefined;
  /** What one checkout may take (deploy-time settings source.*); default: those of this process (localSettings). */
  limits?: SourceLimits | undefined;
  /**
   * Keeps this source's cache apart from the same URL's with other credentials: what one fetched
   * with a token is never served to a fetch without it.
   */
  cacheScope?: string | undefined;
}

/** Basic auth sent with the first request (no unauthenticated round trip first). */
export async function authHeaders(
  src: GitSource,
): Promise<{ headers: Record<string, string> } | Record<string, never>> {
  const token = typeof src.token === 'function' ? await src.token() : src.token;
  return token
    ? {
        headers: {
          authorization: `Basic ${Buffer.from(`${src.username ?? 'x-access-token'}:${token}`).toString('base64')}`,
        },
      }
    : {};
}

/** Never show credentials embedded in a URL. */

async function remoteRefs(src: GitSource, prefix: string): Promise<ListedRef[]> {
  // The refs a server lists are counted against source.maxFetchMiB too.
  const meter: FetchMeter = { url: src.url, limits: src.limits ?? processLimits(), received: 0 };
  try {
    return await git.listServerRefs({
      http: meteredHttp(src.http ?? nodeHttp, meter),
      url: src.url,
      prefix,
      peelTags: true,
      ...(await authHeaders(src)),
    });
  } catch (err) {
    if (meter.exceeded) throw meter.exceeded;
    throw new SourceError(`cannot list refs of ${redactUrl(src.url)}: ${errorMessage(err)}`, { cause: err });
  }
}

/** Every branch head of a repository (one ls-remote): ref → SHA. */
export async function listBranches(src: GitSource): Promise<Map<string, string>> {
  return new Map((await remoteRefs(src, 'refs/heads/')).map((r) => [r.ref, r.oid]));
}

type ListedRef = { ref: string; oid: string; peeled?: string };

/** The tag a ref names (by name, or the highest semver version in a range). */
function chooseTag(src: GitSource, tags: ListedRef[], ref: SourceRef): ListedRef {
  if (ref.tag) {
    const named = tags.find((t) => t.ref === `refs/tags/${ref.tag}`);
    if (!named) throw new SourceError(`tag ${ref.tag} not found in ${redactUrl(src.url)}`);
    return named;
  }
  const versions = tags.filter((t) => !t.ref.endsWith('^{}') && semver.valid(t.ref.slice(10)));
  const best = semver.maxSatisfying(
    versions.map((t) => t.ref.slice(10)),
    ref.semver ?? '*',
  );
  const chosen = versions.find((t) => t.ref.slice(10) === best);
  if (!chosen) throw new SourceError(`no tag of ${redactUrl(src.url)} satisfies semver range ${ref.semver ?? ''}`);
  return chosen;
}

/**
 * Resolves a target's ref (branch, tag, semver range, or pinned commit) to one commit. A tag is
 * resolved once: the commit and the annotated tag object are both kept, and that tag object is the
 * one whose signature is checked.
 */
export async function resolveRevision(src: GitSource, ref: SourceRef = {}): Promise<Revision> {
  if (ref.tag || ref.semver) {
    const chosen = chooseTag(src, await remoteRefs(src, 'refs/tags/'), ref);
    const sha = ref.commit ?? chosen.peeled ?? chosen.oid;
    const annotated = chosen.peeled !== undefined && chosen.peeled !== chosen.oid;
    return { ref: chosen.ref, sha, ...(annotated ? { tag: chosen.oid } : {}) };
  }
  const branch = `refs/heads/${ref.branch ?? 'main'}`;
  if (ref.commit) return { ref: branch, sha: ref.commit };
  const sha = (await listBranches(src)).get(branch);
  if (!sha) throw new SourceError(`branch ${branch.slice(11)} not found in ${redactUrl(src.url)}`);
  return { ref: branch, sha };
}

export const repoKey = (url: string): string => createHash('sha256').update(url).digest('hex').slice(0, 16);
/** The cache directory name of a source: its URL, and its scope when it has one. */
const cacheKey = (src: GitSource): string => repoKey(src.cacheScope ? `${src.cacheScope}\n${src.url}` : src.url);

async function hasCommit(gitdir: string, sha: string): Promise<boolean> {
  try {
    await git.readCommit({ fs, gitdir, oid: sha });
    return true;
  } catch {
    return false;
  }
}

// ---- Checkout limits: what a fetch receives and unpacks, and what an export writes ----

/**
 * One git fetch within the checkout limits (its HTTP client metered): past a limit it fails with
 * a RepositoryTooLargeError, and the shallow list is as it was before (isomorphic-git records the
 * server's shallow commits before it reads the pack, and a refused pack is never written).
 */
export async function meteredFetch(
  src: GitSource,
  gitdir: string,
  fetch: (http: HttpClient) => Promise<unknown>,
): Promise<void> {
  const meter: FetchMeter = { url: src.url, limits: src.limits ?? processLimits(), received: 0 };
  const shallow = join(gitdir, 'shallow');
  const before = fs.existsSync(shallow) ? fs.readFileSync(shallow) : undefined;
  try {
    await fetch(meteredHttp(src.http ?? nodeHttp, meter));
    if (meter.exceeded) throw meter.exceeded;
  } catch (err) {
    if (meter.exceeded) {
      if (before === undefined) fs.rmSync(shallow, { force: true });
      else fs.writeFileSync(shallow, before);
      throw meter.exceeded;
    }
    throw err;
  }
}

/** What an export wrote so far, against source.maxFiles and source.maxTreeMiB. */
function exportBudget(url: string, limits: SourceLimits) {
  let files = 0;
  let bytes = 0;
  return {
    /** A file of this size is about to be read and written (its path for the message). */
    add(path: string, size: number): void {
      if (size > limits.maxFileBytes)
        throw tooLarge(
          url,
          `the file ${path} is ${mib(size)}, more than ${mib(limits.maxFileBytes)}`,
          'source.maxFileMiB',
        );
      if (++files > limits.maxFiles) throw tooLarge(url, `more than ${limits.maxFiles} files`, 'source.maxFiles');
      bytes += size;
      if (bytes > limits.maxTreeBytes)
        throw tooLarge(url, `its files are more than ${mib(limits.maxTreeBytes)}`, 'source.maxTreeMiB');
    },
  };
}

/**
 * Writes the tree of one commit into dir (regular files, executables and symlinks), one file at a
 * time, within the checkout limits: each file's size is read from its object header before it is
 * inflated, and counted with the files before it, so an export past source.maxFileMiB,
 * source.maxTreeMiB or source.maxFiles stops before writing past them.
 */
/**
 * Writes exactly the files of commit `sha` (read from `gitdir`) into `dir`, within the checkout
 * budget: what a sync renders. Also what a local `--dir` sync renders of a clean checkout, so that
 * ignored files, submodules and edits made during the sync never reach the cluster under its SHA.
 */
export async function exportTree(
  gitdir: string,
  sha: string,
  dir: string,
  url: string,
  limits: SourceLimits,
): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  const sizes = new ObjectSizes(gitdir);
  const budget = exportBudget(url, limits);
  try {
    await walkTree(gitdir, sha, dir, sizes, budget);
  } finally {
    sizes.close();
  }
}

async function walkTree(
  gitdir: string,
  sha: string,
  dir: string,
  sizes: ObjectSizes,
  budget: ReturnType<typeof exportBudget>,
): Promise<void> {
  await git.walk({
    fs,
    gitdir,
    trees: [git.TREE({ ref: sha })],
    map: async (filepath, entries) => {
      const entry = entries[0];
      if (filepath === '.' || !entry) return true;
      const target = join(dir, filepath);
      const type = await entry.type();
      if (type === 'tree') {
        fs.mkdirSync(target, { recursive: true });
      } else if (type === 'blob') {
        const mode = await entry.mode();
        const size = sizes.of(await entry.oid());
        if (size !== undefined) budget.add(filepath, size);
        const content = (await entry.content()) ?? new Uint8Array();
        if (size === undefined) budget.add(filepath, content.byteLength);
        if (mode === 0o120000) fs.symlinkSync(Buffer.from(content).toString('utf8'), target);
        else fs.writeFileSync(target, content, { mode: mode === 0o100755 ? 0o755 : 0o644 });
      }
      return true;
    },
    // One entry at a time (isomorphic-git walks siblings concurrently: their contents would be in memory together).
    iterate: async (walk, children) => {
      for (const child of children) await walk(child);
      return [];
    },
    reduce: async () => undefined,
  });
}

export interface Checkout {
  revision: Revision;
  /** Directory holding exactly the files of that commit. */
  dir: string;
}

const MAX_DEEPEN = 256;

/** The cached bare repository of a source (what checkoutRevision fills). */
export const cachedGitdir = (src: GitSource, cacheDir: string): string =>
  join(cacheDir, 'git', cacheKey(src), 'repo.git');

/**
 * Whether a cached tree is the finished export of this commit, unchanged since: its seal (the
 * metadata of every entry) is the one recorded when it was exported. A re-sync applies what Git
 * holds, never a cached copy that something wrote to.
 */
function sealed(treeDir: string, sha: string): boolean {
  let recorded: string;
  try {
    recorded = fs.readFileSync(join(treeDir, COMPLETE_MARKER), 'utf8');
  } catch {
    return false;
  }
  return recorded === `${sha} ${treeSeal(treeDir)}`;
}

/**
 * Fetches exactly one commit (depth 1, deepened only when the branch has moved past it) into a
 * cached repository under cacheDir, and exports its tree into a directory of its own. A commit
 * already in the cache is not fetched again.
 */
export async function checkoutRevision(src: GitSource, revision: Revision, cacheDir: string): Promise<Checkout> {
  const base = join(cacheDir, 'git', cacheKey(src));
  const treeDir = join(base, 'trees', revision.sha);
  if (sealed(treeDir, revision.sha)) return { revision, dir: treeDir };
  return exclusive(base, () => fetchAndExport(src, revision, base, treeDir));
}

/**
 * One writer per cached repository in this process: concurrent shallow fetches into one git
 * directory race on its shallow list and lose commits (syncs of several targets of one repository
 * run side by side in the dev server, and in a Lambda container between invocations' awaits).
 */
const locks = new Map<string, Promise<unknown>>();
async function exclusive<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const previous = locks.get(key) ?? Promise.resolve();
  const next = previous.then(fn, fn);
  const settled = next.then(
    () => undefined,
    () => undefined,
  );
  locks.set(key, settled);
  try {
    return await next;
  } finally {
    if (locks.get(key) === settled) locks.delete(key);
  }
}

async function fetchAndExport(src: GitSource, revision: Revision, base: string, treeDir: string): Promise<Checkout> {
  const gitdir = join(base, 'repo.git');
  if (sealed(treeDir, revision.sha)) return { revision, dir: treeDir };
  if (!fs.existsSync(join(gitdir, 'HEAD'))) {
    fs.mkdirSync(gitdir, { recursive: true });
    await git.init({ fs, gitdir, bare: true, defaultBranch: 'main' });
    await git.addRemote({ fs, gitdir, remote: 'origin', url: src.url });
  }
  const limits = src.limits ?? processLimits();
  if (!(await hasCommit(gitdir, revision.sha))) {
    const ref = revision.ref.replace(/^refs\/(heads|tags)\//, '') || 'main';
    try {
      await fetchRef(src, gitdir, ref, 1, false);
      for (let depth = 8; !(await hasCommit(gitdir, revision.sha)) && depth <= MAX_DEEPEN; depth *= 4)
        await fetchRef(src, gitdir, ref, depth, true);
    } catch (err) {
      if (err instanceof RepositoryTooLargeError) throw err;
      throw new SourceError(`cannot fetch ${ref} of ${redactUrl(src.url)}: ${errorMessage(err)}`, { cause: err });
    }
    if (!(await hasCommit(gitdir, revision.sha))) {
      throw new SourceError(
        `commit ${revision.sha} is not reachable from ${ref} of ${redactUrl(src.url)} (searched ${MAX_DEEPEN} commits)`,
      );
    }
  }
  // Export into a fresh directory and rename, so a crash never leaves a half-written tree in place.
  const tmp = `${treeDir}.tmp-${randomBytes(4).toString('hex')}`;
  try {
    await exportTree(gitdir, revision.sha, tmp, src.url, limits);
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true }); // nothing of a refused or failed export stays in the cache
    throw err;
  }
  fs.writeFileSync(join(tmp, COMPLETE_MARKER), `${revision.sha} ${treeSeal(tmp)}`);
  fs.rmSync(treeDir, { recursive: true, force: true });
  fs.renameSync(tmp, treeDir);
  return { revision, dir: treeDir };
}

/** One branch or tag fetched into the cached repository (`depth` commits, or that many more when `relative`), within the checkout limits. */
const fetchRef = (src: GitSource, gitdir: string, ref: string, depth: number, relative: boolean) =>
  meteredFetch(src, gitdir, async (http) =>
    git.fetch({
      fs,
      http,
      gitdir,
      url: src.url,
      ref,
      singleBranch: true,
      tags: false,
      depth,
      relative,
      ...(await authHeaders(src)),
    }),
  );

/**
 * Makes the cached history of a ref `depth` commits deeper (git fetch --deepen), under the
 * repository's lock. False when there was nothing more to fetch (the history is complete, or the
 * deepening brought nothing new).
 */
export async function deepen(src: GitSource, cacheDir: string, ref: string, depth: number): Promise<boolean> {
  const base = join(cacheDir, 'git', cacheKey(src));
  const gitdir = join(base, 'repo.git');
  const shallow = () => {
    try {
      return fs.readFileSync(join(gitdir, 'shallow'), 'utf8');
    } catch {
      return '';
    }
  };
  return exclusive(base, async () => {
    const before = shallow();
    if (before.trim() === '') return false;
    try {
      await fetchRef(src, gitdir, ref, depth, true);
    } catch (err) {
      if (err instanceof RepositoryTooLargeError) throw err;
      throw new SourceError(`cannot fetch the history of ${ref} of ${redactUrl(src.url)}: ${errorMessage(err)}`, {
        cause: err,
      });
    }
    return shallow() !== before;
  });
}

/**
 * The object id of the annotated tag a revision was resolved through (undefined for a lightweight
 * tag), fetched into the cache when it is not there yet (a checkout fetches commits, not tag
 * objects). The tag named when the revision was resolved is the one returned, even if the ref moved since.
 */
export async function fetchTagObject(
  src: GitSource,
  cacheDir: string,
  revision: Revision,
): Promise<string | undefined> {
  const oid =
    revision.tag ??
    (await remoteRefs(src, revision.ref).then((refs) => {
      const listed = refs.find((r) => r.ref === revision.ref);
      return listed?.peeled && listed.peeled !== listed.oid ? listed.oid : undefined;
    }));
  if (!oid) return undefined;
  const gitdir = cachedGitdir(src, cacheDir);
  const have = () =>
    git.readObject({ fs, gitdir, oid, format: 'deflated' }).then(
      () => true,
      () => false,
    );
  if (!(await have())) {
    await exclusive(join(cacheDir, 'git', cacheKey(src)), async () =>
      meteredFetch(src, gitdir, async (http) =>
        git.fetch({
          fs,
          http,
          gitdir,
          url: src.url,
          ref: revision.ref.slice('refs/tags/'.length),
          singleBranch: true,
          tags: false,
          depth: 1,
          ...(await authHeaders(src)),
        }),
      ),
    ).catch((err: unknown) => {
      if (err instanceof RepositoryTooLargeError) throw err;
      throw new SourceError(`cannot fetch ${revision.ref} of ${redactUrl(src.url)}: ${errorMessage(err)}`, {
        cause: err,
      });
    });
  }
  return oid;
}

/** Author and subject of a commit already fetched into the cache (undefined when it is not there). */
export async function commitInfo(src: GitSource, sha: string, cacheDir: string): Promise<CommitInfo | undefined> {
  try {
    const { commit } = await git.readCommit({ fs, gitdir: cachedGitdir(src, cacheDir), oid: sha });
    return {
      author: clip(`${commit.author.name} <${commit.author.email}>`, ENTRY_LIMITS.commitAuthor),
      message: clip(commit.message.split('\n')[0] ?? '', ENTRY_LIMITS.commitMessage),
    };
  } catch {
    return undefined;
  }
}
