import { createDecipheriv, createHash } from 'node:crypto';
import type { RE2JS } from 're2js';
import { Scalar, type Document, isAlias, isMap, isScalar, isSeq, parseAllDocuments, type Node } from 'yaml';
import type { SopsKeys } from '../config/index.js';
import { errorMessage } from '../model/index.js';

/**
 * SOPS decryption (getsops/sops v3 file format), for the render only: the data key from one of the
 * file's age or AWS KMS recipients, every value decrypted with AES-256-GCM (its path as additional
 * data), and the file's MAC (SHA-512 over every value, in order, itself encrypted under the data key
 * with the file's lastmodified) checked before anything decrypted is used. A file is decrypted as a
 * whole or not at all.
 */

/** The formats of SOPS files: YAML and JSON trees, dotenv lines, and binary (a JSON envelope with one `data` value). */
export type SopsFormat = 'yaml' | 'json' | 'dotenv' | 'binary';

/** What marks an encrypted file of each format (its MAC), as Flux looks for it. */
const MARKERS: Readonly<Record<SopsFormat, string>> = {
  yaml: 'mac: ENC[',
  json: '"mac": "ENC[',
  binary: '"mac": "ENC[',
  dotenv: 'sops_mac=ENC[',
};

/** Whether a file's text is SOPS-encrypted in the format. */
export const isEncrypted = (text: string, format: SopsFormat): boolean => text.includes(MARKERS[format]);

/** What any SOPS ciphertext value starts with. */
export const CIPHERTEXT = 'ENC[AES256_GCM,';

/** The format SOPS gives a file by its name: .yaml/.yml, .json, .env; anything else is binary. */
export function formatOf(name: string): SopsFormat {
  if (/\.ya?ml$/i.test(name)) return 'yaml';
  if (/\.json$/i.test(name)) return 'json';
  if (/\.env$/i.test(name)) return 'dotenv';
  return 'binary';
}

/** A file that could not be decrypted: the reason, never a value of it. */
export class SopsError extends Error {}

/** Decrypted files and every value they held (to be kept out of messages). */
export interface Decryptor {
  /** The plaintext of an encrypted file, in its format (binary: the bytes it holds). */
  decrypt(text: string, format: SopsFormat): Promise<string>;
  /** Every value decrypted so far. */
  readonly values: readonly string[];
}

const ENCRYPTED = /^ENC\[AES256_GCM,data:(.*),iv:(.+),tag:(.+),type:(.+)\]$/;

/** AES-256-GCM with SOPS's 32-byte nonce; `aad` is the value's path ("a:b:"), or lastmodified for the MAC. */
function openValue(value: string, key: Buffer, aad: string): { plain: string; type: string } {
  if (value === '') return { plain: '', type: 'str' };
  const m = ENCRYPTED.exec(value);
  if (!m) throw new SopsError('a value is not in the SOPS format (ENC[AES256_GCM,…])');
  const [, data = '', iv = '', tag = '', type = ''] = m;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64'));
    decipher.setAAD(Buffer.from(aad, 'utf8'));
    decipher.setAuthTag(Buffer.from(tag, 'base64'));
    const plain = Buffer.concat([decipher.update(Buffer.from(data, 'base64')), decipher.final()]).toString('utf8');
    return { plain, type };
  } catch {
    throw new SopsError(
      `a value does not decrypt under the data key (at ${aad.replace(/:$/, '') || 'the MAC'}): it was changed, or moved`,
    );
  }
}

/** A decrypted value as the tree holds it (SOPS's types: str, int, float, bool, time, bytes). */
function typed(plain: string, type: string): unknown {
  switch (type) {
    case 'int':
      return Number.isSafeInteger(Number(plain)) ? Number(plain) : BigInt(plain);
    case 'float':
      return Number(plain);
    case 'bool':
      return ['1', 't', 'T', 'true', 'TRUE', 'True'].includes(plain);
    case 'str':
    case 'bytes':
    case 'time':
      return plain;
    default:
      throw new SopsError(`a value of unknown type ${type}`);
  }
}

/** Go's strconv.FormatFloat(f, 'f', -1, 64): the shortest digits that read back, never an exponent. */
export function goFloat(f: number): string {
  if (Number.isNaN(f)) return 'NaN';
  if (!Number.isFinite(f)) return f > 0 ? '+Inf' : '-Inf';
  const s = String(f);
  const m = /^(-?)(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(s);
  if (!m) return s;
  const [, sign = '', first = '', rest = '', exp = '0'] = m;
  const digits = first + rest;
  const point = 1 + Number(exp);
  if (point <= 0) return `${sign}0.${'0'.repeat(-point)}${digits}`;
  if (point >= digits.length) return `${sign}${digits}${'0'.repeat(point - digits.length)}`;
  return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
}

/** SOPS's ToBytes of a value left in clear: what the MAC hashes for it. */
function macBytes(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number')
    return Number.isInteger(value) && !Object.is(value, -0) ? String(value) : goFloat(value);
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  throw new SopsError(`a value of type ${typeof value} SOPS cannot hold`);
}

/** The metadata SOPS keeps under `sops` (or `sops_*` lines): what the decryption needs of it. */
interface Metadata {
  lastmodified?: unknown;
  mac?: unknown;
  age?: unknown;
  kms?: unknown;
  key_groups?: unknown;
  shamir_threshold?: unknown;
  unencrypted_suffix?: unknown;
  encrypted_suffix?: unknown;
  unencrypted_regex?: unknown;
  encrypted_regex?: unknown;
  unencrypted_comment_regex?: unknown;
  encrypted_comment_regex?: unknown;
  mac_only_encrypted?: unknown;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const list = (v: unknown): Array<Record<string, unknown>> =>
  Array.isArray(v) ? v.filter((x): x is Record<string, unknown> => typeof x === 'object' && x !== null) : [];

/** Which values of the tree are encrypted: SOPS's rules (suffixes, regular expressions in Go's syntax) over the path. */
function encryptionRule(meta: Metadata, re2: typeof RE2JS): (path: readonly string[]) => boolean {
  if (str(meta.unencrypted_comment_regex) || str(meta.encrypted_comment_regex))
    throw new SopsError(
      'files encrypted with a comment rule (encrypted_comment_regex, unencrypted_comment_regex) are not supported yet',
    );
  const rules = ['unencrypted_suffix', 'encrypted_suffix', 'unencrypted_regex', 'encrypted_regex'] as const;
  const set = rules.filter((r) => str(meta[r]));
  if (set.length > 1) throw new SopsError(`more than one of ${set.join(', ')}`);
  const rule = set[0] ?? 'unencrypted_suffix';
  const value = str(meta[rule]) ?? '_unencrypted';
  const re = rule.endsWith('regex') ? re2.compile(value) : undefined;
  const matches = (p: string): boolean => (re ? re.matcher(p).find() : p.endsWith(value));
  return rule.startsWith('unencrypted') ? (path) => !path.some(matches) : (path) => path.some(matches);
}

/** lastmodified as Go's time.Format(time.RFC3339) writes it back (no fraction; Z for a zero offset): the MAC's additional data. */
function rfc3339(value: string): string {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.\d+)?(Z|[+-]\d\d:\d\d)$/i.exec(value);
  if (!m) throw new SopsError('sops.lastmodified is not an RFC 3339 time');
  const zone = m[2] === '+00:00' || m[2] === '-00:00' || m[2]?.toUpperCase() === 'Z' ? 'Z' : (m[2] ?? 'Z');
  return `${m[1]}${zone}`;
}

/** The bytes MAC-only files start their hash with (sops.MACOnlyEncryptedInitialization). */
const MAC_ONLY_INIT = Buffer.from('8a3fd2ad54ce66527b1034f3d147be0b0b975b3bf44f72c6fdadec8176f27d69', 'hex');

/** A leaf of a tree: its path, its value as the file holds it, and where the decrypted value goes. */
interface Leaf {
  path: string[];
  value: unknown;
  set(value: unknown): void;
}

/**
 * Decrypts the leaves in order and checks the MAC over them: a leaf that the rules say is encrypted
 * is opened, every other one hashed as it is (unless mac_only_encrypted).
 */
async function openTree(leaves: readonly Leaf[], meta: Metadata, key: Buffer, values: string[]): Promise<void> {
  // Loaded when a file is decrypted: a sync without SOPS files never pays for it.
  const encrypted = encryptionRule(meta, (await import('re2js')).RE2JS);
  const macOnly = meta.mac_only_encrypted === true || meta.mac_only_encrypted === 'true';
  const hash = createHash('sha512');
  if (macOnly) hash.update(MAC_ONLY_INIT);
  const opened: Array<() => void> = [];
  for (const leaf of leaves) {
    if (!encrypted(leaf.path)) {
      if (!macOnly) hash.update(macBytes(leaf.value), 'utf8');
      continue;
    }
    if (typeof leaf.value !== 'string')
      throw new SopsError(`${leaf.path.join('.')} should be encrypted but is not (the file was changed)`);
    const { plain, type } = openValue(leaf.value, key, `${leaf.path.join(':')}:`);
    if (type === 'comment') continue;
    hash.update(plain, 'utf8');
    const value = typed(plain, type);
    opened.push(() => leaf.set(value));
    if (plain !== '') values.push(plain);
  }
  const lastModified = str(meta.lastmodified);
  const mac = str(meta.mac);
  if (!lastModified || !mac) throw new SopsError('the file has no MAC (sops.mac, sops.lastmodified)');
  const expected = openValue(mac, key, rfc3339(lastModified)).plain;
  if (hash.digest('hex').toUpperCase() !== expected.toUpperCase())
    throw new SopsError('MAC mismatch: the file was changed after it was encrypted (its values do not match its MAC)');
  for (const set of opened) set();
}

/** A scalar of a YAML tree as SOPS's YAML and JSON stores read it (ints kept exact). */
function scalarValue(node: Scalar): unknown {
  return node.value;
}

/** The leaves of a YAML or JSON document in order, with the path SOPS gives each (list items add nothing). */
function yamlLeaves(node: Node | null | undefined, path: string[], out: Leaf[], replace: (n: Node) => void): void {
  if (node === null || node === undefined) return;
  if (isAlias(node)) throw new SopsError('an alias (*name) in an encrypted file is not supported');
  if (isMap(node)) {
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? pair.key.value : pair.key;
      if (typeof key !== 'string') throw new SopsError('a key that is not a string');
      yamlLeaves(pair.value as Node | null, [...path, key], out, (n) => (pair.value = n));
    }
    return;
  }
  if (isSeq(node)) {
    node.items.forEach((item, i) => yamlLeaves(item as Node | null, path, out, (n) => (node.items[i] = n)));
    return;
  }
  if (isScalar(node)) {
    const value = scalarValue(node);
    if (value === null || value === undefined) return;
    out.push({ path, value, set: (v) => replace(new Scalar(v)) });
  }
}

/** A data key from the file's recipients: age identities first (offline), then AWS KMS. */
type DataKey = (meta: Metadata) => Promise<Buffer>;

/** The metadata of a YAML/JSON tree (the first document's `sops`), each document's `sops` taken out. */
function treeMetadata(docs: Document.Parsed[]): Metadata {
  let meta: Metadata | undefined;
  docs.forEach((doc, i) => {
    if (!isMap(doc.contents)) return;
    const at = doc.contents.items.findIndex((p) => isScalar(p.key) && p.key.value === 'sops');
    if (at < 0) return;
    const [pair] = doc.contents.items.splice(at, 1);
    if (i === 0 && pair) meta = (isMap(pair.value) ? pair.value.toJSON() : undefined) as Metadata | undefined;
  });
  if (!meta) throw new SopsError('no SOPS metadata (a top-level sops mapping) in the first document');
  return meta;
}

async function openYaml(text: string, format: 'yaml' | 'json' | 'binary', dataKey: DataKey, values: string[]) {
  const docs = parseAllDocuments(text, { intAsBigInt: true, prettyErrors: false });
  if (!Array.isArray(docs)) throw new SopsError('not a YAML or JSON document');
  const broken = docs.find((d) => d.errors.length > 0);
  if (broken) throw new SopsError(`invalid ${format === 'yaml' ? 'YAML' : 'JSON'}: ${broken.errors[0]?.code ?? ''}`);
  const meta = treeMetadata(docs);
  const leaves: Leaf[] = [];
  for (const doc of docs) yamlLeaves(doc.contents, [], leaves, (n) => (doc.contents = n as typeof doc.contents));
  await openTree(leaves, meta, await dataKey(meta), values);
  if (format === 'binary') {
    const data = (docs[0]?.toJS() as { data?: unknown } | undefined)?.data;
    if (typeof data !== 'string') throw new SopsError('a binary SOPS file holds its content as data');
    return data;
  }
  if (format === 'json')
    return `${docs.map((d) => JSON.stringify(d.toJS({ mapAsMap: false }), jsonSafe, 2)).join('\n')}\n`;
  for (const doc of docs) stripCiphertextComments(doc);
  return docs.map((d) => d.toString({ lineWidth: 0 })).join('');
}

const jsonSafe = (_: string, v: unknown): unknown => (typeof v === 'bigint' ? Number(v) : v);

/** The encrypted comments SOPS leaves (#ENC[…]) are dropped: they would read as noise in what is rendered. */
function stripCiphertextComments(doc: Document.Parsed): void {
  const clean = (c: string | null | undefined): string | undefined => (c && !c.includes(CIPHERTEXT) ? c : undefined);
  doc.commentBefore = clean(doc.commentBefore) ?? null;
  doc.comment = clean(doc.comment) ?? null;
  const walk = (node: unknown): void => {
    if (!node || typeof node !== 'object') return;
    const n = node as {
      commentBefore?: string | null;
      comment?: string | null;
      items?: unknown[];
      key?: unknown;
      value?: unknown;
    };
    if ('commentBefore' in n) n.commentBefore = clean(n.commentBefore) ?? null;
    if ('comment' in n) n.comment = clean(n.comment) ?? null;
    n.items?.forEach(walk);
    if ('key' in n) walk(n.key);
    if ('value' in n) walk(n.value);
  };
  walk(doc.contents);
}

/** sops_* lines of a dotenv file back into the metadata mapping (SOPS's flattening: __map_<key>, __list_<n>). */
function unflatten(entries: ReadonlyArray<[string, string]>): Metadata {
  const root: Record<string, unknown> = {};
  for (const [key, value] of entries) {
    const parts = key.split(/(__map_|__list_)/);
    let node: Record<string, unknown> | unknown[] = root;
    let name: string | number = parts[0] ?? '';
    for (let i = 1; i < parts.length; i += 2) {
      const isList = parts[i] === '__list_';
      const next: string | number = isList ? Number(parts[i + 1]) : (parts[i + 1] ?? '');
      const container = (node as Record<string | number, unknown>)[name] ?? (isList ? [] : {});
      (node as Record<string | number, unknown>)[name] = container;
      node = container as Record<string, unknown> | unknown[];
      name = next;
    }
    (node as Record<string | number, unknown>)[name] = value.replace(/\\n/g, '\n');
  }
  return root as Metadata;
}

async function openDotenv(text: string, dataKey: DataKey, values: string[]): Promise<string> {
  const lines: Array<{ comment: string } | { key: string; value: string }> = [];
  const meta: Array<[string, string]> = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('#')) {
      lines.push({ comment: line.slice(1) });
      continue;
    }
    const at = line.indexOf('=');
    if (at < 0) throw new SopsError('a dotenv line without "="');
    const key = line.slice(0, at);
    const value = line.slice(at + 1).replace(/\\n/g, '\n');
    if (key.startsWith('sops_')) meta.push([key.slice('sops_'.length), value]);
    else lines.push({ key, value });
  }
  const items = lines.filter((l): l is { key: string; value: string } => 'key' in l);
  const metadata = unflatten(meta);
  const leaves = items.map((item) => ({
    path: [item.key],
    value: item.value,
    set: (v: unknown) => (item.value = macBytes(v)),
  }));
  await openTree(leaves, metadata, await dataKey(metadata), values);
  return lines
    .filter((l) => !('comment' in l) || !l.comment.includes(CIPHERTEXT))
    .map((l) => ('comment' in l ? `#${l.comment}\n` : `${l.key}=${l.value.replace(/\n/g, '\\n')}\n`))
    .join('');
}

/** The recipients of a file: every group's age and AWS KMS entries (one group only: Shamir splits are not supported). */
function recipients(meta: Metadata): { age: Array<Record<string, unknown>>; kms: Array<Record<string, unknown>> } {
  const groups = list(meta.key_groups);
  if (groups.length > 1) throw new SopsError('the data key is split between key groups (Shamir): not supported yet');
  const group = (groups[0] ?? meta) as Metadata;
  return { age: list(group.age), kms: list(group.kms) };
}

/** The region of a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>). */
const arnRegion = (arn: string): string | undefined => /^arn:[^:]+:kms:([^:]+):/.exec(arn)?.[1];

/** Asks AWS KMS for a data key, with this process's credentials (the worker's role on Lambda). */
async function kmsDecrypt(keys: SopsKeys, arn: string, entry: Record<string, unknown>): Promise<Buffer> {
  const { KMSClient, DecryptCommand } = await import('@aws-sdk/client-kms');
  const region = arnRegion(arn) ?? keys.kms.region;
  const client = new KMSClient({ region, ...(keys.kms.endpoint ? { endpoint: keys.kms.endpoint } : {}) });
  try {
    const context = entry['context'];
    const out = await client.send(
      new DecryptCommand({
        KeyId: arn,
        CiphertextBlob: Buffer.from(str(entry['enc']) ?? '', 'base64'),
        ...(context && typeof context === 'object'
          ? { EncryptionContext: Object.fromEntries(Object.entries(context).map(([k, v]) => [k, String(v)])) }
          : {}),
      }),
    );
    if (!out.Plaintext) throw new Error('KMS returned no plaintext');
    return Buffer.from(out.Plaintext);
  } finally {
    client.destroy();
  }
}

/** The data key from the file's age recipients with the configured identities; what failed is added to `tried`. */
async function ageDataKey(
  identities: readonly string[],
  age: ReadonlyArray<Record<string, unknown>>,
  tried: string[],
): Promise<Buffer | undefined> {
  if (age.length === 0) return undefined;
  if (identities.length === 0) {
    tried.push(`age (${age.length} recipient${age.length > 1 ? 's' : ''}): no age key is configured`);
    return undefined;
  }
  const { Decrypter, armor } = await import('age-encryption');
  const decrypter = new Decrypter();
  for (const identity of identities) decrypter.addIdentity(identity);
  for (const entry of age) {
    try {
      return Buffer.from(await decrypter.decrypt(armor.decode(str(entry['enc']) ?? ''), 'uint8array'));
    } catch {
      tried.push(`age recipient ${str(entry['recipient']) ?? '?'}: none of the configured age keys matches it`);
    }
  }
  return undefined;
}

/** The data key of a file from the keys this process has; what was tried and why each failed, when none opens it. */
function dataKeyFrom(keys: SopsKeys): DataKey {
  return async (meta) => {
    const { age, kms } = recipients(meta);
    const tried: string[] = [];
    const fromAge = await ageDataKey(keys.ageKeys, age, tried);
    if (fromAge) return fromAge;
    for (const entry of kms) {
      const arn = str(entry['arn']) ?? '?';
      if (keys.kms.keyArns && !keys.kms.keyArns.includes(arn)) {
        tried.push(`AWS KMS key ${arn}: not among the KMS keys tidegate may use (deploy-time setting sops.kmsKeyArns)`);
        continue;
      }
      try {
        return await kmsDecrypt(keys, arn, entry);
      } catch (err) {
        tried.push(`AWS KMS key ${arn}: ${errorMessage(err)}`);
      }
    }
    if (age.length === 0 && kms.length === 0)
      tried.push(
        'the file names no age or AWS KMS recipient (PGP, GCP KMS, Azure Key Vault, HashiCorp Vault are not supported)',
      );
    throw new SopsError(`no key opens its data key: ${tried.join('; ')}`);
  };
}

/** A decryptor with the keys of this process (each data key asked for once per file). */
export function sopsDecryptor(keys: SopsKeys): Decryptor {
  const values: string[] = [];
  const dataKey = dataKeyFrom(keys);
  return {
    values,
    decrypt: (text, format) =>
      format === 'dotenv' ? openDotenv(text, dataKey, values) : openYaml(text, format, dataKey, values),
  };
}

/** What stands in for an encrypted value withheld from a render (an unreviewed change): valid as a string and as base64. */
export const WITHHELD_VALUE = 'dGlkZWdhdGUtd2l0aGhlbGQ=';

/** A placeholder of the value's type, so that a number or a flag stays one. */
function placeholder(value: string): unknown {
  const type = ENCRYPTED.exec(value)?.[4];
  if (type === 'int' || type === 'float') return 0;
  if (type === 'bool') return false;
  return WITHHELD_VALUE;
}

/**
 * An encrypted file with every encrypted value replaced by a placeholder and its SOPS metadata
 * taken out, without any key: what an unreviewed change renders with (binary: the placeholder).
 */
export function withhold(text: string, format: SopsFormat): string {
  if (format === 'binary') return WITHHELD_VALUE;
  if (format === 'dotenv')
    return text
      .split('\n')
      .filter((l) => !l.startsWith('sops_'))
      .map((l) => l.replace(/=ENC\[AES256_GCM,[^\]]*\]$/, `=${WITHHELD_VALUE}`))
      .join('\n');
  const docs = parseAllDocuments(text, { intAsBigInt: true, prettyErrors: false });
  if (!Array.isArray(docs) || docs.some((d) => d.errors.length > 0)) throw new SopsError('not valid YAML or JSON');
  treeMetadata(docs);
  const leaves: Leaf[] = [];
  for (const doc of docs) yamlLeaves(doc.contents, [], leaves, (n) => (doc.contents = n as typeof doc.contents));
  for (const leaf of leaves)
    if (typeof leaf.value === 'string' && leaf.value.startsWith(CIPHERTEXT)) leaf.set(placeholder(leaf.value));
  if (format === 'json') return `${docs.map((d) => JSON.stringify(d.toJS(), jsonSafe, 2)).join('\n')}\n`;
  for (const doc of docs) stripCiphertextComments(doc);
  return docs.map((d) => d.toString({ lineWidth: 0 })).join('');
}
