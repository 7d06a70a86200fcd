// npm run bench:loops-busy — how `skiff up` answers while its control loops are busy: the built CLI in
// its own process (SQLite, in-process controllers and scheduler, BENCH_NODES hollow nodes) is given, over
// HTTPS, a ReplicationController of BENCH_REPLICAS pods (default 3000), and a client in another process
// GETs a namespace every 100 ms until the pods are bound (or BENCH_SECONDS pass). The client has a process
// of its own so a blocked server event loop shows up in the latency, as it would for kubectl. Prints
// p50/p99/max and the server's CPU seconds. Not a test: nothing here passes or fails on a number.

import https from 'node:https';
import { fork } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

const REPLICAS = Number(process.env.BENCH_REPLICAS ?? 3000);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 60);
const NODES = Number(process.env.BENCH_NODES ?? 20);

function get(url: string, token: string, ca: string, agent: https.Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    const r = https.get(url, { agent, ca, headers: { authorization: `Bearer ${token}` } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    r.on('error', reject);
  });
}

async function client(): Promise<void> {
  const { url, token, ca } = JSON.parse(process.env.BENCH_TARGET!);
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
  const lat: number[] = [];
  let stop = false;
  process.on('message', (m) => {
    if (m === 'stop') stop = true;
  });
  while (!stop) {
    const t = performance.now();
    const status = await get(`${url}/api/v1/namespaces/default`, token, ca, agent);
    if (status !== 200) throw new Error(`GET: HTTP ${status}`);
    lat.push(performance.now() - t);
    await new Promise((r) => setTimeout(r, 100));
  }
  process.send!(lat, () => process.exit(0));
}

/** utime + stime of a process, in seconds (from /proc; clock ticks are 100 a second on Linux). */
function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

async function main(): Promise<void> {
  const { apiClient, skiffUp } = await import('../support/skiff-up.ts');
  const dir = mkdtempSync(join(tmpdir(), 'skiff-bench-loops-'));
  const skiff = await skiffUp(dir, '--hollow-nodes', String(NODES));
  const api = apiClient(dir, skiff.url);
  const cfg = readFileSync(join(dir, 'kubeconfig'), 'utf8');
  const ca = Buffer.from(/certificate-authority-data: (\S+)/.exec(cfg)![1]!, 'base64').toString();
  const token = /token: (\S+)/.exec(cfg)![1]!;
  const child = fork(fileURLToPath(import.meta.url), ['client'], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, BENCH_TARGET: JSON.stringify({ url: skiff.url, token, ca }) },
  });
  const latencies = new Promise<number[]>((r) => child.once('message', (m) => r(m as number[])));
  await new Promise((r) => setTimeout(r, 1000)); // the client's first requests: an idle baseline
  const cpu0 = cpuSeconds(skiff.proc.pid!);
  const t0 = performance.now();
  const labels = { app: 'busy' };
  const created = await api.request('POST', '/api/v1/namespaces/default/replicationcontrollers', {
    apiVersion: 'v1',
    kind: 'ReplicationController',
    metadata: { name: 'busy' },
    spec: { replicas: REPLICAS, selector: labels, template: { metadata: { labels }, spec: { containers: [{ name: 'c', image: 'pause' }] } } },
  });
  if (created.status !== 201) throw new Error(`creating the RC: HTTP ${created.status}`);
  let count = 0;
  while (performance.now() - t0 < SECONDS * 1000) {
    await new Promise((r) => setTimeout(r, 1000));
    count = ((await api.request('GET', '/api/v1/namespaces/default/pods')).body.items as any[]).filter((p) => p.spec?.nodeName).length;
    if (count >= REPLICAS) break;
  }
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = cpuSeconds(skiff.proc.pid!) - cpu0;
  child.send('stop');
  const lat = (await latencies).sort((a, b) => a - b);
  const pct = (p: number) => lat[Math.min(lat.length - 1, Math.floor((p / 100) * lat.length))]!.toFixed(1);
  console.log(`skiff up, replicas ${REPLICAS}, ${NODES} hollow nodes: ${count} pods bound after ${elapsed.toFixed(1)} s, server CPU ${cpu.toFixed(1)} s`);
  console.log(`GET /api/v1/namespaces/default while busy: n=${lat.length} p50=${pct(50)} ms p99=${pct(99)} ms max=${lat[lat.length - 1]!.toFixed(1)} ms`);
  api.close();
  skiff.proc.kill('SIGTERM');
  await skiff.exited;
  rmSync(dir, { recursive: true, force: true });
}

if (process.argv[2] === 'client') void client();
else void main();
