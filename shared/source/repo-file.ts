import { closeSync, fstatSync, lstatSync, openSync, readSync, realpathSync } from 'node:fs';
import { isAbsolute, join, relative } from 'node:path';
import { TidegateError } from '../model/index.js';

/** A file of a repository that is not read: a link out of it, not a regular file, or too large. */
export class RepositoryFileError extends TidegateError {
  constructor(message: string) {
    super('RepositoryFileRefused', message);
  }
}

/**
 * A file of a checkout as text: read only when it is a regular file inside the checkout (a
 * symbolic link is followed only to one inside it: never to /dev/zero or another repository's
 * files) and at most `maxBytes`, sized before it is read; undefined when nothing is at the path.
 */
export function readRepoFile(root: string, rel: string, maxBytes: number): string | undefined {
  let real: string;
  try {
    real = realpathSync(join(root, rel));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP') throw new RepositoryFileError(`${rel}: a loop of symbolic links`);
    throw err;
  }
  const inside = relative(realpathSync(root), real);
  if (inside.startsWith('..') || isAbsolute(inside))
    throw new RepositoryFileError(`${rel}: a symbolic link to a path outside the repository`);
  if (!lstatSync(real).isFile()) throw new RepositoryFileError(`${rel}: not a regular file`);
  const fd = openSync(real, 'r');
  try {
    const { size } = fstatSync(fd);
    if (size > maxBytes)
      throw new RepositoryFileError(
        `${rel}: ${Math.ceil(size / 1024)} KiB, more than ${Math.floor(maxBytes / 1024)} KiB`,
      );
    const buf = Buffer.alloc(size);
    for (let at = 0; at < size;) {
      const n = readSync(fd, buf, at, size - at, at);
      if (n === 0) break;
      at += n;
    }
    return buf.toString('utf8');
  } finally {
    closeSync(fd);
  }
}
