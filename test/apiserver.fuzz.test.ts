// The standing fuzz suite (issue #11): thousands of hostile requests per backend, over real HTTPS, to a
// local cluster whose controllers, scheduler and hollow nodes run meanwhile. Asserts that no answer is a
// 5xx or takes over 5 s, that the server's memory stays bounded, that the API still answers afterwards,
// and that no control loop made more pods than the replication controllers it accepted ask for.
//
// The generators live in test/support/fuzz.ts (shared with `npm run fuzz`). The seed is printed;
// SKIFF_FUZZ_SEED=<seed> replays a run and SKIFF_FUZZ_RUNS=<n> changes its length. fast-check shrinks a
// failing request to a smaller one before reporting it.

import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { startLocalCluster, type LocalCluster } from '../lambdas/local/server.ts';
import { DynamoBackend, ensureTable } from '../lambdas/storage/dynamodb.ts';
import { findResource } from '../lambdas/machinery/resources.ts';
import type { KubeObject } from '../lambdas/machinery/types.ts';
import { dynamoTestEndpoint, uniqueTableName } from './support/dynamodb.ts';
import { until } from './support/until.ts';
import { FUZZ_KINDS, FUZZ_NAMESPACES, describeRequest, fuzzClient, fuzzFailure, fuzzSeed, hostileRequest, type FuzzResult } from './support/fuzz.ts';

const SEED = fuzzSeed();
const RUNS = Number(process.env.SKIFF_FUZZ_RUNS ?? 2000);
// moto answers one request at a time, and a request through admission is up to a dozen of them: half as
// many requests there keep the run within its time limit on a loaded 2-core CI machine.
const RUNS_ON: Record<string, number> = { SQLite: RUNS, DynamoDB: Math.ceil(RUNS / 2) };
console.log(`apiserver fuzz: seed ${SEED}, ${RUNS_ON.SQLite} requests on SQLite, ${RUNS_ON.DynamoDB} on DynamoDB (replay: SKIFF_FUZZ_SEED=${SEED})`);

// Low enough that an accepted RC of 2^31-1 replicas (a valid int32) cannot fill memory or stall moto.
// Lower on DynamoDB: moto is a Python emulator behind one lock, deleting about 5 pods a second, and the
// cleanup below deletes what the loops made: at 300 a namespace, a CI seed's 900 pods outlasted its
// five-minute wait on a loaded CI machine.
const MAX_OBJECTS_PER_NAMESPACE: Record<string, number> = { SQLite: 1_000, DynamoDB: 100 };
// moto serves one request at a time (FIFO behind its lock), so every request waits for those queued
// before it: with the loops' client at the SDK's 50 sockets, a runaway RC's pod creations, their binds and
// Events kept ~20 loop requests queued, and a fuzz request's few reads waited 2-9 s behind them (seed
// 858088515, measured in a scratch run: 404s that read only the CRD list took 2-5 s). DynamoDB has no such
// global queue (a request waits only for its own partition), so the loops' client gets a few sockets:
// the loops still keep moto busy, and a fuzz request waits behind at most that many of theirs.
const LOOP_SOCKETS = 4;
const MAX_BODY_BYTES = 3 * 1024 * 1024;
// Memory, of the whole vitest worker (client and server share it). What stays after a full garbage
// collection is what the server kept: a leak, or a runaway loop's objects (the issue's reached 1.2 GB),
// passes it. The peak also counts the fuzzer's own hostile bodies (up to 3 MiB each, parsed by both
// sides) that V8 keeps as free heap, so its bound is looser.
const MAX_RETAINED_HEAP_GROWTH_BYTES = 150 * 2 ** 20;
const MAX_RSS_GROWTH_BYTES = 1024 * 2 ** 20;
v8.setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;
const heapAfterGc = () => {
  collectGarbage();
  return process.memoryUsage().heapUsed;
};

const ddb = await dynamoTestEndpoint();
const dirs: string[] = [];
afterAll(async () => {
  await ddb?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
if (!ddb) console.warn('apiserver fuzz: no DynamoDB endpoint, DynamoDB suite SKIPPED');

const podsRes = findResource('', 'v1', 'pods')!;
const rcRes = findResource('', 'v1', 'replicationcontrollers')!;

async function startCluster(backendName: string): Promise<LocalCluster> {
  const dataDir = mkdtempSync(join(tmpdir(), 'skiff-fuzz-'));
  dirs.push(dataDir);
  let backend, controlPlaneBackend;
  if (backendName === 'DynamoDB') {
    const tableName = uniqueTableName('skiff-fuzz');
    await ensureTable(ddb!.client, tableName);
    backend = new DynamoBackend({ client: ddb!.client, tableName, pollIntervalMs: 100 });
    // As deployed: the loops are other functions, with their own write queue (sharing the apiserver's,
    // a fuzz write waited behind the runaway RC's pod creations and their Events: 6-8 s in loaded runs).
    controlPlaneBackend = new DynamoBackend({ client: ddb!.newClient({ maxSockets: LOOP_SOCKETS }), tableName, pollIntervalMs: 100 });
  }
  return startLocalCluster({
    dataDir,
    port: 0,
    backend,
    controlPlaneBackend,
    watchProgressMs: 200,
    maxBodyBytes: MAX_BODY_BYTES,
    hollowNodes: 2,
    maxObjectsPerNamespace: MAX_OBJECTS_PER_NAMESPACE[backendName],
  });
}

/** The largest spec.replicas any accepted write gave an RC (by uid), read from the answers themselves. */
function recordReplicas(rcMax: Map<string, number>, r: FuzzResult): void {
  if (r.status < 200 || r.status >= 300 || !r.body.startsWith('{')) return;
  let o: any;
  try {
    o = JSON.parse(r.body);
  } catch {
    return; // a body cut at 64 KiB: the RC check below falls back to the stored spec
  }
  if ((o?.kind === 'ReplicationController' || o?.kind === 'Scale') && typeof o.metadata?.uid === 'string') {
    const n = o.spec?.replicas;
    if (typeof n === 'number') rcMax.set(o.metadata.uid, Math.max(rcMax.get(o.metadata.uid) ?? 0, n));
  }
}

/** A pod left by the cleanup: when it was made and deleted, by whom, what holds it. */
const describePod = (p: KubeObject) =>
  `${p.metadata.namespace}/${p.metadata.name} (created ${p.metadata.creationTimestamp}, deletion ${p.metadata.deletionTimestamp ?? '-'}, owners ${JSON.stringify((p.metadata.ownerReferences ?? []).map((o: any) => `${o.kind}/${o.name} ${o.uid}`))}, finalizers ${JSON.stringify(p.metadata.finalizers ?? [])})`;

const controllerOf = (p: KubeObject) => (p.metadata.ownerReferences ?? []).find((o: any) => o.controller && o.kind === 'ReplicationController')?.uid as string | undefined;

describe.each([
  ['SQLite', true],
  ['DynamoDB', !!ddb],
])('hostile requests on %s', (backendName, enabled) => {
  it.runIf(enabled)(
    `${RUNS_ON[backendName as string]} requests: no 5xx, none over 5 s, memory bounded, the API answers afterwards, loops make no more pods than asked`,
    async () => {
      const c = await startCluster(backendName as string);
      const client = fuzzClient(c);
      try {
        for (const ns of FUZZ_NAMESPACES.filter((n) => n !== 'default')) {
          const r = await client.send({ method: 'POST', path: '/api/v1/namespaces', headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify({ metadata: { name: ns } })), watch: false, what: 'setup' });
          expect(r.status, r.body).toBe(201);
        }
        const heapBefore = heapAfterGc();
        const rssBefore = process.memoryUsage.rss();
        let rssPeak = rssBefore;
        const rcMax = new Map<string, number>();
        const statuses = new Map<number, number>();
        await fc.assert(
          fc.asyncProperty(hostileRequest({ maxBodyBytes: MAX_BODY_BYTES }), async (req) => {
            const r = await client.send(req);
            rssPeak = Math.max(rssPeak, process.memoryUsage.rss());
            statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
            recordReplicas(rcMax, r);
            const failure = fuzzFailure(r, req, { maxBodyBytes: MAX_BODY_BYTES });
            if (failure) throw new Error(`${failure}\n  request: ${describeRequest(req)}`);
          }),
          // Shrinking replays requests; bounded so a failure is reported in time rather than timing out.
          { seed: SEED, numRuns: RUNS_ON[backendName as string], interruptAfterTimeLimit: 150_000, markInterruptAsFailure: true },
        );
        const heapWithObjects = heapAfterGc() - heapBefore;
        const mib = (n: number) => `${Math.round(n / 2 ** 20)} MiB`;
        console.log(`apiserver fuzz on ${backendName}: statuses ${JSON.stringify(Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])))}, RSS +${mib(rssPeak - rssBefore)} at peak, heap +${mib(heapWithObjects)} after GC with the objects it made`);

        // The fuzz got past validation sometimes (else it tested only the front door) and was refused often.
        // About 2.4% of its requests succeed (48 of 2,000 and 18 of 1,000 in one run): the bar is a fifth of
        // that, so a seed's luck does not fail the run (at 1,000 requests 2% failed about one run in five).
        const count = (lo: number, hi: number) => [...statuses].filter(([s]) => s >= lo && s < hi).reduce((a, [, n]) => a + n, 0);
        expect(count(200, 300)).toBeGreaterThan(RUNS_ON[backendName as string]! / 200);
        expect(count(400, 500)).toBeGreaterThan(RUNS_ON[backendName as string]! / 2);
        expect(rssPeak - rssBefore).toBeLessThan(MAX_RSS_GROWTH_BYTES);

        // Still answering a plain GET, promptly.
        const ping = await client.send({ method: 'GET', path: '/api/v1/namespaces/default', headers: {}, watch: false, what: 'ping' });
        expect(ping.status, ping.body).toBe(200);
        expect(ping.ms).toBeLessThan(5_000);

        // No loop made more pods than asked: every RC's pods are at most the most replicas it was ever
        // given (counting pods still being deleted), and settle to at most what it asks for now.
        const rcs = new Map((await c.api.registry.list(rcRes, undefined)).items.map((rc) => [rc.metadata.uid as string, rc]));
        const owned = async (activeOnly: boolean) => {
          const n = new Map<string, number>();
          for (const p of (await c.api.registry.list(podsRes, undefined)).items) {
            const uid = controllerOf(p);
            if (uid && !(activeOnly && p.metadata.deletionTimestamp)) n.set(uid, (n.get(uid) ?? 0) + 1);
          }
          return n;
        };
        for (const [uid, n] of await owned(false)) {
          const bound = Math.max(rcMax.get(uid) ?? 0, rcs.get(uid)?.spec?.replicas ?? 0);
          expect(n, `pods of RC ${uid}`).toBeLessThanOrEqual(bound);
        }
        await until('every RC to own at most spec.replicas active pods', async () => {
          const now = await owned(true);
          const rcsNow = (await c.api.registry.list(rcRes, undefined)).items;
          return rcsNow.every((rc) => (now.get(rc.metadata.uid as string) ?? 0) <= (rc.spec?.replicas ?? 0));
        });
        const perNs = new Map<string, number>();
        for (const p of (await c.api.registry.list(podsRes, undefined)).items) perNs.set(p.metadata.namespace!, (perNs.get(p.metadata.namespace!) ?? 0) + 1);
        for (const [ns, n] of perNs) expect(n, `pods in ${ns}`).toBeLessThanOrEqual(MAX_OBJECTS_PER_NAMESPACE[backendName as string]!);

        // What the server keeps once the fuzz's objects are gone: a leak stays, the objects it was asked to
        // store do not. (The loops' caches hold what is stored, as kube-controller-manager's informers do: an
        // accepted RC of 2^31-1 replicas whose template carries a 400 KB string makes up to 1,000 such pods;
        // 911 of them held 1 GB of heap in a scratch run, 9 MiB once deleted. CI's seed once kept 386 MiB.)
        // On moto a delete costs several requests of a single-threaded Python server: 300 pods take about a
        // minute (measured: 250 in 46 s), longer than a fuzz request's deadline. So the cleanup's requests may
        // take minutes, and the wait fails when no pod went away for a minute (a loop still making pods for
        // a deleted owner keeps the count up), or after five minutes. It prints how far it got every 10 s.
        const cleanupClient = fuzzClient(c, 240_000);
        // The cleanup's refusals are printed (once each), so a wait that fails says what the server answered.
        const refusals = new Set<string>();
        const cleanup = {
          send: async (req: Parameters<typeof cleanupClient.send>[0]) => {
            const r = await cleanupClient.send(req);
            const said = `${req.method} ${req.path}: ${r.status} ${r.error ?? r.body.slice(0, 300)}`;
            if ((r.status < 200 || r.status >= 300) && !refusals.has(said)) {
              refusals.add(said);
              console.log(`apiserver fuzz on ${backendName}: cleanup ${said}`);
            }
            return r;
          },
          close: () => cleanupClient.close(),
        };
        try {
          for (const ns of FUZZ_NAMESPACES) {
            for (const { res } of FUZZ_KINDS.filter((k) => k.res.namespaced && k.res.verbs.includes('deletecollection'))) {
              const path = `${res.group ? `/apis/${res.group}` : '/api'}/${res.version}/namespaces/${ns}/${res.resource}?gracePeriodSeconds=0`;
              await cleanup.send({ method: 'DELETE', path, headers: {}, watch: false, what: 'cleanup' });
            }
          }
          // The loops act on what their watches have shown them, and on moto under load those lag: in a run
          // with a core taken by a busy loop, the RC loop made a pod 33 s after its RC was deleted (the RC was
          // no longer stored), and a Job's pods came back as they were deleted, so the count stood still for
          // over 30 s before it fell to 0. A loop that never stops making pods still fails the wait.
          const STALL_MS = 60_000;
          let fewest = Infinity;
          let fewestAt = Date.now();
          let stalled: string | undefined;
          const cleanupStart = Date.now();
          console.log(`apiserver fuzz on ${backendName}: cleanup's wait from ${new Date(cleanupStart).toISOString()}`);
          let logAt = 0;
          await until('the fuzz namespaces without pods', async () => {
            // Pods a workload's loop made after its deletion was asked but before it took effect go too.
            for (const ns of FUZZ_NAMESPACES) await cleanup.send({ method: 'DELETE', path: `/api/v1/namespaces/${ns}/pods?gracePeriodSeconds=0`, headers: {}, watch: false, what: 'cleanup' });
            const left = (await c.api.registry.list(podsRes, undefined)).items.filter((p) => FUZZ_NAMESPACES.includes(p.metadata.namespace!));
            // Finalizers the fuzz gave (a spoilt template's) are the fuzz's to remove; Kubernetes' own (the Job
            // controller's job-tracking) the system's: a pod held by one of those fails the wait.
            for (const p of left.filter((p) => p.metadata.finalizers?.some((f) => !/kubernetes\.io\//.test(f)))) {
              const finalizers = p.metadata.finalizers!.filter((f) => /kubernetes\.io\//.test(f));
              const body = Buffer.from(JSON.stringify({ metadata: { finalizers, resourceVersion: p.metadata.resourceVersion } }));
              await cleanup.send({ method: 'PATCH', path: `/api/v1/namespaces/${p.metadata.namespace}/pods/${encodeURIComponent(p.metadata.name!)}`, headers: { 'content-type': 'application/merge-patch+json' }, body, watch: false, what: 'cleanup' });
            }
            if (Date.now() - logAt > 10_000) {
              logAt = Date.now();
              console.log(`apiserver fuzz on ${backendName}: cleanup at ${Math.round((Date.now() - cleanupStart) / 1000)} s, ${left.length} pods left${left[0] ? `, first ${describePod(left[0])}` : ''}`);
            }
            if (left.length < fewest) [fewest, fewestAt] = [left.length, Date.now()];
            else if (Date.now() - fewestAt > STALL_MS) {
              // What holds them: the pods (made when, deleted when) and their owners as stored now.
              const owners = (await c.api.registry.list(rcRes, undefined)).items.filter((rc) => left.some((p) => controllerOf(p) === rc.metadata.uid));
              const rc = (o: KubeObject) => `${o.metadata.namespace}/${o.metadata.name} ${o.metadata.uid} (replicas ${o.spec?.replicas}, deletion ${o.metadata.deletionTimestamp ?? '-'}, finalizers ${JSON.stringify(o.metadata.finalizers ?? [])})`;
              stalled = `${left.length} pods left and none deleted for ${STALL_MS / 1000} s: ${left.slice(0, 3).map(describePod).join('; ')}; their RCs: ${owners.map(rc).join('; ') || 'none'}`;
            }
            return left.length === 0 || stalled !== undefined;
          }, 300_000, 500);
          expect(stalled).toBeUndefined();
        } finally {
          cleanup.close();
        }
        let heapRetained = heapAfterGc() - heapBefore;
        for (let i = 0; heapRetained >= MAX_RETAINED_HEAP_GROWTH_BYTES && i < 30; i++) {
          await new Promise((r) => setTimeout(r, 1000)); // the caches apply the deletions from their watches
          heapRetained = heapAfterGc() - heapBefore;
        }
        console.log(`apiserver fuzz on ${backendName}: heap +${mib(heapRetained)} after GC with the fuzz's objects deleted`);
        expect(heapRetained).toBeLessThan(MAX_RETAINED_HEAP_GROWTH_BYTES);
      } finally {
        client.close();
        await c.close();
      }
    },
    720_000,
  );
});
