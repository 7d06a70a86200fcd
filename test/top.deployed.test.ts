// `kubectl top` on a deployed cluster (issue #17 item 1; lambdas/apiserver/node-usage.ts): the deployed
// apiserver function (lambdas/apiserver/lambda.ts on DynamoDB/moto) cannot reach agents, so a metrics
// read demands usage reports through the nodes' push queues (SQS/moto), and each agent's push channel
// (node-agent/push.ts) and reporter (node-agent/usage-report.ts), as the agent wires them, PUT their
// node's usage to /api/v1/nodes/<node>/usage until the deadline. Real kubectl reads it.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { GetItemCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SendMessageCommand, GetQueueUrlCommand } from '@aws-sdk/client-sqs';
import { ADMIN_USER, newToken, nodeUser, storeToken } from '../lambdas/apiserver/auth.ts';
import { DynamoBackend, ensureTable } from '../lambdas/storage/dynamodb.ts';
import { nodeQueueName } from '../lambdas/controllers/node-notifier.ts';
import { NodeUsageStore, USAGE_PK_PREFIX, USAGE_REPORT_SECONDS, USAGE_RESEND_SECONDS } from '../lambdas/apiserver/node-usage.ts';
import { startPushChannel } from '../node-agent/push.ts';
import { UsageReporter } from '../node-agent/usage-report.ts';
import * as costModel from '../infra/cost-model.ts';
import type { StatsSummary } from '../node-agent/stats.ts';
import { dynamoTestEndpoint, uniqueTableName } from './support/dynamodb.ts';
import { sqsTestEndpoint } from './support/sqs.ts';
import { startUsageAgent, stopUsageAgents, type UsageAgent } from './support/usage-agent.ts';
import { until } from './support/until.ts';
import { serveApiserverLambda, type LambdaApiserver } from './support/lambda-apiserver.ts';

const ddb = await dynamoTestEndpoint();
const sqs = await sqsTestEndpoint();
afterAll(async () => {
  await sqs?.stop();
  await ddb?.stop();
});

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const exec = promisify(execFile);

/** What an agent's stats.ts would give: the node, and each pod's containers, with CPU rates. */
function summaryOf(node: string, pods: { name: string; uid: string; containers: string[] }[]): StatsSummary {
  const usage = (cores: number, mib: number) => ({ time: new Date().toISOString(), window: 10, usageNanoCores: cores * 1e9, usageCoreNanoSeconds: 1e12, workingSetBytes: mib * 1024 * 1024 });
  return {
    node: { nodeName: node, usage: usage(0.25, 512) },
    pods: pods.map((p) => ({ podRef: { namespace: 'default', name: p.name, uid: p.uid }, containers: p.containers.map((c) => ({ name: c, usage: usage(0.1, 64) })) })),
  };
}

describe.skipIf(!ddb || !sqs)('kubectl top on the deployed apiserver: usage reported on demand through the push channel', () => {
  const saved = { ...process.env };
  const tableName = uniqueTableName('skiff-top');
  const queuePrefix = `t${Date.now().toString(36)}-`;
  const admin = newToken();
  const tokens: Record<string, string> = { 'node-a': newToken(), 'node-b': newToken() };
  let client: DynamoDBClient;
  let server: LambdaApiserver;
  let base: string;
  let caCert: string;
  const agents: UsageAgent[] = [];
  const pods: Record<string, { name: string; uid: string; containers: string[] }[]> = { 'node-a': [], 'node-b': [] };

  const api = async (method: string, path: string, body?: unknown, token = admin, contentType = 'application/json') => {
    const r = await fetch(base + path, { method, headers: { authorization: `Bearer ${token}`, 'content-type': contentType }, body: body === undefined ? undefined : JSON.stringify(body) });
    return { status: r.status, body: (await r.json().catch(() => undefined)) as any };
  };
  const usageItem = async (node: string) => (await client.send(new GetItemCommand({ TableName: tableName, Key: { pk: { S: USAGE_PK_PREFIX + node }, sk: { S: 'usage' } }, ConsistentRead: true }))).Item;
  const reports = () => agents.reduce((n, a) => n + a.reporter.reports, 0);
  const kubectl = async (...args: string[]) => (await exec('kubectl', ['--server', base, '--token', admin, '--insecure-skip-tls-verify', ...args], { env: { ...process.env, KUBECONFIG: '/dev/null' } })).stdout;

  beforeAll(async () => {
    client = ddb!.client;
    await ensureTable(client, tableName);
    Object.assign(process.env, { SKIFF_TABLE: tableName, SKIFF_DYNAMODB_ENDPOINT: ddb!.endpoint, SKIFF_CLUSTER_NAME: 'top-test', SKIFF_NODE_QUEUE_PREFIX: queuePrefix, SKIFF_SQS_ENDPOINT: sqs!.endpoint });
    for (const [k, v] of Object.entries({ AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' })) process.env[k] ??= v;
    const backend = new DynamoBackend({ client, tableName });
    await storeToken(backend, admin, ADMIN_USER);
    for (const [node, t] of Object.entries(tokens)) await storeToken(backend, t, nodeUser(node));
    server = await serveApiserverLambda();
    // The test's own fetches trust its self-signed certificate as they are, the agents by its CA.
    process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
    caCert = server.caCert;
    base = server.base;

    // Two nodes, a running pod with two containers on node-a.
    for (const node of Object.keys(tokens)) expect((await api('POST', '/api/v1/nodes', { metadata: { name: node, labels: { role: 'test' } } })).status).toBe(201);
    await api('POST', '/api/v1/namespaces', { metadata: { name: 'default' } });
    await api('POST', '/api/v1/namespaces/default/serviceaccounts', { metadata: { name: 'default' } });
    const created = await api('POST', '/api/v1/namespaces/default/pods', { metadata: { name: 'web' }, spec: { nodeName: 'node-a', containers: [{ name: 'app', image: 'busybox' }, { name: 'sidecar', image: 'busybox' }] } });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const running = await api('PATCH', '/api/v1/namespaces/default/pods/web/status', { status: { phase: 'Running' } }, admin, 'application/merge-patch+json');
    expect(running.status, JSON.stringify(running.body)).toBe(200);
    pods['node-a']!.push({ name: 'web', uid: created.body.metadata.uid, containers: ['app', 'sidecar'] });

    // The agents: their push channels (queues made at start) and reporters, wired as agent.ts wires them.
    for (const name of Object.keys(tokens)) {
      // Reports every 10 minutes here, so the counts below stay put while the test runs (the interval and
      // the deadline are the reporter's own test's, below).
      agents.push(await startUsageAgent({ name, server: base, token: tokens[name]!, caCert, sqs: sqs!.newClient(), queuePrefix, summary: () => summaryOf(name, pods[name]!), everyMs: 600_000 }));
    }
  }, 120_000);

  afterAll(async () => {
    await stopUsageAgents(agents);
    await server?.close();
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  });

  it('without a read no agent reports and nothing is stored', async () => {
    await sleep(2500); // more than two of the agents' long polls
    expect(reports()).toBe(0);
    expect(agents.flatMap((a) => a.demands)).toEqual([]);
    expect(await usageItem('node-a')).toBeUndefined();
  });

  it('kubectl top nodes: the first call demands reports and waits for them; the agents report every interval until the deadline', async () => {
    const t0 = Date.now();
    const out = await kubectl('top', 'nodes');
    expect(out).toMatch(/^NAME\s+CPU\(cores\)\s+CPU\(%\)\s+MEMORY\(bytes\)/m);
    expect(out).toMatch(/^node-a\s+250m\s/m);
    expect(out).toMatch(/^node-b\s+250m\s/m);
    expect(out).toMatch(/512Mi/);
    // One demand per node, "until" ~15 minutes ahead; one report each so far.
    for (const a of agents) {
      expect(a.demands).toHaveLength(1);
      expect(a.demands[0]! - t0).toBeGreaterThan(14 * 60_000);
      expect(a.demands[0]! - t0).toBeLessThan(16 * 60_000);
      expect(a.reporter.reporting).toBe(true);
      expect(a.reporter.reports).toBe(1);
    }
    // The usage item: no revision (the store's objects are untouched), a TTL so a dead node's goes.
    const item = await usageItem('node-a');
    expect(Number(item!.ttl!.N)).toBeGreaterThan(Date.now() / 1000);
    expect(item!.demandedAt).toBeDefined();
  }, 60_000);

  it('kubectl top pods --containers, and the metrics API read as kubectl reads it; a second read sends no new demand', async () => {
    const out = await kubectl('top', 'pods', '-n', 'default', '--containers');
    expect(out).toMatch(/^web\s+app\s+100m\s+64Mi/m);
    expect(out).toMatch(/^web\s+sidecar\s+100m\s+64Mi/m);
    const list = await api('GET', '/apis/metrics.k8s.io/v1beta1/nodes?labelSelector=role%3Dtest');
    expect(list.body.items.map((m: any) => [m.metadata.name, m.usage.cpu])).toEqual([
      ['node-a', '250000000n'],
      ['node-b', '250000000n'],
    ]);
    for (const a of agents) expect(a.demands).toHaveLength(1); // fresh reports: no demand again
    expect(reports()).toBe(2);
  }, 60_000);

  it("a node may report its own usage only (403 for another's); bad bodies get 400 and nothing is stored", async () => {
    const before = await usageItem('node-b');
    const beforeOwn = await usageItem('node-a');
    const other = await api('PUT', '/api/v1/nodes/node-b/usage', summaryOf('node-b', []), tokens['node-a']);
    expect(other.status).toBe(403);
    expect(other.body).toMatchObject({ kind: 'Status', reason: 'Forbidden' });
    for (const bad of [
      summaryOf('node-b', []), // another node's name in its own path
      { node: { nodeName: 'node-a' } },
      { node: { nodeName: 'node-a', usage: { time: 'yesterday', window: 10, workingSetBytes: 1 } }, pods: [] },
      { node: { nodeName: 'node-a' }, pods: [{ podRef: { namespace: 'default', name: 'web', uid: 'u' }, containers: [{ name: 'app', usage: { time: new Date().toISOString(), window: 10, workingSetBytes: -5 } }] }] },
      'not an object',
      // More containers than a node's item may hold.
      { node: { nodeName: 'node-a' }, pods: Array.from({ length: 30 }, (_, i) => ({ podRef: { namespace: 'default', name: `p${i}`, uid: `u${i}` }, containers: Array.from({ length: 100 }, (_, j) => ({ name: `c${j}`, usage: { time: new Date().toISOString(), window: 10, workingSetBytes: 1 } })) })) },
    ]) {
      const r = await api('PUT', '/api/v1/nodes/node-a/usage', bad, tokens['node-a']);
      expect(r.status, JSON.stringify(bad)).toBe(400);
      expect(r.body).toMatchObject({ kind: 'Status', status: 'Failure', code: 400 });
    }
    const notJson = await fetch(`${base}/api/v1/nodes/node-a/usage`, { method: 'PUT', headers: { authorization: `Bearer ${tokens['node-a']}`, 'content-type': 'application/json' }, body: '{' });
    expect(notJson.status).toBe(400);
    expect((await api('GET', '/api/v1/nodes/node-a/usage', undefined, tokens['node-a'])).status).toBe(405);
    expect((await usageItem('node-b'))!.at).toEqual(before!.at);
    expect(await usageItem('node-a')).toEqual(beforeOwn); // nothing of the bad bodies stored
    // The node's own: accepted (as the reporter does it).
    const own = await api('PUT', '/api/v1/nodes/node-a/usage', summaryOf('node-a', pods['node-a']!), tokens['node-a']);
    expect(own.status).toBe(200);
    expect(own.body).toMatchObject({ kind: 'Status', status: 'Success' });
  }, 30_000);

  it('a duplicated push message starts no second round of reports', async () => {
    const url = (await sqs!.newClient().send(new GetQueueUrlCommand({ QueueName: nodeQueueName(queuePrefix, 'node-b') }))).QueueUrl!;
    const a = agents.find((x) => x.name === 'node-b')!;
    const [until0] = a.demands;
    const before = a.reporter.reports;
    for (let i = 0; i < 2; i++) await sqs!.newClient().send(new SendMessageCommand({ QueueUrl: url, MessageBody: JSON.stringify({ reportUsage: { until: new Date(until0!).toISOString() } }) }));
    // (One receive may carry both: the channel passes on the latest deadline of a batch once.)
    await until('the duplicates received', async () => a.demands.length >= 2, 10_000);
    await sleep(1500);
    expect(a.reporter.reports).toBe(before);
  }, 20_000);
});

describe('the agent reporter: reports at once, then every interval, until the deadline, then stops', () => {
  it('counts its requests', async () => {
    const sent: string[] = [];
    const r = new UsageReporter({ kube: { update: async (path: string) => void sent.push(path) } as never, nodeName: 'n', summary: () => summaryOf('n', []), everyMs: 200 });
    await sleep(300);
    expect(sent).toEqual([]); // no demand, no report
    r.demand(Date.now() - 1); // a deadline passed (a late message): nothing
    expect(sent).toEqual([]);
    r.demand(Date.now() + 900);
    r.demand(Date.now() + 500); // an earlier deadline changes nothing
    expect(sent).toEqual(['/api/v1/nodes/n/usage']);
    await until('reports stop', async () => !r.reporting, 3000, 50);
    const n = sent.length;
    expect(n).toBeGreaterThanOrEqual(4);
    expect(n).toBeLessThanOrEqual(6);
    await sleep(600);
    expect(sent.length).toBe(n);
    r.demand(Date.now() + 10 * 3600_000); // a deadline hours ahead is cut to 16 minutes
    expect(r.reporting).toBe(true);
    r.stop();
    expect(r.reporting).toBe(false);
  });
});

describe.skipIf(!ddb || !sqs)('demands: one per node per resend period however many apiserver instances read; a lost message is sent again after it', () => {
  it('races of two instances send one message; after resendSeconds a read without reports demands again', async () => {
    const tableName = uniqueTableName('skiff-top-demand');
    await ensureTable(ddb!.client, tableName);
    const prefix = `d${Date.now().toString(36)}-`;
    const q = sqs!.newClient();
    // A queue nobody reads: the messages are "lost".
    await startPushChannel({ sqs: q, queuePrefix: prefix, nodeName: 'n1', waitSeconds: 1, onNudge: () => {} }).then((c) => c.stop());
    let now = Date.now();
    const store = () => new NodeUsageStore({ client: ddb!.client, tableName, sqs: q, queuePrefix: prefix, firstWaitMs: 300, now: () => now });
    const [s1, s2] = [store(), store()];
    const node = { metadata: { name: 'n1' } };
    const [a, b] = await Promise.all([s1.stats(node), s2.stats(node)]);
    expect([a, b]).toEqual([undefined, undefined]); // nobody reported within the wait
    expect(s1.counts.messages + s2.counts.messages).toBe(1);
    // Both tried to record the demand (one lost the conditional write), or one read the other's first and
    // only waited: 2 or 1 tries, by timing (a loaded CI run saw 1 where this said 2).
    const tries = s1.counts.demandWrites + s2.counts.demandWrites;
    expect([1, 2]).toContain(tries);
    // Within the resend period: no write, no message from either.
    now += 60_000;
    await s1.stats(node);
    await s2.stats(node);
    expect(s1.counts.messages + s2.counts.messages).toBe(1);
    expect(s1.counts.demandWrites + s2.counts.demandWrites).toBe(tries);
    // After it: demanded again (the lost message's replacement), once.
    now += 3 * 60_000;
    await Promise.all([s1.stats(node), s2.stats(node)]);
    expect(s1.counts.messages + s2.counts.messages).toBe(2);
    // A node with no queue (a hollow node): no metrics, no error.
    expect(await s1.stats({ metadata: { name: 'no-queue' } })).toBeUndefined();
  }, 30_000);
});

describe('the cost model prices the intervals the code uses', () => {
  it('reports every USAGE_REPORT_SECONDS, demands again every USAGE_RESEND_SECONDS', () => {
    expect(costModel.USAGE_REPORT_SECONDS).toBe(USAGE_REPORT_SECONDS);
    expect(costModel.USAGE_RESEND_SECONDS).toBe(USAGE_RESEND_SECONDS);
    expect(costModel.usageDemandHour(3, 10).reports).toBe((3 * 3600) / USAGE_REPORT_SECONDS);
  });
});
