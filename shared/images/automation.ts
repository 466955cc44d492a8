import { closeSync, constants, lstatSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';
import type { ImagePolicySpec, TidegateConfig } from '../config/index.js';
import { errorMessage, type ImageMessage } from '../model/index.js';
import { commitAndPush, type GitSource } from '../source/index.js';
import { rewriteMarkers, type LatestImage, type MarkerEdit } from './markers.js';
import { selectTag } from './policy.js';
import { EcrRepository, OciClient, RegistryError, isEcr, splitRepository, type Credentials } from './registry.js';

export interface RegistryAccess {
  /** AWS endpoint override (tests, local stacks) and credentials for ECR. */
  awsEndpoint?: string | undefined;
  awsCredentials?: AwsCredentialIdentity | AwsCredentialIdentityProvider | undefined;
  /** Credentials by registry host (for ECR hosts, when the runtime has a role: a login of GetAuthorizationToken). */
  credentials?: (host: string) => Credentials | undefined | Promise<Credentials | undefined>;
}

/**
 * Asks the registry for the repository's tags and applies the policy (and pins the digest when
 * asked); stopped by `signal` (the message's deadline), each request also by its own time limit.
 */
export async function latestImage(
  policy: ImagePolicySpec,
  access: RegistryAccess = {},
  signal?: AbortSignal,
): Promise<LatestImage> {
  let tags: string[];
  let digestOf: (tag: string) => Promise<string>;
  if (isEcr(policy.repository)) {
    const ecr = new EcrRepository(policy.repository, {
      endpoint: access.awsEndpoint,
      credentials: access.awsCredentials,
      signal,
    });
    tags = await ecr.listTags();
    digestOf = (tag) => ecr.digest(tag);
  } else {
    const { host, path } = splitRepository(policy.repository);
    const oci = new OciClient(host, {
      insecure: policy.insecure,
      credentials: await access.credentials?.(host),
      signal,
    });
    tags = await oci.listTags(path);
    digestOf = (tag) => oci.digest(path, tag);
  }
  const re2 = policy.filterTags ? (await import('re2js')).RE2JS : undefined;
  let tag: string | undefined;
  try {
    tag = selectTag(tags, policy, re2);
  } catch (err) {
    throw new RegistryError(`image policy ${policy.name}: ${errorMessage(err)}`);
  }
  if (!tag)
    throw new RegistryError(
      `no tag of ${policy.repository} satisfies image policy ${policy.name} (${tags.length} tags seen)`,
    );
  return { name: policy.repository, tag, ...(policy.digest ? { digest: await digestOf(tag) } : {}) };
}

const normaliseImage = (ref: string): string => {
  const { host, path } = splitRepository(ref);
  return `${host === 'docker.io' ? 'registry-1.docker.io' : host}/${path}`;
};

/** The policies an image push concerns: those whose repository is the pushed one. */
export function policiesFor(
  config: Pick<TidegateConfig, 'images'>,
  msg: Pick<ImageMessage, 'registry' | 'repository'>,
): ImagePolicySpec[] {
  const pushed = normaliseImage(`${msg.registry}/${msg.repository}`);
  return config.images.filter((p) => normaliseImage(p.repository) === pushed);
}

export interface ImageUpdate {
  /** The commit holding the edits (on the tracked branch, or on the pull request branch). */
  sha: string | undefined;
  /** False when the branch already held exactly these edits. */
  pushed: boolean;
  edits: Array<MarkerEdit & { file: string }>;
  attempts: number;
}

const YAML_FILE = /\.ya?ml$/i;
/** A file image automation rewrites is at most this large (a manifest; anything larger is left alone). */
const MAX_MARKED_FILE = 8 * 1024 * 1024;

/**
 * Writes the latest images of the given policies into Git: every YAML file's Flux markers are
 * rewritten (only the marked values), committed with a message listing old → new, and pushed; a
 * push that loses a race is redone on the new head. Nothing is committed when every marker is
 * already at the chosen image. With `pullRequestBranch`, the commit is made on top of `branch`
 * and force-pushed to that branch instead (kept when it already holds the same edits).
 */
export async function writeImages(
  src: GitSource,
  opts: {
    branch: string;
    pullRequestBranch?: string;
    author: { name: string; email: string };
    latest: ReadonlyMap<ImagePolicySpec, LatestImage>;
    cacheDir: string;
    /** Files left as they are (those of a suspended target). */
    skip?: (file: string) => boolean;
  },
): Promise<ImageUpdate> {
  let edits: ImageUpdate['edits'] = [];
  const resolve = (marker: { namespace: string; policy: string }): LatestImage | undefined => {
    for (const [policy, image] of opts.latest) {
      if (policy.name === marker.policy && (policy.namespace === undefined || policy.namespace === marker.namespace))
        return image;
    }
    return undefined;
  };
  const result = await commitAndPush(src, {
    ...(opts.pullRequestBranch ? { branch: opts.pullRequestBranch, base: opts.branch } : { branch: opts.branch }),
    author: opts.author,
    cacheDir: opts.cacheDir,
    change: (dir, files) => {
      edits = [];
      for (const file of files().filter((f) => YAML_FILE.test(f) && !opts.skip?.(f))) {
        const path = join(dir, file);
        // Only a regular file of this working copy, of a size a manifest has: never through a link, never a device.
        const stat = lstatSync(path);
        if (!stat.isFile() || stat.size > MAX_MARKED_FILE) continue;
        const text = readFileSync(path, 'utf8');
        if (!text.includes('$imagepolicy')) continue;
        const out = rewriteMarkers(text, resolve);
        if (out.edits.length === 0) continue;
        const fd = openSync(path, constants.O_WRONLY | constants.O_TRUNC | constants.O_NOFOLLOW);
        try {
          writeFileSync(fd, out.text);
        } finally {
          closeSync(fd);
        }
        edits.push(...out.edits.map((e) => ({ ...e, file })));
      }
      if (edits.length === 0) return Promise.resolve(undefined);
      const lines = edits.map((e) => `- ${e.policy}: ${e.from} → ${e.to} (${e.file}:${e.line})`);
      const names = [...new Set(edits.map((e) => e.policy))].join(', ');
      return Promise.resolve(
        `tidegate: update image${names.includes(',') ? 's' : ''} ${names}\n\n${lines.join('\n')}\n`,
      );
    },
  });
  return { sha: result.sha, pushed: result.pushed, edits: result.sha ? edits : [], attempts: result.attempts };
}

/** The branch of a policy's pull request: one per policy, so a newer tag updates the same pull request. */
export const pullRequestBranch = (policy: Pick<ImagePolicySpec, 'name'>): string => `tidegate/images/${policy.name}`;

/** Title and body of a policy's pull request (image names and tags only). */
export function pullRequestText(
  policy: Pick<ImagePolicySpec, 'name' | 'repository'>,
  image: LatestImage,
  update: Pick<ImageUpdate, 'edits'>,
): { title: string; body: string } {
  const chosen = `${image.tag}${image.digest ? `@${image.digest}` : ''}`;
  const lines = update.edits.map((e) => `| \`${e.file}:${e.line}\` | \`${e.from}\` | \`${e.to}\` |`);
  return {
    title: `tidegate: update image ${policy.name} to ${image.tag}`,
    body: [
      `Image policy \`${policy.name}\` selected \`${policy.repository}:${chosen}\`.`,
      '',
      '| marker | from | to |',
      '|---|---|---|',
      ...lines,
      '',
      'Opened by tidegate image automation. A newer tag updates this pull request; merging it is what gets applied.',
    ].join('\n'),
  };
}
