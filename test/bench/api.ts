// npm run bench:api — apiserver latency and throughput over HTTPS, on the embedded SQLite backend and on
// DynamoDB (moto server, or SKIFF_DYNAMODB_ENDPOINT), at concurrency 1 and 32, side by side in one run:
// create, get, list, update, watch delivery and delete of ConfigMaps (Secrets for the watch).
// Prints a Markdown table for BENCHMARKS.md. Not a test: nothing here passes or fails on a number.

import https from 'node:https';
import os from 'node:os';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { startLocalCluster, type LocalCluster } from '../../lambdas/local/server.ts';
import { DynamoBackend, ensureTable } from '../../lambdas/storage/dynamodb.ts';
import { dynamoTestEndpoint } from '../support/dynamodb.ts';
import { drive, pct } from './drive.ts';

const OPS = Number(process.env.BENCH_OPS ?? 400); // requests per operation and concurrency level
const CONCURRENCY = [1, 32];

interface Row {
  backend: string;
  op: string;
  concurrency: number;
  n: number;
  p50: number;
  p99: number;
  rps: number;
}


class Client {
  private agent: https.Agent;
  constructor(
    private c: LocalCluster,
    sockets: number,
    private token = c.token,
  ) {
    this.agent = new https.Agent({ keepAlive: true, maxSockets: sockets, ca: c.caCert });
  }
  req(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
    return new Promise((resolve, reject) => {
      const r = https.request(
        new URL(path, this.c.url),
        {
          method,
          agent: this.agent,
          headers: { authorization: `Bearer ${this.token}`, 'content-type': 'application/json' },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (d) => chunks.push(d));
          res.on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(Buffer.concat(chunks).toString() || 'null') }));
        },
      );
      r.on('error', reject);
      if (body !== undefined) r.write(JSON.stringify(body));
      r.end();
    });
  }
  close() {
    this.agent.destroy();
  }
}


function row(backend: string, op: string, concurrency: number, r: { lat: number[]; wall: number }): Row {
  return { backend, op, concurrency, n: r.lat.length, p50: pct(r.lat, 50), p99: pct(r.lat, 99), rps: (r.lat.length / r.wall) * 1000 };
}

async function benchCluster(name: string, cluster: LocalCluster, ops: number): Promise<Row[]> {
  const rows: Row[] = [];
  for (const conc of CONCURRENCY) {
    const cl = new Client(cluster, conc);
    const ns = `bench-${conc}`;
    const must = (r: { status: number; json: any }, code: number) => {
      if (r.status !== code) throw new Error(`expected ${code}, got ${r.status}: ${JSON.stringify(r.json)}`);
    };
    must(await cl.req('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } }), 201);
    const base = `/api/v1/namespaces/${ns}/configmaps`;
    const cm = (i: number) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `cm-${i}`, labels: { bench: 'yes' } }, data: { i: String(i) } });

    rows.push(row(name, 'create', conc, await drive(ops, conc, async (i) => must(await cl.req('POST', base, cm(i)), 201))));
    rows.push(row(name, 'get', conc, await drive(ops, conc, async (i) => must(await cl.req('GET', `${base}/cm-${i % ops}`), 200))));
    rows.push(row(name, 'list (100 items)', conc, await drive(Math.max(20, ops / 4), conc, async () => must(await cl.req('GET', `${base}?limit=100`), 200))));
    // Each worker updates its own objects, with the resourceVersion it last saw: no conflicts by design.
    const rv = new Map<number, string>();
    rows.push(
      row(name, 'update', conc, await drive(ops, conc, async (i) => {
        const obj = cm(i % ops) as any;
        const r = await cl.req('PUT', `${base}/cm-${i % ops}`, { ...obj, data: { i: `u${i}` }, metadata: { ...obj.metadata, resourceVersion: rv.get(i % ops) } });
        must(r, 200);
        rv.set(i % ops, r.json.metadata.resourceVersion);
      })),
    );
    rows.push(await watchDelivery(name, cluster, cl, ns, conc, Math.min(ops, 200)));
    // Last, so the rows above run against the same objects as before this row existed.
    rows.push(row(name, 'delete', conc, await drive(ops, conc, async (i) => must(await cl.req('DELETE', `${base}/cm-${i}`), 200))));
    cl.close();
  }
  return rows;
}

/** Time from sending a create to receiving its ADDED event on an open watch. */
async function watchDelivery(name: string, cluster: LocalCluster, cl: Client, ns: string, conc: number, n: number): Promise<Row> {
  const sent = new Map<string, number>();
  const lat: number[] = [];
  let buf = '';
  const list = await cl.req('GET', `/api/v1/namespaces/${ns}/secrets`);
  const req = https.request(
    new URL(`/api/v1/namespaces/${ns}/secrets?watch=true&resourceVersion=${list.json.metadata.resourceVersion}`, cluster.url),
    { headers: { authorization: `Bearer ${cluster.token}` }, ca: cluster.caCert },
    (res) => {
      res.on('data', (d) => {
        buf += d;
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          const ev = JSON.parse(buf.slice(0, i));
          buf = buf.slice(i + 1);
          const t = sent.get(ev.object?.metadata?.name);
          if (ev.type === 'ADDED' && t !== undefined) lat.push(performance.now() - t);
        }
      });
      res.on('error', () => {});
    },
  );
  req.on('error', () => {});
  req.end();
  await new Promise((r) => setTimeout(r, 300));
  const t0 = performance.now();
  await drive(n, conc, async (i) => {
    const nm = `s-${i}`;
    sent.set(nm, performance.now());
    await cl.req('POST', `/api/v1/namespaces/${ns}/secrets`, { apiVersion: 'v1', kind: 'Secret', metadata: { name: nm } });
  });
  const end = Date.now() + 30_000;
  while (lat.length < n && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  const wall = performance.now() - t0;
  req.destroy();
  if (lat.length < n) console.error(`watch delivered ${lat.length}/${n} events (${name}, c=${conc})`);
  return row(name, 'watch delivery', conc, { lat: lat.sort((a, b) => a - b), wall });
}

/**
 * The cost of authorization: the same get and create as the admin (system:masters: decided before RBAC is
 * asked) and as a user whose access comes from a RoleBinding among 1,000 others, interleaved, at
 * concurrency 1. Aim (issue #15): RBAC adds at most 10% to p50.
 */
async function benchAuthorization(cluster: LocalCluster, ops: number): Promise<Row[]> {
  const admin = new Client(cluster, 4);
  const must = (r: { status: number; json: any }, code: number) => {
    if (r.status !== code) throw new Error(`expected ${code}, got ${r.status}: ${JSON.stringify(r.json)}`);
  };
  const binding = (ns: string, name: string, user: string) => ({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: { name },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'edit' },
    subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: user }],
  });
  for (let n = 0; n < 10; n++) {
    const ns = `authz-${n}`;
    must(await admin.req('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } }), 201);
    await drive(100, 4, async (i) => must(await admin.req('POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`, binding(ns, `b-${i}`, `user-${n}-${i}`)), 201));
  }
  // The measured user's own binding, one of 1,001.
  must(await admin.req('POST', '/apis/rbac.authorization.k8s.io/v1/namespaces/authz-0/rolebindings', binding('authz-0', 'bench', 'bench-user')), 201);
  const { newToken, storeToken } = await import('../../lambdas/apiserver/auth.ts');
  const token = newToken();
  await storeToken(cluster.backend, token, { username: 'bench-user', groups: [] });
  const user = new Client(cluster, 1, token);
  const base = '/api/v1/namespaces/authz-0/configmaps';
  const lat = { admin: { get: [] as number[], create: [] as number[] }, user: { get: [] as number[], create: [] as number[] } };
  let k = 0;
  for (let round = 0; round < 4; round++) {
    for (const [who, cl] of [['admin', admin], ['user', user]] as const) {
      const created = await drive(ops / 4, 1, async () => must(await cl.req('POST', base, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `a-${k++}` } }), 201));
      lat[who].create.push(...created.lat);
      const got = await drive(ops / 4, 1, async (i) => must(await cl.req('GET', `${base}/a-${i}`), 200));
      lat[who].get.push(...got.lat);
    }
  }
  admin.close();
  user.close();
  const out: Row[] = [];
  for (const op of ['get', 'create'] as const) {
    for (const who of ['admin', 'user'] as const) {
      const l = lat[who][op].sort((a, b) => a - b);
      out.push({ backend: 'SQLite (embedded)', op: `${op} as ${who === 'admin' ? 'system:masters' : 'an RBAC user (1,001 bindings)'}`, concurrency: 1, n: l.length, p50: pct(l, 50), p99: pct(l, 99), rps: 0 });
    }
    console.log(`authorization cost, ${op} p50: ${((out.at(-1)!.p50 / out.at(-2)!.p50 - 1) * 100).toFixed(1)}% (RBAC user vs system:masters)`);
  }
  return out;
}

async function main() {
  const rows: Row[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'skiff-bench-'));
  try {
    const sqlite = await startLocalCluster({ dataDir: join(dir, 'sqlite'), port: 0 });
    rows.push(...(await benchCluster('SQLite (embedded)', sqlite, OPS)));
    rows.push(...(await benchAuthorization(sqlite, OPS)));
    await sqlite.close();

    const ddb = await dynamoTestEndpoint();
    if (!ddb) {
      console.error('No DynamoDB endpoint (moto server in .venv-moto or SKIFF_DYNAMODB_ENDPOINT): DynamoDB rows skipped');
    } else {
      const table = `skiff-bench-${Date.now()}`;
      await ensureTable(ddb.client, table);
      const backend = new DynamoBackend({ client: ddb.client, tableName: table });
      // The apiserver alone, as the deployed apiserver function runs: its controllers and scheduler are other
      // functions. In-process they would share moto's one Python thread and this process's one-at-a-time
      // DynamoDB writes with the requests measured (every write wakes the garbage collector and the
      // endpoints controller): measured on 2026-11-29, that made creates 5x slower than the apiserver is.
      const cluster = await startLocalCluster({ dataDir: join(dir, 'ddb'), port: 0, backend, controllers: false });
      // moto is a single-threaded Python server: fewer requests keep the run short.
      rows.push(...(await benchCluster(`DynamoDB (${ddb.endpoint.includes('127.0.0.1') ? 'moto' : ddb.endpoint})`, cluster, Math.max(50, Math.floor(OPS / 4)))));
      await cluster.close();
      await ddb.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const cpu = os.cpus()[0]?.model ?? 'unknown cpu';
  console.log(`\nMachine: ${os.cpus().length} × ${cpu}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}\n`);
  console.log('| backend | operation | concurrency | requests | p50 ms | p99 ms | req/s |');
  console.log('|---|---|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    console.log(`| ${r.backend} | ${r.op} | ${r.concurrency} | ${r.n} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.rps.toFixed(0)} |`);
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
