// Cost per namespace (issue #17 item 6) on the DynamoDB backend on moto, deployed-style: the apiserver
// answering requests, the Deployment and ReplicaSet loops fed the table's real stream records through
// the deployed filter (handleStreamBatch, as the controller Lambda runs them). The meter (machinery/
// usage.ts) estimates each Backend call's DynamoDB requests and units; this test counts the DynamoDB
// requests actually sent (an SDK middleware, units by DynamoDB's billing rules on the bytes sent and
// read, as test/cost.requests counts them), each charged to the namespace in the async context at the
// time it is sent. Both are priced by the one cost model (priceUsage). Checked: the namespaces' costs sum
// to the measured total within 10%; each namespace's within 15% of what it measurably caused; the busy
// namespace costs many times the idle one; bare pods created and deleted cost within 25% of what `npm run
// cost` prices the same operations at (OPERATIONS.podCreate/podDelete); bad input is a 4xx. And deployed,
// the instances' counts kept in the table and served from there.

import { afterAll, describe, expect, it } from 'vitest';
import type { AttributeValue, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { ApiServer } from '../lambdas/apiserver/app.ts';
import { ADMIN_USER, newToken, storeToken } from '../lambdas/apiserver/auth.ts';
import type { UsageReport } from '../lambdas/apiserver/cost.ts';
import { deploymentController } from '../lambdas/controllers/deployment.ts';
import { replicaSetController } from '../lambdas/controllers/replicaset.ts';
import { handleStreamBatch, streamFilterPatterns } from '../lambdas/controllers/stream.ts';
import { chargedTo, currentNamespace, namespaceOfKey, UsageMeter } from '../lambdas/machinery/usage.ts';
import { DynamoUsageStore } from '../lambdas/storage/usage-store.ts';
import { DynamoBackend, ensureTable } from '../lambdas/storage/dynamodb.ts';
import { clusterSizes, itemBytes, OPERATIONS, priceUsage, recipeCapacity, type NamespaceUsage } from '../infra/cost-model.ts';
import { findResource } from '../lambdas/machinery/resources.ts';
import { dynamoTestEndpoint, uniqueTableName } from './support/dynamodb.ts';
import { streamRecords } from './support/dynamo-stream.ts';
import { passesFilters } from './support/lambda-filter.ts';

const ddb = await dynamoTestEndpoint();
afterAll(async () => ddb?.stop());

type Item = Record<string, AttributeValue>;
const units = (bytes: number, per: number) => Math.max(1, Math.ceil(bytes / per));

/** DynamoDB requests actually sent, by the namespace charged when each was sent. */
const measured = new Map<string, NamespaceUsage>();
let measuring = false;

function measure(client: DynamoDBClient): void {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const out = await next(args);
      if (!measuring) return out;
      const command = String((context as { commandName?: string }).commandName ?? '').replace(/Command$/, '');
      const input = args.input as Record<string, any>;
      const output = out.output as Record<string, any>;
      let rru = 0;
      let wru = 0;
      if (command === 'GetItem') rru = units(output.Item ? itemBytes(output.Item) : 0, 4096);
      else if (command === 'Query') rru = units(((output.Items ?? []) as Item[]).reduce((s, it) => s + itemBytes(it), 0), 4096);
      else if (command === 'BatchGetItem') rru = (Object.values(output.Responses ?? {}).flat() as Item[]).reduce((s, it) => s + units(itemBytes(it), 4096), 0);
      else if (command === 'PutItem') wru = units(itemBytes(input.Item), 1024);
      else if (command === 'UpdateItem' || command === 'DeleteItem') wru = 1;
      else if (command === 'TransactWriteItems') for (const t of input.TransactItems as Record<string, any>[]) wru += 2 * (t.Put ? units(itemBytes(t.Put.Item), 1024) : 1);
      const ns = currentNamespace();
      const m = measured.get(ns) ?? { apiRequests: 0, dynamoRequests: 0, rru: 0, wru: 0 };
      m.dynamoRequests++;
      m.rru += rru;
      m.wru += wru;
      measured.set(ns, m);
      return out;
    },
    { step: 'initialize', name: 'costNamespaceMeasure' },
  );
}

describe.skipIf(!ddb)('cost per namespace on DynamoDB (moto), deployed-style loops on the stream', () => {
  it('sums to the measured total; each namespace pays for what it did; bad input is a 4xx', async () => {
    const tableName = uniqueTableName('skiff-costns');
    await ensureTable(ddb!.client, tableName);
    const client = ddb!.newClient();
    measure(client);
    const backend = new DynamoBackend({ client, tableName });
    const token = newToken();
    await storeToken(backend, token, ADMIN_USER);
    const api = new ApiServer({ backend });
    const ctx = api.controllerContext();
    const call = async (method: string, path: string, body?: unknown, query = '') => {
      const r = await api.handle({
        method,
        path,
        query: new URLSearchParams(query),
        headers: { authorization: `Bearer ${token}`, 'content-type': method === 'PATCH' ? 'application/merge-patch+json' : 'application/json' },
        body: Buffer.from(body === undefined ? '' : JSON.stringify(body)),
      } as Parameters<ApiServer['handle']>[0]);
      const text = typeof r.body === 'string' ? r.body : r.body instanceof Uint8Array ? Buffer.from(r.body).toString() : '';
      return { status: r.status, json: text ? JSON.parse(text) : undefined };
    };
    // The apiserver requests each namespace made, as the meter counts them (one per handle()).
    const apiCalls = new Map<string, number>();
    const counted = async (ns: string, method: string, path: string, body?: unknown) => {
      apiCalls.set(ns, (apiCalls.get(ns) ?? 0) + 1);
      const r = await call(method, path, body);
      expect(r.status, JSON.stringify(r.json)).toBeLessThan(300);
      return r.json;
    };

    const loops = [deploymentController, replicaSetController];
    const seen = new Set<string>();
    // Each batch is one invocation of the loops' function, shared by its records' namespaces.
    const invocations = new Map<string, number>();
    const deliver = async () => {
      const records = (await streamRecords(ddb!, tableName)).filter((r) => !seen.has(r.dynamodb!.SequenceNumber!) && passesFilters(streamFilterPatterns(...loops), r));
      for (const r of records) seen.add(r.dynamodb!.SequenceNumber!);
      if (measuring) for (const r of records) invocations.set(namespaceOfKey(r.dynamodb!.Keys!.sk!.S!), (invocations.get(namespaceOfKey(r.dynamodb!.Keys!.sk!.S!)) ?? 0) + 1 / records.length);
      if (records.length) expect((await handleStreamBatch(loops, ctx, records)).batchItemFailures).toEqual([]);
      return records.length;
    };
    const settle = async () => {
      for (let i = 0; i < 20 && (await deliver()) > 0; i++);
    };
    await deliver(); // the setup's records

    measuring = true;
    for (const ns of ['busy', 'idle']) await counted('', 'POST', '/api/v1/namespaces', { metadata: { name: ns } });
    await settle();
    const deploy = (name: string, replicas: number) => ({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name },
      spec: { replicas, selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'c', image: 'nginx:1' }] } } },
    });
    // busy: two Deployments created, one scaled up and down, pods churned; idle: one Deployment of one pod, read now and then.
    await counted('busy', 'POST', '/apis/apps/v1/namespaces/busy/deployments', deploy('web', 3));
    await counted('busy', 'POST', '/apis/apps/v1/namespaces/busy/deployments', deploy('api', 2));
    await counted('idle', 'POST', '/apis/apps/v1/namespaces/idle/deployments', deploy('one', 1));
    await settle();
    await counted('busy', 'PATCH', '/apis/apps/v1/namespaces/busy/deployments/web', { spec: { replicas: 6 } });
    await settle();
    const pods = (await counted('busy', 'GET', '/api/v1/namespaces/busy/pods')).items as { metadata: { name: string } }[];
    expect(pods).toHaveLength(8);
    for (const p of pods.slice(0, 4)) await counted('busy', 'DELETE', `/api/v1/namespaces/busy/pods/${p.metadata.name}`);
    await settle();
    await counted('busy', 'PATCH', '/apis/apps/v1/namespaces/busy/deployments/web', { spec: { replicas: 2 } });
    await settle();
    for (let i = 0; i < 3; i++) await counted('idle', 'GET', '/api/v1/namespaces/idle/pods');
    expect((await call('GET', '/api/v1/namespaces/busy/pods')).json.items).toHaveLength(4);
    measuring = false;

    const r = (await call('GET', '/apis/cost.skiff.io/v1/usage')).json as UsageReport;
    expect(r).toMatchObject({ kind: 'UsageReport', apiVersion: 'cost.skiff.io/v1' });
    const by = new Map(r.namespaces.map((n) => [n.namespace, n]));
    // The report's API requests are the ones made (those before `measuring` too: the check GET above).
    expect(by.get('busy')!.apiRequests).toBe(apiCalls.get('busy')! + 1);
    expect(by.get('idle')!.apiRequests).toBe(apiCalls.get('idle'));
    const price = (ns: string) => priceUsage({ ...(measured.get(ns) ?? { dynamoRequests: 0, rru: 0, wru: 0 }), apiRequests: apiCalls.get(ns) ?? 0, invocations: invocations.get(ns) ?? 0 }).total;
    const buckets = new Set([...measured.keys(), ...invocations.keys()]);
    // What nothing counts: the alarms, estimated for the window (no push channel here).
    const measuredTotal = [...buckets].reduce((s, ns) => s + price(ns), 0) + r.total.usd.fixed;
    const meteredTotal = r.total.usd.total;
    console.log('cost.namespace', JSON.stringify({ measured: Object.fromEntries(measured), invocations: Object.fromEntries(invocations), metered: [...r.namespaces, ...r.overhead].map((n) => ({ ns: n.namespace ?? (n as { name?: string }).name, api: n.apiRequests, inv: n.invocations, ddb: n.dynamoRequests, rru: n.readUnits, wru: n.writeUnits, usd: n.usd.total })), measuredTotal, meteredTotal }));
    // The namespaces' costs sum to namespacesTotal; with the overhead lines, to the total ...
    expect(Math.abs(r.namespacesTotal.usd.total - r.namespaces.reduce((s, n) => s + n.usd.total, 0))).toBeLessThan(1e-12);
    expect(Math.abs(r.total.usd.total - r.namespacesTotal.usd.total - r.overhead.reduce((s, n) => s + n.usd.total, 0))).toBeLessThan(1e-12);
    expect(r.overhead.find((o) => o.name === 'alarms')).toMatchObject({ estimated: true });
    // ... and to what the DynamoDB requests actually sent and the invocations made cost, priced by the same model, within 10%
    // (measured 0.6% apart, 2026-12-05): write units matched exactly, reads are estimated (items at a sixth
    // of their JSON, as the compressed values come to; a read of an object written in the last second by the same
    // process is skipped by DynamoBackend's `recent` and still counted here), and the few reads the meter
    // does not see (an index's completeness marker, a conflict's re-read) are missing.
    expect(meteredTotal / measuredTotal).toBeGreaterThan(0.9);
    expect(meteredTotal / measuredTotal).toBeLessThan(1.1);
    // Each namespace within 15% of what it measurably caused; busy costs many times idle.
    for (const ns of ['busy', 'idle']) {
      expect(by.get(ns)!.usd.total / price(ns), ns).toBeGreaterThan(0.85);
      expect(by.get(ns)!.usd.total / price(ns), ns).toBeLessThan(1.15);
    }
    expect(by.get('busy')!.usd.total).toBeGreaterThan(4 * by.get('idle')!.usd.total);
    expect(by.get('busy')!.reconciles).toBeGreaterThan(by.get('idle')!.reconciles);

    // The cost model's figure for the same operations: bare pods created and deleted in their own namespace
    // (apiserver only: OPERATIONS.podCreate's and podDelete's apiserver requests, as `npm run cost` prices
    // them at REFERENCE_SIZES, less the history entry, which is off here) against what the meter charged.
    await counted('', 'POST', '/api/v1/namespaces', { metadata: { name: 'pods' } });
    // Read through the cluster's report (charged to the cluster, not to `pods`).
    const podsCost = async () => ((await call('GET', '/apis/cost.skiff.io/v1/usage')).json as UsageReport).namespaces.find((x) => x.namespace === 'pods')?.usd.total ?? 0;
    const before = await podsCost();
    const n = 5;
    for (let i = 0; i < n; i++) await counted('pods', 'POST', '/api/v1/namespaces/pods/pods', { metadata: { name: `p${i}` }, spec: { containers: [{ name: 'c', image: 'nginx:1' }] } });
    for (let i = 0; i < n; i++) await counted('pods', 'DELETE', `/api/v1/namespaces/pods/pods/p${i}`);
    const charged = (await podsCost()) - before;
    const sizes = clusterSizes({ name: 'ref', nodes: 3, pods: 0, churnPerHour: 0 });
    const noHistory = (r: Record<string, number>) => Object.fromEntries(Object.entries(r).filter(([k]) => !k.startsWith('PutItem history')));
    const model = [OPERATIONS.podCreate, OPERATIONS.podDelete].map((op) => {
      const c = recipeCapacity(noHistory(op.dynamo.apiserver), sizes);
      return priceUsage({ apiRequests: op.apiRequests, dynamoRequests: c.requests, rru: c.rru, wru: c.wru }).total;
    });
    const modelled = n * (model[0]! + model[1]!);
    console.log('cost.namespace model', JSON.stringify({ charged, modelled, ratio: charged / modelled }));
    // Within 25% (3.5% apart measured, 2026-12-05): the meter counts the Backend's calls in DynamoDB's
    // terms, the model the DynamoDB requests themselves; the model's pod item is a running pod's (status
    // and all), these are bare ones.
    expect(charged / modelled).toBeGreaterThan(0.75);
    expect(charged / modelled).toBeLessThan(1.25);

    // One namespace's report, and bad input.
    const one = (await call('GET', '/apis/cost.skiff.io/v1/namespaces/idle/usage', undefined, 'since=1h')).json as UsageReport;
    expect(one.namespaces.map((n) => n.namespace)).toEqual(['idle']);
    // That report counts itself: one more request of idle's (it reads the namespace).
    expect(one.namespaces[0]!.apiRequests).toBe(by.get('idle')!.apiRequests + 1);
    expect(one.namespaces[0]!.usd.total).toBeGreaterThan(by.get('idle')!.usd.total);
    expect(one.window.seconds).toBeLessThanOrEqual(3600);
    const missing = await call('GET', '/apis/cost.skiff.io/v1/namespaces/nope/usage');
    expect(missing.status).toBe(404);
    expect(missing.json).toMatchObject({ kind: 'Status', reason: 'NotFound' });
    const bad = await call('GET', '/apis/cost.skiff.io/v1/usage', undefined, 'since=yesterday');
    expect(bad.status).toBe(400);
    expect(bad.json.message).toMatch(/invalid since "yesterday"/);
    expect((await call('POST', '/apis/cost.skiff.io/v1/usage')).status).toBe(405);
  }, 180_000);

  it('deployed, the instances\' counts are kept per namespace per hour in the table and served from there', async () => {
    const tableName = uniqueTableName('skiff-coststore');
    await ensureTable(ddb!.client, tableName);
    const store = new DynamoUsageStore(ddb!.client, tableName);
    // Two Lambda instances' meters, each flushing what it counted.
    const a = new UsageMeter(Date.now, true);
    const b = new UsageMeter(Date.now, true);
    a.apiRequest('team-a');
    chargedTo('team-a', () => a.storage('write', 3, 0, 8));
    b.apiRequest('team-a');
    chargedTo('team-a', () => b.storage('read', 1, 1, 0));
    b.reconcile('');
    chargedTo('', () => b.storage('list', 3, 3, 0));
    // Each flush: an item per namespace touched, and one more counting the flush's own writes (overhead).
    expect(await store.flush(a, 0)).toBe(2);
    expect(await store.flush(b, 0)).toBe(3);
    // Nothing new: no write; new counts within the period: none either, until it has passed.
    expect(await store.flush(a, 0)).toBe(0);
    a.apiRequest('team-a');
    expect(await store.flush(a, 300_000)).toBe(0);
    expect(await store.flush(a, 0)).toBe(2);

    const backend = new DynamoBackend({ client: ddb!.client, tableName });
    const token = newToken();
    await storeToken(backend, token, ADMIN_USER);
    const api = new ApiServer({ backend, usageStore: store });
    for (const ns of ['team-a']) await api.registry.create(findResource('', 'v1', 'namespaces')!, undefined, { metadata: { name: ns } });
    const get = async (path: string, query = '') => {
      const r = await api.handle({ method: 'GET', path, query: new URLSearchParams(query), headers: { authorization: `Bearer ${token}` }, body: Buffer.alloc(0) } as Parameters<ApiServer['handle']>[0]);
      return { status: r.status, json: JSON.parse(String(r.body)) };
    };
    const all = (await get('/apis/cost.skiff.io/v1/usage', 'since=1h')).json as UsageReport;
    const teamA = all.namespaces.find((n) => n.namespace === 'team-a')!;
    expect(teamA).toMatchObject({ apiRequests: 3, dynamoRequests: { read: 1, list: 0, write: 3 }, readUnits: 1, writeUnits: 8 });
    expect(all.namespaces.find((n) => n.namespace === '')).toMatchObject({ reconciles: 1, dynamoRequests: { list: 3 }, readUnits: 3 });
    expect(teamA.usd.total).toBeCloseTo(priceUsage({ apiRequests: 3, dynamoRequests: 4, rru: 1, wru: 8 }).total, 15);
    // The flushes' own writes are overhead: 2 + 3 + 2 UpdateItems.
    expect(all.overhead.find((o) => o.name === 'cost per namespace counting')).toMatchObject({ estimated: false, writeUnits: 7, dynamoRequests: { write: 7 } });
    expect(all.namespaces.map((n) => n.namespace)).not.toContain('@cost per namespace counting');
    const one = (await get('/apis/cost.skiff.io/v1/namespaces/team-a/usage')).json as UsageReport;
    expect(one.namespaces).toHaveLength(1);
    expect(one.namespaces[0]).toMatchObject({ namespace: 'team-a', apiRequests: 3 });
    // Deployed, the window is whole hours: the last day by default.
    expect(one.window.seconds).toBeGreaterThan(86_000);
    // Who may not get pods in team-a sees neither its cost nor the cluster's (403, as a Status).
    const bobToken = newToken();
    await storeToken(backend, bobToken, { username: 'bob', groups: ['system:authenticated'] });
    for (const path of ['/apis/cost.skiff.io/v1/namespaces/team-a/usage', '/apis/cost.skiff.io/v1/usage']) {
      const r = await api.handle({ method: 'GET', path, query: new URLSearchParams(), headers: { authorization: `Bearer ${bobToken}` }, body: Buffer.alloc(0) } as Parameters<ApiServer['handle']>[0]);
      expect(r.status, path).toBe(403);
      expect(JSON.parse(String(r.body))).toMatchObject({ kind: 'Status', reason: 'Forbidden' });
    }
  });
});
