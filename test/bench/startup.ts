// npm run bench:startup — pod startup latency on one node: 30 pods created at once through the API,
// each counted from its create call to the moment a watch sees all its containers running (images
// present, so no pulls). The control plane (apiserver, scheduler, controllers on SQLite) runs in this
// process; the node agent runs as its own process (`skiff agent`, from dist/) so its memory is its own.
// Side by side, in the same run: the engine floor — the same 30 pause+app container pairs created and
// started straight through the Docker Engine API, no Skiff at all. Prints a Markdown table.

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import Docker from 'dockerode';
import { startLocalCluster } from '../../lambdas/local/server.ts';
import { findResource } from '../../lambdas/machinery/resources.ts';
import { newToken, storeToken } from '../../lambdas/apiserver/auth.ts';
import { renderKubeconfig } from '../../lambdas/local/kubeconfig.ts';
import { DEFAULT_PAUSE_IMAGE, ensureBusyboxImage } from '../../node-agent/images.ts';

const PODS = Number(process.env.BENCH_PODS ?? 30);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const IMAGE = 'skiff.local/busybox:test';
const NODE = 'bench-startup-node';
const NETWORK = 'skiff-bench';
const pods = findResource('', 'v1', 'pods')!;

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
const rssOf = (pid: number) => {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(s)?.[1] ?? 0);
  return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
};

async function engineFloor(docker: Docker): Promise<number[]> {
  // What the agent must do at the least per pod: create+start a pause container, then create+start the
  // app container in its namespaces. All 30 at once, as the agent would.
  const t0 = performance.now();
  const lat: number[] = [];
  const ids: string[] = [];
  await Promise.all(
    Array.from({ length: PODS }, async (_, i) => {
      const s = performance.now();
      const pause = await docker.createContainer({ Image: DEFAULT_PAUSE_IMAGE, name: `bench-floor-pause-${i}`, Labels: { 'io.skiff.test': 'bench-startup' }, HostConfig: { NetworkMode: NETWORK, IpcMode: 'shareable' } });
      ids.push(pause.id);
      await pause.start();
      const app = await docker.createContainer({
        Image: IMAGE,
        name: `bench-floor-app-${i}`,
        Cmd: ['sleep', '3600'],
        Labels: { 'io.skiff.test': 'bench-startup' },
        HostConfig: { NetworkMode: `container:${pause.id}`, IpcMode: `container:${pause.id}` },
      });
      ids.push(app.id);
      await app.start();
      lat.push(performance.now() - s);
    }),
  );
  void t0;
  await Promise.all(ids.map((id) => docker.getContainer(id).remove({ force: true })));
  return lat.sort((a, b) => a - b);
}

async function main() {
  const docker = new Docker();
  await docker.ping();
  await ensureBusyboxImage(docker, IMAGE);
  await ensureBusyboxImage(docker, DEFAULT_PAUSE_IMAGE, { cmd: ['/bin/sleep', '2147483647'] });
  const dir = mkdtempSync(join(tmpdir(), 'skiff-bench-startup-'));
  const cluster = await startLocalCluster({ dataDir: dir, port: 0 });
  const token = newToken();
  await storeToken(cluster.backend, token, { username: `system:node:${NODE}`, groups: ['system:nodes'] });
  const kubeconfig = join(dir, 'node-kubeconfig');
  writeFileSync(kubeconfig, renderKubeconfig({ server: cluster.url, caCert: cluster.caCert, token }));
  const agent = spawn(process.execPath, ['dist/skiff.mjs', 'agent', '--kubeconfig', kubeconfig, '--name', NODE, '--data-dir', join(dir, 'agent'), '--port', '0', '--network', NETWORK], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let agentOut = '';
  agent.stdout!.on('data', (d) => (agentOut += d));
  agent.stderr!.on('data', (d) => (agentOut += d));
  const deadline = Date.now() + 30_000;
  while (!/registered/.test(agentOut)) {
    if (Date.now() > deadline || agent.exitCode !== null) throw new Error(`agent did not start:\n${agentOut}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const idleRss = rssOf(agent.pid!).rss;

  const rows: string[] = [];
  const all: number[] = [];
  const floors: number[] = [];
  let peak = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const ns = `bench-${round}`;
    await cluster.api.registry.create(findResource('', 'v1', 'namespaces')!, undefined, { metadata: { name: ns } });
    const created = new Map<string, number>();
    const lat: number[] = [];
    const ctl = new AbortController();
    const rv = (await cluster.api.registry.list(pods, ns)).metadata.resourceVersion;
    const watching = (async () => {
      for await (const ev of cluster.api.registry.watch(pods, ns, { resourceVersion: rv }, ctl.signal)) {
        const o = ev.object as any;
        const t0 = created.get(o.metadata?.name);
        const cs = o.status?.containerStatuses ?? [];
        if (t0 !== undefined && cs.length && cs.every((s: any) => s.state?.running)) {
          lat.push(performance.now() - t0);
          created.delete(o.metadata.name);
          if (lat.length === PODS) break;
        }
      }
    })();
    await Promise.all(
      Array.from({ length: PODS }, async (_, i) => {
        const name = `p${i}`;
        created.set(name, performance.now());
        await cluster.api.registry.create(pods, ns, {
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name, namespace: ns },
          spec: { terminationGracePeriodSeconds: 0, containers: [{ name: 'c', image: IMAGE, command: ['sleep', '3600'] }] },
        });
      }),
    );
    await Promise.race([watching, new Promise((_, rej) => setTimeout(() => rej(new Error(`round ${round}: only ${lat.length}/${PODS} pods started in 120 s`)), 120_000))]);
    ctl.abort();
    peak = Math.max(peak, rssOf(agent.pid!).peak);
    const sorted = lat.sort((a, b) => a - b);
    all.push(...sorted);
    const floor = await engineFloor(docker);
    floors.push(...floor);
    rows.push(`| ${round + 1} | ${pct(sorted, 50).toFixed(0)} | ${pct(sorted, 99).toFixed(0)} | ${sorted.at(-1)!.toFixed(0)} | ${pct(floor, 50).toFixed(0)} | ${pct(floor, 99).toFixed(0)} |`);
    // Clean up the round: delete the namespace's pods and wait for the agent to remove the containers.
    await Promise.all(Array.from({ length: PODS }, (_, i) => cluster.api.registry.delete(pods, ns, `p${i}`, {}).catch(() => {})));
    const end = Date.now() + 60_000;
    while ((await docker.listContainers({ all: true, filters: { label: [`io.skiff.node=${NODE}`] } })).length && Date.now() < end) await new Promise((r) => setTimeout(r, 200));
  }
  const allSorted = all.sort((a, b) => a - b);
  const floorSorted = floors.sort((a, b) => a - b);
  const busyRss = rssOf(agent.pid!).rss;
  agent.kill('SIGTERM');
  await new Promise((r) => agent.once('exit', r));
  await cluster.close();
  await docker.getNetwork(NETWORK).remove().catch(() => {});
  rmSync(dir, { recursive: true, force: true });

  const cpu = os.cpus()[0]?.model ?? 'unknown';
  console.log(`\n## bench:startup — ${new Date().toISOString().slice(0, 10)}, ${os.cpus().length} vCPU ${cpu}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}\n`);
  console.log(`${PODS} pods created at once on one node, ${ROUNDS} rounds; latency = create call → watch sees all containers running (ms).`);
  console.log(`Engine floor = the same pause+app pairs started straight through the Docker Engine API, same run.\n`);
  console.log('| round | p50 | p99 | max | engine floor p50 | engine floor p99 |');
  console.log('|---|---|---|---|---|---|');
  for (const r of rows) console.log(r);
  console.log(`| all | ${pct(allSorted, 50).toFixed(0)} | ${pct(allSorted, 99).toFixed(0)} | ${allSorted.at(-1)!.toFixed(0)} | ${pct(floorSorted, 50).toFixed(0)} | ${pct(floorSorted, 99).toFixed(0)} |`);
  console.log(`\np99 / engine-floor p99 = ${(pct(allSorted, 99) / pct(floorSorted, 99)).toFixed(2)}`);
  console.log(`Agent process memory: RSS idle ${idleRss.toFixed(0)} MiB, after the rounds ${busyRss.toFixed(0)} MiB, peak (VmHWM) ${peak.toFixed(0)} MiB`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
