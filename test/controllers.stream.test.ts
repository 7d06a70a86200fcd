// The cloud path of the controllers: real DynamoDB stream records (read from moto's stream of a table
// the DynamoDB backend writes) fed to the Lambda stream handler, once, twice (redelivery), and with a
// failing key (partial batch failure).

import { afterAll, describe, expect, it } from 'vitest';
import { DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { DescribeStreamCommand, DynamoDBStreamsClient, GetRecordsCommand, GetShardIteratorCommand } from '@aws-sdk/client-dynamodb-streams';
import type { DynamoDBRecord } from 'aws-lambda';
import { DynamoBackend, ensureTable } from '../lambdas/storage/dynamodb.ts';
import { ApiServer } from '../lambdas/apiserver/app.ts';
import { ApiError } from '../lambdas/machinery/status.ts';
import { findResource } from '../lambdas/machinery/resources.ts';
import { namespaceController } from '../lambdas/controllers/namespace.ts';
import { changeEventOf, handleStreamBatch, resyncAll, streamFilterPatterns } from '../lambdas/controllers/stream.ts';
import type { Controller } from '../lambdas/controllers/controller.ts';
import { dynamoTestEndpoint, uniqueTableName } from './support/dynamodb.ts';
import { passesFilters } from './support/lambda-filter.ts';
import { createScheduler } from '../lambdas/scheduler/scheduler.ts';
import { controllers } from '../lambdas/controllers/lambda.ts';

const ddb = await dynamoTestEndpoint();
afterAll(async () => ddb?.stop());

const namespaces = findResource('', 'v1', 'namespaces')!;
const configmaps = findResource('', 'v1', 'configmaps')!;

/** Every record on the table's stream so far, as Lambda would deliver them. */
async function streamRecords(tableName: string): Promise<DynamoDBRecord[]> {
  const streams = new DynamoDBStreamsClient({ endpoint: ddb!.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  const arn = (await ddb!.client.send(new DescribeTableCommand({ TableName: tableName }))).Table!.LatestStreamArn!;
  const shards = (await streams.send(new DescribeStreamCommand({ StreamArn: arn }))).StreamDescription!.Shards!;
  const out: DynamoDBRecord[] = [];
  for (const s of shards) {
    let it = (await streams.send(new GetShardIteratorCommand({ StreamArn: arn, ShardId: s.ShardId!, ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator;
    for (let i = 0; it && i < 100; i++) {
      const r = await streams.send(new GetRecordsCommand({ ShardIterator: it }));
      out.push(...((r.Records ?? []) as unknown as DynamoDBRecord[]));
      if (!r.Records?.length) break;
      it = r.NextShardIterator;
    }
  }
  streams.destroy();
  return out;
}

async function setup() {
  const tableName = uniqueTableName('skiff-stream');
  await ensureTable(ddb!.client, tableName);
  const backend = new DynamoBackend({ client: ddb!.client, tableName });
  const api = new ApiServer({ backend });
  return { tableName, backend, api, ctx: api.controllerContext() };
}

describe.skipIf(!ddb)('controllers on the DynamoDB stream', () => {
  it('a namespace deletion read from the stream is carried out, and redelivery changes nothing', async () => {
    const { tableName, api, ctx, backend } = await setup();
    const reg = api.registry;
    await reg.create(namespaces, undefined, { metadata: { name: 'gone' } });
    await reg.create(configmaps, 'gone', { metadata: { name: 'a' } });
    await reg.create(configmaps, 'gone', { metadata: { name: 'b' } });
    await reg.delete(namespaces, undefined, 'gone');

    const records = await streamRecords(tableName);
    // Counter and log items are on the stream too; only object items become events.
    const evs = records.map(changeEventOf).filter((e) => e !== undefined);
    expect(evs.map((e) => `${e!.type} ${e!.resource.resource} ${e!.object.metadata.name}`)).toEqual([
      'ADDED namespaces gone',
      'ADDED configmaps a',
      'ADDED configmaps b',
      'MODIFIED namespaces gone',
    ]);
    expect(evs[3]!.object.metadata.deletionTimestamp).toBeTruthy();

    const first = await handleStreamBatch([namespaceController], ctx, records);
    expect(first.batchItemFailures).toEqual([]);
    expect(first.reconciled).toEqual({ namespace: 1 });
    const gone = await reg.get(namespaces, undefined, 'gone').catch((e) => e);
    expect(gone).toBeInstanceOf(ApiError);
    expect(gone.code).toBe(404);
    expect((await reg.list(configmaps, 'gone')).items).toEqual([]);

    const rev = await backend.currentRevision();
    const again = await handleStreamBatch([namespaceController], ctx, records);
    expect(again.batchItemFailures).toEqual([]);
    expect(await backend.currentRevision()).toBe(rev); // a redelivered batch writes nothing
  });

  it('a failing key is reported at the sequence number of its first record; others complete', async () => {
    const { tableName, api, ctx } = await setup();
    // The registry itself does not check namespaces (admission does), so a bare table is enough here.
    for (const n of ['ok-1', 'bad', 'ok-2']) await api.registry.create(configmaps, 'default', { metadata: { name: n } });
    const records = await streamRecords(tableName);
    const done: string[] = [];
    const picky: Controller = {
      name: 'picky',
      watches: [configmaps],
      keys: (ev) => [ev.object.metadata.name!],
      allKeys: async () => ['ok-1', 'bad', 'ok-2'],
      async reconcile(key) {
        if (key === 'bad') throw new Error('cannot');
        done.push(key);
      },
    };
    const r = await handleStreamBatch([picky], ctx, records);
    const badRecord = records.find((x) => changeEventOf(x)?.object.metadata.name === 'bad')!;
    expect(r.batchItemFailures).toEqual([{ itemIdentifier: badRecord.dynamodb!.SequenceNumber }]);
    expect(done).toEqual(['ok-1', 'ok-2']);
    // The scheduled resync reconciles every key, and survives the failing one.
    done.length = 0;
    expect(await resyncAll([picky], ctx)).toEqual({ picky: 3 });
    expect(done).toEqual(['ok-1', 'ok-2']);
  });

  it("a batch's keys run up to the loop's concurrency at once (the scheduler's 16), others one at a time; failures still reported", async () => {
    const { tableName, api, ctx } = await setup();
    for (let i = 0; i < 12; i++) await api.registry.create(configmaps, 'default', { metadata: { name: i === 5 ? 'bad' : `k${i}` } });
    const records = await streamRecords(tableName);
    const loop = (name: string, concurrency?: number) => {
      const seen = { inFlight: 0, most: 0, done: [] as string[] };
      const c: Controller = {
        name,
        watches: [configmaps],
        ...(concurrency ? { concurrency } : {}),
        keys: (ev) => [ev.object.metadata.name!],
        allKeys: async () => [],
        async reconcile(key) {
          seen.most = Math.max(seen.most, ++seen.inFlight);
          await new Promise((r) => setTimeout(r, 5));
          seen.inFlight--;
          if (key === 'bad') throw new Error('cannot');
          seen.done.push(key);
        },
      };
      return { c, seen };
    };
    const four = loop('four', 4);
    const one = loop('one');
    const r = await handleStreamBatch([four.c, one.c], ctx, records);
    expect(four.seen.most).toBe(4);
    expect(one.seen.most).toBe(1);
    for (const { seen } of [four, one]) expect(seen.done.sort()).toEqual(['k0', 'k1', 'k10', 'k11', 'k2', 'k3', 'k4', 'k6', 'k7', 'k8', 'k9']);
    const badRecord = records.find((x) => changeEventOf(x)?.object.metadata.name === 'bad')!;
    expect(r.batchItemFailures).toEqual([{ itemIdentifier: badRecord.dynamodb!.SequenceNumber }]);
    expect(createScheduler().concurrency).toBe(16);
  });

  it('node heartbeat Leases wake no function; the scheduler\'s reservation Leases wake it; other kinds as watched', async () => {
    const { tableName, api } = await setup();
    const leases = findResource('coordination.k8s.io', 'v1', 'leases')!;
    await api.registry.create(namespaces, undefined, { metadata: { name: 'kube-node-lease' } });
    await api.registry.create(leases, 'kube-node-lease', { metadata: { name: 'node-1' }, spec: { holderIdentity: 'node-1' } });
    await api.registry.create(leases, 'kube-node-lease', { metadata: { name: 'skiff-alloc-node-1' }, spec: {} });
    await api.registry.create(namespaces, undefined, { metadata: { name: 'apps' } });
    const records = await streamRecords(tableName);
    const woken = (patterns: string[]) => records.filter((r) => passesFilters(patterns, r)).map((r) => changeEventOf(r)!.object.metadata.name);
    expect(woken(streamFilterPatterns(createScheduler()))).toEqual(['skiff-alloc-node-1']);
    expect(woken(streamFilterPatterns(...controllers))).toEqual(['kube-node-lease', 'skiff-alloc-node-1', 'apps']);
    expect(woken(streamFilterPatterns(namespaceController))).toEqual(['kube-node-lease', 'apps']);
  });

  it('a batch of 160 pod records costs the loops a list per kind and namespace, not one per record (issue #12)', async () => {
    const { tableName, api, ctx } = await setup();
    const reg = api.registry;
    const pods = findResource('', 'v1', 'pods')!;
    const services = findResource('', 'v1', 'services')!;
    for (const ns of ['a', 'b']) {
      await reg.create(namespaces, undefined, { metadata: { name: ns } });
      await reg.create(services, ns, { metadata: { name: 'web' }, spec: { selector: { app: 'web' }, ports: [{ port: 80 }] } });
      for (let i = 0; i < 40; i++) {
        const labels = { app: i % 2 ? 'web' : 'batch' };
        await reg.create(pods, ns, { metadata: { name: `p${i}`, labels }, spec: { containers: [{ name: 'c', image: 'i' }] } });
        await reg.guaranteedUpdate(pods, ns, `p${i}`, undefined, { subresource: 'status' }, (p) => ({ ...p, status: { phase: 'Running', podIP: `10.0.${ns === 'a' ? 1 : 2}.${i + 1}`, conditions: [{ type: 'Ready', status: 'True' }] } }));
      }
    }
    const records = (await streamRecords(tableName)).filter((r) => passesFilters(streamFilterPatterns(...controllers), r));
    expect(records.filter((r) => changeEventOf(r)?.resource === pods)).toHaveLength(160);
    // Every store read the loops make while handling the batch, by "verb resource".
    const reads = new Map<string, number>();
    const counted = Object.create(reg) as typeof reg;
    counted.list = (res, ns, p) => (reads.set(`list ${res.resource}`, (reads.get(`list ${res.resource}`) ?? 0) + 1), reg.list(res, ns, p));
    counted.get = (res, ns, name) => (reads.set(`get ${res.resource}`, (reads.get(`get ${res.resource}`) ?? 0) + 1), reg.get(res, ns, name));
    const r = await handleStreamBatch(controllers, { ...ctx, registry: counted }, records);
    expect(r.batchItemFailures).toEqual([]);
    expect((await reg.get(findResource('', 'v1', 'endpoints')!, 'b', 'web')).subsets[0].addresses).toHaveLength(20);
    // Pods and Services: one list per namespace, shared by the loops (the endpoints loop listed both on
    // every pod key before).
    expect(reads.get('list pods')).toBe(2);
    expect(reads.get('list services')).toBe(2);
    // Nothing else grows with the records: the rest is per Service (its Endpoints and slice) and per namespace.
    const total = [...reads.values()].reduce((a, b) => a + b, 0);
    // (Quota, issue #15: with no quota anywhere, admission and the quota loops read two counters, no list.)
    expect(reads.get('list resourcequotas')).toBeUndefined();
    expect(total).toBeLessThan(30);
  });

  it('filter patterns select exactly the object items of the watched kinds', async () => {
    const { tableName, api } = await setup();
    await api.registry.create(namespaces, undefined, { metadata: { name: 'f' } });
    await api.registry.create(configmaps, 'f', { metadata: { name: 'c' } });
    const records = await streamRecords(tableName);
    const [pattern] = streamFilterPatterns(namespaceController).map((p) => JSON.parse(p));
    const wanted: string[] = pattern.dynamodb.Keys.pk.S;
    const matched = records.filter((r) => wanted.includes(r.dynamodb!.Keys!.pk!.S!));
    expect(matched.map((r) => changeEventOf(r)!.object.metadata.name)).toEqual(['f']);
  });
});
