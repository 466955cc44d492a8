// The esbuild options every bundle shares, and the CLI's build (also run by bin/tidegate.js when
// its bundle is missing or older than the sources).
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';

const root = new URL('..', import.meta.url).pathname;

// zod re-exports its 40+ error-message locales from its entry points (z.locales); nothing here
// uses them, yet they are a quarter of a bundle. English, the default, is the only one kept.
const zodEnglishOnly = {
  name: 'zod-english-only',
  setup(b) {
    b.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) =>
      /[\\/]zod[\\/]v4[\\/](classic|core)[\\/]/.test(args.importer)
        ? { path: join(args.importer, '..', '..', 'locales', 'en.js'), namespace: 'zod-locales' }
        : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'zod-locales' }, (args) => ({
      contents: `export { default as en } from ${JSON.stringify(args.path)};`,
      resolveDir: join(args.path, '..'),
    }));
  },
};

export const common = {
  plugins: [zodEnglishOnly],
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

/** dist/cli/tidegate.mjs and the chunks of its commands (each loaded when its command runs). */
export async function buildCli() {
  const outdir = join(root, 'dist', 'cli');
  rmSync(outdir, { recursive: true, force: true });
  await build({
    ...common,
    entryPoints: { tidegate: join(root, 'cli', 'tidegate.ts') },
    outdir,
    splitting: true,
    chunkNames: 'chunks/[name]-[hash]',
    outExtension: { '.js': '.mjs' },
  });
  const chunks = join(outdir, 'chunks');
  return {
    bytes: statSync(join(outdir, 'tidegate.mjs')).size,
    chunkBytes: existsSync(chunks) ? readdirSync(chunks).reduce((n, f) => n + statSync(join(chunks, f)).size, 0) : 0,
  };
}
