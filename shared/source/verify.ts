import { createHash, createPublicKey, verify as verifySignature, type KeyObject } from 'node:crypto';
import * as fs from 'node:fs';
import git from 'isomorphic-git';
import type { VerifyMode } from '../config/index.js';
import { errorMessage, type Revision } from '../model/index.js';

/**
 * Commit and tag signature verification against trusted keys, OpenPGP (openpgp) and SSH
 * (the SSHSIG format git writes with gpg.format=ssh). A signature counts only when it verifies
 * over the exact signed bytes with one of the trusted keys.
 */

interface SignatureCheck {
  /** Undefined when a trusted key made a valid signature; otherwise why not. */
  problem?: string;
  /** The trusted key that signed (its name), when valid. */
  signer?: string;
}

export interface TrustedKey {
  name: string;
  /** An armored OpenPGP public key, or an SSH public key line ("ssh-ed25519 AAAA… comment"); for charts, a cosign PEM public key. */
  key: string;
}

/** A reader over SSH wire-format strings (uint32 length + bytes). */
class Wire {
  private at = 0;
  constructor(private readonly buf: Buffer) {}
  bytes(n: number): Buffer {
    if (this.at + n > this.buf.length) throw new Error('truncated SSH signature');
    const out = this.buf.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }
  string(): Buffer {
    return this.bytes(this.bytes(4).readUInt32BE(0));
  }
}

const sshString = (b: Buffer | string): Buffer => {
  const body = Buffer.isBuffer(b) ? b : Buffer.from(b);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  return Buffer.concat([len, body]);
};

const b64url = (b: Buffer): string => b.toString('base64url');
const unsigned = (b: Buffer): Buffer => (b[0] === 0 ? b.subarray(1) : b);

/** The node key and verify algorithm for an SSH public key blob. */
function sshKey(blob: Buffer): { key: KeyObject; check: (data: Buffer, sigFormat: string, sig: Buffer) => boolean } {
  const w = new Wire(blob);
  const type = w.string().toString();
  if (type === 'ssh-ed25519') {
    const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b64url(w.string()) }, format: 'jwk' });
    return { key, check: (data, format, sig) => format === 'ssh-ed25519' && verifySignature(null, data, key, sig) };
  }
  if (type === 'ssh-rsa') {
    const e = w.string();
    const n = w.string();
    const key = createPublicKey({ key: { kty: 'RSA', e: b64url(unsigned(e)), n: b64url(unsigned(n)) }, format: 'jwk' });
    const hashes: Record<string, string> = { 'rsa-sha2-512': 'sha512', 'rsa-sha2-256': 'sha256' };
    return {
      key,
      check: (data, format, sig) => hashes[format] !== undefined && verifySignature(hashes[format], data, key, sig),
    };
  }
  if (type === 'ecdsa-sha2-nistp256') {
    w.string(); // curve name
    const point = w.string();
    const key = createPublicKey({
      key: { kty: 'EC', crv: 'P-256', x: b64url(point.subarray(1, 33)), y: b64url(point.subarray(33, 65)) },
      format: 'jwk',
    });
    return {
      key,
      check: (data, format, sig) => {
        if (format !== 'ecdsa-sha2-nistp256') return false;
        const rs = new Wire(sig);
        const pad = (x: Buffer) => Buffer.concat([Buffer.alloc(32), unsigned(x)]).subarray(-32);
        return verifySignature(
          'sha256',
          data,
          { key, dsaEncoding: 'ieee-p1363' },
          Buffer.concat([pad(rs.string()), pad(rs.string())]),
        );
      },
    };
  }
  throw new Error(`unsupported SSH key type ${type}`);
}

/** Verifies an armored SSHSIG over `payload` (namespace "git") against trusted SSH keys. */
function verifySsh(armored: string, payload: Buffer, trusted: readonly TrustedKey[]): SignatureCheck {
  const blob = Buffer.from(armored.replace(/-----(BEGIN|END) SSH SIGNATURE-----/g, '').replace(/\s+/g, ''), 'base64');
  const w = new Wire(blob);
  if (w.bytes(6).toString() !== 'SSHSIG' || w.bytes(4).readUInt32BE(0) !== 1)
    return { problem: 'not an SSH signature (SSHSIG version 1)' };
  const publicKey = w.string();
  const namespace = w.string().toString();
  const reserved = w.string();
  const hashAlg = w.string().toString();
  const sig = new Wire(w.string());
  const format = sig.string().toString();
  const signature = sig.string();
  if (namespace !== 'git') return { problem: `SSH signature for namespace "${namespace}", not "git"` };
  if (hashAlg !== 'sha512' && hashAlg !== 'sha256')
    return { problem: `SSH signature hash ${hashAlg} is not supported` };
  const signer = trusted.find(
    (t) =>
      t.key.trim().startsWith('ssh-') && Buffer.from(t.key.trim().split(/\s+/)[1] ?? '', 'base64').equals(publicKey),
  );
  if (!signer)
    return {
      problem: `signed by an SSH key that is not trusted (${sshKey(publicKey).key.asymmetricKeyType ?? 'unknown'} ${createHash('sha256').update(publicKey).digest('base64').replace(/=+$/, '')})`,
    };
  const signed = Buffer.concat([
    Buffer.from('SSHSIG'),
    sshString(namespace),
    sshString(reserved),
    sshString(hashAlg),
    sshString(createHash(hashAlg).update(payload).digest()),
  ]);
  return sshKey(publicKey).check(signed, format, signature)
    ? { signer: signer.name }
    : { problem: `the SSH signature does not verify with trusted key ${signer.name}` };
}

/** Verifies an armored OpenPGP detached signature over `payload` against trusted OpenPGP keys. */
async function verifyPgp(armored: string, payload: Buffer, trusted: readonly TrustedKey[]): Promise<SignatureCheck> {
  const openpgp = await import('openpgp');
  const keys = (
    await Promise.all(
      trusted
        .filter((t) => t.key.includes('BEGIN PGP PUBLIC KEY'))
        .map(async (t) => ({ name: t.name, keys: await openpgp.readKeys({ armoredKeys: t.key }) })),
    )
  ).flatMap((k) => k.keys.map((key) => ({ name: k.name, key })));
  const signature = await openpgp.readSignature({ armoredSignature: armored });
  const ids = signature.getSigningKeyIDs().map((id) => id.toHex());
  const signer = keys.find(({ key }) => key.getKeyIDs().some((id) => ids.includes(id.toHex())));
  if (!signer)
    return { problem: `signed by an OpenPGP key that is not trusted (key ID ${ids.join(', ') || 'unknown'})` };
  const message = await openpgp.createMessage({ binary: payload });
  const { signatures } = await openpgp.verify({ message, signature, verificationKeys: [signer.key], format: 'binary' });
  try {
    await signatures[0]?.verified;
    return signatures[0] ? { signer: signer.name } : { problem: 'empty OpenPGP signature' };
  } catch (err) {
    return { problem: `the OpenPGP signature does not verify with trusted key ${signer.name}: ${errorMessage(err)}` };
  }
}

async function check(
  signature: string | undefined,
  payload: Buffer,
  trusted: readonly TrustedKey[],
): Promise<SignatureCheck> {
  if (!signature) return { problem: 'not signed' };
  try {
    if (signature.includes('BEGIN SSH SIGNATURE')) return verifySsh(signature, payload, trusted);
    if (signature.includes('BEGIN PGP SIGNATURE')) return await verifyPgp(signature, payload, trusted);
    return { problem: 'signed in a format tidegate does not verify (only OpenPGP and SSH)' };
  } catch (err) {
    return { problem: `unreadable signature: ${errorMessage(err)}` };
  }
}

/**
 * A commit's signature and the bytes it signs, from the raw object as git does: the signature is
 * the `gpgsig` header (continued on lines that start with a space), the payload is the object
 * without that header. (isomorphic-git's payload assumes an OpenPGP block and misses SSH ones.)
 */
function splitSignedCommit(raw: string): { signature: string | undefined; payload: string } {
  const end = raw.indexOf('\n\n');
  const headers = (end < 0 ? raw : raw.slice(0, end)).split('\n');
  const kept: string[] = [];
  const signature: string[] = [];
  let inSignature = false;
  for (const line of headers) {
    if (line.startsWith('gpgsig ')) {
      inSignature = true;
      signature.push(line.slice(7));
    } else if (inSignature && line.startsWith(' ')) {
      signature.push(line.slice(1));
    } else {
      inSignature = false;
      kept.push(line);
    }
  }
  return {
    signature: signature.length ? signature.join('\n') : undefined,
    payload: kept.join('\n') + (end < 0 ? '' : raw.slice(end)),
  };
}

/** The signature of a commit in a (cached) git directory, checked against trusted keys. */
async function verifyCommit(gitdir: string, sha: string, trusted: readonly TrustedKey[]): Promise<SignatureCheck> {
  const { object } = await git.readObject({ fs, gitdir, oid: sha, format: 'content' });
  const { signature, payload } = splitSignedCommit(Buffer.from(object as Uint8Array).toString('utf8'));
  return check(signature, Buffer.from(payload), trusted);
}

/**
 * The signature of an annotated tag object: appended to the tag's message (OpenPGP or SSH), over
 * every byte before it. The tag must point at the commit being applied (a tag moved after it was
 * resolved, or a tag of another commit, is not that commit's signature).
 */
async function verifyTag(
  gitdir: string,
  tagOid: string,
  sha: string,
  trusted: readonly TrustedKey[],
): Promise<SignatureCheck> {
  const read = await git.readObject({ fs, gitdir, oid: tagOid, format: 'content' }).catch(() => undefined);
  if (!read) return { problem: `tag object ${tagOid.slice(0, 12)} is gone (the tag moved after it was resolved)` };
  if (read.type !== 'tag') return { problem: 'a lightweight tag (no tag object to sign)' };
  const raw = Buffer.from(read.object as Uint8Array);
  const text = raw.toString('utf8');
  const target = /^object ([0-9a-f]{40})$/m.exec(text)?.[1];
  if (target !== sha)
    return {
      problem: `points at ${target?.slice(0, 12) ?? 'nothing'}, not at ${sha.slice(0, 12)} which is being applied`,
    };
  const at = Math.max(
    text.lastIndexOf('-----BEGIN PGP SIGNATURE-----'),
    text.lastIndexOf('-----BEGIN SSH SIGNATURE-----'),
  );
  if (at < 0) return { problem: 'not signed' };
  const offset = Buffer.byteLength(text.slice(0, at));
  return check(text.slice(at), raw.subarray(0, offset), trusted);
}

/**
 * Checks a fetched revision as Flux's verify modes do: HEAD, the commit; Tag, the annotated tag
 * the revision was reached by; TagAndHEAD, both. Returns why it is not trusted, or the signers.
 */
export async function verifyRevision(
  gitdir: string,
  revision: Revision,
  mode: VerifyMode,
  trusted: readonly TrustedKey[],
  tagObject: (revision: Revision) => Promise<string | undefined>,
): Promise<{ problem?: string; signers: string[] }> {
  const signers: string[] = [];
  if (mode !== 'HEAD') {
    if (!revision.ref.startsWith('refs/tags/'))
      return { problem: `verify mode ${mode} needs a tag, but ${revision.ref || 'a bare commit'} is not one`, signers };
    const tagOid = await tagObject(revision);
    const tag = tagOid
      ? await verifyTag(gitdir, tagOid, revision.sha, trusted)
      : { problem: 'a lightweight tag (no tag object to sign)' };
    if (tag.problem) return { problem: `tag ${revision.ref.slice(10)}: ${tag.problem}`, signers };
    signers.push(tag.signer ?? '');
  }
  if (mode !== 'Tag') {
    const commit = await verifyCommit(gitdir, revision.sha, trusted);
    if (commit.problem) return { problem: `commit ${revision.sha.slice(0, 12)}: ${commit.problem}`, signers };
    signers.push(commit.signer ?? '');
  }
  return { signers };
}
