// The push channel to nodes (issue #16 item 1): the node notifier (lambdas/controllers/node-notifier.ts)
// sends to each node's SQS queue what it should re-list; the agent's channel (node-agent/push.ts)
// long-polls its queue and nudges its informers, which poll otherwise. SQS is a moto server; the loop
// runs as `skiff up` runs loops (informers) and as the deployed controller manager does (real
// DynamoDB stream records, on moto, through the Lambda batch handler).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GetQueueAttributesCommand, ReceiveMessageCommand, SendMessageCommand, ListQueuesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { sqsTestEndpoint } from './support/sqs.ts';
import { dynamoTestEndpoint, uniqueTableName } from './support/dynamodb.ts';
import { streamRecords } from './support/dynamo-stream.ts';
import { startTestCluster, type TestCluster } from './support/cluster.ts';
import { until } from './support/until.ts';
import { createNodeNotifier, nodeQueueName, nodeQueuePrefix, schedulerTeller, type PushedCollection } from '../lambdas/controllers/node-notifier.ts';
import { createScheduler } from '../lambdas/scheduler/scheduler.ts';
import { startPushChannel, type PushChannel } from '../node-agent/push.ts';
import { Informer } from '../node-agent/informer.ts';
import { KubeClient } from '../node-agent/kube-client.ts';
import { startHollowNodes } from '../node-agent/hollow.ts';
import { runControllers } from '../lambdas/local/controllers.ts';
import { findResource } from '../lambdas/machinery/resources.ts';
import { DynamoBackend, ensureTable } from '../lambdas/storage/dynamodb.ts';
import { ApiServer } from '../lambdas/apiserver/app.ts';
import { handleStreamBatch, streamFilterPatterns } from '../lambdas/controllers/stream.ts';
import { passesFilters } from './support/lambda-filter.ts';
import { controllers as deployedControllers } from '../lambdas/controllers/lambda.ts';
import { NODE_NOTIFIER_WATCHES } from '../lambdas/controllers/node-notifier.ts';

const sqs = await sqsTestEndpoint();
afterAll(async () => sqs?.stop());

const pods = findResource('', 'v1', 'pods')!;
const services = findResource('', 'v1', 'services')!;
const nodes = findResource('', 'v1', 'nodes')!;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const pod = (name: string, nodeName: string) => ({ metadata: { name }, spec: { nodeName, containers: [{ name: 'c', image: 'busybox' }] } });
const unique = () => `t${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}-`;

describe.skipIf(!sqs)('node names to queue names', () => {
  it('fit SQS (letters, digits, - and _; 80 characters) and differ for names that read alike', () => {
    const prefix = nodeQueuePrefix('a-cluster-name-of-sixty-four-characters-is-allowed-so-test-it-xx');
    expect(prefix).toMatch(/^skiff-[0-9a-f]{10}-$/);
    const long = `ip-10-0-1-23.${'x'.repeat(200)}.compute.internal`;
    for (const n of ['ip-10-0-1-23.ec2.internal', long, 'a.b', 'a-b']) expect(nodeQueueName(prefix, n)).toMatch(/^[A-Za-z0-9_-]{1,80}$/);
    expect(nodeQueueName(prefix, 'a.b')).not.toBe(nodeQueueName(prefix, 'a-b'));
  });
});

describe.skipIf(!sqs)('push channel on a local cluster (loops on informers)', () => {
  let c: TestCluster;
  let client: SQSClient;
  beforeAll(async () => {
    c = await startTestCluster({ controllers: false });
    client = sqs!.newClient();
  });
  afterAll(async () => c?.destroy());

  it('a pod bound to a node reaches its polling informer within moments, not at the next poll; duplicates change nothing', async () => {
    const queuePrefix = unique();
    const notifier = createNodeNotifier({ sqs: client, queuePrefix });
    const loops = runControllers(c.api.controllerContext(), [notifier]);
    // The agent's side: a pod informer that would poll once an hour, nudged by its channel.
    const kube = new KubeClient({ server: c.url, caCert: c.caCert, token: c.token, pollMs: 3_600_000 });
    const seen = new Map<string, number>();
    let added = 0;
    const inf = Informer.shared(kube, `/api/v1/pods?fieldSelector=${encodeURIComponent('spec.nodeName=n1')}`).on((type, o) => {
      if (type === 'ADDED') {
        added++;
        seen.set(o.metadata.name!, performance.now());
      }
    });
    inf.start();
    await inf.synced;
    const nudges: PushedCollection[][] = [];
    const channel = await startPushChannel({ sqs: client, queuePrefix, nodeName: 'n1', waitSeconds: 5, onNudge: (cs) => (nudges.push(cs), cs.forEach((x) => Informer.nudge(kube, x))) });
    try {
      const latencies: number[] = [];
      for (let i = 0; i < 10; i++) {
        const t0 = performance.now();
        await c.api.registry.create(pods, 'default', pod(`p${i}`, 'n1'));
        await until(`pod p${i} seen by the node's informer`, async () => seen.has(`p${i}`), 20_000, 10);
        latencies.push(seen.get(`p${i}`)! - t0);
      }
      latencies.sort((a, b) => a - b);
      console.log(`push channel on moto: bind -> the node's informer has the pod, ms: p50 ${latencies[5]!.toFixed(0)}, max ${latencies[9]!.toFixed(0)} (10 pods, one at a time)`);
      // A pod on another node tells n1 nothing; a status update (the agent's own writes) tells nobody.
      const before = nudges.length;
      await c.api.registry.create(pods, 'default', pod('elsewhere', 'n2'));
      const p0 = await c.api.registry.get(pods, 'default', 'p0');
      await c.api.registry.update(pods, 'default', 'p0', { ...p0, status: { phase: 'Running' } }, { subresource: 'status' });
      await sleep(1500);
      expect(nudges.slice(before)).toEqual([]);
      // The same message twice: two lists, no event twice.
      const url = channel.queueUrl;
      for (let i = 0; i < 2; i++) await client.send(new SendMessageCommand({ QueueUrl: url, MessageBody: JSON.stringify({ resync: ['pods'] }) }));
      // Drained: no message waiting, none received and not yet deleted (looked at without receiving any,
      // which would hide it from the channel for its visibility timeout).
      const drained = async () => {
        const a = (await client.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }))).Attributes ?? {};
        return a.ApproximateNumberOfMessages === '0' && a.ApproximateNumberOfMessagesNotVisible === '0';
      };
      await until('both duplicates taken', async () => nudges.length >= before + 1 && (await drained()), 10_000);
      expect(added).toBe(10);
      // A message that is not ours is dropped: not acted on, and not kept.
      const taken = nudges.length;
      await client.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'not json' }));
      await sleep(500);
      await until('the message dropped', drained, 10_000);
      expect(nudges.length).toBe(taken);
    } finally {
      await channel.stop();
      await inf.stop();
      await loops.stop();
      kube.close();
    }
  });

  it('hollow nodes in deployed mode (bench:scale) start a pod bound to them and finish its deletion by the push channel alone', async () => {
    const queuePrefix = unique();
    const loops = runControllers(c.api.controllerContext(), [createNodeNotifier({ sqs: client, queuePrefix })]);
    const api = { server: c.url, caCert: c.caCert, token: c.token };
    // Polls once an hour: only a push can make the node act within the test.
    const hollow = await startHollowNodes({
      kube: new KubeClient(api),
      deployed: { api, sqs: () => client, queuePrefix, podPollMs: 3_600_000, servicesPollMs: 3_600_000 },
      count: 2,
      namePrefix: `${queuePrefix}hn-`,
      heartbeatMs: 3_600_000,
    });
    try {
      const [n0, n1] = hollow.nodes;
      // The channels are up once their queues exist; the informers' first lists are done at once.
      await until('both queues made', async () => ((await client.send(new ListQueuesCommand({ QueueNamePrefix: queuePrefix }))).QueueUrls ?? []).length === 2, 10_000);
      await sleep(500);
      await c.api.registry.create(pods, 'default', pod('on-hollow', n1!));
      await until('Running on its hollow node', async () => (await c.api.registry.get(pods, 'default', 'on-hollow')).status?.phase === 'Running', 20_000, 50);
      const running = await c.api.registry.get(pods, 'default', 'on-hollow');
      expect(running.status.hostIP).toMatch(/^10\.63\./);
      expect(running.status.podIP).toMatch(/^10\.6[4-9]\./);
      // Graceful delete: the node is told, finishes it (grace 0), and the pod is gone.
      await c.api.registry.delete(pods, 'default', 'on-hollow', { gracePeriodSeconds: 30 });
      await until('the deletion finished by the node', async () => (await c.api.registry.get(pods, 'default', 'on-hollow').then(() => false, () => true)), 20_000, 50);
      // The other node was never told, and holds no pod.
      expect((await c.api.registry.list(pods, 'default')).items.filter((p) => p.spec?.nodeName === n0)).toEqual([]);
    } finally {
      await hollow.stop();
      await loops.stop();
    }
  });

  it('a message received but not deleted (the agent stopped in between) is acted on by the next agent; a lost one is the poll\'s', async () => {
    const queuePrefix = unique();
    const nudged: PushedCollection[][] = [];
    // First agent: makes the queue, then goes away.
    const first = await startPushChannel({ sqs: client, queuePrefix, nodeName: 'n9', waitSeconds: 1, visibilityTimeoutSeconds: 1, onNudge: () => {} });
    await first.stop();
    await client.send(new SendMessageCommand({ QueueUrl: first.queueUrl, MessageBody: JSON.stringify({ resync: ['services'] }) }));
    // Taken by an agent that died before deleting it (a raw receive stands for it).
    const taken = await client.send(new ReceiveMessageCommand({ QueueUrl: first.queueUrl, WaitTimeSeconds: 2 }));
    expect(taken.Messages).toHaveLength(1);
    const second = await startPushChannel({ sqs: client, queuePrefix, nodeName: 'n9', waitSeconds: 1, visibilityTimeoutSeconds: 1, onNudge: (cs) => nudged.push(cs) });
    try {
      await until('the undeleted message comes back to the next agent', async () => nudged.length > 0, 15_000);
      expect(nudged[0]).toEqual(['services']);
    } finally {
      await second.stop();
    }
    // Lost (never sent, or expired after its minute): an informer's poll finds the change on its own.
    const kube = new KubeClient({ server: c.url, caCert: c.caCert, token: c.token, pollMs: 500 });
    const inf = new Informer(kube, `/api/v1/pods?fieldSelector=${encodeURIComponent('spec.nodeName=n9')}`);
    const names: string[] = [];
    inf.on((t, o) => t === 'ADDED' && names.push(o.metadata.name!)).start();
    await inf.synced;
    await c.api.registry.create(pods, 'default', pod('no-message', 'n9'));
    await until('the poll finds the pod', async () => names.includes('no-message'), 10_000);
    await inf.stop();
    kube.close();
  });
});

const ddb = sqs ? await dynamoTestEndpoint() : undefined;
afterAll(async () => ddb?.stop());

describe.skipIf(!sqs || !ddb)('push channel in the cloud (the controller manager on DynamoDB stream records)', () => {
  it('the scheduler tells a node of the pod it binds there at once; the controller manager\'s notifier leaves binds to it', async () => {
    const client = sqs!.newClient();
    const tableName = uniqueTableName('skiff-push');
    await ensureTable(ddb!.client, tableName);
    const backend = new DynamoBackend({ client: ddb!.client, tableName });
    const api = new ApiServer({ backend });
    const ctx = { ...api.controllerContext(), resyncLog: backend };
    const queuePrefix = unique();
    const got: PushedCollection[][] = [];
    const channel = await startPushChannel({ sqs: client, queuePrefix, nodeName: 'n1', waitSeconds: 1, onNudge: (cs) => got.push(cs) });
    try {
      const reg = api.registry;
      const room = { cpu: '4', memory: '8Gi', pods: '110' };
      await reg.create(nodes, undefined, { metadata: { name: 'n1' }, status: { capacity: room, allocatable: room, conditions: [{ type: 'Ready', status: 'True' }] } });
      await reg.create(pods, 'default', { metadata: { name: 'a' }, spec: { containers: [{ name: 'c', image: 'busybox' }] } });
      // The deployed scheduler's function, on the stream records its filter passes.
      const scheduler = createScheduler({ onBound: schedulerTeller({ sqs: client, queuePrefix }) });
      const created = await streamRecords(ddb!, tableName);
      const forScheduler = created.filter((r) => passesFilters(streamFilterPatterns(scheduler), r));
      expect((await handleStreamBatch([scheduler], ctx, forScheduler)).batchItemFailures).toEqual([]);
      expect((await reg.get(pods, 'default', 'a')).spec.nodeName).toBe('n1');
      await until('n1 told by the scheduler', async () => got.length === 1, 15_000);
      expect(got).toEqual([['pods']]);
      // The bind's record reaches the controller manager, whose notifier leaves it to the scheduler...
      const filter = streamFilterPatterns(...deployedControllers, { watches: NODE_NOTIFIER_WATCHES });
      const bound = (await streamRecords(ddb!, tableName)).slice(created.length).filter((r) => passesFilters(filter, r));
      expect(bound.length).toBeGreaterThan(0);
      expect((await handleStreamBatch([createNodeNotifier({ sqs: client, queuePrefix, schedulerTellsBinds: true })], ctx, bound)).batchItemFailures).toEqual([]);
      await sleep(2500);
      expect(got).toHaveLength(1);
      // ...where, with no scheduler telling, it tells the node of the bind itself.
      await handleStreamBatch([createNodeNotifier({ sqs: client, queuePrefix })], ctx, bound);
      await until('n1 told by the notifier', async () => got.length === 2, 15_000);
      // A deletion is the notifier's, told or not.
      const before = await streamRecords(ddb!, tableName);
      await reg.delete(pods, 'default', 'a', { gracePeriodSeconds: 30 });
      const deleting = (await streamRecords(ddb!, tableName)).slice(before.length).filter((r) => passesFilters(filter, r));
      await handleStreamBatch([createNodeNotifier({ sqs: client, queuePrefix, schedulerTellsBinds: true })], ctx, deleting);
      await until('n1 told of the deletion', async () => got.length === 3, 15_000);
    } finally {
      await channel.stop();
    }
  });

  it('tells a pod\'s node (and no other node), and deletes a deleted Node\'s queue; a redelivered batch only nudges again', async () => {
    const client = sqs!.newClient();
    const tableName = uniqueTableName('skiff-push');
    await ensureTable(ddb!.client, tableName);
    const api = new ApiServer({ backend: new DynamoBackend({ client: ddb!.client, tableName }) });
    const queuePrefix = unique();
    const got = new Map<string, PushedCollection[][]>([['n1', []], ['n2', []]]);
    const channels: PushChannel[] = [];
    for (const n of got.keys()) channels.push(await startPushChannel({ sqs: client, queuePrefix, nodeName: n, waitSeconds: 1, onNudge: (cs) => got.get(n)!.push(cs) }));
    const notifier = createNodeNotifier({ sqs: client, queuePrefix });
    try {
      const reg = api.registry;
      await reg.create(nodes, undefined, { metadata: { name: 'n1' } });
      await reg.create(nodes, undefined, { metadata: { name: 'n2' } });
      await reg.create(pods, 'default', pod('a', 'n1'));
      await reg.create(services, 'default', { metadata: { name: 's' }, spec: { ports: [{ port: 80 }] } });
      const records = await streamRecords(ddb!, tableName);
      // The deployed stream filter passes what the notifier watches (the stack adds its kinds).
      const filter = streamFilterPatterns(...deployedControllers, { watches: NODE_NOTIFIER_WATCHES });
      const passed = records.filter((r) => passesFilters(filter, r));
      const result = await handleStreamBatch([notifier], api.controllerContext(), passed);
      expect(result.batchItemFailures).toEqual([]);
      await until('n1 told of its pod', async () => got.get('n1')!.flat().includes('pods'), 15_000);
      // Services and Endpoints are the agents' poll's (node-notifier.ts says why): nothing for them.
      await sleep(1500);
      expect(got.get('n1')!.flat()).toEqual(['pods']);
      expect(got.get('n2')!).toEqual([]);

      // Redelivered: the same nudges again, nothing else.
      const n1Before = got.get('n1')!.flat().length;
      await handleStreamBatch([notifier], api.controllerContext(), passed);
      await until('the redelivery nudged n1 again', async () => got.get('n1')!.flat().length > n1Before, 15_000);

      // Node n2 deleted: its queue goes.
      await reg.delete(nodes, undefined, 'n2');
      const after = (await streamRecords(ddb!, tableName)).slice(records.length).filter((r) => passesFilters(filter, r));
      await handleStreamBatch([notifier], api.controllerContext(), after);
      const left = (await client.send(new ListQueuesCommand({ QueueNamePrefix: queuePrefix }))).QueueUrls ?? [];
      expect(left.map((u) => u.slice(u.lastIndexOf('/') + 1))).toEqual([nodeQueueName(queuePrefix, 'n1')]);
    } finally {
      for (const ch of channels) await ch.stop();
    }
  });
});
