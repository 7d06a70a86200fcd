// npm run bench:write-path — the DynamoDB backend's cluster-wide write rate (issue #16 item 4): N store
// handles, each standing for one apiserver Lambda instance (its own client; one request at a time, as a
// Lambda instance serves), create objects as fast as they can for a fixed time, against moto behind a
// proxy that adds DynamoDB-like latency to every call and lets calls overlap (test/support/faulty-proxy.ts).
// Reports writes/s, latency p50/p99, the transactions tried per write (contention: before revisions came
// from an atomic ADD, every write was a transaction conditioned on the one counter item), the DynamoDB
// requests per write, and how long moto took per request, for N = 1, 4, 10.
//
// moto answers one request at a time (the test server's lock, support/dynamodb.ts) and takes a few ms
// per request itself: once it is busy all the time, the rate is moto's ceiling (1000 / (ms per request x
// requests per write)), not the design's; the figures are this model's, not AWS's. Knobs: BENCH_SECONDS (15 per N),
// BENCH_READ_MS (4: GetItem/Query), BENCH_WRITE_MS (8: TransactWriteItems), BENCH_INSTANCES ("1,4,10").

import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { cpus } from 'node:os';
import { DynamoBackend, ensureTable } from '../../lambdas/storage/dynamodb.ts';
import { StorageError } from '../../lambdas/storage/backend.ts';
import { dynamoTestEndpoint, uniqueTableName } from '../support/dynamodb.ts';
import { startFaultyProxy } from '../support/faulty-proxy.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 15);
const READ_MS = Number(process.env.BENCH_READ_MS ?? 4);
const WRITE_MS = Number(process.env.BENCH_WRITE_MS ?? 8);
const INSTANCES = (process.env.BENCH_INSTANCES ?? '1,4,10').split(',').map(Number);

const ddb = await dynamoTestEndpoint();
if (!ddb) throw new Error('bench:write-path needs moto (.venv-moto) or SKIFF_DYNAMODB_ENDPOINT');
const proxy = await startFaultyProxy({ target: ddb.endpoint, seed: 1, rates: {}, latencyMs: (op) => (op === 'TransactWriteItems' ? WRITE_MS : READ_MS) * (0.8 + 0.4 * Math.random()) });
console.log(`Machine: ${cpus().length} × ${cpus()[0]?.model.trim()}, Node ${process.version}, ${new Date().toISOString().slice(0, 16)}Z`);
console.log(`moto behind a latency proxy: reads +${READ_MS} ms, TransactWriteItems +${WRITE_MS} ms (±20%); ${SECONDS} s per row\n`);
console.log('| instances | writes | writes/s | p50 ms | p99 ms | transactions per write | requests per write | moto ms per request | refused (Unavailable) |');
console.log('|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
const allRequests = () => [...proxy.requests.values()].reduce((a, b) => a + b, 0);

try {
  for (const n of INSTANCES) {
    const tableName = uniqueTableName('skiff-writepath');
    await ensureTable(ddb.client, tableName);
    const before = proxy.requests.get('TransactWriteItems') ?? 0;
    const requestsBefore = allRequests();
    const upstreamBefore = proxy.upstreamMs();
    const latencies: number[] = [];
    let refused = 0;
    const deadline = performance.now() + SECONDS * 1000;
    const instance = async (i: number) => {
      const client = new DynamoDBClient({ endpoint: proxy.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
      const store = new DynamoBackend({ client, tableName });
      for (let j = 0; performance.now() < deadline; j++) {
        const t0 = performance.now();
        try {
          await store.create(`/registry/core/configmaps/bench/i${i}-${j}`, JSON.stringify({ metadata: { name: `i${i}-${j}` }, data: { v: 'x'.repeat(400) } }));
          latencies.push(performance.now() - t0);
        } catch (e) {
          if (!(e instanceof StorageError && e.code === 'Unavailable')) throw e;
          refused++;
        }
      }
      client.destroy();
    };
    const t0 = performance.now();
    await Promise.all(Array.from({ length: n }, (_, i) => instance(i)));
    const elapsed = (performance.now() - t0) / 1000;
    latencies.sort((a, b) => a - b);
    const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN;
    const tx = (proxy.requests.get('TransactWriteItems') ?? 0) - before;
    const requests = allRequests() - requestsBefore;
    const writes = Math.max(1, latencies.length);
    // With one writer nothing queues in moto: the time per request is its service time.
    const motoMs = (proxy.upstreamMs() - upstreamBefore) / Math.max(1, requests);
    console.log(
      `| ${n} | ${latencies.length} | ${(latencies.length / elapsed).toFixed(0)} | ${q(0.5).toFixed(1)} | ${q(0.99).toFixed(1)} | ${(tx / writes).toFixed(2)} | ${(requests / writes).toFixed(2)} | ${motoMs.toFixed(1)} | ${refused} |`,
    );
  }
} finally {
  await proxy.close();
  await ddb.stop();
}
