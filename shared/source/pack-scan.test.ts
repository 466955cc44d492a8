import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { ObjectSizes, PackScanner, type SourceLimits } from './pack-budget.js';

const MiB = 1024 * 1024;
const LIMITS: SourceLimits = { maxFetchBytes: 128 * MiB, maxFileBytes: 1 * MiB, maxTreeBytes: 4 * MiB, maxFiles: 100 };

/** A pack object's header: type and size as git writes them (4 bits, then 7 per byte). */
function header(type: number, size: number): Buffer {
  const bytes = [(type << 4) | (size & 15)];
  let rest = Math.floor(size / 16);
  while (rest > 0) {
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) | 0x80;
    bytes.push(rest & 0x7f);
    rest = Math.floor(rest / 128);
  }
  return Buffer.from(bytes);
}

/** A delta's own size header (little-endian base-128). */
const varint = (n: number): Buffer => {
  const bytes: number[] = [];
  do {
    bytes.push((n & 0x7f) | (n >= 128 ? 0x80 : 0));
    n = Math.floor(n / 128);
  } while (n > 0);
  return Buffer.from(bytes);
};

interface Obj {
  type: number;
  data: Buffer;
  /** What the header says, when it lies. */
  declared?: number;
}

const blob = (data: Buffer | string): Obj => ({ type: 3, data: Buffer.from(data) });
/** An ofs-delta whose data says it builds an object of `result` bytes (copying from its base). */
const delta = (result: number): Obj => ({
  type: 6,
  data: Buffer.concat([varint(10), varint(result), Buffer.from([0x90, 0x0a])]),
});

function pack(objects: Obj[], count = objects.length): Buffer {
  const head = Buffer.alloc(12);
  head.write('PACK', 0, 'latin1');
  head.writeUInt32BE(2, 4);
  head.writeUInt32BE(count, 8);
  const parts: Buffer[] = [head];
  for (const o of objects) {
    parts.push(header(o.type, o.declared ?? o.data.length));
    if (o.type === 6) parts.push(Buffer.from([0x01])); // the base's distance
    parts.push(deflateSync(o.data));
  }
  parts.push(Buffer.alloc(20));
  return Buffer.concat(parts);
}

const pkt = (payload: Buffer): Buffer =>
  Buffer.concat([Buffer.from((payload.length + 4).toString(16).padStart(4, '0'), 'latin1'), payload]);

/** An upload-pack response: NAK, then the pack in side-band-64k packets (band 1), progress between them. */
function response(p: Buffer, sideBand = true): Buffer {
  if (!sideBand) return Buffer.concat([pkt(Buffer.from('NAK\n')), p]);
  const parts = [pkt(Buffer.from('NAK\n'))];
  for (let i = 0; i < p.length; i += 65515) {
    parts.push(pkt(Buffer.concat([Buffer.from([1]), p.subarray(i, i + 65515)])));
    parts.push(pkt(Buffer.from('\x02Counting objects\n')));
  }
  parts.push(Buffer.from('0000'));
  return Buffer.concat(parts);
}

/** What scanning a response in chunks of `size` bytes refuses (undefined: nothing), and how far it read. */
async function scan(bytes: Buffer, size: number, limits = LIMITS): Promise<{ refused?: string; at: number }> {
  let at = 0;
  const scanner = new PackScanner(limits, (detail, setting) => {
    throw new Error(`${detail} (${setting})`);
  });
  try {
    for (; at < bytes.length; at += size) await scanner.push(bytes.subarray(at, at + size));
    return { at };
  } catch (err) {
    return { refused: (err as Error).message, at };
  } finally {
    scanner.close();
  }
}

describe('PackScanner: a pack refused by its object headers as it streams in', () => {
  const random = (n: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7919) % 251));
  const cases: Array<[string, Buffer, string | undefined]> = [
    [
      'small objects within every limit',
      response(pack([blob('a: 1\n'), blob(random(300_000)), delta(1000)])),
      undefined,
    ],
    ['no side-band: the pack follows the protocol lines', response(pack([blob('x'), blob('y')]), false), undefined],
    [
      'a blob whose header says 2 MiB',
      response(pack([blob('a'), blob(Buffer.alloc(2 * MiB))])),
      'an object of 2 MiB, more than 1 MiB (source.maxFileMiB)',
    ],
    [
      'a header past 4 GiB (no 32-bit overflow)',
      response(pack([{ type: 3, data: Buffer.from('x'), declared: 5 * 1024 * MiB }])),
      'an object of 5120 MiB, more than 1 MiB (source.maxFileMiB)',
    ],
    [
      'a small delta that builds an object of 3 MiB',
      response(pack([blob('base'), delta(3 * MiB)])),
      'an object of 3 MiB, more than 1 MiB (source.maxFileMiB)',
    ],
    [
      'objects that together unpack past source.maxTreeMiB',
      response(pack(Array.from({ length: 5 }, (_, i) => blob(Buffer.alloc(MiB - i))))),
      'one fetch unpacks to more than 4 MiB (source.maxTreeMiB)',
    ],
    [
      'deltas that together build past source.maxTreeMiB',
      response(pack([blob('base'), ...Array.from({ length: 5 }, () => delta(MiB))])),
      'one fetch unpacks to more than 4 MiB (source.maxTreeMiB)',
    ],
    [
      'more objects than twice source.maxFiles and 10000',
      response(pack([blob('a')], 10_201)),
      '10201 objects in one fetch, more than 10200 (source.maxFiles, twice it and 10000 objects per fetch)',
    ],
    [
      'an object that inflates to more than its header says',
      response(pack([{ type: 3, data: Buffer.alloc(500_000), declared: 100 }])),
      'an object that unpacks to more than its header says (100 bytes) (source.maxFileMiB)',
    ],
    [
      'a directory listing larger than source.maxFiles entries can be',
      response(pack([{ type: 2, data: Buffer.alloc(100 * 283 + 1) }])),
      'a directory listing of 28301 bytes, more entries than 100 files (source.maxFiles)',
    ],
  ];
  for (const chunk of [1, 7, 4096, 65536, 1 << 30])
    it.each(cases)(`%s (chunks of ${chunk} bytes)`, async (_name, bytes, refused) => {
      if (chunk === 1 && bytes.length > 200_000) return; // byte by byte only where it is quick
      expect((await scan(bytes, chunk)).refused).toBe(refused);
    });

  it('a large object is refused at its header: within one side-band packet, long before its data has arrived', async () => {
    const big = response(pack([blob('a'), blob(randomBytes(8 * MiB))]));
    const headerAt = big.indexOf(header(3, 8 * MiB), 12);
    const { refused, at } = await scan(big, 4096);
    expect(refused).toMatch(/an object of 8 MiB/);
    expect(at).toBeLessThan(headerAt + 65536);
    expect(at).toBeLessThan(big.length / 100);
  });
});

describe('ObjectSizes: an object size from its header, without inflating it', () => {
  it('agrees with git cat-file -s for packed, deltified and loose objects', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sizes-'));
    const git = (...args: string[]) =>
      execFileSync('git', args, {
        cwd: dir,
        env: {
          ...process.env,
          GIT_CONFIG_GLOBAL: '/dev/null',
          GIT_CONFIG_NOSYSTEM: '1',
          GIT_AUTHOR_NAME: 't',
          GIT_AUTHOR_EMAIL: 't@example.test',
          GIT_COMMITTER_NAME: 't',
          GIT_COMMITTER_EMAIL: 't@example.test',
        },
      })
        .toString()
        .trim();
    git('init', '--quiet');
    const text = Array.from({ length: 2000 }, (_, i) => `line ${i} of a file that changes a little\n`).join('');
    writeFileSync(join(dir, 'a.txt'), text);
    writeFileSync(join(dir, 'c.bin'), randomBytes(300_000));
    writeFileSync(join(dir, 'e.txt'), '');
    git('add', '.');
    git('commit', '--quiet', '-m', 'one');
    writeFileSync(join(dir, 'a.txt'), `${text}one more line\n`);
    git('commit', '--quiet', '-am', 'two');
    git('repack', '--quiet', '-a', '-d', '-f', '--depth=10', '--window=10');
    const packed = git('rev-list', '--objects', '--all')
      .split('\n')
      .map((l) => l.split(' ')[0] as string);
    const pack = readdirSync(join(dir, '.git/objects/pack')).find((f) => f.endsWith('.idx')) as string;
    // One version of a.txt is stored as a delta of the other: its size is what the delta builds.
    expect(git('verify-pack', '-v', join(dir, '.git/objects/pack', pack))).toMatch(/ blob +\d+ \d+ \d+ 1 [0-9a-f]{40}/);
    writeFileSync(join(dir, 'loose'), Buffer.alloc(3 * MiB));
    const loose = [git('hash-object', '-w', 'loose')];
    writeFileSync(join(dir, 'loose'), 'small\n');
    loose.push(git('hash-object', '-w', 'loose'));
    const sizes = new ObjectSizes(join(dir, '.git'));
    try {
      for (const oid of [...packed, ...loose])
        expect([oid, sizes.of(oid)]).toEqual([oid, Number(git('cat-file', '-s', oid))]);
      expect(sizes.of('0'.repeat(40))).toBeUndefined();
    } finally {
      sizes.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
