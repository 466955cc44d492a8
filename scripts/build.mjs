// `npm run build`: one minified ESM bundle per Lambda function (functions/<name>/handler.ts →
// dist/functions/<name>/index.mjs) and the CLI (dist/cli/tidegate.mjs), with sizes.
// The kubectl/helm layer and the AWS SDK (part of the Lambda runtime) are not bundled.
import { readdirSync, existsSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';
import { buildCli, common } from './esbuild.mjs';

const root = new URL('..', import.meta.url).pathname;
const functionsDir = join(root, 'functions');
const outRoot = join(root, 'dist', 'functions');

export function functionEntries() {
  if (!existsSync(functionsDir)) return [];
  return readdirSync(functionsDir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(functionsDir, d.name, 'handler.ts')))
    .map((d) => ({
      name: d.name,
      entry: join(functionsDir, d.name, 'handler.ts'),
      outdir: join(outRoot, d.name),
      outfile: join(outRoot, d.name, 'index.mjs'),
    }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

const entries = functionEntries();
rmSync(join(root, 'dist'), { recursive: true, force: true });
for (const fn of entries) {
  await build({
    ...common,
    // The nodejs22.x Lambda runtime ships AWS SDK v3 (and its @smithy packages): not bundled.
    external: ['@aws-sdk/*', '@smithy/*'],
    entryPoints: { index: fn.entry },
    outdir: fn.outdir,
    // What is imported on first use (openpgp, @octokit/core, the EKS/ECR clients' glue) goes to
    // chunks of its own: a cold start loads index.mjs only.
    splitting: true,
    chunkNames: 'chunks/[name]-[hash]',
    outExtension: { '.js': '.mjs' },
  });
  const chunks = existsSync(join(fn.outdir, 'chunks'))
    ? readdirSync(join(fn.outdir, 'chunks')).reduce((n, f) => n + statSync(join(fn.outdir, 'chunks', f)).size, 0)
    : 0;
  console.log(
    `${fn.name.padEnd(20)} ${(statSync(fn.outfile).size / 1024).toFixed(0).padStart(6)} KiB  ${fn.outfile.slice(root.length)} (+ ${(chunks / 1024).toFixed(0)} KiB loaded on first use)`,
  );
}
console.log(`${entries.length} function bundle(s) written to dist/functions`);
const cli = await buildCli();
console.log(
  `CLI ${(cli.bytes / 1024).toFixed(0)} KiB  dist/cli/tidegate.mjs (bin/tidegate.js), + ${(cli.chunkBytes / 1024).toFixed(0)} KiB of commands loaded when they run`,
);
