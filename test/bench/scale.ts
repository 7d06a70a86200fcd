// npm run bench:scale — issue #16 item 5's rehearsal: the deployed control plane on DynamoDB (moto),
// with BENCH_NODES hollow nodes (default 100) and BENCH_PODS pods (default 1,000). The issue's size,
// BENCH_NODES=1000 BENCH_PODS=10000 BENCH_MINUTES=40, takes about an hour on moto (2026-12-07: 9,707 of
// 10,000 pods Running when the 40 minutes after the creates ran out).
// What runs as deployed:
// - the apiserver as its Lambda function runs it: an ApiServer over the DynamoDB backend, a new instance
//   (a cold function) for every request;
// - the scheduler and the controller manager as their stream functions: the table's stream read as
//   Lambda's event source mapping reads it (shard iterators, batches of up to 100 records gathered for
//   up to 1 s, each function's filter patterns applied, one batch at a time per function);
// - hollow nodes (node-agent/hollow.ts, no containers) registering, renewing their Leases every 300 s and
//   reporting the pods bound to them Running, through the apiserver over HTTP; each following as a
//   deployed agent does (infra/nodes.ts): its own pods polled every 5 minutes and re-listed when its SQS
//   queue (a second moto server) says so, the controller manager's node notifier sending; the Services
//   and Endpoints feeds caught up every 75 s. BENCH_HOLLOW=watch: one watch of all pods instead (the
//   bench until 2026-12-07). Not modelled: the agents' dead man's switch (EventBridge Scheduler) and
//   node credentials (the hollow nodes use an admin token, so the Node authorizer is not exercised).
// Pods are created 32 at a time in one namespace (BENCH_CREATE_EVERY_MS: paced, below). Reported: time
// to register the nodes, pods bound and Running per second, create→bound latency, the DynamoDB requests
// per pod of each function, the revisions abandoned (taken but never committed: contention), and bound
// → Running (the push channel, the node's list and its status write). moto answers one request at a
// time, so the rates are moto's; the requests per pod are the design's. BENCH_IDLE_S=N first leaves the
// nodes alone N seconds (after 30 for their first lists) and prints what following the cluster costs at
// rest, in requests a second.

import { DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DescribeStreamCommand, DynamoDBStreamsClient, GetRecordsCommand, GetShardIteratorCommand } from '@aws-sdk/client-dynamodb-streams';
import type { DynamoDBRecord } from 'aws-lambda';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus } from 'node:os';
import { ApiServer, errorResponse } from '../../lambdas/apiserver/app.ts';
import { ADMIN_USER, newToken, storeToken } from '../../lambdas/apiserver/auth.ts';
import { writeApiResponse } from '../../lambdas/apiserver/handler.ts';
import { nodeQueuePrefix } from '../../lambdas/controllers/node-notifier.ts';
import type { Controller } from '../../lambdas/controllers/controller.ts';
import { createControllerHandlers, streamFilterPatterns } from '../../lambdas/controllers/stream.ts';
import { findResource } from '../../lambdas/machinery/resources.ts';
import { DynamoBackend, ensureTable } from '../../lambdas/storage/dynamodb.ts';
import { startHollowNodes } from '../../node-agent/hollow.ts';
import { KubeClient } from '../../node-agent/kube-client.ts';
import { dynamoTestEndpoint, uniqueTableName } from '../support/dynamodb.ts';
import { sqsTestEndpoint } from '../support/sqs.ts';
import { passesFilters } from '../support/lambda-filter.ts';

const NODES = Number(process.env.BENCH_NODES ?? 100);
const DEPLOYED = process.env.BENCH_HOLLOW !== 'watch';
const PODS = Number(process.env.BENCH_PODS ?? 1000);
// BENCH_CREATE_EVERY_MS=N: one create every N ms instead of 32 at a time, so the latencies are the
// pipeline's (stream batching, the loops, SQS, the node's list and write) rather than a queue's.
const EVERY_MS = Number(process.env.BENCH_CREATE_EVERY_MS ?? 0);
const CONCURRENCY = EVERY_MS ? 1 : 32;
const podsRes = findResource('', 'v1', 'pods')!;
const nsRes = findResource('', 'v1', 'namespaces')!;

const ddb = await dynamoTestEndpoint();
if (!ddb) throw new Error('bench:scale needs moto (.venv-moto) or SKIFF_DYNAMODB_ENDPOINT');
const tableName = uniqueTableName('skiff-scale');
await ensureTable(ddb.client, tableName);
process.env.SKIFF_CLUSTER_CIDR ??= '10.64.0.0/10';
// The push channel: the scheduler (binds) and the controller manager's node notifier (their lambda.ts,
// from the environment) send to each node's queue on this SQS.
const sqs = DEPLOYED ? await sqsTestEndpoint() : undefined;
if (DEPLOYED && !sqs) throw new Error('bench:scale needs moto for SQS (.venv-moto), or BENCH_HOLLOW=watch');
if (sqs) {
  Object.assign(process.env, { AWS_ENDPOINT_URL_SQS: sqs.endpoint, AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' });
  process.env.SKIFF_NODE_QUEUE_PREFIX = nodeQueuePrefix(tableName);
}
const { controllers } = await import('../../lambdas/controllers/lambda.ts');
// The scheduler's function as lambdas/scheduler/lambda.ts builds it (binds told to their nodes at once).
const { scheduler } = await import('../../lambdas/scheduler/lambda.ts');

/** DynamoDB requests by function and command. */
const requests: Record<string, Record<string, number>> = {};
/** Items Queries returned, by "function partition key" (the key's last '/' segment elided: one row per kind, not per namespace). */
const queried = new Map<string, number>();
function countedClient(fn: string): DynamoDBClient {
  const client = ddb!.newClient();
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const m = (requests[fn] ??= {});
      const cmd = String(context.commandName).replace(/Command$/, '');
      m[cmd] = (m[cmd] ?? 0) + 1;
      const out = await next(args);
      if (cmd === 'Query') {
        const pk = String((args.input as { ExpressionAttributeValues?: Record<string, { S?: string }> }).ExpressionAttributeValues?.[':pk']?.S ?? '?');
        const key = `${fn} ${pk.replace(/\/[^/]*$/, '/…')}`;
        queried.set(key, (queried.get(key) ?? 0) + ((out.output as { Count?: number }).Count ?? 0));
      }
      return out;
    },
    { step: 'initialize' },
  );
  return client;
}

// The apiserver: a fresh instance (a cold Lambda function) per request, on one counted client.
const apiClient = countedClient('apiserver');
const api = () => new ApiServer({ backend: new DynamoBackend({ client: apiClient, tableName }) });
// Hollow nodes and the bench itself go through a registry whose every call is a fresh apiserver's.
const registry = new Proxy({} as ReturnType<typeof api>['registry'], {
  get: (_t, prop) => {
    const r = api().registry;
    const v = (r as unknown as Record<string | symbol, unknown>)[prop];
    return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(r) : v;
  },
});

// The apiserver's Function URL: each request to a fresh ApiServer, as above. The hollow nodes' client.
const server = http.createServer(async (req, res) => {
  const u = new URL(`http://local${req.url}`);
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(',') : v;
  const ctl = new AbortController();
  res.on('close', () => ctl.abort());
  const apiReq = { method: (req.method ?? 'GET').toUpperCase(), path: u.pathname, query: u.searchParams, headers, body: Buffer.concat(chunks), sourceIp: '127.0.0.1', signal: ctl.signal };
  await writeApiResponse(res, await api().handle(apiReq).catch(errorResponse)).catch(() => res.destroy());
});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const token = newToken();
await storeToken(new DynamoBackend({ client: ddb.newClient(), tableName }), token, ADMIN_USER);
const apiConfig = { server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, token };

// The two stream functions.
interface StreamFn {
  name: string;
  patterns: string[];
  handlers: ReturnType<typeof createControllerHandlers>;
  /** Records passed to this function's filters, with when the poller got them. */
  queue: { rec: DynamoDBRecord; at: number }[];
  busy: boolean;
  invocations: number;
}
function streamFn(name: string, list: Controller[]): StreamFn {
  // As cloud-context.ts makes it: the backend is also the log (the resync's, and the scheduler's catch-up).
  const backend = new DynamoBackend({ client: countedClient(name), tableName });
  const ctx = Promise.resolve({ ...new ApiServer({ backend, shippedPolicyForLoops: true, serviceAccountAdmission: true }).controllerContext(), resyncLog: backend });
  return { name, patterns: streamFilterPatterns(...list), handlers: createControllerHandlers(list, () => ctx), queue: [], busy: false, invocations: 0 };
}
const fns = [streamFn('scheduler', [scheduler]), streamFn('controllerManager', controllers)];

// The event source mapping: follow every shard, hand each function its records in batches of up to 100.
const streams = new DynamoDBStreamsClient({ endpoint: ddb.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
const arn = (await ddb.client.send(new DescribeTableCommand({ TableName: tableName }))).Table!.LatestStreamArn!;
let stopped = false;
const iterators = new Map<string, string>();
const streaming = (async () => {
  while (!stopped) {
    const shards = (await streams.send(new DescribeStreamCommand({ StreamArn: arn }))).StreamDescription!.Shards ?? [];
    for (const s of shards) {
      if (!iterators.has(s.ShardId!)) {
        iterators.set(s.ShardId!, (await streams.send(new GetShardIteratorCommand({ StreamArn: arn, ShardId: s.ShardId!, ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator!);
      }
    }
    let got = 0;
    for (const [id, it] of iterators) {
      const r = await streams.send(new GetRecordsCommand({ ShardIterator: it, Limit: 1000 }));
      if (r.NextShardIterator) iterators.set(id, r.NextShardIterator);
      for (const rec of (r.Records ?? []) as unknown as DynamoDBRecord[]) {
        got++;
        for (const f of fns) if (passesFilters(f.patterns, rec)) f.queue.push({ rec, at: performance.now() });
      }
    }
    for (const f of fns) void deliver(f);
    if (!got) await new Promise((r) => setTimeout(r, 100));
  }
})();
// As deployed (infra/skiff-cluster.ts): batches of up to 100 records, gathered for up to 1 s
// (MaxBatchingWindow): a batch goes when it is full or its first record has waited the window.
const BATCH_SIZE = 100;
const BATCH_WINDOW_MS = 1000;
async function deliver(f: StreamFn): Promise<void> {
  if (f.busy) return;
  f.busy = true;
  try {
    while (f.queue.length >= BATCH_SIZE || (f.queue.length && performance.now() - f.queue[0]!.at >= BATCH_WINDOW_MS)) {
      const batch = f.queue.splice(0, BATCH_SIZE);
      f.invocations++;
      await f.handlers.stream({ Records: batch.map((b) => b.rec) }).catch((e: Error) => console.error(`${f.name}: batch failed (${e.message}); retried`, (f.queue.unshift(...batch), '')));
    }
  } finally {
    f.busy = false;
  }
}

console.log(`Machine: ${cpus().length} × ${cpus()[0]?.model.trim()}, Node ${process.version}, ${new Date().toISOString().slice(0, 16)}Z`);
console.log(`${NODES} hollow nodes (${DEPLOYED ? 'as deployed agents: push channel on SQS, polls' : 'one watch of all pods'}), ${PODS} pods, DynamoDB on moto (${ddb.endpoint})\n`);
const t0 = performance.now();
await registry.create(nsRes, undefined, { metadata: { name: 'bench' } });
// The deployed agents' settings (infra/nodes.ts): Lease every 300 s declaring 1,200; pods polled every
// 300 s behind the push channel; Services and Endpoints every 75 s.
const hollow = await startHollowNodes({
  ...(DEPLOYED ? { kube: new KubeClient(apiConfig), deployed: { api: apiConfig, sqs: () => sqs!.newClient(), queuePrefix: process.env.SKIFF_NODE_QUEUE_PREFIX!, podPollMs: 300_000, servicesPollMs: 75_000 } } : { registry }),
  count: NODES,
  cpu: '8',
  memory: '32Gi',
  pods: 110,
  heartbeatMs: 300_000,
  leaseDurationSeconds: 1200,
});
const nodesMs = performance.now() - t0;
console.error(`nodes registered in ${(nodesMs / 1000).toFixed(1)} s`);

// Pods, 32 at a time; each one's create time, bound time and Running time, seen by a watch of the
// namespace (through the DynamoDB backend: it reads what changed). A list every 0.5 s, as this bench made
// until 2026-12-06, was a Query of every pod each time, and at 500 pods it was most of moto's work.
const created = new Map<string, number>();
const bound = new Map<string, number>();
const running = new Map<string, number>();
const watchStop = new AbortController();
const watching = (async () => {
  for (;;) {
    try {
      for await (const ev of registry.watch(podsRes, 'bench', {}, watchStop.signal) as AsyncIterable<{ type: string; object: { metadata: { name?: string }; spec?: { nodeName?: string }; status?: { phase?: string } } }>) {
        const p = ev.object;
        const now = performance.now();
        if (p.spec?.nodeName && !bound.has(p.metadata.name!)) bound.set(p.metadata.name!, now);
        if (p.status?.phase === 'Running' && !running.has(p.metadata.name!)) running.set(p.metadata.name!, now);
      }
    } catch (e) {
      if (!watchStop.signal.aborted) console.error('bench: pod watch failed, restarting', e);
    }
    if (watchStop.signal.aborted) return;
    await new Promise((r) => setTimeout(r, 500));
  }
})();
// DynamoDB requests per second by function since the last call (the progress lines).
let lastCount = { at: performance.now(), by: {} as Record<string, number> };
function rates(): string {
  const now = { at: performance.now(), by: Object.fromEntries(Object.entries(requests).map(([fn, m]) => [fn, Object.values(m).reduce((a, b) => a + b, 0)])) };
  const s = (now.at - lastCount.at) / 1000;
  const out = Object.entries(now.by).map(([fn, n]) => `${fn} ${((n - (lastCount.by[fn] ?? 0)) / s).toFixed(0)}`).join(', ');
  lastCount = now;
  return out;
}
if (process.env.BENCH_IDLE_S) {
  // The agents alone for a while (after their first lists): what following the cluster costs at rest.
  await new Promise((r) => setTimeout(r, 30_000));
  rates();
  await new Promise((r) => setTimeout(r, Number(process.env.BENCH_IDLE_S) * 1000));
  console.error(`idle, ${NODES} nodes: DynamoDB requests/s ${rates()}`);
}
const before = JSON.parse(JSON.stringify(requests)) as typeof requests;
const tPods = performance.now();
// While the pods are created too (a run whose creates crawl says where moto's time goes).
const topQueried = () => [...queried].sort((a, b) => b[1] - a[1]).slice(0, 3).map(([k, n]) => `${k} ${n}`).join(', ');
const creating = setInterval(() => {
  console.error(`${((performance.now() - tPods) / 1000).toFixed(0)} s: ${created.size} created, ${bound.size} bound, ${running.size} Running; DynamoDB requests/s ${rates()}; items queried so far, most: ${topQueried()}`);
}, 30_000);
let next = 0;
await Promise.all(
  Array.from({ length: CONCURRENCY }, async () => {
    for (let i = next++; i < PODS; i = next++) {
      if (EVERY_MS) await new Promise((r) => setTimeout(r, Math.max(0, tPods + i * EVERY_MS - performance.now())));
      const name = `p-${i}`;
      await registry.create(podsRes, 'bench', { apiVersion: 'v1', kind: 'Pod', metadata: { name }, spec: { containers: [{ name: 'c', image: 'busybox', resources: { requests: { cpu: '10m', memory: '16Mi' } } }] } });
      created.set(name, performance.now());
    }
  }),
);
clearInterval(creating);
const createMs = performance.now() - tPods;
const deadline = performance.now() + Number(process.env.BENCH_MINUTES ?? 20) * 60_000;
let said = performance.now();
while (running.size < PODS && performance.now() < deadline) {
  if (performance.now() - said > 30_000) {
    said = performance.now();
    console.error(`${((said - tPods) / 1000).toFixed(0)} s: ${bound.size} bound, ${running.size} Running; DynamoDB requests/s ${rates()}; items queried so far, most: ${topQueried()}`);
  }
  await new Promise((r) => setTimeout(r, 250));
}
const allMs = performance.now() - tPods;
watchStop.abort();
await watching;
stopped = true;
await hollow.stop();
await streaming;

const sorted = (xs: number[]) => xs.sort((a, b) => a - b);
const pct = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor(p * xs.length))] ?? NaN;
const lat = sorted([...bound].map(([n, t]) => t - created.get(n)!));
const q = (p: number) => pct(lat, p);
const acting = sorted([...running].filter(([n]) => bound.has(n)).map(([n, t]) => t - bound.get(n)!));
const head = await new DynamoBackend({ client: ddb.newClient(), tableName }).currentRevision();
console.log('| measure | value |');
console.log('|---|--:|');
console.log(`| ${NODES} nodes registered (Node, Lease each) | ${(nodesMs / 1000).toFixed(1)} s |`);
console.log(`| ${PODS} pods created, ${EVERY_MS ? `one every ${EVERY_MS} ms` : `${CONCURRENCY} at a time`} | ${(createMs / 1000).toFixed(1)} s (${((PODS * 1000) / createMs).toFixed(0)}/s) |`);
console.log(`| pods bound / Running at the end | ${bound.size} / ${running.size} of ${PODS} |`);
console.log(`| all Running after | ${(allMs / 1000).toFixed(1)} s (${((running.size * 1000) / allMs).toFixed(1)} pods/s) |`);
console.log(`| create → bound, p50 / p99 (seen by a watch) | ${(q(0.5) / 1000).toFixed(1)} s / ${(q(0.99) / 1000).toFixed(1)} s |`);
console.log(`| bound → Running, p50 / p99 (the node hears, lists its pods, writes the status) | ${(pct(acting, 0.5) / 1000).toFixed(2)} s / ${(pct(acting, 0.99) / 1000).toFixed(2)} s |`);
console.log(`| stream invocations (scheduler / controller manager) | ${fns.map((f) => f.invocations).join(' / ')} |`);
console.log(`| revisions at the end | ${head} |`);
console.log('\nDynamoDB requests per pod, by function (from the first pod create to the last Running; includes the bench\'s and the hollow nodes\' watches in apiserver, and the nodes\' heartbeats):');
for (const fn of Object.keys(requests)) {
  const per = Object.entries(requests[fn]!)
    .map(([cmd, n]) => [cmd, (n - (before[fn]?.[cmd] ?? 0)) / PODS] as const)
    .filter(([, n]) => n > 0)
    .map(([cmd, n]) => `${cmd} ${n.toFixed(2)}`);
  console.log(`  ${fn}: ${per.join(', ')}`);
}
console.log('\nItems returned by Queries over the whole run (node registration included), per pod, by function and partition key (its last segment elided; the largest ten):');
for (const [k, n] of [...queried].sort((a, b) => b[1] - a[1]).slice(0, 10)) console.log(`  ${k}: ${(n / PODS).toFixed(1)}`);
streams.destroy();
server.closeAllConnections();
server.close();
await sqs?.stop();
await ddb.stop();
process.exit(0);
