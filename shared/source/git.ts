import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import * as zlib from 'node:zlib';
import git, { type HttpClient } from 'isomorphic-git';
import nodeHttp from 'isomorphic-git/http/node';
import semver from 'semver';
import {
  errorMessage,
  ENTRY_LIMITS,
  TidegateError,
  clip,
  isNetworkFailure,
  redactUrl,
  type CommitInfo,
  type Revision,
  type TokenSource,
} from '../model/index.js';
import { localSettings, type LocalSettings, type SourceRef } from '../config/index.js';

/** What one checkout of a repository may take (deploy-time settings source.*). */
export type SourceLimits = LocalSettings['budgets']['source'];

/**
 * The limits of a source that names none: this process's (the deploy-time settings' source
 * section in TIDEGATE_SETTINGS, as localSettings reads them, or their defaults).
 */
const processLimits = (): SourceLimits => localSettings().budgets.source;
import { COMPLETE_MARKER, treeSeal } from './tree-check.js';

export interface GitSource {
  url: string;
  /** HTTP(S) token auth: a personal or fine-grained token, or a source of GitHub App installation tokens (asked before each use). */
  token?: string | TokenSource | undefined;
  username?: string | undefined;
  /** The HTTP client git uses (default: Node's, following redirects); remote render bases pass one that refuses other hosts. */
  http?: HttpClient | undefined;
  /** What one checkout may take (deploy-time settings source.*); default: those of this process (localSettings). */
  limits?: SourceLimits | undefined;
}

/** A source that cannot be read: transient when the git server could not be reached or failed for now (the queue retries), else permanent (a missing ref, refused credentials). */
export class SourceError extends TidegateError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('SourceFailed', message, { ...options, transient: isNetworkFailure(options?.cause) });
  }
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

async function hasCommit(gitdir: string, sha: string): Promise<boolean> {
  try {
    await git.readCommit({ fs, gitdir, oid: sha });
    return true;
  } catch {
    return false;
  }
}

// ---- Checkout limits: what a fetch receives and unpacks, and what an export writes ----

const MiB = 1024 * 1024;
const mib = (bytes: number): string => (bytes < MiB ? `${bytes} bytes` : `${Math.round((bytes / MiB) * 10) / 10} MiB`);

/** A repository past one of its checkout limits: the sync fails, permanently (the repository must change). */
export class RepositoryTooLargeError extends SourceError {}

const tooLarge = (url: string, detail: string, setting: string): RepositoryTooLargeError =>
  new RepositoryTooLargeError(
    `repository ${redactUrl(url)} is larger than allowed: ${detail} (deploy-time setting ${setting})`,
  );

/** A tree entry at most: mode, a space, a name of 255 bytes, NUL, the object id. */
const TREE_ENTRY_BYTES = 7 + 255 + 1 + 20;

/** What one fetch received so far, and the first limit it passed. */
export interface FetchMeter {
  url: string;
  limits: SourceLimits;
  received: number;
  exceeded?: RepositoryTooLargeError;
}

/** The most objects one fetch may hold: each file's blob and directory's tree, and some history. */
const maxObjects = (limits: SourceLimits): number => 2 * limits.maxFiles + 10_000;

/**
 * Reads a packfile as it streams from the git server, object header by object header, without
 * keeping it: an object whose header (or, for a delta, the result size at the start of its data)
 * says it is larger than source.maxFileMiB, a pack that unpacks to more than source.maxTreeMiB or
 * holds more objects than files allow, is refused before isomorphic-git (which buffers the whole
 * pack, then inflates every object in memory to index it) sees the end of the response. Each
 * object is inflated here as a stream to find where it ends, its output counted and dropped; one
 * that inflates to more than its header says is refused too (the library would inflate it whole).
 */
export class PackScanner {
  private pkt: Buffer = Buffer.alloc(0);
  private raw = false;
  private pending: Buffer = Buffer.alloc(0);
  private state: 'header' | 'object' | 'data' | 'done' = 'header';
  private left = 0;
  private unpacked = 0;
  private object?: {
    delta: boolean;
    size: number;
    out: number;
    head: Buffer;
    inflater: zlib.Inflate;
    resultChecked: boolean;
  };

  constructor(
    private readonly limits: SourceLimits,
    private readonly refuse: (detail: string, setting: string) => never,
  ) {}

  /** The bytes of a git-upload-pack response (pkt-lines, side-band or not). */
  async push(chunk: Uint8Array): Promise<void> {
    const bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (this.raw) return this.packData(bytes);
    let buf = this.pkt.length > 0 ? Buffer.concat([this.pkt, bytes]) : bytes;
    while (buf.length >= 4) {
      const head = buf.toString('latin1', 0, 4);
      if (head === 'PACK') {
        // No side-band: the pack follows the protocol lines as it is.
        this.raw = true;
        this.pkt = Buffer.alloc(0);
        return this.packData(buf);
      }
      if (!/^[0-9a-f]{4}$/i.test(head)) {
        // Not a pkt-line stream: isomorphic-git refuses it; nothing here to read.
        this.state = 'done';
        this.raw = true;
        return;
      }
      const length = parseInt(head, 16);
      if (length < 4) {
        buf = buf.subarray(4); // flush, delimiter, response end
        continue;
      }
      if (buf.length < length) break;
      const payload = buf.subarray(4, length);
      buf = buf.subarray(length);
      if (payload[0] === 1) await this.packData(payload.subarray(1)); // band 1: pack data; 2: progress; 3: error
    }
    this.pkt = Buffer.from(buf); // a partial pkt-line (under 64 KiB), copied off the chunk
  }

  private async packData(bytes: Buffer): Promise<void> {
    let buf = this.pending.length > 0 ? Buffer.concat([this.pending, bytes]) : bytes;
    this.pending = Buffer.alloc(0);
    while (buf.length > 0 && this.state !== 'done') {
      if (this.state === 'header') {
        if (buf.length < 12) break;
        if (buf.toString('latin1', 0, 4) !== 'PACK') {
          this.state = 'done'; // not a pack: isomorphic-git refuses it
          return;
        }
        this.left = buf.readUInt32BE(8);
        if (this.left > maxObjects(this.limits))
          this.refuse(
            `${this.left} objects in one fetch, more than ${maxObjects(this.limits)}`,
            'source.maxFiles, twice it and 10000 objects per fetch',
          );
        buf = buf.subarray(12);
        this.state = this.left > 0 ? 'object' : 'done';
      } else if (this.state === 'object') {
        const header = objectHeader(buf);
        if (!header) break; // the rest of the header is still to come
        buf = buf.subarray(header.length);
        this.startObject(header.type, header.size);
        this.state = 'data';
      } else {
        const used = await this.inflate(buf);
        buf = buf.subarray(used);
        if (used === 0 || buf.length > 0) this.endObject(); // the zlib stream ended inside this data
      }
    }
    if (buf.length > 0 && this.state !== 'done') this.pending = Buffer.from(buf);
  }

  private startObject(type: number, size: number): void {
    const { maxFileBytes, maxTreeBytes, maxFiles } = this.limits;
    const delta = type === 6 || type === 7;
    if (size > maxFileBytes)
      this.refuse(
        `${delta ? 'a delta' : 'an object'} of ${mib(size)}, more than ${mib(maxFileBytes)}`,
        'source.maxFileMiB',
      );
    if (type === 2 && size > maxFiles * TREE_ENTRY_BYTES)
      this.refuse(`a directory listing of ${mib(size)}, more entries than ${maxFiles} files`, 'source.maxFiles');
    if (!delta) {
      this.unpacked += size;
      if (this.unpacked > maxTreeBytes)
        this.refuse(`one fetch unpacks to more than ${mib(maxTreeBytes)}`, 'source.maxTreeMiB');
    }
    const inflater = zlib.createInflate();
    const object = { delta, size, out: 0, head: Buffer.alloc(0), inflater, resultChecked: !delta };
    inflater.on('data', (out: Buffer) => {
      object.out += out.byteLength;
      if (object.head.length < 32) object.head = Buffer.concat([object.head, out.subarray(0, 32)]);
    });
    inflater.on('error', () => {}); // reported through the write's callback
    this.object = object;
  }

  /** Feeds the current object's zlib stream; how many of the bytes it took (fewer: it ended). */
  private async inflate(buf: Buffer): Promise<number> {
    const object = this.object;
    if (!object) return buf.length;
    const before = object.inflater.bytesWritten;
    await new Promise<void>((resolve, reject) => object.inflater.write(buf, (err) => (err ? reject(err) : resolve())));
    if (object.out > object.size)
      this.refuse(`an object that unpacks to more than its header says (${mib(object.size)})`, 'source.maxFileMiB');
    if (object.delta && !object.resultChecked) this.checkDelta(object, false);
    return object.inflater.bytesWritten - before;
  }

  /** A delta's result size (its second varint): checked as soon as the start of its data is inflated. */
  private checkDelta(object: NonNullable<PackScanner['object']>, ended: boolean): void {
    const sizes = deltaSizes(object.head);
    if (!sizes) {
      if (ended) object.resultChecked = true; // a malformed delta: isomorphic-git refuses it
      return;
    }
    object.resultChecked = true;
    if (sizes.result > this.limits.maxFileBytes)
      this.refuse(`an object of ${mib(sizes.result)}, more than ${mib(this.limits.maxFileBytes)}`, 'source.maxFileMiB');
    this.unpacked += sizes.result;
    if (this.unpacked > this.limits.maxTreeBytes)
      this.refuse(`one fetch unpacks to more than ${mib(this.limits.maxTreeBytes)}`, 'source.maxTreeMiB');
  }

  private endObject(): void {
    const object = this.object;
    if (object) {
      if (object.delta && !object.resultChecked) this.checkDelta(object, true);
      object.inflater.destroy();
    }
    this.object = undefined;
    this.left--;
    this.state = this.left > 0 ? 'object' : 'done';
  }

  /** Stops inflating (the fetch failed or ended). */
  close(): void {
    this.object?.inflater.destroy();
    this.object = undefined;
    this.state = 'done';
  }
}

/** A packed object's header: its type, its size (inflated; a delta's own size), and the header's length. Undefined when incomplete. */
function objectHeader(buf: Buffer): { type: number; size: number; length: number } | undefined {
  let at = 0;
  if (buf.length < 1) return undefined;
  let byte = buf[at++] as number;
  const type = (byte >> 4) & 7;
  let size = byte & 15;
  let shift = 4;
  while (byte & 0x80) {
    if (at >= buf.length) return undefined;
    byte = buf[at++] as number;
    size += (byte & 0x7f) * 2 ** shift; // arithmetic, not bitwise: sizes past 2 GiB stay right
    shift += 7;
    if (shift > 63) throw new Error('malformed pack object header');
  }
  if (type === 6) {
    // ofs-delta: the base's distance, a varint
    do {
      if (at >= buf.length) return undefined;
      byte = buf[at++] as number;
    } while (byte & 0x80);
  } else if (type === 7) {
    if (buf.length < at + 20) return undefined; // ref-delta: the base's id
    at += 20;
  }
  return { type, size, length: at };
}

/** The base and result sizes at the start of a delta's data (two little-endian base-128 varints); undefined when incomplete. */
function deltaSizes(data: Buffer): { base: number; result: number } | undefined {
  let at = 0;
  const varint = (): number | undefined => {
    let value = 0;
    let shift = 0;
    for (;;) {
      if (at >= data.length || shift > 63) return undefined;
      const byte = data[at++] as number;
      value += (byte & 0x7f) * 2 ** shift;
      shift += 7;
      if (!(byte & 0x80)) return value;
    }
  };
  const base = varint();
  const result = varint();
  return base === undefined || result === undefined ? undefined : { base, result };
}

/**
 * The HTTP client of one checkout's fetches: every response counted against source.maxFetchMiB,
 * and the pack of an upload-pack response read by a PackScanner as it arrives. Past a limit the
 * response ends with the error (recorded in the meter: isomorphic-git may report it otherwise).
 */
export function meteredHttp(http: HttpClient, meter: FetchMeter): HttpClient {
  const refuse = (detail: string, setting: string): never => {
    meter.exceeded ??= tooLarge(meter.url, detail, setting);
    throw meter.exceeded;
  };
  return {
    async request(req) {
      const res = await http.request(req);
      const body = res.body;
      if (!body) return res;
      const scanner = /git-upload-pack$/.test(new URL(req.url).pathname) && req.method === 'POST';
      const metered = async function* (): AsyncGenerator<Uint8Array> {
        const pack = scanner ? new PackScanner(meter.limits, refuse) : undefined;
        try {
          for await (const chunk of body) {
            meter.received += chunk.byteLength;
            if (meter.received > meter.limits.maxFetchBytes)
              refuse(`more than ${mib(meter.limits.maxFetchBytes)} received from the git server`, 'source.maxFetchMiB');
            await pack?.push(chunk);
            yield chunk;
          }
        } finally {
          pack?.close();
        }
      };
      return { ...res, body: metered() };
    },
  };
}

/**
 * One git fetch within the checkout limits (its HTTP client metered): past a limit it fails with
 * a RepositoryTooLargeError, and the shallow list is as it was before (isomorphic-git records the
 * server's shallow commits before it reads the pack, and a refused pack is never written).
 */
async function meteredFetch(
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

/**
 * The size of an object in the cached repository, read from its header without inflating it:
 * a packed object's type and size at its offset (the pack index gives it), a delta's result size
 * from the first bytes of its data, a loose object's from the start of its zlib stream. Undefined
 * when it cannot be told (the caller then checks what it reads).
 */
export class ObjectSizes {
  private packs?: Array<{ pack: string; idx: Buffer; count: number }>;
  private readonly fds = new Map<string, number>();

  constructor(private readonly gitdir: string) {}

  close(): void {
    for (const fd of this.fds.values()) fs.closeSync(fd);
    this.fds.clear();
  }

  private readAt(file: string, position: number, length: number): Buffer {
    let fd = this.fds.get(file);
    if (fd === undefined) this.fds.set(file, (fd = fs.openSync(file, 'r')));
    const buf = Buffer.alloc(length);
    return buf.subarray(0, fs.readSync(fd, buf, 0, length, position));
  }

  of(oid: string): number | undefined {
    try {
      return this.loose(oid) ?? this.packed(oid);
    } catch {
      return undefined;
    }
  }

  private loose(oid: string): number | undefined {
    const file = join(this.gitdir, 'objects', oid.slice(0, 2), oid.slice(2));
    if (!fs.existsSync(file)) return undefined;
    const fd = fs.openSync(file, 'r');
    const start = Buffer.alloc(4096);
    let read: number;
    try {
      read = fs.readSync(fd, start, 0, start.length, 0);
    } finally {
      fs.closeSync(fd);
    }
    const head = inflatedStart(start.subarray(0, read));
    const nul = head.indexOf(0);
    const size = nul > 0 ? /^[a-z]+ (\d+)$/.exec(head.toString('latin1', 0, nul))?.[1] : undefined;
    return size === undefined ? undefined : Number(size);
  }

  private packed(oid: string): number | undefined {
    this.packs ??= this.readIndexes();
    const id = Buffer.from(oid, 'hex');
    for (const { pack, idx, count } of this.packs) {
      const at = findInIndex(idx, count, id);
      if (at === undefined) continue;
      const raw = this.readAt(pack, at, 64 + 4096);
      const header = objectHeader(raw);
      if (!header) return undefined;
      if (header.type !== 6 && header.type !== 7) return header.size;
      return deltaSizes(inflatedStart(raw.subarray(header.length)))?.result;
    }
    return undefined;
  }

  private readIndexes(): Array<{ pack: string; idx: Buffer; count: number }> {
    const dir = join(this.gitdir, 'objects', 'pack');
    const found: Array<{ pack: string; idx: Buffer; count: number }> = [];
    for (const name of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
      if (!name.endsWith('.idx')) continue;
      const idx = fs.readFileSync(join(dir, name));
      if (idx.length < 8 + 1024 || idx.readUInt32BE(0) !== 0xff744f63 || idx.readUInt32BE(4) !== 2) continue;
      found.push({ pack: join(dir, name.replace(/\.idx$/, '.pack')), idx, count: idx.readUInt32BE(8 + 255 * 4) });
    }
    return found;
  }
}

/** The pack offset of an object in a version 2 pack index; undefined when it is not there. */
function findInIndex(idx: Buffer, count: number, id: Buffer): number | undefined {
  const names = 8 + 256 * 4;
  const first = id[0] as number;
  let lo = first === 0 ? 0 : idx.readUInt32BE(8 + (first - 1) * 4);
  let hi = idx.readUInt32BE(8 + first * 4);
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const cmp = idx.compare(id, 0, 20, names + mid * 20, names + mid * 20 + 20) * -1;
    if (cmp === 0) {
      const offsets = names + count * 20 + count * 4;
      const offset = idx.readUInt32BE(offsets + mid * 4);
      if (!(offset & 0x80000000)) return offset;
      const large = offsets + count * 4 + (offset & 0x7fffffff) * 8;
      return Number(idx.readBigUInt64BE(large));
    }
    if (cmp < 0) hi = mid;
    else lo = mid + 1;
  }
  return undefined;
}

/** The start of what a zlib stream inflates to, from its first bytes only (at most 1 MiB of it). */
function inflatedStart(compressed: Buffer): Buffer {
  try {
    return zlib.inflateSync(compressed, { finishFlush: zlib.constants.Z_SYNC_FLUSH, maxOutputLength: MiB });
  } catch {
    return Buffer.alloc(0);
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
async function exportTree(gitdir: string, sha: string, dir: string, url: string, limits: SourceLimits): Promise<void> {
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
  join(cacheDir, 'git', repoKey(src.url), 'repo.git');

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
  const base = join(cacheDir, 'git', repoKey(src.url));
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
    // Each fetch within the checkout limits (what it receives, what its pack holds).
    const fetchOnce = async (depth: number, relative: boolean) =>
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
    try {
      await fetchOnce(1, false);
      for (let depth = 8; !(await hasCommit(gitdir, revision.sha)) && depth <= MAX_DEEPEN; depth *= 4)
        await fetchOnce(depth, true);
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

/**
 * Makes the cached history of a ref `depth` commits deeper (git fetch --deepen), under the
 * repository's lock. False when there was nothing more to fetch (the history is complete, or the
 * deepening brought nothing new).
 */
export async function deepen(src: GitSource, cacheDir: string, ref: string, depth: number): Promise<boolean> {
  const base = join(cacheDir, 'git', repoKey(src.url));
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
      await meteredFetch(src, gitdir, async (http) =>
        git.fetch({
          fs,
          http,
          gitdir,
          url: src.url,
          ref,
          singleBranch: true,
          tags: false,
          depth,
          relative: true,
          ...(await authHeaders(src)),
        }),
      );
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
    await exclusive(join(cacheDir, 'git', repoKey(src.url)), async () =>
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
