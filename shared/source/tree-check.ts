import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';

/** The marker a finished export leaves in its tree: what the tree held then (see treeSeal). */
export const COMPLETE_MARKER = '.tidegate-complete';

/**
 * A seal of an exported tree: every entry's path, type, mode, size and modification time (and a
 * link's target), never following a link. Writing a file changes its size or time, so a tree whose
 * seal differs from the one recorded at its export was written to since: it is exported again
 * rather than used. Reading the metadata only keeps the check cheap next to a render.
 */
export function treeSeal(dir: string): string {
  const hash = createHash('sha256');
  const walk = (rel: string): void => {
    const names = readdirSync(join(dir, rel)).sort();
    for (const name of names) {
      const path = rel ? `${rel}/${name}` : name;
      if (path === COMPLETE_MARKER) continue;
      const st = lstatSync(join(dir, path));
      const kind = st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : st.isFile() ? 'f' : 'o';
      hash.update(`${path}\0${kind}\0${st.mode}\0${st.size}\0${st.mtimeMs}\0`);
      if (kind === 'l') hash.update(`${readlinkSync(join(dir, path))}\0`);
      if (kind === 'd') walk(path);
    }
  };
  walk('');
  return hash.digest('hex');
}
