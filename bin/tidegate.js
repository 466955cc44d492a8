#!/usr/bin/env node
// The CLI: the bundle `npm run build` writes (dist/cli). From a checkout, a bundle that is missing
// or older than the sources is built first (about a second), so `npm run tidegate` never runs
// stale code and never pays for transpiling at every start.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { URL } from 'node:url';

const root = new URL('..', import.meta.url);
const bundle = new URL('dist/cli/tidegate.mjs', root);

/** The newest modification time of the .ts files under a folder of the checkout. */
function newest(dir) {
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
    latest = Math.max(latest, statSync(`${entry.parentPath ?? entry.path}/${entry.name}`).mtimeMs);
  }
  return latest;
}

const sources = ['cli', 'shared'].map((d) => new URL(`${d}/`, root).pathname);
if (sources.every((d) => existsSync(d))) {
  const built = existsSync(bundle) ? statSync(bundle).mtimeMs : 0;
  if (Math.max(...sources.map(newest)) > built) await (await import('../scripts/esbuild.mjs')).buildCli();
}
await import(bundle.href);
