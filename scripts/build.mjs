// `npm run build`: one minified ESM bundle per Lambda function (functions/<name>/handler.ts →
// dist/functions/<name>/index.mjs) and the CLI (dist/cli/tidegate.mjs), with sizes.
// The kubectl/helm layer and the AWS SDK (part of the Lambda runtime) are not bundled.
import { readdirSync, existsSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';

const root = new URL('..', import.meta.url).pathname;
const functionsDir = join(root, 'functions');
const outRoot = join(root, 'dist', 'functions');

export function functionEntries() {
  if (!existsSync(functionsDir)) return [];
  return readdirSync(functionsDir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(functionsDir, d.name, 'handler.ts')))
    .map((d) => ({ name: d.name, entry: join(functionsDir, d.name, 'handler.ts'), outfile: join(outRoot, d.name, 'index.mjs') }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

const common = {
  bundle: true,
  minify: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  sourcemap: false,
  legalComments: 'none',
  // CommonJS dependencies inside an ESM bundle still call require().
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  logLevel: 'warning',
};

const entries = functionEntries();
rmSync(join(root, 'dist'), { recursive: true, force: true });
for (const fn of entries) {
  await build({
    ...common,
    // The nodejs22.x Lambda runtime ships AWS SDK v3 (and its @smithy packages): not bundled.
    external: ['@aws-sdk/*', '@smithy/*'],
    entryPoints: [fn.entry],
    outfile: fn.outfile,
  });
  console.log(`${fn.name.padEnd(20)} ${(statSync(fn.outfile).size / 1024).toFixed(0).padStart(6)} KiB  ${fn.outfile.slice(root.length)}`);
}
console.log(`${entries.length} function bundle(s) written to dist/functions`);
const cli = join(root, 'dist', 'cli', 'tidegate.mjs');
await build({ ...common, entryPoints: [join(root, 'cli', 'tidegate.ts')], outfile: cli });
console.log(`CLI ${(statSync(cli).size / 1024).toFixed(0)} KiB  dist/cli/tidegate.mjs (bin/tidegate.js)`);
