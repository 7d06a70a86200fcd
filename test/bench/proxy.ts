// npm run bench:proxy — the Service proxy (node-agent/proxy.ts) on one node with real containers.
//
// 1. Data path: requests/s and latency p50/p99 of HTTP GETs through a cluster IP and straight to the
//    backend pod's IP, same run, same client: this process on the host, Node's http with keep-alive off
//    (agent: false), so every request is a new TCP connection and goes through the DNAT (and, from the
//    host, the masquerade) again. CONCURRENCY requests in flight, each phase DURATION_MS long.
// 2. Control path: with 1,000 services (each with an Endpoints object, created through the HTTPS API),
//    the time from an Endpoints update (the API call) until a probe connection to that service's cluster
//    IP lands on the new backend, and the proxy's own build and iptables-restore times for that change.
// The cluster (apiserver, controllers, one agent with its proxy) runs in this process. Prints Markdown.

import os from 'node:os';
import { execFileSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import Docker from 'dockerode';
import { findResource } from '../../lambdas/machinery/resources.ts';
import type { KubeObject } from '../../lambdas/machinery/types.ts';
import { configFromKubeconfig, KubeClient } from '../../node-agent/kube-client.ts';
import type { SyncResult } from '../../node-agent/proxy.ts';
import { LABELS } from '../../node-agent/runtime.ts';
import { ensureBusyboxImage } from '../../node-agent/images.ts';
import { startTestCluster } from '../support/cluster.ts';
import { getOnNewConnection } from '../support/http.ts';
import { until } from '../support/until.ts';

const SERVICES = Number(process.env.BENCH_SERVICES ?? 1000);
const FLIPS = Number(process.env.BENCH_FLIPS ?? 10);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8);
const DURATION_MS = Number(process.env.BENCH_DURATION_MS ?? 4000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const RESYNC_MS = 20_000; // the proxy's periodic drift check, shortened to measure it with 1,000 services
const IMAGE = 'skiff.local/busybox:test';
const PID = process.pid;
const NODE = `bench-proxy-node-${PID}`;
const NETWORK = `skiff-bench-proxy-${PID}`;
const PREFIX = `SKB${PID}`.slice(0, 10);
const pods = findResource('', 'v1', 'pods')!;

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;


/** CONCURRENCY loops of GETs for `ms`: latencies, seconds taken, errors. */
async function load(host: string, port: number, ms = DURATION_MS) {
  const lat: number[] = [];
  let errors = 0;
  const end = performance.now() + ms;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < end) {
        const s = performance.now();
        try {
          await getOnNewConnection(host, port);
          lat.push(performance.now() - s);
        } catch {
          errors++;
        }
      }
    }),
  );
  return { lat, secs: (performance.now() - t0) / 1000, errors };
}

async function main() {
  const docker = new Docker();
  await docker.ping();
  await ensureBusyboxImage(docker, IMAGE);
  const syncs: SyncResult[] = [];
  const c = await startTestCluster({
    agents: 1,
    requireAgents: true,
    agentOptions: { nodeName: NODE, network: NETWORK, proxy: { chainPrefix: PREFIX, serviceCIDR: '10.96.0.0/16', resyncMs: RESYNC_MS, onSync: (s) => void syncs.push(s) } },
  });
  const kube = new KubeClient(configFromKubeconfig(c.kubeconfigPath));
  try {
    // Two backends serving their names; a service over the first alone (same server as the direct path).
    for (const name of ['be-a', 'be-b']) {
      await kube.create('/api/v1/namespaces/default/pods', {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name, labels: { app: name } },
        spec: {
          terminationGracePeriodSeconds: 0,
          containers: [{ name: 'main', image: IMAGE, command: ['sh', '-c', 'mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www'], ports: [{ containerPort: 8080 }] }],
        },
      });
    }
    await kube.create('/api/v1/namespaces/default/services', { apiVersion: 'v1', kind: 'Service', metadata: { name: 'one' }, spec: { selector: { app: 'be-a' }, ports: [{ port: 80, targetPort: 8080 }] } });
    const ip = async (name: string) => (await c.api.registry.get(pods, 'default', name)).status?.podIP as string | undefined;
    const [ipA, ipB] = [await until('be-a running', () => ip('be-a'), 60_000), await until('be-b running', () => ip('be-b'), 60_000)];
    const vip = (await kube.get<KubeObject>('/api/v1/namespaces/default/services/one')).spec.clusterIP as string;
    await until('service one proxied', async () => (await getOnNewConnection(vip, 80).catch(() => '')) === 'be-a', 30_000);

    // ---- data path: a warm-up, then the two paths interleaved, ROUNDS times each ----
    await load(ipA, 8080, 2000);
    const paths = { direct: { label: 'pod IP, direct', host: ipA, port: 8080 }, vip: { label: 'cluster IP (DNAT in the kernel)', host: vip, port: 80 } };
    const acc = { direct: { lat: [] as number[], secs: 0, errors: 0, rps: [] as number[] }, vip: { lat: [] as number[], secs: 0, errors: 0, rps: [] as number[] } };
    for (let round = 0; round < ROUNDS; round++) {
      for (const k of round % 2 ? (['vip', 'direct'] as const) : (['direct', 'vip'] as const)) {
        const r = await load(paths[k].host, paths[k].port);
        acc[k].lat.push(...r.lat);
        acc[k].secs += r.secs;
        acc[k].errors += r.errors;
        acc[k].rps.push(r.lat.length / r.secs);
      }
    }
    const rows = (['direct', 'vip'] as const).map((k) => {
      const a = acc[k];
      const lat = a.lat.sort((x, y) => x - y);
      const range = `${Math.min(...a.rps).toFixed(0)}–${Math.max(...a.rps).toFixed(0)}`;
      const stalls = lat.filter((x) => x >= 900).length; // a retransmitted SYN (1 s) or worse
      return `| ${paths[k].label} | ${(lat.length / a.secs).toFixed(0)} (${range}) | ${pct(lat, 50).toFixed(2)} | ${pct(lat, 99).toFixed(2)} | ${lat.length} | ${stalls} | ${a.errors} |`;
    });

    // ---- control path: 1,000 services with endpoints ----
    const tCreate = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        for (let i = next++; i < SERVICES; i = next++) {
          const name = `svc-${i}`;
          await kube.create('/api/v1/namespaces/default/services', { apiVersion: 'v1', kind: 'Service', metadata: { name }, spec: { ports: [{ port: 80, protocol: 'TCP' }] } });
          await kube.create('/api/v1/namespaces/default/endpoints', {
            apiVersion: 'v1',
            kind: 'Endpoints',
            metadata: { name },
            subsets: [{ addresses: [{ ip: ipA }], ports: [{ port: 8080, protocol: 'TCP' }] }],
          });
        }
      }),
    );
    const createSecs = (performance.now() - tCreate) / 1000;
    const probeName = `svc-${Math.floor(SERVICES / 2)}`;
    const probeVip = (await kube.get<KubeObject>(`/api/v1/namespaces/default/services/${probeName}`)).spec.clusterIP as string;
    await until(`all ${SERVICES} services proxied`, async () => syncs.at(-1)!.services >= SERVICES + 1 && (await getOnNewConnection(probeVip, 80).catch(() => '')) === 'be-a', 120_000);
    await new Promise((r) => setTimeout(r, 500)); // let the last coalesced sync finish
    const full = syncs.filter((s) => s.applied).sort((a, b) => b.bytes - a.bytes)[0]!;
    const appliesDuringCreate = syncs.filter((s) => s.applied).length;

    const flips: Array<{ ms: number; probes: number; sync?: SyncResult }> = [];
    let current = 'be-a';
    for (let i = 0; i < FLIPS; i++) {
      const target = current === 'be-a' ? 'be-b' : 'be-a';
      const ep = await kube.get<KubeObject>(`/api/v1/namespaces/default/endpoints/${probeName}`);
      ep.subsets = [{ addresses: [{ ip: target === 'be-a' ? ipA : ipB }], ports: [{ port: 8080, protocol: 'TCP' }] }];
      const before = syncs.length;
      const t0 = performance.now();
      await kube.update(`/api/v1/namespaces/default/endpoints/${probeName}`, ep);
      let probes = 0;
      for (;;) {
        probes++;
        const who = await getOnNewConnection(probeVip, 80).catch(() => '');
        if (who === target) break;
        if (performance.now() - t0 > 10_000) throw new Error('the flip did not take effect in 10 s');
      }
      const ms = performance.now() - t0;
      await new Promise((r) => setTimeout(r, 300));
      flips.push({ ms, probes, sync: syncs.slice(before).find((s) => s.applied) });
      current = target;
    }
    // The periodic drift check with all the services present (nothing drifted: nothing written); then a
    // service chain flushed behind the proxy's back, which the next check finds and repairs in full.
    let nSyncs = syncs.length;
    const check = await until('a periodic check', async () => syncs.slice(nSyncs).find((s) => s.checked), RESYNC_MS + 30_000);
    const svcChain = execFileSync('iptables-save', ['-t', 'nat'], { encoding: 'utf8' })
      .split('\n')
      .find((l) => l.startsWith(`-A ${PREFIX}-SERVICES -d `) && l.includes(`-j ${PREFIX}-SVC-`))!
      .replace(/.* -j (\S+)$/, '$1');
    execFileSync('iptables', ['-w', '5', '-t', 'nat', '-F', svcChain]);
    nSyncs = syncs.length;
    const resync = await until('a full repair', async () => syncs.slice(nSyncs).find((s) => s.checked && s.full && s.applied), RESYNC_MS + 30_000);
    const flipMs = flips.map((f) => f.ms).sort((a, b) => a - b);
    const applyMs = flips.map((f) => f.sync?.applyMs ?? NaN).sort((a, b) => a - b);
    const buildMs = flips.map((f) => f.sync?.buildMs ?? NaN).sort((a, b) => a - b);
    const bytes = flips.map((f) => f.sync?.bytes ?? NaN).sort((a, b) => a - b);

    const cpu = os.cpus()[0]?.model ?? 'unknown';
    console.log(`\n## bench:proxy — ${new Date().toISOString().slice(0, 10)}, ${os.cpus().length} vCPU ${cpu}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}\n`);
    console.log(`Data path: HTTP GET of a small file from busybox httpd in a pod; client = this process on the host, Node http`);
    console.log(`with keep-alive off (a new TCP connection per request), ${CONCURRENCY} in flight; ${ROUNDS} rounds of ${DURATION_MS / 1000} s per path,`);
    console.log(`interleaved, after a warm-up. The cluster IP has one endpoint: the same pod as the direct path.\n`);
    console.log('| path | requests/s (range over rounds) | p50 ms | p99 ms | requests | ≥ 0.9 s | errors (3 s) |');
    console.log('|---|---|---|---|---|---|---|');
    for (const r of rows) console.log(r);
    console.log(`\nControl path: ${SERVICES} services + Endpoints created through the HTTPS API in ${createSecs.toFixed(1)} s (${appliesDuringCreate} coalesced applies);`);
    console.log(`largest apply: ${(full.bytes / 1024).toFixed(0)} KiB of iptables-restore input in ${full.applyMs.toFixed(0)} ms (build ${full.buildMs.toFixed(1)} ms).`);
    console.log(`Then ${FLIPS} times: one service's Endpoints switched to the other backend (PUT through the API); time until a probe`);
    console.log(`connection (new connection each, back to back) to its cluster IP lands on the new backend.\n`);
    console.log('| measure | p50 | max |');
    console.log('|---|---|---|');
    console.log(`| Endpoints PUT → traffic on the new backend (ms) | ${pct(flipMs, 50).toFixed(0)} | ${flipMs.at(-1)!.toFixed(0)} |`);
    console.log(`| proxy: rebuild of the rule set, ${SERVICES + 1} services (ms) | ${pct(buildMs, 50).toFixed(1)} | ${buildMs.at(-1)!.toFixed(1)} |`);
    console.log(`| proxy: iptables-restore of the changed chains (ms) | ${pct(applyMs, 50).toFixed(0)} | ${applyMs.at(-1)!.toFixed(0)} |`);
    console.log(`| proxy: restore input per change (bytes) | ${pct(bytes, 50).toFixed(0)} | ${bytes.at(-1)!.toFixed(0)} |`);
    console.log(`\nPeriodic drift check with ${check.services} services (iptables-save, compare, rebuild): ${check.buildMs.toFixed(0)} ms, ${check.applied ? `${check.bytes} bytes written` : 'nothing written'}.`);
    console.log(`After one service chain was flushed behind its back: full repair of ${(resync.bytes / 1024).toFixed(0)} KiB of restore input, build (with the check) ${resync.buildMs.toFixed(0)} ms, iptables-restore ${resync.applyMs.toFixed(0)} ms.`);
  } finally {
    kube.close();
    for (const a of c.agents) await a.close({ removePods: true });
    const left = await docker.listContainers({ all: true, filters: { label: [`${LABELS.node}=${NODE}`] } });
    await Promise.all(left.map((x) => docker.getContainer(x.Id).remove({ force: true }).catch(() => {})));
    await c.destroy();
    await docker.getNetwork(NETWORK).remove().catch(() => {});
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
