import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Range, maxSatisfying, valid, validRange } from 'semver';
import type { LocalSettings } from '../config/index.js';
import { errorMessage, redactUrl } from '../model/index.js';
import { OciChartRegistry, basicAuthorization, ociLocation, type RegistryCredentials } from './chart-oci.js';
import { cosignKey, verifyCosignSignature } from './cosign.js';
import { boundedGet, type FetchBounds } from './remote-base.js';
import type { TrustedKey } from './verify.js';

/** A chart in an HTTP(S) Helm repository, as a target names it. */
export interface ChartRef {
  repository: string;
  name: string;
  /** An exact version or a semver range; the newest matching version is used. */
  version: string;
  /** oci:// over plain HTTP (a registry on a private network without TLS). */
  insecure?: boolean | undefined;
  /** oci:// only: tags with a "v" prefix are versions too (Flux's OCIRepository; Helm reads strict versions only). */
  tagPrefixV?: boolean | undefined;
  /** oci:// only: the chart at this tag (instead of the version). */
  tag?: string | undefined;
  /** oci:// only: the chart at this manifest digest (instead of the version or tag). */
  digest?: string | undefined;
  /** oci:// only: the chart's manifest must carry a cosign signature made by one of these PEM public keys. */
  verify?: { keys: readonly string[] } | undefined;
}

/** A chart as a target names it: its verify names trusted keys (deploy-time setting trustedKeys). */
export type NamedChart = Omit<ChartRef, 'verify'> & {
  verify?: { provider: 'cosign'; keys: readonly string[] } | undefined;
};

/** Trusted keys by name (unknown names left out): the deploy-time setting trustedKeys, TIDEGATE_TRUSTED_KEYS locally. */
export type TrustedKeys = (names: readonly string[]) => Promise<TrustedKey[]>;

/** The chart a sync renders: the packaged archive in the cache, verified by its digest. */
export interface ResolvedChart {
  name: string;
  version: string;
  /** sha256 of the archive, as the repository's index.yaml states it. */
  digest: string;
  archive: string;
}

interface IndexEntry {
  version?: unknown;
  digest?: unknown;
  urls?: unknown;
}

/** A chart that could not be had: named with its repository (credentials left out); the render reports it. */
export class ChartError extends Error {
  constructor(chart: ChartRef, message: string, opts?: { cause?: unknown }) {
    super(
      `chart ${chart.name} ${chart.digest ?? chart.tag ?? chart.version} from ${redactUrl(chart.repository)}: ${message}`,
      opts,
    );
  }
}

/**
 * The entry of `name` in a (parsed) index.yaml that a version or range picks, as Helm picks it: the entry
 * spelled exactly so (build metadata included), else the newest version in the range. Prereleases
 * count only when the range names one, and then any prerelease in the range does (as Helm's and
 * Flux's semver library reads `>=1.0.0-0`).
 */
export function pickVersion(index: unknown, name: string, range: string): IndexEntry & { version: string } {
  if (!validRange(range)) throw new Error(`"${range}" is neither a version nor a semver range`);
  const entriesOf = (index as { entries?: Record<string, unknown> } | null)?.entries;
  const listed = entriesOf && Object.hasOwn(entriesOf, name) ? entriesOf[name] : undefined;
  const entries = (Array.isArray(listed) ? (listed as unknown[]) : []).filter(
    (e): e is IndexEntry & { version: string } =>
      e !== null &&
      typeof e === 'object' &&
      typeof (e as IndexEntry).version === 'string' &&
      valid((e as IndexEntry).version as string) !== null,
  );
  if (entries.length === 0) throw new Error(`the repository's index.yaml has no chart ${name}`);
  const version = pickFrom(
    entries.map((e) => e.version),
    range,
  );
  return entries.find((e) => e.version === version) as IndexEntry & { version: string };
}

/** Of versions (valid semver), the one a version or range picks, as Helm picks it (see pickVersion). */
export function pickFrom(versions: readonly string[], range: string): string {
  if (versions.includes(range)) return range;
  const includePrerelease = new Range(range).set.some((set) => set.some((c) => (c.semver.prerelease ?? []).length > 0));
  const best = maxSatisfying([...versions], range, { includePrerelease });
  if (!best) throw new Error(`no version matches ${range} (has ${versions.slice(0, 10).join(', ')})`);
  return best;
}

/**
 * Where a chart's archive may be fetched from: a listed host (checked by the request), and on it
 * the repository's own port, or the default port of its scheme (archives often live on another
 * host, such as a release download); never another port of a listed host.
 */
function archiveUrl(url: string, base: string): URL {
  const at = new URL(url, base);
  const repo = new URL(base);
  if (at.protocol !== 'https:' && at.protocol !== 'http:') throw new Error(`archive URL ${at.protocol} is not HTTP(S)`);
  if (at.port !== '' && at.host !== repo.host)
    throw new Error(
      `archive URL on port ${at.port} of ${at.hostname}: only the repository's port or the scheme's default`,
    );
  return at;
}

/** A version's archive and digest from an HTTP(S) repository's index.yaml (the archive not fetched yet). */
async function fromIndex(
  chart: ChartRef,
  allowedHosts: readonly string[],
  bounds: FetchBounds,
  credentials: RegistryCredentials | undefined,
): Promise<{ version: string; digest: string; download: () => Promise<Uint8Array> }> {
  const base = chart.repository.endsWith('/') ? chart.repository : `${chart.repository}/`;
  // Basic auth with the credentials of the repository's host, sent to its origin only (an archive elsewhere gets none).
  const origin = new URL(base);
  const authorization = basicAuthorization(origin, await credentials?.(origin.host));
  const headersFor = (url: URL): Record<string, string> =>
    authorization && url.origin === origin.origin ? { authorization } : {};
  const indexUrl = new URL('index.yaml', base);
  const index = await boundedGet(indexUrl, allowedHosts, bounds, headersFor(indexUrl));
  // js-yaml, loaded here only: an index.yaml of a large repository is megabytes, and js-yaml reads
  // one about ten times faster than the yaml library.
  const { load } = await import('js-yaml');
  const entry = pickVersion(load(Buffer.from(index).toString('utf8')), chart.name, chart.version);
  if (Date.now() > bounds.deadline)
    throw new Error('the render time limit passed (deploy-time setting render.timeout)');
  const digest = typeof entry.digest === 'string' ? entry.digest.toLowerCase() : '';
  if (!/^[0-9a-f]{64}$/.test(digest)) throw new Error(`index.yaml gives version ${entry.version} no sha256 digest`);
  const url = Array.isArray(entry.urls) && typeof entry.urls[0] === 'string' ? entry.urls[0] : undefined;
  if (!url) throw new Error(`index.yaml gives version ${entry.version} no URL`);
  const download = () => {
    const at = archiveUrl(url, base);
    return boundedGet(at, allowedHosts, bounds, headersFor(at));
  };
  return { version: entry.version, digest, download };
}

/** A version's chart layer from an OCI registry (tags as versions, the layer's digest from the manifest). */
/** The tag of the newest version a range allows among a registry's (version → tag). */
function tagOf(tags: ReadonlyMap<string, string> | undefined, range: string): string {
  if (!tags?.size) throw new Error(`no version matches ${range}: the repository has no tags that are versions`);
  const version = pickFrom([...tags.keys()], range);
  return tags.get(version) ?? version;
}

async function fromRegistry(
  chart: ChartRef,
  allowedHosts: readonly string[],
  bounds: FetchBounds,
  credentials: RegistryCredentials | undefined,
): Promise<{ version: string; digest: string; download: () => Promise<Uint8Array> }> {
  const { base, repository } = ociLocation(chart.repository, chart.name, chart.insecure ?? false);
  const registry = new OciChartRegistry(base, repository, allowedHosts, bounds, await credentials?.(base.host));
  // A digest or a tag names one manifest; a version or range is picked from the tags.
  const tags = (chart.digest ?? chart.tag) ? undefined : await registry.versions(chart.tagPrefixV);
  const reference = chart.digest ?? chart.tag ?? tagOf(tags, chart.version);
  const version = reference.startsWith('sha256:') ? reference : reference.replace(/_/g, '+');
  const { layer, manifest } = await registry.chartDigest(reference);
  // Before anything of the chart is read: its manifest, the one whose layer is fetched, signed by a trusted key.
  if (chart.verify) await verifyCosignSignature(registry, manifest, chart.verify.keys);
  return { version, digest: layer, download: () => registry.get(`blobs/sha256:${layer}`) };
}

/**
 * A chart from a Helm repository: over HTTP(S), index.yaml read and the archive it names fetched;
 * from an OCI registry (oci://), the tags read and the chart layer fetched. Either way the newest
 * version matching the range, every request to listed hosts only, within the render's time and
 * size limits, the archive checked against its digest and kept in the cache by it.
 */
export async function fetchChart(
  chart: ChartRef,
  allowedHosts: readonly string[],
  cacheDir: string,
  bounds: FetchBounds,
  credentials?: RegistryCredentials,
): Promise<ResolvedChart> {
  try {
    const { version, digest, download } = chart.repository.startsWith('oci://')
      ? await fromRegistry(chart, allowedHosts, bounds, credentials)
      : await fromIndex(chart, allowedHosts, bounds, credentials);
    const dir = join(cacheDir, 'charts');
    const archive = join(dir, `${digest}.tgz`);
    const cached = existsSync(archive) && sha256(readFileSync(archive)) === digest;
    if (!cached) {
      const data = await download();
      const got = sha256(data);
      if (got !== digest)
        throw new Error(`the archive of version ${version} has digest ${got}, the repository says ${digest}`);
      mkdirSync(dir, { recursive: true });
      const partial = `${archive}.${process.pid}.part`;
      writeFileSync(partial, data);
      renameSync(partial, archive);
    }
    return { name: chart.name, version, digest, archive };
  } catch (err) {
    throw new ChartError(chart, errorMessage(err), { cause: err });
  }
}

const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

/** The cosign public keys (PEM) of trusted key names; none of them configured, or one not a cosign key, fails. */
export async function cosignKeys(names: readonly string[], trustedKeys: TrustedKeys | undefined): Promise<string[]> {
  const found = (await trustedKeys?.(names)) ?? [];
  if (found.length === 0)
    throw new Error(
      `none of the trusted keys ${names.join(', ')} is configured (deploy-time setting trustedKeys; locally TIDEGATE_TRUSTED_KEYS)`,
    );
  for (const { name, key } of found)
    try {
      cosignKey(key);
    } catch (err) {
      throw new Error(`trusted key ${name} is not a cosign public key (PEM): ${errorMessage(err)}`, { cause: err });
    }
  return found.map((k) => k.key);
}

/** A chart whose verify names trusted keys, with those keys (PEM). */
async function withKeys(chart: NamedChart, trustedKeys: TrustedKeys | undefined): Promise<ChartRef> {
  const { verify, ...rest } = chart;
  if (!verify) return rest;
  try {
    return { ...rest, verify: { keys: await cosignKeys(verify.keys, trustedKeys) } };
  } catch (err) {
    throw new ChartError(chart, errorMessage(err), { cause: err });
  }
}

/** The chart fetcher renders use: the hosts, cache and output limit of these settings, by the render's deadline. */
export const chartRepositories =
  (settings: LocalSettings, credentials?: RegistryCredentials, trustedKeys?: TrustedKeys) =>
  async (chart: NamedChart, deadline: number): Promise<ResolvedChart> =>
    fetchChart(
      await withKeys(chart, trustedKeys),
      settings.render.allowedHosts,
      settings.cacheDir,
      { deadline, maxBytes: settings.render.maxBytes },
      credentials,
    );
