import { copyFileSync, lstatSync, mkdirSync, readdirSync, realpathSync } from 'node:fs';
import { dirname, join, posix, sep } from 'node:path';
import picomatch from 'picomatch';
import { RenderError } from './errors.js';

/** One copy rule of an ArtifactGenerator's artifact, its source being this repository: what it copies and where to. */
export interface CopyRule {
  /** A path of the repository, or a glob (`apps/base/**`, `config/*.yaml`). */
  from: string;
  /** A directory of the artifact (ending in "/", or empty), or a file's new path. */
  to: string;
  /** Globs of files (relative to the rule's base) left out. */
  exclude?: readonly string[] | undefined;
}

const GLOB = /[*?[\]{}!]/;

/** The directory a `from` starts at (its segments before the first glob) and the glob below it, if any. */
function splitRule(from: string): { base: string; glob: string | undefined } {
  const segments = posix.normalize(from).split('/');
  const at = segments.findIndex((s) => GLOB.test(s));
  if (at < 0) return { base: segments.join('/'), glob: undefined };
  return { base: segments.slice(0, at).join('/') || '.', glob: segments.slice(at).join('/') };
}

/** Every regular file below `dir` (links and other kinds are not copied), as paths relative to it. */
function filesUnder(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(join(dir, rel), { withFileTypes: true })) {
    const path = rel ? `${rel}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...filesUnder(dir, path));
    else if (entry.isFile()) out.push(path);
  }
  return out;
}

/**
 * The files of an ExternalArtifact, copied from the repository checkout `root` into `into` as its
 * ArtifactGenerator's copy rules say, in order (a later rule overwrites): a glob copies the files it
 * matches below its base, keeping their paths below it, into the `to` directory; a single file goes
 * to `to` (or into it, when `to` ends in "/"). Regular files only, never through a link; nothing
 * outside the repository; at most `maxBytes` in all.
 */
/** The base of a rule, proven a file or directory of the repository (not through a link, not outside). */
function baseOf(root: string, rule: CopyRule): { base: string; glob: string | undefined; file: boolean } {
  const { base, glob } = splitRule(rule.from);
  const refuse = (message: string) => new RenderError([{ file: rule.from, message, quotesNothing: true }]);
  if (base === '..' || base.startsWith('../') || base.startsWith('/')) throw refuse('leads out of the repository');
  let stat;
  try {
    stat = lstatSync(join(root, base));
  } catch {
    throw refuse('matches nothing in the repository');
  }
  const realRoot = realpathSync(root);
  const real = realpathSync(join(root, base));
  if (stat.isSymbolicLink() || (real !== realRoot && !real.startsWith(realRoot + sep)))
    throw refuse('is a link, or leads out of the repository');
  return { base, glob, file: !glob && stat.isFile() };
}

export function assembleArtifact(root: string, rules: readonly CopyRule[], into: string, maxBytes: number): void {
  let bytes = 0;
  const copy = (from: string, to: string) => {
    bytes += lstatSync(join(root, from)).size;
    if (bytes > maxBytes)
      throw new RenderError([
        { file: from, message: `the artifact's files exceed ${maxBytes} bytes`, quotesNothing: true },
      ]);
    mkdirSync(dirname(join(into, to)), { recursive: true });
    copyFileSync(join(root, from), join(into, to));
  };
  for (const rule of rules) {
    const { base, glob, file } = baseOf(root, rule);
    const to = rule.to.replace(/^\.?\/?/, '');
    if (file) {
      copy(base, to === '' || to.endsWith('/') ? posix.join(to, posix.basename(base)) : to);
      continue;
    }
    const matches = picomatch(glob ?? '**', { dot: true });
    const excluded = rule.exclude?.length ? picomatch([...rule.exclude], { dot: true }) : () => false;
    for (const path of filesUnder(join(root, base)))
      if (matches(path) && !excluded(path)) copy(posix.join(base, path), posix.join(to, path));
  }
}
