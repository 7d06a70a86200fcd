// The DynamoDB backend's revisions (issue #16 item 4): a write takes its revision with an atomic ADD and
// commits after, so writes commit out of order and a writer may die between the two. These tests stage
// each case against moto and check the storage contract still holds: a reader never uses a revision
// before every one below it settled, waits for a write in flight, fills a dead writer's revision with a
// gap after gapTimeoutMs, a slow writer whose revision was filled writes again under a new one, and a
// table whose log predates the 16 partitions is still read.

import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { DeleteItemCommand, DynamoDBClient, GetItemCommand, PutItemCommand, UpdateItemCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { DynamoBackend, ensureTable, objectFromImage } from '../lambdas/storage/dynamodb.ts';
import { decodeValue, encodeValue, itemPrevValue, itemValue } from '../lambdas/storage/value-codec.ts';
import { StorageError, type WatchEvent, type WatchOptions } from '../lambdas/storage/backend.ts';
import { dynamoTestEndpoint, uniqueTableName } from './support/dynamodb.ts';
import { seededRandom, startFaultyProxy, type FaultyProxyOptions } from './support/faulty-proxy.ts';

const ddb = await dynamoTestEndpoint();
if (!ddb) {
  if (process.env.CI === 'true') throw new Error('storage.dynamodb-revisions: no DynamoDB endpoint (moto) in CI');
  console.warn('\n!!!!!!!!!! storage.dynamodb-revisions: no DynamoDB endpoint, SKIPPED\n');
}
afterAll(async () => ddb?.stop());

const PODS = '/registry/core/pods/';
const pad = (rev: number) => String(rev).padStart(20, '0');

async function freshTable(): Promise<string> {
  const tableName = uniqueTableName('skiff-revisions');
  await ensureTable(ddb!.client, tableName);
  return tableName;
}

/** What a writer does first: takes the next revision from the counter (and then, here, dies). */
async function takeRevision(tableName: string): Promise<number> {
  const r = await ddb!.client.send(
    new UpdateItemCommand({
      TableName: tableName,
      Key: { pk: { S: 'meta' }, sk: { S: 'revision' } },
      UpdateExpression: 'ADD rev :one',
      ExpressionAttributeValues: { ':one': { N: '1' } },
      ReturnValues: 'UPDATED_NEW',
    }),
  );
  return Number(r.Attributes!.rev!.N);
}

async function logItem(tableName: string, rev: number) {
  const r = await ddb!.client.send(new GetItemCommand({ TableName: tableName, Key: { pk: { S: `log#${rev % 16}` }, sk: { S: pad(rev) } }, ConsistentRead: true }));
  return r.Item;
}

/** Collects a watch's events until its batches reach `until`. */
async function watchTo(b: DynamoBackend, from: number, until: number, prefix = PODS, opts?: WatchOptions): Promise<WatchEvent[]> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), 20_000);
  const events: WatchEvent[] = [];
  try {
    for await (const batch of b.watch(prefix, from, ac.signal, 100, opts)) {
      events.push(...batch.events);
      if (batch.revision >= until) return events;
    }
    throw new Error(`watch ended before revision ${until}`);
  } finally {
    clearTimeout(timer);
    ac.abort();
  }
}

/**
 * A client whose transactions are held back on their way (heldMs per TransactWriteItems) and, with rates,
 * sometimes fail as a loaded table's do: a writer slower than the others, through test/support/faulty-proxy.ts.
 */
async function heldBackClient(heldMs: () => number, rates: FaultyProxyOptions['rates'] = {}, seed = 1) {
  const proxy = await startFaultyProxy({ target: ddb!.endpoint, seed, rates, ops: ['TransactWriteItems'], latencyMs: (op) => (op === 'TransactWriteItems' ? Math.floor(heldMs()) : 0) });
  const client = new DynamoDBClient({ endpoint: proxy.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  return {
    proxy,
    client,
    async close() {
      client.destroy();
      await proxy.close();
    },
  };
}

/** A slow writer (its transactions held back heldMs), a fast one and a reader, on one table. */
async function slowFastReader(tableName: string, heldMs = 600) {
  const held = await heldBackClient(() => heldMs);
  const slow = new DynamoBackend({ client: held.client, tableName, gapTimeoutMs: 5000 });
  const fast = new DynamoBackend({ client: ddb!.newClient(), tableName, gapTimeoutMs: 5000 });
  const reader = new DynamoBackend({ client: ddb!.newClient(), tableName, pollIntervalMs: 20, gapTimeoutMs: 5000 });
  return {
    slow,
    fast,
    reader,
    proxy: held.proxy,
    async close() {
      await Promise.all([slow.close(), fast.close(), reader.close()]);
      await held.close();
    },
  };
}

describe.runIf(!!ddb)('DynamoDB revisions: taken first, committed after', () => {
  it('a writer that died after taking its revision: readers wait gapTimeoutMs, fill it with a gap and go on', async () => {
    const tableName = await freshTable();
    const b = new DynamoBackend({ client: ddb!.newClient(), tableName, pollIntervalMs: 20, gapTimeoutMs: 300 });
    const first = await b.create(`${PODS}ns/a`, '"a"');
    const dead = await takeRevision(tableName);
    expect(dead).toBe(first.modRevision + 1);
    const other = new DynamoBackend({ client: ddb!.newClient(), tableName, pollIntervalMs: 20, gapTimeoutMs: 300 });
    const after = await other.create(`${PODS}ns/b`, '"b"');
    expect(after.modRevision).toBe(dead + 1);

    // A list cannot be at a revision past the dead one until it is settled: it waits, then fills it.
    const reader = new DynamoBackend({ client: ddb!.newClient(), tableName, pollIntervalMs: 20, gapTimeoutMs: 300 });
    const t0 = performance.now();
    const list = await reader.list(PODS);
    const waited = performance.now() - t0;
    expect(list.revision).toBe(after.modRevision);
    expect(list.kvs.map((kv) => kv.value)).toEqual(['"a"', '"b"']);
    expect(waited).toBeGreaterThanOrEqual(250);
    expect((await logItem(tableName, dead))?.gap?.BOOL).toBe(true);
    // A watch from before it sees both writes in order and nothing for the gap.
    const events = await watchTo(reader, 0, after.modRevision);
    expect(events.map((e) => [e.type, e.kv.modRevision])).toEqual([
      ['create', first.modRevision],
      ['create', after.modRevision],
    ]);
    // Settled now for every process: another reader does not wait again.
    const t1 = performance.now();
    expect((await new DynamoBackend({ client: ddb!.newClient(), tableName, gapTimeoutMs: 300 }).list(PODS)).revision).toBe(after.modRevision);
    expect(performance.now() - t1).toBeLessThan(250);
    await Promise.all([b.close(), other.close(), reader.close()]);
  }, 30_000);

  it("a reader settling a watermark left behind reads the log slots' keys, not their values; a list still replays the values", async () => {
    const tableName = await freshTable();
    const w = new DynamoBackend({ client: ddb!.newClient(), tableName, gapTimeoutMs: 300 });
    const first = await w.create(`${PODS}ns/a`, JSON.stringify({ big: 'x'.repeat(2000) }));
    for (const n of ['b', 'c', 'd']) await w.create(`${PODS}ns/${n}`, JSON.stringify({ big: n.repeat(2000) }));
    // As when writers commit out of order: the shared watermark stays at the first write.
    await ddb!.client.send(new PutItemCommand({ TableName: tableName, Item: { pk: { S: 'meta' }, sk: { S: 'settled' }, rev: { N: String(first.modRevision) } } }));
    // A fresh reader (a cold function) settles the three writes after it, seeing every answer.
    const client = ddb!.newClient();
    const logItems: Record<string, AttributeValue>[] = [];
    const send = client.send.bind(client) as (c: unknown) => Promise<{ Items?: Record<string, AttributeValue>[] }>;
    (client as { send: unknown }).send = async (cmd: { input?: { ExpressionAttributeValues?: Record<string, AttributeValue> } }) => {
      const out = await send(cmd);
      if (cmd.input?.ExpressionAttributeValues?.[':pk']?.S?.startsWith('log#')) logItems.push(...(out.Items ?? []));
      return out;
    };
    const reader = new DynamoBackend({ client, tableName, gapTimeoutMs: 300 });
    expect(await reader.currentRevision()).toBe(first.modRevision + 3);
    expect(logItems.map((it) => Number(it.sk!.S)).sort()).toEqual([1, 2, 3].map((i) => first.modRevision + i));
    for (const it of logItems) expect(Object.keys(it).sort()).toEqual(['pk', 'sk', 'ttl']);
    // A list's replay of writes made while it reads still has their values.
    const list = await reader.list(PODS);
    expect(list.kvs.map((kv) => JSON.parse(kv.value).big.length)).toEqual([2000, 2000, 2000, 2000]);
    await Promise.all([w.close(), reader.close()]);
  }, 30_000);

  it('writes that commit out of revision order reach a watch in revision order, the later one held back until the earlier commits', async () => {
    const tableName = await freshTable();
    // The slow writer's transactions take 600 ms to arrive (a GC pause, a slow network): it took its
    // revision first, the fast writer commits the next one well before it.
    const { slow, fast, reader, proxy, close } = await slowFastReader(tableName);
    try {
      const watching = watchTo(reader, 0, 2);
      const slowWrite = slow.create(`${PODS}ns/slow`, '"slow"');
      await new Promise((r) => setTimeout(r, 150)); // the slow writer has taken revision 1
      const fastKv = await fast.create(`${PODS}ns/fast`, '"fast"');
      expect(fastKv.modRevision).toBe(2);
      // Revision 2 is committed, 1 is in flight: the reader's list waits for 1 rather than skip it.
      const t0 = performance.now();
      const list = await reader.list(PODS);
      expect(performance.now() - t0).toBeGreaterThan(200);
      expect(list.kvs.map((kv) => kv.value)).toEqual(['"fast"', '"slow"']);
      expect((await slowWrite).modRevision).toBe(1);
      const events = await watching;
      expect(events.map((e) => e.kv.value)).toEqual(['"slow"', '"fast"']);
    } finally {
      await close();
    }
  }, 30_000);

  it("a create that took its revision before another writer's create and delete of the same key commits after them under a new revision, not its old one", async () => {
    // The create read the key absent and took revision 1; its transaction is slow. Meanwhile another
    // writer creates the key (2) and deletes it (3). The key is absent again when the slow transaction
    // lands, so the object's own condition holds: committed at 1, the log would say created at 1,
    // created at 2, deleted at 3 (a watch ends with no object) while the table holds it (a list has it).
    const tableName = await freshTable();
    const { slow, fast, reader, proxy, close } = await slowFastReader(tableName);
    try {
      const key = `${PODS}ns/same`;
      const slowWrite = slow.create(key, '"slow"');
      await new Promise((r) => setTimeout(r, 150)); // the slow writer has read the key absent and taken revision 1
      const created = await fast.create(key, '"fast"');
      const deleted = await fast.delete(key, created.modRevision);
      expect([created.modRevision, deleted.modRevision]).toEqual([2, 3]);
      const kv = await slowWrite;
      expect(kv.modRevision).toBeGreaterThan(3);
      expect(proxy.requests.get('TransactWriteItems')).toBe(2); // cancelled once, then written again
      // A list and a watch from the start agree on what the key holds, and at which revision.
      const list = await reader.list(PODS);
      expect(list.kvs.map((x) => [x.key, x.value, x.modRevision])).toEqual([[key, '"slow"', kv.modRevision]]);
      const events = await watchTo(reader, 0, list.revision);
      expect(events.map((e) => [e.type, e.kv.value, e.kv.modRevision])).toEqual([
        ['create', '"fast"', 2],
        ['delete', '"fast"', 3],
        ['create', '"slow"', kv.modRevision],
      ]);
    } finally {
      await close();
    }
  }, 30_000);

  it.each([
    ['', {}],
    // The faults a table gives under load (test/support/faulty-proxy.ts): refused, or applied with the answer lost.
    [', and some of them fail or lose their answers', { conflict: 0.05, throttle: 0.05, dropAfter: 0.05, error500After: 0.03 }],
  ] as const)('writers racing on a few keys, their transactions held back at random%s: a list and a watch from the start agree on every key', async (_, rates) => {
    // Four writers (as four apiserver instances) create, update and delete three keys at random, each
    // transaction delayed on its way (seeded): commits land out of revision order all the time.
    // Whatever each write's outcome, the log must tell the table's story: replaying a watch from revision 0
    // up to a list's revision is a history that could have happened and gives exactly the list's keys,
    // values and modRevisions; lists at older revisions, the Endpoints' change feed and the pods-by-node
    // index agree with it, and so does the pods' count. (Before creates checked their key's tombstone, this
    // failed in every run.)
    const faults = Object.keys(rates).length > 0;
    const tableName = await freshTable();
    // Two pods (in the pods-by-node index, their node changing at random) and an Endpoints (in a change feed).
    const ENDPOINTS = '/registry/core/endpoints/';
    const keys = [`${PODS}ns/a`, `${PODS}ns/b`, `${ENDPOINTS}ns/c`];
    const nodeOf = (value: string) => (JSON.parse(value) as { spec?: { nodeName?: string } }).spec?.nodeName;
    const writers = await Promise.all(
      [1, 2, 3, 4].map(async (seed) => {
        const delay = seededRandom(seed * 7919);
        // Most transactions quick, one in four held back 300-600 ms: while one is held, the others go on.
        const held = await heldBackClient(() => (delay() < 0.25 ? 300 + delay() * 300 : delay() * 20), rates, seed);
        return { ...held, backend: new DynamoBackend({ client: held.client, tableName, gapTimeoutMs: 5000 }), pick: seededRandom(seed) };
      }),
    );
    const reader = new DynamoBackend({ client: ddb!.newClient(), tableName, pollIntervalMs: 20, gapTimeoutMs: 5000 });
    // Meanwhile three nodes catch up on the whole Endpoints collection, each from where it last looked, as
    // deployed agents do every poll: through the reader's window of the feed (dynamodb.ts FeedWindow),
    // growing while transactions land out of order. Each node's changes, joined, must be the feed's.
    const nodes = [0, 1, 2].map((i) => ({ at: 0, events: [] as WatchEvent[], pause: seededRandom(500 + i) }));
    const catchUp = async (node: (typeof nodes)[number]) => {
      const ac = new AbortController();
      for await (const batch of reader.watch(ENDPOINTS, node.at, ac.signal, 0, { prevKv: false })) {
        ac.abort();
        node.events.push(...batch.events);
        node.at = batch.revision;
        return;
      }
    };
    let writing = true;
    const following = Promise.all(
      nodes.map(async (node) => {
        while (writing) {
          await catchUp(node);
          await new Promise((r) => setTimeout(r, node.pause() * 150));
        }
      }),
    );
    try {
      const expected = new Set(['KeyExists', 'NotFound', 'Conflict']);
      const outcomes = new Map<string, number>();
      await Promise.all(
        writers.map(async (w, n) => {
          for (let i = 0; i < 40; i++) {
            const key = keys[Math.floor(w.pick() * keys.length)]!;
            const op = w.pick();
            const node = ['n1', 'n2', undefined][Math.floor(w.pick() * 3)];
            const value = JSON.stringify({ spec: node ? { nodeName: node } : {}, by: `w${n}-${i}` });
            const kind = op < 0.3 ? 'create' : op < 0.75 ? 'update' : 'delete';
            try {
              // Pods are counted in their namespace's group (the runaway-write guard), as the apiserver counts them.
              if (kind === 'create') await w.backend.create(key, value, key.startsWith(PODS) ? { count: { group: 'ns', limit: 1000 } } : {});
              else {
                const cur = await w.backend.get(key);
                if (!cur) continue;
                if (kind === 'update') await w.backend.update(key, value, cur.modRevision);
                else await w.backend.delete(key, cur.modRevision);
              }
              outcomes.set(kind, (outcomes.get(kind) ?? 0) + 1);
            } catch (e) {
              // Under faults a write may also give up (Unavailable) or not know whether it committed (the
              // SDK's error): no answer either way, and the log must still agree with the table.
              const code = e instanceof StorageError ? e.code : (e as Error).name;
              if (!expected.has(code) && !faults) throw e;
              outcomes.set(code, (outcomes.get(code) ?? 0) + 1);
            }
          }
        }),
      );
      writing = false;
      await following;
      // The race ran: writes of every kind landed, and some were refused on a key another writer had moved.
      for (const k of ['create', 'update', 'delete', 'KeyExists']) expect(outcomes.get(k) ?? 0, JSON.stringify([...outcomes])).toBeGreaterThan(2);
      if (faults) expect(writers.reduce((n, w) => n + [...w.proxy.injected.values()].reduce((a, b) => a + b, 0), 0)).toBeGreaterThan(5);
      const asMap = (kvs: { key: string; value: string; modRevision: number }[]) => new Map(kvs.map((kv) => [kv.key, [kv.value, kv.modRevision]]));
      const pickRev = seededRandom(99);
      for (const prefix of [PODS, ENDPOINTS]) {
        const list = await reader.list(prefix);
        const replayed = new Map<string, [string, number]>();
        // The replay's state after each event, to hold lists at older revisions to (they undo the log).
        const states: [number, Map<string, [string, number]>][] = [[0, new Map()]];
        let last = 0;
        const events = await watchTo(reader, 0, list.revision, prefix);
        for (const e of events) {
          const at = `${e.type} of ${e.kv.key} at ${e.kv.modRevision}`;
          expect(e.kv.modRevision, at).toBeGreaterThan(last); // one order
          last = e.kv.modRevision;
          // A history that could have happened: a create of an absent key, an update or delete of the value
          // the replay holds (a later write can hide a wrong one from the end state, not from this).
          const had = replayed.get(e.kv.key);
          if (e.type === 'create') expect(had, at).toBeUndefined();
          else expect(e.prevKv?.modRevision, at).toBe(had?.[1]);
          if (e.type === 'delete') replayed.delete(e.kv.key);
          else replayed.set(e.kv.key, [e.kv.value, e.kv.modRevision]);
          states.push([e.kv.modRevision, new Map(replayed)]);
        }
        expect(asMap(list.kvs), prefix).toEqual(replayed);
        // A list at an older revision (the log undone back to it) is the replay's state then.
        for (let i = 0; i < 4; i++) {
          const rev = 1 + Math.floor(pickRev() * list.revision);
          const then = [...states].reverse().find(([r]) => r <= rev)![1];
          expect(asMap((await reader.list(prefix, { revision: rev })).kvs), `${prefix} at ${rev}`).toEqual(then);
        }
        // Endpoints are watched through their change feed: without previous values, the same changes.
        if (prefix === ENDPOINTS) {
          const bare = await watchTo(reader, 0, list.revision, prefix, { prevKv: false });
          expect(bare.map((e) => [e.type, e.kv.key, e.kv.value, e.kv.modRevision])).toEqual(events.map((e) => [e.type, e.kv.key, e.kv.value, e.kv.modRevision]));
          for (const [i, node] of nodes.entries()) {
            expect(node.at, `node ${i} caught up during the writes`).toBeGreaterThan(0);
            while (node.at < list.revision) await catchUp(node);
            expect(node.events.map((e) => [e.type, e.kv.key, e.kv.value, e.kv.modRevision]), `node ${i}`).toEqual(events.map((e) => [e.type, e.kv.key, e.kv.value, e.kv.modRevision]));
          }
        }
        // Pods by node, read through the index (its items carry the pods' values), are the list's; and the
        // namespace's count is the pods there are, whatever creates and deletes raced or lost their answers.
        if (prefix === PODS) {
          expect(await reader.count('ns')).toBe(list.kvs.length);
          for (const node of ['n1', 'n2']) {
            const byIndex = await reader.list(PODS, { index: { name: 'pods-by-node', value: node }, filter: (kv) => nodeOf(kv.value) === node });
            expect(asMap(byIndex.kvs), node).toEqual(asMap(list.kvs.filter((kv) => nodeOf(kv.value) === node)));
          }
        }
      }
      await reader.close();
    } finally {
      writing = false;
      for (const w of writers) {
        await w.backend.close();
        await w.close();
      }
    }
  }, 60_000);

  it('a writer slower than gapTimeoutMs finds its revision filled and writes again under a new one, once', async () => {
    const tableName = await freshTable();
    const { proxy, client: slowClient, close } = await heldBackClient(() => 900);
    try {
      const slow = new DynamoBackend({ client: slowClient, tableName, gapTimeoutMs: 200 });
      const reader = new DynamoBackend({ client: ddb!.newClient(), tableName, pollIntervalMs: 20, gapTimeoutMs: 200 });
      const slowWrite = slow.create(`${PODS}ns/slow`, '"slow"');
      await new Promise((r) => setTimeout(r, 100)); // revision 1 taken, its transaction on the way
      // The reader sees revision 1 handed out and still empty: after 200 ms it fills it.
      expect(await reader.currentRevision()).toBe(1);
      expect((await logItem(tableName, 1))?.gap?.BOOL).toBe(true);
      // The writer's transaction is cancelled on the filled slot; it writes again as revision 2.
      const kv = await slowWrite;
      expect(kv.modRevision).toBe(2);
      expect(proxy.requests.get('TransactWriteItems')).toBe(2);
      const events = await watchTo(reader, 0, 2);
      expect(events.map((e) => [e.type, e.kv.value, e.kv.modRevision])).toEqual([['create', '"slow"', 2]]);
      expect((await reader.get(`${PODS}ns/slow`))?.modRevision).toBe(2);
      await Promise.all([slow.close(), reader.close()]);
    } finally {
      await close();
    }
  }, 30_000);

  it('a table written before the log partitions: its log in "log" is still read, new writes go to the partitions', async () => {
    const tableName = await freshTable();
    const send = (Item: Record<string, AttributeValue>) => ddb!.client.send(new PutItemCommand({ TableName: tableName, Item }));
    const ttl = { N: String(Math.ceil(Date.now() / 1000) + 3600) };
    // What the older Skiff wrote for two creates and an update: objects, the counter, one log partition.
    await send({ pk: { S: 'obj#/registry/core/pods/' }, sk: { S: 'ns/old' }, value: { S: '"v2"' }, createRev: { N: '1' }, modRev: { N: '3' } });
    await send({ pk: { S: 'obj#/registry/core/pods/' }, sk: { S: 'ns/two' }, value: { S: '"t"' }, createRev: { N: '2' }, modRev: { N: '2' } });
    await send({ pk: { S: 'meta' }, sk: { S: 'revision' }, rev: { N: '3' } });
    await send({ pk: { S: 'log' }, sk: { S: pad(1) }, key: { S: `${PODS}ns/old` }, type: { S: 'create' }, value: { S: '"v1"' }, createRev: { N: '1' }, ttl });
    await send({ pk: { S: 'log' }, sk: { S: pad(2) }, key: { S: `${PODS}ns/two` }, type: { S: 'create' }, value: { S: '"t"' }, createRev: { N: '2' }, ttl });
    await send({ pk: { S: 'log' }, sk: { S: pad(3) }, key: { S: `${PODS}ns/old` }, type: { S: 'update' }, value: { S: '"v2"' }, createRev: { N: '1' }, prevRev: { N: '1' }, prevValue: { S: '"v1"' }, ttl });

    const b = new DynamoBackend({ client: ddb!.newClient(), tableName, pollIntervalMs: 20, gapTimeoutMs: 300 });
    const next = await b.update(`${PODS}ns/old`, '"v3"', 3);
    expect(next.modRevision).toBe(4);
    // Written now: compressed (z, zp), next to the uncompressed items from before.
    const written = (await logItem(tableName, 4))!;
    expect(written.value).toBeUndefined();
    expect([itemValue(written), itemPrevValue(written)]).toEqual(['"v3"', '"v2"']);
    const events = await watchTo(b, 0, 4);
    expect(events.map((e) => [e.type, e.kv.value, e.prevKv?.value])).toEqual([
      ['create', '"v1"', undefined],
      ['create', '"t"', undefined],
      ['update', '"v2"', '"v1"'],
      ['update', '"v3"', '"v2"'],
    ]);
    // A list at an older revision undoes the later writes from both kinds of log item.
    expect((await b.list(PODS, { revision: 2 })).kvs.map((kv) => kv.value)).toEqual(['"v1"', '"t"']);
    await b.close();
  }, 30_000);
});

describe.runIf(!!ddb)('DynamoDB values are stored compressed (value-codec.ts)', () => {
  // A pod as the agents and kubectl make them: the shape the preset dictionary holds, with values of its own.
  const pod = JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'shop-7d9f8-x2k4p', generateName: 'shop-7d9f8-', namespace: 'team-ä', uid: '6f1c2b1e-9a55-4c3e-8d7e-0b1f3c2d4e5f', resourceVersion: '123456', creationTimestamp: '2026-12-05T09:00:00Z', labels: { app: 'shop', 'pod-template-hash': '7d9f8' }, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'shop-7d9f8', uid: '0a1b2c3d-1111-2222-3333-444455556666', controller: true, blockOwnerDeletion: true }] },
    spec: { containers: [{ name: 'shop', image: 'registry.example/shop:4.2.1', ports: [{ containerPort: 8080, protocol: 'TCP' }], env: [{ name: 'MODE', value: 'production' }], resources: { requests: { cpu: '250m', memory: '256Mi' } }, terminationMessagePath: '/dev/termination-log', terminationMessagePolicy: 'File', imagePullPolicy: 'IfNotPresent' }], restartPolicy: 'Always', terminationGracePeriodSeconds: 30, dnsPolicy: 'ClusterFirst', serviceAccountName: 'default', nodeName: 'ip-10-0-1-23.ec2.internal', schedulerName: 'default-scheduler', tolerations: [{ key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 }, { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 }], priority: 0, enableServiceLinks: true, preemptionPolicy: 'PreemptLowerPriority' },
    status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True', lastProbeTime: null, lastTransitionTime: '2026-12-05T09:00:05Z' }, { type: 'PodScheduled', status: 'True', lastProbeTime: null, lastTransitionTime: '2026-12-05T09:00:01Z' }], hostIP: '10.0.1.23', podIP: '10.244.3.17', podIPs: [{ ip: '10.244.3.17' }], startTime: '2026-12-05T09:00:01Z', containerStatuses: [{ name: 'shop', state: { running: { startedAt: '2026-12-05T09:00:04Z' } }, lastState: {}, ready: true, restartCount: 0, image: 'registry.example/shop:4.2.1', imageID: 'docker-pullable://registry.example/shop@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08', containerID: 'docker://4b7e2f0c1d9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c', started: true }], qosClass: 'Burstable' },
  });
  const key = `${PODS}team-ä/shop-7d9f8-x2k4p`;

  it('an object item and its log items hold z (and zp), a fraction of the JSON; reads give back the same string', async () => {
    const tableName = await freshTable();
    const b = new DynamoBackend({ client: ddb!.newClient(), tableName, pollIntervalMs: 20 });
    const created = await b.create(key, pod);
    const updated = pod.replace('"restartCount":0', '"restartCount":1');
    await b.update(key, updated, created.modRevision);
    const obj = (await ddb!.client.send(new GetItemCommand({ TableName: tableName, Key: { pk: { S: 'obj#/registry/core/pods/' }, sk: { S: 'team-ä/shop-7d9f8-x2k4p' } }, ConsistentRead: true }))).Item!;
    expect(obj.value).toBeUndefined();
    expect(itemValue(obj)).toBe(updated);
    // What DynamoDB bills by: the stored bytes. A third of the JSON at most for a pod (about an eighth here).
    expect(obj.z!.B!.length).toBeLessThan(Buffer.byteLength(pod) / 3);
    const log = (await logItem(tableName, created.modRevision + 1))!;
    expect([itemValue(log), itemPrevValue(log)]).toEqual([updated, pod]);
    expect((await b.get(key))?.value).toBe(updated);
    const events = await watchTo(b, 0, created.modRevision + 1);
    expect(events.map((e) => [e.type, e.kv.value === updated, e.prevKv?.value === pod])).toEqual([
      ['create', false, false],
      ['update', true, true],
    ]);
  });

  it("a stream image's value: bytes from the SDK, base64 in a Lambda event; an unknown format is an error, not a wrong value", () => {
    const z = encodeValue(pod);
    const image = { pk: { S: 'obj#/registry/core/pods/' }, sk: { S: 'team-ä/shop-7d9f8-x2k4p' }, createRev: { N: '5' }, modRev: { N: '6' } };
    expect(objectFromImage({ ...image, z: { B: z } })).toEqual({ key, value: pod, createRevision: 5, modRevision: 6 });
    expect(objectFromImage({ ...image, z: { B: Buffer.from(z).toString('base64') as unknown as Uint8Array } })?.value).toBe(pod);
    expect(objectFromImage({ ...image, value: { S: pod } })?.value).toBe(pod); // written before compression
    expect(objectFromImage(image)).toBeUndefined();
    expect(() => decodeValue(Uint8Array.from([9, ...z.subarray(1)]))).toThrow('unknown format 9');
  });
});

describe.runIf(!!ddb)('DynamoDB: a write after a read of the same object does not read it again', () => {
  /** A client that counts its GetItem requests. */
  function countingClient(): { client: DynamoDBClient; gets: () => number } {
    const client = ddb!.newClient();
    let n = 0;
    client.middlewareStack.add(
      (next, context) => async (args) => {
        if ((context as { commandName?: string }).commandName === 'GetItemCommand') n++;
        return next(args);
      },
      { step: 'initialize', name: 'countGets' },
    );
    return { client, gets: () => n };
  }

  it('get then update (a PATCH): one GetItem; a write then the next write: none', async () => {
    const tableName = await freshTable();
    const { client, gets } = countingClient();
    const b = new DynamoBackend({ client, tableName, pollIntervalMs: 20 });
    const c = await b.create(`${PODS}ns/a`, '"v1"');
    const before = gets();
    const read = (await b.get(`${PODS}ns/a`))!;
    const u1 = await b.update(`${PODS}ns/a`, '"v2"', read.modRevision);
    expect(gets() - before).toBe(1);
    const u2 = await b.update(`${PODS}ns/a`, '"v3"', u1.modRevision);
    await b.delete(`${PODS}ns/a`, u2.modRevision);
    expect(gets() - before).toBe(1);
    const events = await watchTo(b, c.modRevision - 1, u2.modRevision + 1);
    expect(events.map((e) => [e.type, e.kv.value, e.prevKv?.value])).toEqual([
      ['create', '"v1"', undefined],
      ['update', '"v2"', '"v1"'],
      ['update', '"v3"', '"v2"'],
      ['delete', '"v3"', '"v3"'],
    ]);
  });

  it('what another process wrote since is not overwritten: a stale modRev is a Conflict, a moved count group is kept', async () => {
    const tableName = await freshTable();
    const a = new DynamoBackend({ client: ddb!.newClient(), tableName, pollIntervalMs: 20, gapTimeoutMs: 300 });
    const other = new DynamoBackend({ client: ddb!.newClient(), tableName, pollIntervalMs: 20, gapTimeoutMs: 300 });
    const c = await a.create(`${PODS}ns/b`, '"v1"');
    const seen = (await a.get(`${PODS}ns/b`))!;
    const theirs = await other.update(`${PODS}ns/b`, '"theirs"', c.modRevision);
    await expect(a.update(`${PODS}ns/b`, '"mine"', seen.modRevision)).rejects.toMatchObject({ code: 'Conflict' });
    expect((await other.get(`${PODS}ns/b`))?.value).toBe('"theirs"');
    // Written at the revision they left, it goes through.
    const mine = await a.update(`${PODS}ns/b`, '"mine"', theirs.modRevision);
    // The other process counts the object into a group (no new modRev): our write from memory must keep it.
    expect(await other.countExisting(`${PODS}ns/b`, 'ns')).toBe(true);
    await a.update(`${PODS}ns/b`, '"mine2"', mine.modRevision);
    expect(await a.count('ns')).toBe(1);
    await a.delete(`${PODS}ns/b`);
    expect(await a.count('ns')).toBe(0);
  });
});

describe.runIf(!!ddb)('DynamoDB change feeds (Services, Endpoints)', () => {
  const SVC = '/registry/core/services/';

  /** A backend whose client records the partition of every Query it sends, and of every key it batch-reads. */
  function recording(tableName: string) {
    const client = ddb!.newClient();
    const queried: string[] = [];
    const batchRead: string[] = [];
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as { ExpressionAttributeValues?: Record<string, { S?: string }>; RequestItems?: Record<string, { Keys: Record<string, AttributeValue>[] }> };
        if (context.commandName === 'QueryCommand') queried.push(String(input.ExpressionAttributeValues?.[':pk']?.S));
        if (context.commandName === 'BatchGetItemCommand') for (const r of Object.values(input.RequestItems ?? {})) batchRead.push(...r.Keys.map((k) => String(k.pk?.S)));
        return next(args);
      },
      { step: 'initialize' },
    );
    return { backend: new DynamoBackend({ client, tableName, pollIntervalMs: 20 }), queried, batchRead };
  }

  async function events(b: DynamoBackend, prefix: string, from: number, until: number, opts?: WatchOptions) {
    const ac = new AbortController();
    const out: WatchEvent[] = [];
    try {
      for await (const batch of b.watch(prefix, from, ac.signal, 0, opts)) {
        out.push(...batch.events);
        if (batch.revision >= until) return out;
      }
    } finally {
      ac.abort();
    }
    return out;
  }

  it("a watch of Services reads the Services' changes, not every write of the cluster; it sees what the log says", async () => {
    const tableName = await freshTable();
    const w = new DynamoBackend({ client: ddb!.newClient(), tableName });
    const start = await w.currentRevision();
    const a = await w.create(`${SVC}ns1/a`, '"a1"');
    for (let i = 0; i < 30; i++) await w.create(`${PODS}ns1/p${i}`, '"p"'); // other writes between
    const a2 = await w.update(`${SVC}ns1/a`, '"a2"', a.modRevision);
    await w.create(`${SVC}ns2/b`, '"b"');
    await w.delete(`${SVC}ns1/a`);
    const head = await w.currentRevision();
    const { backend: r, queried } = recording(tableName);
    const got = await events(r, SVC, start, head);
    expect(got.map((e) => [e.type, e.kv.key.slice(SVC.length), e.kv.value, e.prevKv?.value])).toEqual([
      ['create', 'ns1/a', '"a1"', undefined],
      ['update', 'ns1/a', '"a2"', '"a1"'],
      ['create', 'ns2/b', '"b"', undefined],
      ['delete', 'ns1/a', '"a2"', '"a2"'],
    ]);
    expect(got[1]!.kv.modRevision).toBe(a2.modRevision);
    expect(queried.filter((pk) => pk.startsWith('log'))).toEqual([]);
    expect(queried.filter((pk) => pk === `chg#${SVC}`).length).toBeGreaterThan(0);
    // One namespace's watch: only its changes.
    expect((await events(r, `${SVC}ns2/`, start, head)).map((e) => e.kv.key)).toEqual([`${SVC}ns2/b`]);
    // The same as the log says (a pods watch has no feed and reads the log).
    const { backend: viaLog } = recording(tableName);
    const podEvents = await events(viaLog, PODS, start, head);
    expect(podEvents).toHaveLength(30);
    await Promise.all([w.close(), r.close(), viaLog.close()]);
  }, 30_000);

  it('a small change rides on its feed item without its previous value (no log item read); a big one, one written before changes rode, or a previous value asked for, is read from the log', async () => {
    const tableName = await freshTable();
    const w = new DynamoBackend({ client: ddb!.newClient(), tableName });
    const start = await w.currentRevision();
    const small = await w.create(`${SVC}ns/small`, JSON.stringify({ spec: { ports: [{ port: 80 }] } }));
    const small2 = await w.update(`${SVC}ns/small`, JSON.stringify({ spec: { ports: [{ port: 81 }] } }), small.modRevision);
    await w.delete(`${SVC}ns/small`);
    const head = await w.currentRevision();
    const { backend: r1, batchRead: b1 } = recording(tableName);
    const got1 = await events(r1, SVC, start, head, { prevKv: false });
    expect(got1.map((e) => [e.type, e.kv.value, e.prevKv?.value, e.kv.createRevision])).toEqual([
      ['create', '{"spec":{"ports":[{"port":80}]}}', undefined, small.createRevision],
      ['update', '{"spec":{"ports":[{"port":81}]}}', undefined, small.createRevision],
      ['delete', '{"spec":{"ports":[{"port":81}]}}', undefined, small.createRevision],
    ]);
    expect(b1.filter((pk) => pk.startsWith('log#'))).toEqual([]);
    // The feed item holds no previous value: a carried update is about half its log item.
    const item = await ddb!.client.send(new GetItemCommand({ TableName: tableName, Key: { pk: { S: `chg#${SVC}` }, sk: { S: String(small2.modRevision).padStart(20, '0') } }, ConsistentRead: true }));
    expect(item.Item?.z).toBeDefined();
    expect(item.Item?.zp).toBeUndefined();
    // Asked for previous values (the default): the update's and the delete's log items are read, not the create's.
    const { backend: r1b, batchRead: b1b } = recording(tableName);
    const got1b = await events(r1b, SVC, start, head);
    expect(got1b.map((e) => [e.type, e.kv.value, e.prevKv?.value])).toEqual([
      ['create', '{"spec":{"ports":[{"port":80}]}}', undefined],
      ['update', '{"spec":{"ports":[{"port":81}]}}', '{"spec":{"ports":[{"port":80}]}}'],
      ['delete', '{"spec":{"ports":[{"port":81}]}}', '{"spec":{"ports":[{"port":81}]}}'],
    ]);
    // (each revision's log item and its companion key: 2 keys a revision)
    expect([...new Set(b1b.filter((pk) => pk.startsWith('log#')))]).toEqual([`log#${small2.modRevision % 16}`, `log#${head % 16}`]);
    await r1b.close();

    // 4 KB of random base64, which deflate cannot shrink below 3 KB: over what a feed item carries, so its log item is read.
    const noise = randomBytes(3000).toString('base64');
    const mark = await w.currentRevision();
    const big = await w.create(`${SVC}ns/big`, JSON.stringify({ noise }));
    const { backend: r2, batchRead: b2 } = recording(tableName);
    const got2 = await events(r2, SVC, mark, big.modRevision);
    expect(got2.map((e) => [e.type, e.kv.key, JSON.parse(e.kv.value).noise === noise])).toEqual([['create', `${SVC}ns/big`, true]]);
    expect(b2.filter((pk) => pk.startsWith('log#')).length).toBeGreaterThan(0);

    // A feed item as written before changes rode on it (its key alone): the log item is read.
    const mark2 = await w.currentRevision();
    const old = await w.create(`${SVC}ns/old`, '"old"');
    await ddb!.client.send(
      new UpdateItemCommand({ TableName: tableName, Key: { pk: { S: `chg#${SVC}` }, sk: { S: String(old.modRevision).padStart(20, '0') } }, UpdateExpression: 'REMOVE #t, z, createRev', ExpressionAttributeNames: { '#t': 'type' } }),
    );
    const { backend: r3, batchRead: b3 } = recording(tableName);
    expect((await events(r3, SVC, mark2, old.modRevision)).map((e) => [e.type, e.kv.value, e.kv.createRevision])).toEqual([['create', '"old"', old.createRevision]]);
    expect(b3.filter((pk) => pk.startsWith('log#')).length).toBeGreaterThan(0);
    await Promise.all([w.close(), r1.close(), r2.close(), r3.close()]);
  }, 30_000);

  it('a table from before the feeds: watches read the log until startFeeds() marks them, then from its revision on', async () => {
    const tableName = await freshTable();
    await ddb!.client.send(new DeleteItemCommand({ TableName: tableName, Key: { pk: { S: 'meta' }, sk: { S: `feed#${SVC}` } } }));
    const w = new DynamoBackend({ client: ddb!.newClient(), tableName });
    await w.create(`${SVC}ns/old`, '"old"');
    const before = await w.currentRevision();
    const { backend: r1, queried: q1 } = recording(tableName);
    expect((await events(r1, SVC, 0, before)).map((e) => e.kv.value)).toEqual(['"old"']);
    expect(q1.some((pk) => pk.startsWith('log#'))).toBe(true);
    await w.startFeeds();
    await w.startFeeds(); // again: nothing changes
    const marked = await ddb!.client.send(new GetItemCommand({ TableName: tableName, Key: { pk: { S: 'meta' }, sk: { S: `feed#${SVC}` } }, ConsistentRead: true }));
    expect(marked.Item?.rev?.N).toBe(String(before));
    await w.create(`${SVC}ns/new`, '"new"');
    const head = await w.currentRevision();
    const { backend: r2, queried: q2 } = recording(tableName);
    expect((await events(r2, SVC, before, head)).map((e) => e.kv.value)).toEqual(['"new"']);
    expect(q2.filter((pk) => pk.startsWith('log'))).toEqual([]);
    // From before the mark: the log still, and both writes.
    const { backend: r3, queried: q3 } = recording(tableName);
    expect((await events(r3, SVC, 0, head)).map((e) => e.kv.value)).toEqual(['"old"', '"new"']);
    expect(q3.some((pk) => pk.startsWith('log#'))).toBe(true);
    await Promise.all([w.close(), r1.close(), r2.close(), r3.close()]);
  }, 30_000);
});
