// A deployed HorizontalPodAutoscaler scales on the usage its nodes report on demand (issue #17 items 1+2;
// lambdas/apiserver/node-usage.ts, lambdas/controllers/lambda.ts). The controller function's handler, as
// the stack configures it, on moto (DynamoDB, its stream, EventBridge Scheduler; SQS on a moto of its own):
// the HPA's create comes as a stream batch (through the function's own filter), its next sync as the
// Scheduler wake-up the sync asked for. Its PodMetrics read demands reports through the nodes' push
// queues, and each node's push channel and reporter (node-agent/push.ts, usage-report.ts, wired as the
// agent wires them) PUT the node's usage to the deployed apiserver function. No AWS call is mocked.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { CreateScheduleGroupCommand, GetScheduleCommand, SchedulerClient } from '@aws-sdk/client-scheduler';
import { ApiServer } from '../lambdas/apiserver/app.ts';
import { ADMIN_USER, newToken, nodeUser, storeToken } from '../lambdas/apiserver/auth.ts';
import { USAGE_PK_PREFIX, USAGE_REPORT_SECONDS, USAGE_RESEND_SECONDS } from '../lambdas/apiserver/node-usage.ts';
import * as costModel from '../infra/cost-model.ts';
import { streamFilterPatterns } from '../lambdas/controllers/stream.ts';
import { isWakeUpEvent, scheduleName } from '../lambdas/controllers/wakeups.ts';
import { findResource } from '../lambdas/machinery/resources.ts';
import type { KubeObject } from '../lambdas/machinery/types.ts';
import { DynamoBackend, ensureTable } from '../lambdas/storage/dynamodb.ts';
import type { StatsSummary } from '../node-agent/stats.ts';
import { dynamoTestEndpoint, uniqueTableName } from './support/dynamodb.ts';
import { streamRecords } from './support/dynamo-stream.ts';
import { serveApiserverLambda, type LambdaApiserver } from './support/lambda-apiserver.ts';
import { passesFilters } from './support/lambda-filter.ts';
import { sqsTestEndpoint } from './support/sqs.ts';
import { startUsageAgent, stopUsageAgents, type UsageAgent } from './support/usage-agent.ts';
import { until } from './support/until.ts';

const ddb = await dynamoTestEndpoint();
const sqs = await sqsTestEndpoint();
afterAll(async () => {
  await sqs?.stop();
  await ddb?.stop();
});

const hpas = findResource('autoscaling', 'v2', 'horizontalpodautoscalers')!;
const deployments = findResource('apps', 'v1', 'deployments')!;
const podsRes = findResource('', 'v1', 'pods')!;
const nodesRes = findResource('', 'v1', 'nodes')!;
const nsRes = findResource('', 'v1', 'namespaces')!;
const eventsRes = findResource('', 'v1', 'events')!;
const HPA = 'horizontal-pod-autoscaler';
const SYNC_MS = 15_000;
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const cond = (status: any, type: string) => status?.conditions?.find((c: any) => c.type === type);

describe.skipIf(!ddb || !sqs)('a deployed HPA: usage demanded from the nodes by its sync, reported through the apiserver function, scales the Deployment', () => {
  const saved = { ...process.env };
  const tableName = uniqueTableName('skiff-hpa-deployed');
  const queuePrefix = `h${Date.now().toString(36)}-`;
  const group = `skiff-hpa-${Date.now().toString(36)}`;
  const tokens: Record<string, string> = { 'node-a': newToken(), 'node-b': newToken() };
  let api: LambdaApiserver;
  let registry: ApiServer['registry'];
  let scheduler: SchedulerClient;
  let handler: (event: unknown) => Promise<unknown>;
  let hpaPatterns: string[];
  const agents: UsageAgent[] = [];
  /** The pods each agent reports, at `milli` millicores each. */
  const reported: Record<string, { name: string; uid: string; milli: number }[]> = { 'node-a': [], 'node-b': [] };

  const summaryOf = (node: string): StatsSummary => {
    const usage = (milli: number) => ({ time: new Date().toISOString(), window: 10, usageNanoCores: milli * 1e6, usageCoreNanoSeconds: 1e12, workingSetBytes: 64 * 1024 * 1024 });
    return {
      node: { nodeName: node, usage: usage(500) },
      pods: reported[node]!.map((p) => ({ podRef: { namespace: 'default', name: p.name, uid: p.uid }, containers: [{ name: 'c', usage: usage(p.milli) }] })),
    };
  };
  const usageItem = async (node: string) => (await ddb!.client.send(new GetItemCommand({ TableName: tableName, Key: { pk: { S: USAGE_PK_PREFIX + node }, sk: { S: 'usage' } }, ConsistentRead: true }))).Item;
  const replicasOf = async (name: string) => (await registry.get(deployments, 'default', name)).spec.replicas;
  const statusOf = async (name: string) => (await registry.get(hpas, 'default', name)).status;
  /** The wake-up the HPA's last sync asked Scheduler for: when, and what it invokes the function with. */
  const wakeUpOf = async (name: string) => {
    const s = await scheduler.send(new GetScheduleCommand({ Name: scheduleName(HPA, `default/${name}`), GroupName: group }));
    return { expression: s.ScheduleExpression!, input: JSON.parse(s.Target!.Input!) };
  };

  /** A Deployment of `replicas` pods (made here, Running and Ready for 10 minutes: no controller runs them), one a node of `nodes`. */
  async function workload(name: string, nodes: string[], milli: number) {
    await registry.create(deployments, 'default', {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name },
      spec: { replicas: nodes.length, selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'c', image: 'busybox' }] } } },
    } as KubeObject);
    const since = iso(Date.now() - 600_000);
    for (const [i, node] of nodes.entries()) {
      const pod = await registry.create(podsRes, 'default', {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: `${name}-${i}`, labels: { app: name } },
        spec: { nodeName: node, containers: [{ name: 'c', image: 'busybox', resources: { requests: { cpu: '100m' } } }] },
      } as KubeObject);
      await registry.guaranteedUpdate(podsRes, 'default', pod.metadata.name!, undefined, { subresource: 'status' }, (p) => ({
        ...p,
        status: { phase: 'Running', startTime: since, conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: since }] },
      }));
      reported[node]?.push({ name: pod.metadata.name!, uid: pod.metadata.uid!, milli });
    }
  }

  const hpa = (name: string): KubeObject =>
    ({
      apiVersion: 'autoscaling/v2',
      kind: 'HorizontalPodAutoscaler',
      metadata: { name },
      spec: { scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name }, minReplicas: 1, maxReplicas: 10, metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 50 } } }] },
    }) as KubeObject;

  beforeAll(async () => {
    await ensureTable(ddb!.client, tableName);
    scheduler = new SchedulerClient({ endpoint: ddb!.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
    await scheduler.send(new CreateScheduleGroupCommand({ Name: group }));
    // The environment infra/skiff-cluster.ts gives both functions, and what the Lambda runtime sets; every
    // AWS call goes to moto (Scheduler on the DynamoDB one, SQS on its own).
    Object.assign(process.env, {
      SKIFF_TABLE: tableName,
      SKIFF_DYNAMODB_ENDPOINT: ddb!.endpoint,
      SKIFF_CLUSTER_NAME: 'hpa-test',
      SKIFF_NODE_QUEUE_PREFIX: queuePrefix,
      SKIFF_SQS_ENDPOINT: sqs!.endpoint,
      AWS_ENDPOINT_URL_SQS: sqs!.endpoint,
      AWS_ENDPOINT_URL_SCHEDULER: ddb!.endpoint,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
      AWS_LAMBDA_FUNCTION_NAME: 'skiff-controllers',
      SKIFF_WAKEUP_GROUP: group,
      SKIFF_WAKEUP_ROLE_ARN: 'arn:aws:iam::123456789012:role/skiff-wakeups',
    });
    const backend = new DynamoBackend({ client: ddb!.newClient(), tableName });
    registry = new ApiServer({ backend }).registry;
    for (const [node, t] of Object.entries(tokens)) await storeToken(backend, t, nodeUser(node));
    await storeToken(backend, newToken(), ADMIN_USER);
    api = await serveApiserverLambda();
    // The test's own fetches trust the self-signed certificate as they are; the agents by its CA.
    process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
    const fn = await import('../lambdas/controllers/lambda.ts');
    handler = fn.handler as (event: unknown) => Promise<unknown>;
    hpaPatterns = streamFilterPatterns(...fn.controllers);

    await registry.create(nsRes, undefined, { metadata: { name: 'default' } });
    // node-c has no agent (no queue): a hollow node, or one whose agent is down.
    for (const node of ['node-a', 'node-b', 'node-c']) await registry.create(nodesRes, undefined, { metadata: { name: node } });
    await workload('web', ['node-a', 'node-b'], 100); // 100% of its request against a 50% target
    await workload('quiet', ['node-c', 'node-c'], 100);

    for (const name of Object.keys(tokens)) {
      agents.push(await startUsageAgent({ name, server: api.base, token: tokens[name]!, caCert: api.caCert, sqs: sqs!.newClient(), queuePrefix, summary: () => summaryOf(name), everyMs: 5_000 }));
    }
  }, 120_000);

  afterAll(async () => {
    await stopUsageAgents(agents);
    await api?.close();
    scheduler?.destroy();
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  });

  it('the first sync (the create, from the stream) demands usage and, none reported yet, reports the metrics failed; the wake-up 15 s later reads the reports and scales 2 -> 4', async () => {
    expect(await usageItem('node-a')).toBeUndefined();
    expect(agents.flatMap((a) => a.demands)).toEqual([]); // nobody read usage yet: no demand, no report
    await registry.create(hpas, 'default', hpa('web'));
    await registry.create(hpas, 'default', hpa('quiet'));
    // The HPAs' creates, as the function's event source mapping delivers them (its filter; the pods'
    // and Deployments' writes pass it too, for other loops: left out here, as no loop runs the pods).
    const records = (await streamRecords(ddb!, tableName)).filter((r) => passesFilters(hpaPatterns, r) && r.dynamodb?.Keys?.pk?.S?.includes('horizontalpodautoscalers'));
    expect(records).toHaveLength(2);
    const before = Date.now();
    expect(await handler({ Records: records })).toEqual({ batchItemFailures: [] });
    const synced = Date.now();

    // The sync did not wait for the first reports (they come within a second): no metrics yet, as
    // kube's HPA before metrics-server's first scrape. Nothing scaled.
    for (const name of ['web', 'quiet']) {
      const st = await statusOf(name);
      expect(cond(st, 'ScalingActive'), name).toMatchObject({
        status: 'False',
        reason: 'FailedGetResourceMetric',
        message: 'the HPA was unable to compute the replica count: failed to get cpu utilization: unable to get metrics for resource cpu: no metrics returned from resource metrics API',
      });
      expect(st.currentMetrics).toEqual([{ type: '' }]);
      expect(await replicasOf(name)).toBe(2);
    }
    // One demand to each node with an agent, about 15 minutes ahead; both report, through the apiserver function.
    await until('both agents told', async () => agents.every((a) => a.demands.length === 1), 10_000);
    for (const a of agents) expect(a.demands[0]! - synced).toBeGreaterThan(14 * 60_000);
    await until('both reports stored', async () => (await usageItem('node-a'))?.at && (await usageItem('node-b'))?.at, 10_000);
    // node-c has no queue: its demand is recorded (so it is not sent again within 3 minutes) and no report comes.
    expect((await usageItem('node-c'))?.demandedAt).toBeDefined();
    expect((await usageItem('node-c'))?.at).toBeUndefined();

    // Each sync asked Scheduler for its next one, a sync period later, invoking this function with its key.
    const wake = await wakeUpOf('web');
    expect(wake.input).toEqual({ skiffWakeUp: { controller: HPA, key: 'default/web' } });
    expect(isWakeUpEvent(wake.input)).toBe(true);
    const at = Date.parse(`${/^at\((.*)\)$/.exec(wake.expression)![1]}Z`);
    expect(at).toBeGreaterThanOrEqual(before + SYNC_MS);
    expect(at).toBeLessThanOrEqual(synced + SYNC_MS + 1000); // rounded up to the second

    // The wake-up, fired when Scheduler would (a wake within the period only waits for it).
    await sleep(synced + SYNC_MS + 200 - Date.now());
    await handler(wake.input);
    expect(await replicasOf('web')).toBe(4);
    const st = await statusOf('web');
    expect(st.currentMetrics).toEqual([{ type: 'Resource', resource: { name: 'cpu', current: { averageUtilization: 100, averageValue: '100m' } } }]);
    expect(cond(st, 'ScalingActive')).toMatchObject({ status: 'True', reason: 'ValidMetricFound' });
    expect(cond(st, 'AbleToScale')).toMatchObject({ status: 'True', reason: 'SucceededRescale', message: 'the HPA controller was able to update the target scale to 4' });
    expect(st.desiredReplicas).toBe(4);
    const events = (await registry.list(eventsRes, 'default')).items.filter((e) => e.involvedObject.name === 'web' && e.involvedObject.kind === 'HorizontalPodAutoscaler');
    expect(events.map((e) => [e.type, e.reason, e.message])).toContainEqual(['Normal', 'SuccessfulRescale', 'New size: 4; reason: cpu resource utilization (percentage of request) above target']);
    expect((await wakeUpOf('web')).expression).not.toBe(wake.expression); // and the next one is asked for

    // No report from node-c: its HPA still has no metrics, and nothing is sent to it again (3-minute resend).
    await handler((await wakeUpOf('quiet')).input);
    expect(cond(await statusOf('quiet'), 'ScalingActive')).toMatchObject({ status: 'False', reason: 'FailedGetResourceMetric' });
    expect(await replicasOf('quiet')).toBe(2);
    // The reads go on with reports flowing: no second demand within the resend period.
    for (const a of agents) {
      expect(a.demands).toHaveLength(1);
      expect(a.reporter.reporting).toBe(true);
      expect(a.reporter.reports).toBeGreaterThanOrEqual(3); // every 5 s here since the demand
    }
  }, 60_000);
});

describe('the cost model prices what deployed HPAs cause (infra/cost-model.ts, npm run cost)', () => {
  it('while HPAs exist every node reports every USAGE_REPORT_SECONDS and is told again every USAGE_RESEND_SECONDS; each sync reads its nodes\' usage items', () => {
    const cluster = { name: 'c', nodes: 10, pods: 100, churnPerHour: 60 };
    const none = costModel.monthlyBill(cluster);
    const ten = costModel.monthlyBill({ ...cluster, hpas: 10 });
    const syncs = (10 * costModel.MONTH_SECONDS) / costModel.HPA_SYNC_SECONDS;
    const reports = (10 * costModel.MONTH_SECONDS) / USAGE_REPORT_SECONDS;
    const demands = (10 * costModel.MONTH_SECONDS) / USAGE_RESEND_SECONDS;
    // The reports are apiserver invocations (the agents' PUTs); a demand is a send, the agent's early receive and its delete.
    expect(ten.usage.lambdaRequests.apiserver - none.usage.lambdaRequests.apiserver).toBeCloseTo(reports, 3);
    expect(ten.usage.sqsRequests - none.usage.sqsRequests).toBeCloseTo(3 * demands, 3);
    // The wake-ups invoke the controller function; each sync reads 10 pods' nodes' usage items (1 unit each), its own reads, and the reports and demands write.
    expect(ten.usage.lambdaRequests.controllerManager - none.usage.lambdaRequests.controllerManager).toBeCloseTo(syncs, 3);
    expect(ten.usage.rru - none.usage.rru).toBeCloseTo(syncs * (costModel.HPA_SYNC.rru + 10) + reports, 1); // + each report's token read
    expect(ten.usage.wru - none.usage.wru).toBeCloseTo(reports + demands, 1);
    for (const source of ['hpa syncs', 'hpa usage reads', 'hpa usage reports', 'hpa usage demands']) expect(ten.bySource[source], source).toBeGreaterThan(0);
    expect(none.bySource['hpa usage reports']).toBeUndefined();
  });
});
