// The scheduled resync, deployed (stream.ts resyncAll with the DynamoDB backend's log on moto): it costs
// what changed since its last run (the log since its mark), reads everything only now and then (in
// pages) or when the log since the mark has expired, and keeps a loop's requeues and clock.

import { afterAll, describe, expect, it } from 'vitest';
import { GetItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { DynamoDBRecord } from 'aws-lambda';
import { DynamoBackend, ensureTable } from '../lambdas/storage/dynamodb.ts';
import { ApiServer } from '../lambdas/apiserver/app.ts';
import { findResource } from '../lambdas/machinery/resources.ts';
import { handleStreamBatch, meteredResyncLog, resyncAll } from '../lambdas/controllers/stream.ts';
import { OVERHEAD, UsageMeter } from '../lambdas/machinery/usage.ts';
import { readerOf, type Controller, type ControllerContext } from '../lambdas/controllers/controller.ts';
import { dynamoTestEndpoint, uniqueTableName } from './support/dynamodb.ts';

const ddb = await dynamoTestEndpoint();
afterAll(async () => ddb?.stop());

const configmaps = findResource('', 'v1', 'configmaps')!;

/** Every DynamoDB request a client sends: "Command pk" (the partition it reads or writes) and items read. */
function counted(client: DynamoDBClient) {
  const calls: { access: string; items: number }[] = [];
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const out = await next(args);
      const command = String((context as { commandName?: string }).commandName ?? '').replace(/Command$/, '');
      const input = args.input as Record<string, any>;
      const output = out.output as Record<string, any>;
      const pk = String(input.Key?.pk?.S ?? input.ExpressionAttributeValues?.[':pk']?.S ?? '');
      const items = output.Items?.length ?? (output.Item ? 1 : 0) + Object.values(output.Responses ?? {}).flat().length;
      calls.push({ access: `${command} ${pk}`, items });
      return out;
    },
    { step: 'initialize', name: 'resyncTestCounter' },
  );
  return calls;
}

async function setup(opts: { logRetentionSeconds?: number } = {}) {
  const tableName = uniqueTableName('skiff-resync');
  await ensureTable(ddb!.client, tableName);
  // The loops' function: its own client (counted), as deployed (cloud-context.ts gives it the backend as resyncLog).
  const client = ddb!.newClient();
  const calls = counted(client);
  const loopsBackend = new DynamoBackend({ client, tableName });
  const ctx: ControllerContext = { ...new ApiServer({ backend: loopsBackend }).controllerContext(), resyncLog: loopsBackend };
  // Users' writes, through another apiserver (whose log items may be made to expire early).
  const api = new ApiServer({ backend: new DynamoBackend({ client: ddb!.newClient(), tableName, ...opts }) });
  const create = (name: string) => api.registry.create(configmaps, 'default', { metadata: { name } });
  return { ctx, calls, create, loopsBackend, tableName };
}

/** A loop over ConfigMaps that records what it reconciles; its keys read through the resync's reader. */
function recorder(o: Partial<Controller> & { requeue?: Set<string> } = {}) {
  const done: string[] = [];
  const c: Controller = {
    name: 'recorder',
    watches: [configmaps],
    keys: (ev) => [ev.object.metadata.name!],
    allKeys: async (ctx) => (await readerOf(ctx).list(configmaps, 'default')).map((o) => o.metadata.name!),
    async reconcile(key) {
      done.push(key);
      if (o.requeue?.has(key)) return { requeueAfterMs: 1000 };
    },
    ...o,
  };
  return { c, done };
}

describe.skipIf(!ddb)('the scheduled resync, incremental (deployed)', () => {
  it('reconciles a change whose stream record never came, and only what changed', async () => {
    const { ctx, create } = await setup();
    for (const n of ['a', 'b', 'c']) await create(n);
    const { c, done } = recorder();
    // No mark yet: everything.
    expect(await resyncAll([c], ctx)).toEqual({ recorder: 3, full: 1 });
    expect(done.sort()).toEqual(['a', 'b', 'c']);
    // A change the stream never delivered (no handleStreamBatch here): the next run reconciles it alone.
    done.length = 0;
    await create('late');
    expect(await resyncAll([c], ctx)).toEqual({ recorder: 1 });
    expect(done).toEqual(['late']);
    // Nothing since: nothing reconciled.
    done.length = 0;
    expect(await resyncAll([c], ctx)).toEqual({ recorder: 0 });
    expect(done).toEqual([]);
  });

  it('with nothing changed, reads a constant few items however large the store', async () => {
    const { ctx, calls, create } = await setup();
    const { c } = recorder();
    const quiet = async () => {
      await resyncAll([c], ctx); // reaches the head
      calls.length = 0;
      await resyncAll([c], ctx);
      return calls.map((x) => ({ ...x }));
    };
    for (let i = 0; i < 5; i++) await create(`s${i}`);
    const small = await quiet();
    for (let i = 0; i < 60; i++) await create(`l${i}`);
    const large = await quiet();
    // The mark (GetItem), the counter and watermark (Query meta), the mark moved (UpdateItem): no object read.
    expect(large).toEqual(small);
    expect(large.map((x) => x.access).sort()).toEqual(['GetItem meta', 'Query meta', 'UpdateItem meta']);
    expect(large.reduce((n, x) => n + x.items, 0)).toBeLessThanOrEqual(3);
  });

  it('the full re-read lists in pages, and a collection larger than a page is reconciled whole', async () => {
    const { ctx, calls, create } = await setup();
    for (let i = 0; i < 23; i++) await create(`p${String(i).padStart(2, '0')}`);
    const { c, done } = recorder();
    calls.length = 0;
    expect(await resyncAll([c], ctx, { pageSize: 5 })).toEqual({ recorder: 23, full: 1 });
    expect(done.sort()).toEqual(Array.from({ length: 23 }, (_, i) => `p${String(i).padStart(2, '0')}`));
    // Five pages of the ConfigMaps' partition, one Query each (and no Query of all of them at once).
    const cmQueries = calls.filter((x) => x.access === 'Query obj#/registry/core/configmaps/');
    expect(cmQueries.length).toBeGreaterThanOrEqual(5);
    expect(Math.max(...cmQueries.map((x) => x.items))).toBeLessThanOrEqual(100); // moto's page: Limit max(limit + 1, 100)
  });

  it('reads everything again once an hour (fullEveryMs), and when the log since the mark has expired', async () => {
    const { ctx, create } = await setup({ logRetentionSeconds: 1 });
    await create('x');
    const { c, done } = recorder();
    expect(await resyncAll([c], ctx)).toEqual({ recorder: 1, full: 1 });
    // Past the full period: everything, though nothing changed.
    expect(await resyncAll([c], ctx, { fullEveryMs: 0 })).toEqual({ recorder: 1, full: 1 });
    // A change whose log item expires before the next run (the resync did not run for longer than the
    // log keeps: 1 s here, an hour deployed): the log cannot say what changed, so everything.
    await create('y');
    await new Promise((r) => setTimeout(r, 2100));
    done.length = 0;
    expect(await resyncAll([c], ctx)).toEqual({ recorder: 2, full: 1 });
    expect(done.sort()).toEqual(['x', 'y']);
  });

  it("keeps a loop's clock (resyncAlways) and its requeues, from stream batches and from itself", async () => {
    const { ctx, create, tableName } = await setup();
    for (const n of ['a', 'b']) await create(n);
    const clock = recorder({ name: 'clock', resyncAlways: true });
    const requeue = new Set(['b']);
    const r = recorder({ requeue });
    await resyncAll([clock.c, r.c], ctx);
    // Incremental, nothing changed: the clock's loop still sees every key; `b` asked to be seen again.
    clock.done.length = 0;
    r.done.length = 0;
    expect(await resyncAll([clock.c, r.c], ctx)).toEqual({ clock: 2, recorder: 1 });
    expect(clock.done.sort()).toEqual(['a', 'b']);
    expect(r.done).toEqual(['b']);
    // Done asking: seen once more, then no longer.
    requeue.clear();
    r.done.length = 0;
    expect(await resyncAll([clock.c, r.c], ctx)).toEqual({ clock: 2, recorder: 1 });
    expect(await resyncAll([clock.c, r.c], ctx)).toEqual({ clock: 2, recorder: 0 });
    expect(r.done).toEqual(['b']);
    // The loop alone is another function (its own mark, named by its one loop): read whole once.
    expect(await resyncAll([r.c], ctx)).toEqual({ recorder: 2, full: 1 });
    // A stream batch's requeue is kept for the next run too (no function runs in between deployed): the
    // record of `a` as the stream carries it (its item as the new image).
    requeue.add('a');
    const Key = { pk: { S: 'obj#/registry/core/configmaps/' }, sk: { S: 'default/a' } };
    const item = (await ddb!.client.send(new GetItemCommand({ TableName: tableName, Key, ConsistentRead: true }))).Item!;
    const record = { eventName: 'MODIFY', dynamodb: { Keys: Key, NewImage: item, OldImage: item, SequenceNumber: '100' } } as unknown as DynamoDBRecord;
    r.done.length = 0;
    expect((await handleStreamBatch([r.c], ctx, [record])).reconciled).toEqual({ recorder: 1 });
    requeue.clear();
    expect(await resyncAll([r.c], ctx)).toEqual({ recorder: 1 });
    expect(r.done).toEqual(['a', 'a']);
  });

  it("its requests are counted to the resync's overhead, as deployed (meteredResyncLog)", async () => {
    const { ctx: plain, create } = await setup();
    const meter = new UsageMeter(Date.now, true);
    const ctx: ControllerContext = { ...plain, usage: meter, resyncLog: meteredResyncLog(plain.resyncLog!, meter) };
    const { c } = recorder();
    await resyncAll([c], ctx);
    meter.drain();
    const resyncCounts = () => [...(meter.drain() ?? new Map()).values()].map((m) => m.get(OVERHEAD.resync)).find((x) => x);
    // Quiet: the mark read and moved, the counter.
    await resyncAll([c], ctx);
    expect(resyncCounts()).toMatchObject({ dynamoRequests: 3, rru: 2, wru: 1, invocations: 1 });
    // One change since: its log read (is it still there, its partition's Query) and its reconcile.
    await create('one');
    await resyncAll([c], ctx);
    expect(resyncCounts()).toMatchObject({ dynamoRequests: 5, wru: 1, reconciles: 1 });
  });

  it('runs beside another resync: the mark never goes back, and both reconcile idempotently', async () => {
    const { ctx, create, loopsBackend } = await setup();
    const { c } = recorder();
    await resyncAll([c], ctx);
    for (let i = 0; i < 5; i++) await create(`k${i}`);
    const [one, two] = await Promise.all([resyncAll([c], ctx), resyncAll([c], ctx)]);
    expect(one.recorder + two.recorder).toBeGreaterThanOrEqual(5);
    const head = await loopsBackend.currentRevision();
    expect((await loopsBackend.resyncMark('recorder'))!.revision).toBe(head);
    // A late run's smaller revision leaves the mark where it is.
    await loopsBackend.moveResyncMark('recorder', head - 3, undefined, []);
    expect((await loopsBackend.resyncMark('recorder'))!.revision).toBe(head);
  });
});
