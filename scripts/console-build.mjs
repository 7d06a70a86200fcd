// Builds the web console (console/, issue #17 item 4) into a few in-memory files: the apiserver serves
// them at /ui/ (lambdas/apiserver/console.ts) from console/ beside its bundle: scripts/build.mjs writes
// dist/console/, the apiserver Lambda's bundling hook (infra/skiff-cluster.ts) the function's console/;
// run from source, the apiserver builds them on first request. Files, not strings in the bundle: the
// bundle's size is the Lambda's cold start. preact + htm, minified: ~14 KB gzipped (budget 300).
import { buildSync } from 'esbuild';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = fileURLToPath(new URL('../console/', import.meta.url));

/** @returns {Record<string, { type: string; body: string }>} path under /ui/ -> file */
export function buildConsole() {
  const out = buildSync({
    entryPoints: [dir + 'app.ts'],
    bundle: true,
    minify: true,
    format: 'esm',
    target: 'es2022',
    platform: 'browser',
    write: false,
    outfile: 'app.js',
    logLevel: 'warning',
  });
  return {
    'index.html': { type: 'text/html; charset=utf-8', body: readFileSync(dir + 'index.html', 'utf8') },
    'app.css': { type: 'text/css; charset=utf-8', body: readFileSync(dir + 'app.css', 'utf8') },
    'app.js': { type: 'text/javascript; charset=utf-8', body: out.outputFiles[0].text },
  };
}

/** Writes the files into a directory (the apiserver reads them from console/ beside its bundle). */
export function writeConsole(outDir) {
  const files = buildConsole();
  mkdirSync(outDir, { recursive: true });
  for (const [name, f] of Object.entries(files)) writeFileSync(join(outDir, name), f.body);
  return files;
}

// `node scripts/console-build.mjs DIR` (the apiserver Lambda's bundling hook, infra/skiff-cluster.ts).
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1] && process.argv[2]) writeConsole(process.argv[2]);
