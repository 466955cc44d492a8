import * as fs from 'node:fs';
import { join } from 'node:path';
import * as zlib from 'node:zlib';
import type { HttpClient } from 'isomorphic-git';
import { redactUrl } from '../model/index.js';
import { SourceError } from './errors.js';
import type { LocalSettings } from '../config/index.js';

/** What one checkout of a repository may take (deploy-time settings source.*). */
export type SourceLimits = LocalSettings['budgets']['source'];

const MiB = 1024 * 1024;
export const mib = (bytes: number): string =>
  bytes < MiB ? `${bytes} bytes` : `${Math.round((bytes / MiB) * 10) / 10} MiB`;

/** A repository past one of its checkout limits: the sync fails, permanently (the repository must change). */
export class RepositoryTooLargeError extends SourceError {}

export const tooLarge = (url: string, detail: string, setting: string): RepositoryTooLargeError =>
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
