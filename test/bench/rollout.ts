// npm run bench:rollout — a Deployment of REPLICAS pods on NODES nodes, created and then rolled to a new
// image, on `skiff up` and, side by side in the same run, on the real Kubernetes control plane (etcd,
// kube-apiserver, kube-scheduler and kube-controller-manager with its deployment, replicaset and
// garbagecollector controllers, built from the Go module proxy by vs-kube-build.ts). Both are started as
// their users run them and driven over HTTPS by this process.
//
// No real kubelet runs on either side: this process registers the Nodes, renews their Leases, and stands
// in for their kubelets (fake-nodes.ts: a bound pod is reported Running and Ready with one status write;
// a deleted one is finished with a grace-0 delete), identically for both. So what is measured is the
// control plane: the Deployment and ReplicaSet loops, the scheduler, the apiserver and the store.
//
// Measured per side, from the request that starts each phase:
// - create → Available: until the Deployment reports REPLICAS updated, ready and available replicas
//   for its generation (what `kubectl rollout status` waits for);
// - rollout: a new image set (one PATCH), until the same holds for the new template and no old pod is
//   left (status.replicas == REPLICAS);
// plus the server processes' CPU seconds over both phases and their peak RSS.
// The default strategy (RollingUpdate, maxSurge 25%, maxUnavailable 25%).
//
// Knobs: BENCH_NODES (100), BENCH_REPLICAS (1000), BENCH_TIMEOUT_S (300), BENCH_SIDE=skiff|kubernetes,
// BENCH_KEEP=1 (keep data dirs and logs). Without Go on PATH it says so and measures Skiff alone.

import { mkdtempSync, rmSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { apiClient } from '../support/skiff-up.ts';
import { ensureKubeBinaries, ensureKubeControllerManager, goVersion, KUBE_VERSION } from './vs-kube-build.ts';
import { startKube, startSkiff, cpuMs, rssMiB, loadAvg, type ControlPlane } from './vs-kube-cluster.ts';
import { ensureNamespace, leaseRenewer, must, performance, registerNodes, sleep, standInKubelet, type Client } from './fake-nodes.ts';

const NODES = Number(process.env.BENCH_NODES ?? 100);
const REPLICAS = Number(process.env.BENCH_REPLICAS ?? 1000);
const TIMEOUT_S = Number(process.env.BENCH_TIMEOUT_S ?? 300);
const QPS = 1000;
const NS = 'bench';

interface Result {
  side: string;
  availableS: number;
  rolloutS: number;
  cpuS: number;
  peakRssMiB: number;
  kubelet: { statusWrites: number; deletes: number; errors: number };
  load: string;
  done: boolean;
}

const rssOrZero = (pid: number) => {
  try {
    return rssMiB(pid).rss;
  } catch {
    return 0;
  }
};

const deploymentPath = `/apis/apps/v1/namespaces/${NS}/deployments/web`;

/** Waits until the Deployment is rolled out (kubectl rollout status's test, plus no old pods); false on timeout. */
async function rolledOut(cl: Client, generation: number, deadline: number): Promise<boolean> {
  while (Date.now() < deadline) {
    const d = must(await cl.request('GET', deploymentPath), 200).body;
    const s = d.status ?? {};
    if (
      (s.observedGeneration ?? 0) >= generation &&
      s.updatedReplicas === REPLICAS &&
      s.replicas === REPLICAS &&
      s.availableReplicas === REPLICAS &&
      s.readyReplicas === REPLICAS
    )
      return true;
    await sleep(100);
  }
  const d = must(await cl.request('GET', deploymentPath), 200).body;
  console.error(`timed out; generation ${generation}, status ${JSON.stringify(d.status)}`);
  return false;
}

/** The two measured phases: create → Available, then a new image rolled out. */
async function phases(cl: Client, deadline: number): Promise<{ availableS: number; rolloutS: number; done: boolean }> {
  const t0 = performance.now();
  const created = must(
    await cl.request('POST', `/apis/apps/v1/namespaces/${NS}/deployments`, {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web' },
      spec: {
        replicas: REPLICAS,
        selector: { matchLabels: { app: 'web' } },
        template: {
          metadata: { labels: { app: 'web' } },
          spec: { containers: [{ name: 'web', image: 'busybox:1', resources: { requests: { cpu: '50m', memory: '64Mi' } } }] },
        },
      },
    }),
    201,
  ).body;
  if (!(await rolledOut(cl, created.metadata.generation ?? 1, deadline))) return { availableS: NaN, rolloutS: NaN, done: false };
  const availableS = (performance.now() - t0) / 1000;

  const t1 = performance.now();
  const patch = { spec: { template: { spec: { containers: [{ name: 'web', image: 'busybox:2' }] } } } };
  const patched = must(await cl.request('PATCH', deploymentPath, patch, { 'content-type': 'application/strategic-merge-patch+json' }), 200).body;
  const done = await rolledOut(cl, patched.metadata.generation, deadline);
  return { availableS, rolloutS: done ? (performance.now() - t1) / 1000 : NaN, done };
}

async function run(cp: ControlPlane): Promise<Result> {
  const cl = apiClient(cp.dir, cp.url, { maxSockets: 64 });
  await ensureNamespace(cl, NS);
  const stopRenewing = leaseRenewer(cl, await registerNodes(cl, NODES, 32));
  const kubelet = standInKubelet(cl, NS, 16);
  await kubelet.start();
  await sleep(2000); // the scheduler's and controllers' caches fill before the clock starts

  const cpu0 = new Map(cp.procs.map((p) => [p.pid, cpuMs(p.pid)]));
  const peak = new Map(cp.procs.map((p) => [p.pid, rssOrZero(p.pid)]));
  const sample = () => {
    for (const p of cp.procs) peak.set(p.pid, Math.max(peak.get(p.pid)!, rssOrZero(p.pid)));
  };
  const sampler = setInterval(sample, 500);
  const load0 = loadAvg();
  try {
    const r = await phases(cl, Date.now() + TIMEOUT_S * 1000);
    sample();
    const cpuS = cp.procs.reduce((a, p) => a + cpuMs(p.pid) - cpu0.get(p.pid)!, 0) / 1000;
    const peakRssMiB = cp.procs.reduce((a, p) => a + peak.get(p.pid)!, 0);
    return { side: cp.name, ...r, cpuS, peakRssMiB, kubelet: kubelet.stats, load: `${load0} → ${loadAvg()}` };
  } finally {
    clearInterval(sampler);
    await kubelet.stop();
    await stopRenewing();
    cl.close();
  }
}

const fmt = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '—');
const ratio = (s: number, k: number) => (Number.isFinite(s) && Number.isFinite(k) && k > 0 ? `${(s / k).toFixed(2)}×` : '—');

async function main() {
  const side = process.env.BENCH_SIDE;
  const keep = process.env.BENCH_KEEP === '1';
  console.log(`bench:rollout — ${REPLICAS} replicas on ${NODES} nodes; ${os.cpus().length} × ${os.cpus()[0]?.model}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}`);
  const bin = side === 'skiff' ? null : ensureKubeBinaries();
  const kcm = bin ? ensureKubeControllerManager() : null;
  if (side !== 'skiff' && (!bin || !kcm)) console.log(goVersion() ? 'Kubernetes binaries not built: Skiff alone.' : 'Go is not installed: measuring Skiff alone.');

  const results: Result[] = [];
  const sides: ('skiff' | 'kubernetes')[] = side === 'kubernetes' ? ['kubernetes'] : side === 'skiff' || !bin || !kcm ? ['skiff'] : ['skiff', 'kubernetes'];
  for (const s of sides) {
    const dir = mkdtempSync(join(tmpdir(), `bench-rollout-${s}-`));
    const cp =
      s === 'skiff'
        ? await startSkiff(dir)
        : await startKube(dir, bin!, QPS, { bin: kcm!, controllers: ['deployment', 'replicaset', 'garbagecollector'] });
    try {
      const r = await run(cp);
      results.push(r);
      console.log(`${r.side}: available ${fmt(r.availableS)} s, rollout ${fmt(r.rolloutS)} s, CPU ${fmt(r.cpuS)} s, peak RSS ${fmt(r.peakRssMiB, 0)} MiB; kubelet stand-in ${JSON.stringify(r.kubelet)}; load ${r.load}${r.done ? '' : ' (DID NOT FINISH)'}`);
    } finally {
      await cp.stop();
      if (!keep) rmSync(dir, { recursive: true, force: true });
      else console.log(`kept ${dir}`);
    }
  }

  console.log(`\n| ${REPLICAS} replicas, ${NODES} nodes | ${results.map((r) => r.side).join(' | ')} |${results.length === 2 ? ' Skiff/Kubernetes |' : ''}`);
  console.log(`|---|${results.map(() => '---|').join('')}${results.length === 2 ? '---|' : ''}`);
  const row = (label: string, f: (r: Result) => number, d = 1) => {
    const v = results.map(f);
    console.log(`| ${label} | ${v.map((x) => fmt(x, d)).join(' | ')} |${results.length === 2 ? ` ${ratio(v[0]!, v[1]!)} |` : ''}`);
  };
  row('create → Available (s)', (r) => r.availableS);
  row('rollout to a new image (s)', (r) => r.rolloutS);
  row('server CPU, both phases (s)', (r) => r.cpuS);
  row('peak RSS (MiB)', (r) => r.peakRssMiB, 0);
  console.log(`Kubernetes ${KUBE_VERSION}: ${results.some((r) => r.side === 'Kubernetes') ? 'kube-apiserver + etcd + kube-scheduler + kube-controller-manager (deployment, replicaset, garbagecollector)' : 'not run'}`);
  if (results.some((r) => !r.done)) process.exitCode = 1;
}

await main();
