import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { coerce, maxSatisfying, validRange } from 'semver';
import { extract } from 'tar-stream';
import type { LocalSettings } from '../config/index.js';
import { errorMessage, redactUrl } from '../model/index.js';
import { OciChartRegistry, type RegistryCredentials } from './chart-oci.js';
import { cosignKeys, type TrustedKeys } from './chart-repo.js';
import { verifyCosignSignature } from './cosign.js';
import type { FetchBounds } from './remote-base.js';

/** An OCI artifact of manifests (Flux's OCIRepository, as `flux push artifact` makes them), as a target names it. */
export interface ArtifactRef {
  /** oci://<registry>/<repository> */
  url: string;
  /** One of them: Flux's precedence is digest, then semver, then tag (latest when none). */
  ref: { tag?: string | undefined; semver?: string | undefined; digest?: string | undefined };
  insecure?: boolean | undefined;
  /** The layer to extract (default: the first one). */
  mediaType?: string | undefined;
  /** A cosign signature by one of these public keys (PEM) must name the manifest read. */
  verify?: { keys: readonly string[] } | undefined;
}

/** An artifact as a target names it: its verify names trusted keys (deploy-time setting trustedKeys). */
export type NamedArtifact = Omit<ArtifactRef, 'verify'> & {
  verify?: { provider: 'cosign'; keys: readonly string[] } | undefined;
};

/** An artifact fetched: its manifest digest and the directory it was extracted to. */
export interface ResolvedArtifact {
  digest: string;
  dir: string;
}

/** At most this many entries are extracted from an artifact. */
const MAX_ENTRIES = 20_000;

/** The artifact could not be had: named with its URL and reference; the render reports it. */
export class ArtifactError extends Error {
  constructor(artifact: ArtifactRef, message: string, opts?: { cause?: unknown }) {
    const { digest, semver, tag } = artifact.ref;
    super(`artifact ${redactUrl(artifact.url)}:${digest ?? semver ?? tag ?? 'latest'}: ${message}`, opts);
  }
}

/** The manifest reference a ref names: the digest, the newest tag in the semver range (tags with a "v" too, as Flux reads them), or the tag. */
async function referenceOf(registry: OciChartRegistry, ref: ArtifactRef['ref']): Promise<string> {
  if (ref.digest) return ref.digest;
  if (!ref.semver) return ref.tag ?? 'latest';
  if (!validRange(ref.semver)) throw new Error(`"${ref.semver}" is not a semver range`);
  const tags = await registry.tags();
  const byVersion = new Map(
    tags.flatMap((t) => {
      const v = coerce(t, { loose: false })?.version;
      return v && (t === v || t === `v${v}`) ? [[v, t] as const] : [];
    }),
  );
  const best = maxSatisfying([...byVersion.keys()], ref.semver);
  if (!best) throw new Error(`no tag matches ${ref.semver}`);
  return byVersion.get(best) ?? best;
}

/** Tar's own bytes (headers, padding) an archive may add to its files' before it is cut off. */
const TAR_OVERHEAD = 16 * 1024 * 1024;

/**
 * Extracts a tar.gz layer into `dir`: regular files and directories only (a link, device, an entry
 * leading out of the directory, or one clashing with an earlier entry fails it), within the byte
 * and entry limits and the deadline. What gunzip inflates is counted too (a gzip bomb stops at the
 * limit); every failure rejects, none escapes the stream.
 */
async function extractLayer(data: Uint8Array, dir: string, bounds: FetchBounds): Promise<void> {
  const tar = extract();
  const gunzip = createGunzip();
  let bytes = 0;
  let inflated = 0;
  let entries = 0;
  const done = new Promise<void>((resolve, reject) => {
    const fail = (err: unknown) => {
      gunzip.destroy();
      tar.destroy(err instanceof Error ? err : new Error(String(err)));
      reject(err instanceof Error ? err : new Error(String(err)));
    };
    gunzip.on('data', (c: Buffer) => {
      inflated += c.length;
      if (inflated > bounds.maxBytes + TAR_OVERHEAD)
        fail(new Error(`the layer inflates to more than ${bounds.maxBytes} bytes`));
      else if (Date.now() > bounds.deadline)
        fail(new Error('the render time limit passed (deploy-time setting render.timeout)'));
    });
    gunzip.on('error', fail);
    tar.on('entry', (header, stream, next) => {
      const name = posix.normalize(header.name.replace(/^\.\//, ''));
      const refuse = (why: string) => fail(new Error(`entry ${header.name}: ${why}`));
      if (++entries > MAX_ENTRIES) return refuse(`more than ${MAX_ENTRIES} entries`);
      if (name.startsWith('/') || name === '..' || name.startsWith('../')) return refuse('leads out of the artifact');
      if (header.type !== 'directory' && header.type !== 'file')
        return refuse(`a ${header.type ?? 'special'} entry (only files and directories are read)`);
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => {
        const chunk = c as Buffer;
        bytes += chunk.length;
        if (bytes > bounds.maxBytes) refuse(`the artifact unpacks to more than ${bounds.maxBytes} bytes`);
        else chunks.push(chunk);
      });
      stream.on('end', () => {
        try {
          if (header.type === 'directory') mkdirSync(join(dir, name), { recursive: true });
          else {
            mkdirSync(dirname(join(dir, name)), { recursive: true });
            writeFileSync(join(dir, name), Buffer.concat(chunks), { flag: 'wx' });
          }
          next();
        } catch (err) {
          refuse(`clashes with an earlier entry (${errorMessage(err)})`);
        }
      });
    });
    tar.on('finish', resolve);
    tar.on('error', fail);
  });
  Readable.from([Buffer.from(data)])
    .pipe(gunzip)
    .pipe(tar);
  await done;
}

/**
 * An OCI artifact of manifests: the manifest its reference names (a digest is checked against the
 * manifest), the layer of its media type (the first by default), checked against its digest and
 * extracted into the cache by the manifest's digest. Every request to listed hosts only, within the
 * render's time and size limits, with the registry credentials of its host.
 */
export async function fetchArtifact(
  artifact: ArtifactRef,
  allowedHosts: readonly string[],
  cacheDir: string,
  bounds: FetchBounds,
  credentials?: RegistryCredentials,
): Promise<ResolvedArtifact> {
  try {
    const url = new URL(artifact.url.replace(/^oci:\/\//, artifact.insecure ? 'http://' : 'https://'));
    const base = new URL(`${url.protocol}//${url.host}`);
    const repository = url.pathname.replace(/^\/+|\/+$/g, '');
    const registry = new OciChartRegistry(base, repository, allowedHosts, bounds, await credentials?.(base.host));
    const manifest = await registry.manifest(await referenceOf(registry, artifact.ref));
    // Before anything of it is read (a cached copy too): the manifest read, signed by a trusted key.
    if (artifact.verify) await verifyCosignSignature(registry, manifest.digest, artifact.verify.keys);
    const layer = artifact.mediaType
      ? manifest.layers.find((l) => l.mediaType === artifact.mediaType)
      : manifest.layers[0];
    const digest = layer?.digest ?? '';
    if (!/^sha256:[0-9a-f]{64}$/.test(digest))
      throw new Error(`the manifest has no layer${artifact.mediaType ? ` of media type ${artifact.mediaType}` : ''}`);
    // Kept by the layer's digest: what is extracted is that layer's content, whichever manifest named it.
    const dir = join(cacheDir, 'artifacts', digest.replace(':', '-'));
    if (existsSync(dir)) return { digest: manifest.digest, dir };
    const data = await registry.get(`blobs/${digest}`);
    if (`sha256:${createHash('sha256').update(data).digest('hex')}` !== digest)
      throw new Error(`the layer's content does not have its digest ${digest}`);
    const partial = `${dir}.${process.pid}.part`;
    rmSync(partial, { recursive: true, force: true });
    mkdirSync(partial, { recursive: true });
    try {
      await extractLayer(data, partial, bounds);
      renameSync(partial, dir);
    } catch (err) {
      rmSync(partial, { recursive: true, force: true });
      // Another sync extracted the same artifact meanwhile: that copy is as good.
      if (!existsSync(dir)) throw err;
    }
    return { digest: manifest.digest, dir };
  } catch (err) {
    throw new ArtifactError(artifact, errorMessage(err), { cause: err });
  }
}

/** An artifact whose verify names trusted keys, with those keys (PEM). */
async function withKeys(named: NamedArtifact, trustedKeys: TrustedKeys | undefined): Promise<ArtifactRef> {
  const { verify, ...rest } = named;
  if (!verify) return rest;
  try {
    return { ...rest, verify: { keys: await cosignKeys(verify.keys, trustedKeys) } };
  } catch (err) {
    throw new ArtifactError(rest, errorMessage(err), { cause: err });
  }
}

/** The artifact fetcher renders use: the hosts, cache and output limit of these settings, by the render's deadline. */
export const artifactSources =
  (settings: LocalSettings, credentials?: RegistryCredentials, trustedKeys?: TrustedKeys) =>
  async (named: NamedArtifact, deadline: number): Promise<ResolvedArtifact> =>
    fetchArtifact(
      await withKeys(named, trustedKeys),
      settings.render.allowedHosts,
      settings.cacheDir,
      { deadline, maxBytes: settings.render.maxBytes },
      credentials,
    );
