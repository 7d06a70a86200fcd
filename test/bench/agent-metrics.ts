// What the agent's metrics (node-agent/metrics.ts) cost a full node: 110 pods (kubelet's default
// maximum) of 2 containers, each with readiness, liveness and startup probes every 10 s
// (66 probe results a second counted), Prometheus scraping /metrics, /metrics/probes and
// /metrics/cadvisor every 15 s, and a deployed node's EMF flush every minute. Measures the CPU time of
// each operation (process.cpuUsage over many repetitions) and the heap the series hold (after GC), and
// prints the CPU per minute of that load as a share of one core.
//   node --expose-gc --import tsx test/bench/agent-metrics.ts

import { AgentMetrics, AGENT_EMF_SERIES } from '../../node-agent/metrics.ts';
import { EmfPublisher } from '../../lambdas/machinery/emf.ts';
import type { StatsSummary } from '../../node-agent/stats.ts';
import type { KubeObject } from '../../lambdas/machinery/types.ts';

const PODS = 110;
const CONTAINERS = 2;
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');

const pods: KubeObject[] = Array.from({ length: PODS }, (_, i) => ({ metadata: { name: `web-${i}-7d9f8c6b5-x${i}`, namespace: `ns-${i % 10}`, uid: `00000000-0000-0000-0000-${String(i).padStart(12, '0')}` } }));
const summary: StatsSummary = {
  node: { nodeName: 'n' },
  pods: pods.map((p, i) => ({
    podRef: { namespace: p.metadata.namespace!, name: p.metadata.name!, uid: p.metadata.uid! },
    containers: Array.from({ length: CONTAINERS }, (_, c) => ({ name: `c${c}`, usage: { time: '', window: 10, usageNanoCores: 1e6, usageCoreNanoSeconds: 1e9 * (i + c), workingSetBytes: 1e7 + i } })),
  })),
};

function cpuMs(f: () => void | Promise<void>, n: number): Promise<number> {
  return (async () => {
    const t0 = process.cpuUsage();
    for (let i = 0; i < n; i++) await f();
    const d = process.cpuUsage(t0);
    return (d.user + d.system) / 1000 / n;
  })();
}

gc();
const heap0 = process.memoryUsage().heapUsed;
const m = new AgentMetrics(() => summary);
// Every series present: each container's three probes with both results, pods started, syncs.
for (const p of pods)
  for (let c = 0; c < CONTAINERS; c++)
    for (const kind of ['startup', 'liveness', 'readiness'] as const) {
      m.probe(p, `c${c}`, kind, true);
      m.probe(p, `c${c}`, kind, false);
    }
for (let i = 0; i < PODS; i++) m.podStarted(true);
m.proxySynced({ applied: true, full: true, bytes: 1, buildMs: 1, applyMs: 1, services: 1 });
await m.cadvisor.metrics();
gc();
const heapSeries = process.memoryUsage().heapUsed - heap0;

let k = 0;
const probe = await cpuMs(() => {
  const p = pods[k++ % PODS]!;
  m.probe(p, 'c0', 'readiness', true);
}, 200_000);
const start = await cpuMs(() => m.podStarted(true), 200_000);
const sync = await cpuMs(() => m.proxySynced({ applied: true, full: false, bytes: 1, buildMs: 2, applyMs: 3, services: 1 }), 200_000);
const scrape: Record<string, number> = {};
for (const path of ['/metrics', '/metrics/probes', '/metrics/cadvisor']) {
  const r = m.registryOf(path)!;
  scrape[path] = await cpuMs(async () => void (await r.metrics()), 300);
}
const sizes = Object.fromEntries(await Promise.all(['/metrics', '/metrics/probes', '/metrics/cadvisor'].map(async (p) => [p, (await m.registryOf(p)!.metrics()).length])));
const emf = new EmfPublisher([m.registry, m.probes, m.cadvisor], { namespace: 'Skiff', dimensions: { ClusterName: 'c' }, series: AGENT_EMF_SERIES, write: () => {} });
const flush = await cpuMs(async () => void (await emf.flush()), 300);

// A minute of the load above.
const probesPerMinute = PODS * CONTAINERS * 3 * 6; // three probes per container, every 10 s
const scrapesPerMinute = 4; // every 15 s
const perMinute = probesPerMinute * probe + 6 * sync + scrapesPerMinute * (scrape['/metrics']! + scrape['/metrics/probes']! + scrape['/metrics/cadvisor']!) + flush;
gc();
console.log(
  JSON.stringify(
    {
      pods: PODS,
      containers: PODS * CONTAINERS,
      cpuMicrosecondsPerCall: { probe: +(probe * 1000).toFixed(2), podStart: +(start * 1000).toFixed(2), proxySync: +(sync * 1000).toFixed(2) },
      cpuMsPerScrape: Object.fromEntries(Object.entries(scrape).map(([p, v]) => [p, +v.toFixed(2)])),
      scrapeBytes: sizes,
      cpuMsPerEmfFlush: +flush.toFixed(2),
      cpuMsPerMinute: +perMinute.toFixed(1),
      shareOfOneCore: `${((perMinute / 60_000) * 100).toFixed(3)}%`,
      heapOfSeriesKB: Math.round(heapSeries / 1024),
    },
    null,
    2,
  ),
);
