// npm run bench:coldstart — what a cold start costs each Lambda function before its first request:
// the bundle as the CDK construct builds it (esbuild, ESM, minified, the AWS SDK left to the runtime),
// its size (and gzipped, roughly what the deployment zip holds), and the time a fresh Node process takes
// to import its handler module (median and worst of RUNS fresh processes). Prints a Markdown table.

import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';

const RUNS = Number(process.env.BENCH_RUNS ?? 9);
const ENTRIES = {
  apiserver: 'lambdas/apiserver/lambda.ts',
  scheduler: 'lambdas/scheduler/lambda.ts',
  controllers: 'lambdas/controllers/lambda.ts',
};
// Inside the repository, so the externals (@aws-sdk/*) resolve from node_modules as the runtime's would.
const OUT = join(process.cwd(), '.bench-coldstart');

rmSync(OUT, { recursive: true, force: true });
mkdirSync(OUT, { recursive: true });
try {
  const rows: string[] = [];
  for (const [name, entry] of Object.entries(ENTRIES)) {
    // The construct's bundling (infra/skiff-cluster.ts): ESM, module-first, require() banner, SDK external, minified.
    await build({
      entryPoints: [entry],
      outfile: join(OUT, `${name}.mjs`),
      bundle: true,
      platform: 'node',
      target: 'node20',
      format: 'esm',
      mainFields: ['module', 'main'],
      banner: { js: "import { createRequire as __skiffCreateRequire } from 'node:module'; const require = __skiffCreateRequire(import.meta.url);" },
      external: ['@aws-sdk/*'],
      minify: true,
      logLevel: 'warning',
    });
    const file = join(OUT, `${name}.mjs`);
    const code = readFileSync(file);
    const times: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      // The Lambda runtime defines the awslambda global (response streaming) before it imports a handler.
      const script = `globalThis.awslambda = { streamifyResponse: (f) => f, HttpResponseStream: { from: (s) => s } };
const t = performance.now(); await import(${JSON.stringify(pathToFileURL(file).href)}); console.log(performance.now() - t);`;
      const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
        encoding: 'utf8',
        env: { ...process.env, AWS_REGION: 'us-east-1', SKIFF_TABLE_NAME: 'skiff-bench', NODE_OPTIONS: '' },
      });
      times.push(Number(out.trim().split('\n').at(-1)));
    }
    times.sort((a, b) => a - b);
    rows.push(`| ${name} | ${(code.length / 1024).toFixed(0)} | ${(gzipSync(code).length / 1024).toFixed(0)} | ${times[Math.floor(times.length / 2)]!.toFixed(0)} | ${times.at(-1)!.toFixed(0)} |`);
  }
  const cpu = os.cpus()[0]?.model ?? 'unknown';
  console.log(`\n## bench:coldstart — ${new Date().toISOString().slice(0, 10)}, ${os.cpus().length} vCPU ${cpu}, Node ${process.version}\n`);
  console.log(`Bundle as the construct builds it (AWS SDK external); import time of the handler module in a fresh Node process, ${RUNS} processes each.\n`);
  console.log('| function | bundle KiB | gzipped KiB | import p50 ms | import max ms |');
  console.log('|---|---:|---:|---:|---:|');
  for (const r of rows) console.log(r);
} finally {
  rmSync(OUT, { recursive: true, force: true });
}
