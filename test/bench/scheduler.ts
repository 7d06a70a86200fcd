// npm run bench:scheduler — scheduling throughput and latency on the embedded backend: 1,000 hollow
// nodes, 10,000 pods created 32 at a time, the scheduler running as `skiff up` runs it (in-process on the
// SQLite change feed). A pod counts as scheduled when a watch sees it bound. Prints a Markdown table.
// This is the in-process figure: pods are created and watched through the registry in this process, with
// no HTTPS and no process boundary. `npm run bench:vs-kube` measures `skiff up` as its own process over
// HTTPS, side by side with kube-apiserver + kube-scheduler + etcd.

import os from 'node:os';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { SqliteBackend } from '../../lambdas/storage/sqlite.ts';
import { ApiServer } from '../../lambdas/apiserver/app.ts';
import { findResource } from '../../lambdas/machinery/resources.ts';
import { runControllers } from '../../lambdas/local/controllers.ts';
import { createScheduler } from '../../lambdas/scheduler/scheduler.ts';
import { startHollowNodes } from '../../node-agent/hollow.ts';

const NODES = Number(process.env.BENCH_NODES ?? 1000);
const PODS = Number(process.env.BENCH_PODS ?? 10000);
const CONCURRENCY = 32;

const pods = findResource('', 'v1', 'pods')!;
const namespaces = findResource('', 'v1', 'namespaces')!;

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-bench-sched-'));
  const backend = new SqliteBackend(join(dir, 'skiff.db'));
  const api = new ApiServer({ backend });
  const ctx = api.controllerContext();
  await api.registry.create(namespaces, undefined, { metadata: { name: 'bench' } });
  const tNodes = performance.now();
  const hollow = await startHollowNodes({ ctx, count: NODES, cpu: '8', memory: '32Gi', pods: 110 });
  const nodesMs = performance.now() - tNodes;
  const runner = runControllers(ctx, [createScheduler()]);

  const created = new Map<string, number>();
  const latency: number[] = [];
  const watchAbort = new AbortController();
  const rv = (await api.registry.list(pods, 'bench')).metadata.resourceVersion;
  const watching = (async () => {
    for await (const ev of api.registry.watch(pods, 'bench', { resourceVersion: rv }, watchAbort.signal)) {
      const o = ev.object as any;
      const t0 = created.get(o.metadata?.name);
      if (t0 !== undefined && o.spec?.nodeName) {
        latency.push(performance.now() - t0);
        created.delete(o.metadata.name);
        if (latency.length === PODS) break;
      }
    }
  })();

  const rss0 = process.memoryUsage().rss;
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      for (let i = next++; i < PODS; i = next++) {
        const name = `p-${i}`;
        created.set(name, performance.now());
        await ctx.create(pods, 'bench', {
          metadata: { name, labels: { app: `a${i % 50}` } },
          spec: { containers: [{ name: 'c', image: 'busybox', resources: { requests: { cpu: '50m', memory: '64Mi' } } }] },
        });
      }
    }),
  );
  const createdMs = performance.now() - start;
  const deadline = setTimeout(() => watchAbort.abort(), 300_000);
  await watching;
  clearTimeout(deadline);
  const totalMs = performance.now() - start;
  // CPU time of the whole process per bound pod: it moves much less than pods/s with other load on the
  // machine, so it is the better figure to compare two versions by on a shared machine.
  const cpu = process.cpuUsage(cpu0);
  const cpuMsPerPod = (cpu.user + cpu.system) / 1000 / Math.max(1, latency.length);
  const rss = process.memoryUsage().rss;
  watchAbort.abort();
  await runner.stop();
  await hollow.stop();
  await backend.close();
  rmSync(dir, { recursive: true, force: true });

  latency.sort((a, b) => a - b);
  console.log(`\nMachine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}\n`);
  console.log('In-process figure (registry calls in this process, no HTTPS; `npm run bench:vs-kube` measures skiff up over HTTPS beside Kubernetes):\n');
  console.log('| nodes | pods | bound | registering nodes s | creating pods s | created → all bound s | pods/s end to end | latency p50 ms | latency p99 ms | CPU ms per pod | process RSS MiB |');
  console.log('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  console.log(
    `| ${NODES} | ${PODS} | ${latency.length} | ${(nodesMs / 1000).toFixed(1)} | ${(createdMs / 1000).toFixed(1)} | ${(totalMs / 1000).toFixed(1)} | ${((latency.length / totalMs) * 1000).toFixed(0)} | ${pct(latency, 50).toFixed(0)} | ${pct(latency, 99).toFixed(0)} | ${cpuMsPerPod.toFixed(2)} | ${Math.round(Math.max(rss, rss0) / 2 ** 20)} |`,
  );
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
