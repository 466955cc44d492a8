import { createReadStream, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { extract } from 'tar-stream';

/** A template calling `lookup` (a word of its own: not `lookups`, nor a value named lookupKey). */
const CALLS_LOOKUP = /(^|[^\w.$])lookup\s/;
const TEMPLATE = /\.(tpl|ya?ml|txt|json)$/i;
/** Past this many bytes of templates, a chart is taken to call lookup (it is not read further). */
const SCAN_LIMIT = 32 * 1024 * 1024;

/**
 * Whether a chart (a directory, or a packaged archive) has a template that calls `lookup`, its
 * subcharts included. A chart that does not is rendered without reaching the cluster at all.
 */
export async function chartCallsLookup(chart: string): Promise<boolean> {
  return statSync(chart).isDirectory() ? directoryCalls(chart) : archiveCalls(chart);
}

function directoryCalls(dir: string): boolean {
  let bytes = 0;
  const walk = (current: string): boolean => {
    for (const entry of readdirSync(current, { withFileTypes: true })) {
      const full = join(current, entry.name);
      if (entry.isDirectory()) {
        if (walk(full)) return true;
      } else if (entry.isFile() && TEMPLATE.test(entry.name)) {
        bytes += statSync(full).size;
        if (bytes > SCAN_LIMIT || CALLS_LOOKUP.test(readFileSync(full, 'utf8'))) return true;
      }
    }
    return false;
  };
  return walk(dir);
}

async function archiveCalls(archive: string): Promise<boolean> {
  let found = false;
  let bytes = 0;
  const tar = extract();
  tar.on('entry', (header, stream, next) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: unknown) => {
      const chunk = c as Buffer;
      bytes += chunk.length;
      if (!found) chunks.push(chunk);
    });
    stream.on('end', () => {
      if (bytes > SCAN_LIMIT) found = true;
      else if (!found && header.type === 'file' && TEMPLATE.test(header.name))
        found = CALLS_LOOKUP.test(Buffer.concat(chunks).toString('utf8'));
      next();
    });
    stream.resume();
  });
  await pipeline(createReadStream(archive), createGunzip(), tar);
  return found;
}
