// Bundles the entry points with esbuild. Native and AWS SDK modules stay external: better-sqlite3 is
// a native addon, and the Lambda runtime ships the AWS SDK v3 clients.
import { build } from 'esbuild';
import { chmodSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { writeConsole } from './console-build.mjs';

// The web console (console/), served at /ui/ from dist/console/ (lambdas/apiserver/console.ts).
const consoleFiles = writeConsole('dist/console');
const consoleGzip = Object.values(consoleFiles).reduce((n, f) => n + gzipSync(f.body).length, 0);
if (consoleGzip > 300 * 1024) throw new Error(`the console is ${consoleGzip} bytes gzipped, over its 300 KB budget`);
console.log(`console: ${(consoleGzip / 1024).toFixed(1)} KB gzipped (budget 300 KB)`);

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  sourcemap: 'linked',
  logLevel: 'warning',
  // ESM bundles need require() for CommonJS dependencies.
  banner: { js: "import { createRequire as __skiffCreateRequire } from 'node:module'; const require = __skiffCreateRequire(import.meta.url);" },
};

await build({
  ...common,
  entryPoints: { skiff: 'lambdas/local/cli.ts' },
  outdir: 'dist',
  outExtension: { '.js': '.mjs' },
  external: ['better-sqlite3', '@aws-sdk/*', 'dockerode'], // dockerode: ssh2's optional native parts
  banner: { js: '#!/usr/bin/env node\n' + common.banner.js },
});
chmodSync('dist/skiff.mjs', 0o755);

// The same CLI for an EC2 node (infra/nodes.ts ships dist/node/ as an asset): self-contained, since a node
// has Node.js but no node_modules. The AWS SDK (SSM, for joining the cluster) is bundled; only native
// addons stay out: `skiff up`'s SQLite (never loaded by `skiff agent`) and ssh2's optional native parts,
// which it loads inside try/catch.
await build({
  ...common,
  entryPoints: { skiff: 'lambdas/local/cli.ts' },
  outdir: 'dist/node',
  outExtension: { '.js': '.mjs' },
  external: ['better-sqlite3', 'cpu-features', '*.node'],
  minify: true,
  // ssh2 (under dockerode) reads __dirname, which ESM lacks; the other bundle leaves dockerode external.
  banner: {
    js:
      '#!/usr/bin/env node\n' +
      common.banner.js +
      " import { fileURLToPath as __skiffPath } from 'node:url'; const __filename = __skiffPath(import.meta.url); const __dirname = __skiffPath(new URL('.', import.meta.url));",
  },
});
