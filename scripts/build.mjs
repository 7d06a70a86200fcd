// Bundles the entry points with esbuild. Native and AWS SDK modules stay external: better-sqlite3 is
// a native addon, and the Lambda runtime ships the AWS SDK v3 clients.
import { build } from 'esbuild';
import { chmodSync } from 'node:fs';

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
