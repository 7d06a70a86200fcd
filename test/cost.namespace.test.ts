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
// the instances' counts kept in the table and served from there. And a scripted load with every part
// on (history, audit, the push channel on SQS, a node's heartbeats and polls, a wake-up, the resync, a
// request through CloudFront): each part charged where the load caused it, the node's requests and the
// resync as overhead, namespaces + overhead = total, within 5% of the measured operations priced by the
// cost model (1.0% measured), heartbeats within 25% of OPERATIONS.leaseRenewal + nodeStatusCheck.

import { afterAll, describe, expect, it, vi } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateQueueCommand } from '@aws-sdk/client-sqs';
import type { AttributeValue, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { ApiServer } from '../lambdas/apiserver/app.ts';
import { ADMIN_USER, newToken, nodeUser, storeToken } from '../lambdas/apiserver/auth.ts';
import { Auditor, DEFAULT_AUDIT_POLICY, FileAuditSink } from '../lambdas/apiserver/audit.ts';
import { createNodeNotifier, nodeQueueName, nodeQueuePrefix } from '../lambdas/controllers/node-notifier.ts';
import { handleWakeUp } from '../lambdas/controllers/wakeups.ts';
import { DynamoHistoryStore } from '../lambdas/storage/history.ts';
import { sqsTestEndpoint } from './support/sqs.ts';
import type { UsageReport } from '../lambdas/apiserver/cost.ts';
import { deploymentController } from '../lambdas/controllers/deployment.ts';
import { replicaSetController } from '../lambdas/controllers/replicaset.ts';
import { createControllerHandlers, handleStreamBatch, streamFilterPatterns } from '../lambdas/controllers/stream.ts';
import { chargedTo, currentNamespace, namespaceOfKey, UsageMeter } from '../lambdas/machinery/usage.ts';
import { DynamoUsageStore } from '../lambdas/storage/usage-store.ts';
import { DynamoBackend, ensureTable } from '../lambdas/storage/dynamodb.ts';
import { clusterSizes, CREATE_TOMBSTONE_CHECK_RRU, fixedOverhead, itemBytes, OPERATIONS, priceUsage, recipeCapacity, type NamespaceUsage } from '../infra/cost-model.ts';
import { findResource } from '../lambdas/machinery/resources.ts';
import { dynamoTestEndpoint, uniqueTableName } from './support/dynamodb.ts';
import { streamRecords } from './support/dynamo-stream.ts';
import { passesFilters } from './support/lambda-filter.ts';

const ddb = await dynamoTestEndpoint();
afterAll(async () => ddb?.stop());
const sqs = ddb ? await sqsTestEndpoint() : undefined;
afterAll(async () => sqs?.stop());

type Item = Record<string, AttributeValue>;
const units = (bytes: number, per: number) => Math.max(1, Math.ceil(bytes / per));

/** DynamoDB requests actually sent, by the namespace charged when each was sent. */
let measured = new Map<string, NamespaceUsage>();
/** History entries PutItem'd (hist# items). */
let historyPuts = 0;
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
      else if (command === 'PutItem') (wru = units(itemBytes(input.Item), 1024)), (historyPuts += String(input.Item?.pk?.S).startsWith('hist#') ? 1 : 0);
      else if (command === 'UpdateItem' || command === 'DeleteItem') wru = 1;
      else if (command === 'TransactWriteItems') {
        // A create's ConditionCheck of its key's tombstone reads (as the cost model prices it); the rest write.
        for (const t of input.TransactItems as Record<string, any>[]) {
          if (t.ConditionCheck) rru += CREATE_TOMBSTONE_CHECK_RRU;
          else wru += 2 * (t.Put ? units(itemBytes(t.Put.Item), 1024) : 1);
        }
      }
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
    // (measured 0.8% apart, 2026-12-05): write units matched exactly, reads are estimated (items at a sixth
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

describe.skipIf(!ddb || !sqs)('cost per namespace of a scripted load, deployed-style: namespaces + overhead = what the cost model prices', () => {
  it('charges each part where the load caused it, the rest as overhead; the total within 5% of the measured operations priced by the model', async () => {
    measured = new Map();
    historyPuts = 0;
    const tableName = uniqueTableName('skiff-costload');
    await ensureTable(ddb!.client, tableName);
    const client = ddb!.newClient();
    measure(client);
    const backend = new DynamoBackend({ client, tableName });
    const auditPath = join(mkdtempSync(join(tmpdir(), 'skiff-costload-')), 'audit.log');
    const api = new ApiServer({
      backend,
      history: { store: new DynamoHistoryStore({ client, tableName }), retentionSeconds: 86400 },
      audit: new Auditor(DEFAULT_AUDIT_POLICY, new FileAuditSink(auditPath)),
    });
    api.usage.pushChannel = true; // as deployed with nodes: a report prices their idle long polls
    const admin = newToken();
    const node = newToken();
    await storeToken(backend, admin, ADMIN_USER);
    await storeToken(backend, node, nodeUser('n1'));
    // The push channel: n1's queue on moto, the notifier on the stream; its SendMessages counted.
    const sqsClient = sqs!.newClient();
    let sends = 0;
    sqsClient.middlewareStack.add((next, context) => async (args) => ((context as { commandName?: string }).commandName === 'SendMessageCommand' && sends++, next(args)), { step: 'initialize' });
    const queuePrefix = nodeQueuePrefix(tableName);
    await sqsClient.send(new CreateQueueCommand({ QueueName: nodeQueueName(queuePrefix, 'n1') }));
    const loops = [deploymentController, replicaSetController, createNodeNotifier({ sqs: sqsClient, queuePrefix })];
    const ctx = api.controllerContext();

    // The requests made, by the bucket they are charged to; the stream batches' invocations, shared by record.
    const apiCalls = new Map<string, number>();
    const invocations = new Map<string, number>();
    const add = (m: Map<string, number>, k: string, n: number) => m.set(k, (m.get(k) ?? 0) + n);
    const call = async (bucket: string, token: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
      add(apiCalls, bucket, 1);
      const r = await api.handle({
        method,
        path: path.split('?')[0]!,
        query: new URLSearchParams(path.split('?')[1] ?? ''),
        headers: { authorization: `Bearer ${token}`, 'content-type': method === 'PATCH' ? 'application/merge-patch+json' : 'application/json', ...headers },
        body: Buffer.from(body === undefined ? '' : JSON.stringify(body)),
      } as Parameters<ApiServer['handle']>[0]);
      const text = typeof r.body === 'string' ? r.body : Buffer.from(r.body as Uint8Array).toString();
      expect(r.status, `${method} ${path}: ${text}`).toBeLessThan(300);
      return JSON.parse(text);
    };
    const seen = new Set<string>();
    const settle = async () => {
      for (let i = 0; i < 20; i++) {
        const records = (await streamRecords(ddb!, tableName)).filter((r) => !seen.has(r.dynamodb!.SequenceNumber!) && passesFilters(streamFilterPatterns(...loops), r));
        if (!records.length) return;
        for (const r of records) seen.add(r.dynamodb!.SequenceNumber!), add(invocations, namespaceOfKey(r.dynamodb!.Keys!.sk!.S!), 1 / records.length);
        expect((await handleStreamBatch(loops, ctx, records)).batchItemFailures).toEqual([]);
      }
    };
    const heartbeats = async (n: number) => {
      for (let i = 0; i < n; i++) {
        await call('@heartbeats', node, 'PATCH', '/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1', { spec: { renewTime: new Date().toISOString().replace('Z', '000Z') } });
        await call('@heartbeats', node, 'GET', '/api/v1/nodes/n1');
      }
    };
    const report = async () => (await call('', admin, 'GET', '/apis/cost.skiff.io/v1/usage')) as UsageReport;
    const logLines: string[] = [];
    const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void logLines.push(a.join(' ')));

    measuring = true;
    for (const ns of ['kube-node-lease', 'team-a', 'team-b']) await call('', admin, 'POST', '/api/v1/namespaces', { metadata: { name: ns } });
    await call('', admin, 'POST', '/api/v1/nodes', { metadata: { name: 'n1' } });
    // The node: its Lease, renewals and its Node read (heartbeats), its pods' list and Services (polls).
    await call('@heartbeats', node, 'POST', '/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases', { metadata: { name: 'n1' }, spec: { holderIdentity: 'n1', leaseDurationSeconds: 40 } });
    await heartbeats(2);
    await call('@agent polls', node, 'GET', '/api/v1/pods?fieldSelector=spec.nodeName%3Dn1');
    await call('@agent polls', node, 'GET', '/api/v1/services');
    // team-a: a Deployment of 2 and two pods on n1; team-b: one pod on n1 and a read through CloudFront.
    await call('team-a', admin, 'POST', '/apis/apps/v1/namespaces/team-a/deployments', {
      metadata: { name: 'web' },
      spec: { replicas: 2, selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'c', image: 'nginx:1' }] } } },
    });
    const pod = (name: string) => ({ metadata: { name }, spec: { nodeName: 'n1', containers: [{ name: 'c', image: 'nginx:1' }] } });
    for (const p of ['a1', 'a2']) await call('team-a', admin, 'POST', '/api/v1/namespaces/team-a/pods', pod(p));
    await call('team-b', admin, 'POST', '/api/v1/namespaces/team-b/pods', pod('b1'));
    await settle();
    await call('team-b', admin, 'GET', '/api/v1/namespaces/team-b/pods', undefined, { 'x-amz-cf-id': 'test-id' });
    // A watch open about a second in team-b: deployed, the apiserver function runs (and polls the counter) all along.
    add(apiCalls, 'team-b', 1);
    const t0 = performance.now();
    const w = await api.handle({ method: 'GET', path: '/api/v1/namespaces/team-b/pods', query: new URLSearchParams('watch=true&timeoutSeconds=1'), headers: { authorization: `Bearer ${admin}` }, body: Buffer.alloc(0) } as Parameters<ApiServer['handle']>[0]);
    expect(w.status).toBe(200);
    for await (const _ of w.body as AsyncIterable<unknown>);
    const watchSeconds = (performance.now() - t0) / 1000;
    await call('team-a', admin, 'DELETE', '/api/v1/namespaces/team-a/pods/a1');
    await settle();
    // A wake-up of team-a's ReplicaSet (EventBridge Scheduler), and the loops' scheduled resync.
    const rs = (await call('team-a', admin, 'GET', '/apis/apps/v1/namespaces/team-a/replicasets')).items[0].metadata.name as string;
    await handleWakeUp(loops, ctx, { skiffWakeUp: { controller: replicaSetController.name, key: `team-a/${rs}` } });
    add(invocations, 'team-a', 1);
    await createControllerHandlers(loops, async () => ctx).resync();
    add(invocations, '@resync', 1);
    await settle();
    log.mockRestore();
    // What the sink wrote before the report's own request: CloudWatch bills each event's bytes and 26 more.
    const auditLines = readFileSync(auditPath, 'utf8').split('\n').filter(Boolean);
    const r = await report();
    measuring = false;

    const line = (name: string) => r.namespaces.find((n) => n.namespace === name) ?? r.overhead.find((o) => o.name === name.replace(/^@/, ''));
    const a = line('team-a')!;
    const b = line('team-b')!;
    console.log('cost.namespace load', JSON.stringify({ window: r.window.seconds, namespaces: r.namespaces, overhead: r.overhead.map((o) => ({ name: o.name, usd: o.usd })), total: r.total.usd }));
    // Each part is charged where the load caused it.
    expect(a.invocations).toBeGreaterThan(0); // stream batches' shares, the wake-up
    expect(a.schedulerInvocations).toBe(1);
    expect(b.schedulerInvocations).toBe(0);
    expect(a.historyWrites).toBeGreaterThan(0);
    expect(a.dynamoRequests.history).toBe(a.historyWrites);
    expect(b.historyWrites).toBeGreaterThan(0);
    expect(a.sqsRequests).toBeGreaterThan(0); // its pods' creation and deletion told n1
    expect(b.sqsRequests).toBeGreaterThan(0);
    expect(a.auditBytes).toBeGreaterThan(0);
    expect(b.cloudFrontRequests).toBe(1);
    expect(b.watchSeconds).toBeGreaterThan(0.9);
    expect(b.watchSeconds).toBeLessThanOrEqual(watchSeconds);
    expect(a.watchSeconds).toBe(0);
    expect(a.cloudFrontRequests).toBe(0);
    for (const part of ['lambda', 'dynamo', 'sqs', 'logs', 'scheduler'] as const) expect(a.usd[part], part).toBeGreaterThan(0);
    expect(b.usd.cloudFront).toBeGreaterThan(0);
    // The node's own requests are overhead, not the cluster's nor kube-node-lease's.
    expect(r.namespaces.map((n) => n.namespace)).not.toContain('kube-node-lease');
    expect(line('@heartbeats')).toMatchObject({ apiRequests: apiCalls.get('@heartbeats'), estimated: false });
    expect(line('@agent polls')).toMatchObject({ apiRequests: apiCalls.get('@agent polls') });
    expect(line('@resync')!.invocations).toBe(1);
    expect(line('@resync')!.logBytes).toBe(logLines.filter((l) => l.startsWith('resync ')).reduce((n, l) => n + l.length + 26, 0));
    expect(line('@resync')!.reconciles).toBeGreaterThan(0);
    expect(line('alarms')).toMatchObject({ estimated: true });
    // One node's long polls, one per 20 s of the window ($0.40 a million).
    expect(line('push channel idle polls')!.usd.fixed / ((r.window.seconds / 20) * 0.4e-6)).toBeCloseTo(1, 0);
    // The report's counts are the ones made: requests, audit bytes, history entries, SQS requests (3 a message).
    for (const [bucket, n] of apiCalls) if (bucket.startsWith('team-')) expect(line(bucket)!.apiRequests, bucket).toBe(n);
    expect(r.total.auditBytes).toBe(auditLines.reduce((n, l) => n + Buffer.byteLength(l) + 26, 0));
    expect(r.total.historyWrites).toBe(historyPuts);
    expect(r.total.sqsRequests).toBeCloseTo(3 * sends, 9);
    expect(sends).toBeGreaterThan(0);
    // namespaces + overhead = total.
    const sum = (ls: { usd: { total: number } }[]) => ls.reduce((n, l) => n + l.usd.total, 0);
    expect(Math.abs(r.total.usd.total - sum(r.namespaces) - sum(r.overhead))).toBeLessThan(1e-12);

    // The same operations, measured (the DynamoDB requests sent and their units, the requests and
    // invocations made, the SQS requests, the audit and log bytes written) and priced by the cost model,
    // with the window's alarms and idle polls: the report's total within 5%.
    const buckets = new Set([...measured.keys(), ...apiCalls.keys(), ...invocations.keys()]);
    const priced = [...buckets].reduce((n, k) => n + priceUsage({ ...(measured.get(k) ?? { dynamoRequests: 0, rru: 0, wru: 0 }), apiRequests: apiCalls.get(k) ?? 0, invocations: invocations.get(k) ?? 0 }).total, 0);
    // The watch's time, and its counter reads one per 150 ms (the measured ones are in team-b's requests).
    const others = priceUsage({ apiRequests: 0, dynamoRequests: 0, rru: 0, wru: 0, watchSeconds, sqsRequests: 3 * sends, auditBytes: r.total.auditBytes, logBytes: line('@resync')!.logBytes, schedulerInvocations: 1, cloudFrontRequests: 1 }).total;
    const fixed = fixedOverhead(r.window.seconds, 1, true).reduce((n, f) => n + f.usd, 0);
    const modelled = priced + others + fixed;
    console.log('cost.namespace load total', JSON.stringify({ reported: r.total.usd.total, modelled, ratio: r.total.usd.total / modelled }));
    expect(r.total.usd.total / modelled).toBeGreaterThan(0.95);
    expect(r.total.usd.total / modelled).toBeLessThan(1.05);
    // Each namespace within 15% of what it measurably caused (its SQS shares, audit and Scheduler aside).
    for (const ns of ['team-a', 'team-b']) {
      const l = line(ns)!;
      const own = priceUsage({ ...measured.get(ns)!, apiRequests: apiCalls.get(ns)!, invocations: invocations.get(ns) ?? 0, watchSeconds: ns === 'team-b' ? watchSeconds : 0 }).total;
      const charged = l.usd.lambda + l.usd.dynamo;
      expect(charged / own, ns).toBeGreaterThan(0.85);
      expect(charged / own, ns).toBeLessThan(1.15);
    }

    // Heartbeats as `npm run cost` prices them: k Lease renewals and Node reads (OPERATIONS.leaseRenewal,
    // nodeStatusCheck: the apiserver's requests at REFERENCE_SIZES) against what the meter charged for k more.
    const before = line('@heartbeats')!.usd.total;
    const k = 5;
    await heartbeats(k);
    const after = ((await report()).overhead.find((o) => o.name === 'heartbeats')!).usd.total;
    const sizes = clusterSizes({ name: 'ref', nodes: 3, pods: 0, churnPerHour: 0 });
    const modelledBeats = [OPERATIONS.leaseRenewal, OPERATIONS.nodeStatusCheck].reduce((n, op) => {
      const c = recipeCapacity(op.dynamo.apiserver, sizes);
      return n + k * priceUsage({ apiRequests: op.apiRequests, dynamoRequests: c.requests, rru: c.rru, wru: c.wru }).total;
    }, 0);
    console.log('cost.namespace heartbeats', JSON.stringify({ charged: after - before, modelled: modelledBeats, ratio: (after - before) / modelledBeats }));
    expect((after - before) / modelledBeats).toBeGreaterThan(0.75);
    expect((after - before) / modelledBeats).toBeLessThan(1.25);
  }, 240_000);
});
