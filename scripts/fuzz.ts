// npm run fuzz — the long fuzz run: FUZZ_REQUESTS hostile requests (default 100,000) against `skiff up` as a
// user runs it (the built CLI in its own process, SQLite store, two hollow nodes, over HTTPS), from the same
// generators as the standing fuzz test (test/support/fuzz.ts). Prints the throughput, the status
// histogram, latency percentiles, the server's peak RSS (VmHWM from /proc) and every failure: a 5xx, no
// answer within 10 s, or an answer over 5 s. Afterwards checks that the API still answers and that no
// replication controller owns more pods than it asks for. Exits 1 on any failure.
//
// FUZZ_SEED replays a run; FUZZ_CONCURRENCY requests are in flight at once (default 4).

import fc from 'fast-check';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { apiClient, killLeftovers, skiffUp } from '../test/support/skiff-up.ts';
import { FUZZ_NAMESPACES, describeRequest, fuzzClient, fuzzFailure, hostileRequest } from '../test/support/fuzz.ts';
import { pct } from '../test/bench/drive.ts';

const TOTAL = Number(process.env.FUZZ_REQUESTS ?? 100_000);
const CONCURRENCY = Number(process.env.FUZZ_CONCURRENCY ?? 4);
const SEED = Number(process.env.FUZZ_SEED ?? (Date.now() ^ (Math.random() * 2 ** 31)) | 0);
const MAX_BODY_BYTES = 3 * 1024 * 1024; // skiff up's default
const MAX_OBJECTS_PER_NAMESPACE = 1_000;
const CHUNK = 1_000; // requests generated at a time (a chunk's seed is SEED + its index)

/** A process's peak and current resident memory (bytes), from /proc. */
function memoryOf(pid: number): { peak: number; now: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
  return { peak: kb('VmHWM'), now: kb('VmRSS') };
}

const mib = (n: number) => `${(n / 2 ** 20).toFixed(0)} MiB`;

async function main(): Promise<number> {
  const dataDir = mkdtempSync(join(tmpdir(), 'skiff-fuzz-run-'));
  const skiff = await skiffUp(dataDir, '--hollow-nodes', '2', '--max-objects-per-namespace', String(MAX_OBJECTS_PER_NAMESPACE));
  const pid = skiff.proc.pid!;
  const cfg = readFileSync(join(dataDir, 'kubeconfig'), 'utf8');
  const caCert = Buffer.from(/certificate-authority-data: (\S+)/.exec(cfg)![1]!, 'base64').toString();
  const token = /token: (\S+)/.exec(cfg)![1]!;
  const client = fuzzClient({ url: skiff.url, token, caCert });
  const api = apiClient(dataDir, skiff.url);
  try {
    for (const ns of FUZZ_NAMESPACES.filter((n) => n !== 'default')) await api.request('POST', '/api/v1/namespaces', { metadata: { name: ns } });
    const atStart = memoryOf(pid);
    console.log(`fuzz: seed ${SEED}, ${TOTAL} requests, ${CONCURRENCY} at a time, against skiff up (pid ${pid}, RSS ${mib(atStart.now)} at start)`);

    const statuses = new Map<number, number>();
    const latencies: number[] = [];
    const failures: string[] = [];
    const arb = hostileRequest({ maxBodyBytes: MAX_BODY_BYTES });
    const t0 = performance.now();
    let sent = 0;
    for (let chunk = 0; sent < TOTAL; chunk++) {
      const batch = fc.sample(arb, { seed: SEED + chunk, numRuns: Math.min(CHUNK, TOTAL - sent) });
      let next = 0;
      const worker = async () => {
        while (next < batch.length) {
          const req = batch[next++]!;
          const r = await client.send(req);
          // 0: the connection was reset (a refusal of a request too large to read, else a failure).
          statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
          if (!req.watch) latencies.push(r.ms);
          const f = fuzzFailure(r, req, { maxBodyBytes: MAX_BODY_BYTES });
          if (f) failures.push(`${f}\n    ${describeRequest(req)}`);
        }
      };
      await Promise.all(Array.from({ length: CONCURRENCY }, worker));
      sent += batch.length;
      if (sent % 10_000 === 0) console.log(`  ${sent} sent, ${failures.length} failures, server RSS ${mib(memoryOf(pid).now)}`);
    }
    const seconds = (performance.now() - t0) / 1000;
    const atEnd = memoryOf(pid);

    // Still answering, and no RC owns more pods than it asks for once its loop has caught up.
    const ping = await client.send({ method: 'GET', path: '/api/v1/namespaces/default', headers: {}, watch: false, what: 'ping' });
    if (ping.status !== 200) failures.push(`after the run, GET /api/v1/namespaces/default answered ${ping.status}`);
    let excess: string[] = [];
    for (let i = 0; i < 60; i++) {
      const rcs = (await api.request('GET', '/api/v1/replicationcontrollers')).body.items as any[];
      const pods = (await api.request('GET', '/api/v1/pods')).body.items as any[];
      const owned = new Map<string, number>();
      for (const p of pods) {
        const uid = (p.metadata.ownerReferences ?? []).find((o: any) => o.controller)?.uid;
        if (uid && !p.metadata.deletionTimestamp) owned.set(uid, (owned.get(uid) ?? 0) + 1);
      }
      excess = rcs.filter((rc) => (owned.get(rc.metadata.uid) ?? 0) > (rc.spec?.replicas ?? 0)).map((rc) => `${rc.metadata.namespace}/${rc.metadata.name}: ${owned.get(rc.metadata.uid)} pods for ${rc.spec?.replicas} replicas`);
      if (!excess.length) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    failures.push(...excess.map((e) => `RC owns more pods than it asks for: ${e}`));

    latencies.sort((a, b) => a - b);
    const histogram = Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0]));
    console.log(`fuzz: ${sent} requests in ${seconds.toFixed(0)} s (${(sent / seconds).toFixed(0)} req/s)`);
    console.log(`  statuses: ${JSON.stringify(histogram)}`);
    console.log(`  latency (not watches): p50 ${pct(latencies, 50).toFixed(1)} ms, p99 ${pct(latencies, 99).toFixed(1)} ms, max ${pct(latencies, 100).toFixed(0)} ms`);
    console.log(`  server RSS: ${mib(atStart.now)} at start, ${mib(atEnd.now)} at end, ${mib(atEnd.peak)} peak`);
    console.log(`  failures: ${failures.length}`);
    for (const f of failures.slice(0, 20)) console.log(`  - ${f.slice(0, 1500)}`);
    return failures.length ? 1 : 0;
  } finally {
    client.close();
    api.close();
    skiff.proc.kill('SIGTERM');
    await Promise.race([skiff.exited, new Promise((r) => setTimeout(r, 10_000))]);
    await killLeftovers();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

process.exitCode = await main();
