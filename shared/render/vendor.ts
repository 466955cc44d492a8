import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join, posix } from 'node:path';
import { parseDocument, visit } from 'yaml';
import { RenderError } from './errors.js';
import { parseRemoteBase, sandboxCheck, type RemoteBase } from './sandbox.js';

/** Fetches the tree of the git repository a remote base names (from allowed hosts only, by the deadline) and returns its directory. */
export type FetchRemoteBase = (base: RemoteBase, deadline: number) => Promise<string>;

const VENDOR_DIR = '.tidegate-remote';

/**
 * Remote kustomize bases are fetched by tidegate, never by kustomize: a scratch copy of the
 * checkout gets each remote repository (at its ref) under .tidegate-remote/, and each remote entry
 * is rewritten to the local path of its directory, round after round for bases that name more
 * (each checked by the sandbox like the repository's own files). kustomize then runs on the copy
 * with no remote entry left, so it reaches no network. `prepare` changes the copy first (a target's
 * components added to its kustomization). Returns the copy (the caller removes it).
 */
export async function vendorRemoteBases(
  root: string,
  path: string,
  scratchParent: string,
  fetchBase: FetchRemoteBase | undefined,
  allowedHosts: readonly string[],
  deadline: number,
  prepare?: (scratch: string) => void,
): Promise<string> {
  const scratch = mkdtempSync(join(scratchParent, 'render-'));
  try {
    cpSync(root, scratch, { recursive: true, verbatimSymlinks: true });
    prepare?.(scratch);
    return await vendorInto(scratch, path, fetchBase && ((base) => fetchBase(base, deadline)), allowedHosts);
  } catch (err) {
    rmSync(scratch, { recursive: true, force: true });
    throw err;
  }
}

async function vendorInto(
  scratch: string,
  path: string,
  fetchBase: ((base: RemoteBase) => Promise<string>) | undefined,
  allowedHosts: readonly string[],
): Promise<string> {
  for (let round = 0; round < 5; round++) {
    // What the fetched bases name is held to the same rules as the repository's own files.
    const { problems, remote } = sandboxCheck(scratch, path, 'kustomize', allowedHosts);
    if (problems.length > 0) throw new RenderError(problems);
    if (remote.length === 0) return scratch;
    if (!fetchBase)
      throw new RenderError([{ file: remote[0]?.kustomization ?? path, message: 'remote bases are not fetched here' }]);
    const rewrites = new Map<string, Map<string, string>>();
    for (const { kustomization, entry } of remote) {
      const base = parseRemoteBase(entry) as RemoteBase; // the sandbox check refused any other
      const key = createHash('sha256')
        .update(`${base.url}?${base.ref ?? ''}`)
        .digest('hex')
        .slice(0, 16);
      const into = posix.join(VENDOR_DIR, key);
      if (!existsSync(join(scratch, into)))
        cpSync(await fetchBase(base), join(scratch, into), { recursive: true, verbatimSymlinks: true });
      const local = posix.relative(posix.dirname(kustomization), posix.join(into, base.dir)) || '.';
      rewrites.set(kustomization, (rewrites.get(kustomization) ?? new Map<string, string>()).set(entry, local));
    }
    for (const [file, entries] of rewrites) {
      const doc = parseDocument(readFileSync(join(scratch, file), 'utf8'), { merge: true });
      visit(doc, {
        Scalar(_, node) {
          if (typeof node.value === 'string' && entries.has(node.value)) node.value = entries.get(node.value);
        },
      });
      writeFileSync(join(scratch, file), doc.toString());
    }
  }
  throw new RenderError([{ file: path, message: 'remote bases nest deeper than 5 levels' }]);
}
