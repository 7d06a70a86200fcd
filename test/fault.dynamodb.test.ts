// Fault suite, DynamoDB: writes through the DynamoDB backend while a proxy in front of moto throttles
// (ProvisionedThroughputExceeded, Throttling), fails (500s), cancels transactions with TransactionConflict,
// and cuts connections after moto has applied a request. Whatever the faults, every acknowledged create,
// update and delete is in the final state exactly once, nothing is applied twice, no write comes back as a
// false KeyExists/Conflict/NotFound, revisions strictly increase and the log (a watch from 0) replays to
// exactly the listed state. The keys are pods bound to nodes that every update moves between, so the
// pods-by-node index (an item put and deleted in each write's own transaction) must end exact too: each
// node's indexed list equals the filtered full list.

import { afterAll, describe, expect, it } from 'vitest';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoBackend, ensureTable } from '../lambdas/storage/dynamodb.ts';
import { StorageError, type KeyValue, type WatchEvent } from '../lambdas/storage/backend.ts';
import { errorResponse } from '../lambdas/apiserver/app.ts';
import { dynamoTestEndpoint, uniqueTableName } from './support/dynamodb.ts';
import { startFaultyProxy } from './support/faulty-proxy.ts';

const ddb = await dynamoTestEndpoint();
if (!ddb) console.warn('fault.dynamodb: no DynamoDB endpoint, fault suite SKIPPED');
afterAll(async () => ddb?.stop());

const PREFIX = '/registry/core/pods/fault/';
const onNode = (node: string) => (kv: KeyValue) => (JSON.parse(kv.value) as { spec: { nodeName: string } }).spec.nodeName === node;
const WRITERS = 4;
const KEYS_PER_WRITER = 8;
const UPDATES_PER_WRITER = 10;
const SEED = 20261203;

/** ok: 2xx; refused: Unavailable (nothing written, retry); ambiguous: the client cannot know. */
type Outcome = 'ok' | 'refused' | 'ambiguous';
/** One write a writer attempted: the key, the value it wrote (undefined: a delete), and what it was told. */
interface Attempt {
  key: string;
  value?: string;
  outcome: Outcome;
}

describe.skipIf(!ddb)('DynamoDB backend behind a faulty endpoint', () => {
  it('loses, doubles and falsely refuses no write under throttling, 500s, transaction conflicts and dropped connections', async () => {
    const tableName = uniqueTableName('skiff-fault');
    await ensureTable(ddb!.client, tableName);
    const proxy = await startFaultyProxy({
      target: ddb!.endpoint,
      seed: SEED,
      rates: { throttle: 0.04, throttling: 0.04, error500: 0.04, conflict: 0.05, dropAfter: 0.06, error500After: 0.04 },
    });
    const clients: DynamoDBClient[] = [];
    try {
      const attempts: Attempt[] = [];
      const falseErrors: string[] = [];

      // Each writer stands for its own process (its own client and backend) and owns its keys, so any
      // KeyExists, Conflict or NotFound it is told is false: nobody else touches them.
      const writer = async (w: number) => {
        const client = new DynamoDBClient({
          endpoint: proxy.endpoint,
          region: 'us-east-1',
          credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
          maxAttempts: 6,
        });
        clients.push(client);
        const store = new DynamoBackend({ client, tableName, pollIntervalMs: 50 });
        // A write the client was not told the outcome of (the SDK gave up): learn it by reading.
        const attempt = async (key: string, value: string | undefined, op: () => Promise<KeyValue>): Promise<KeyValue | undefined> => {
          try {
            const kv = await op();
            attempts.push({ key, value, outcome: 'ok' });
            return kv;
          } catch (e) {
            if (e instanceof StorageError && e.code === 'Unavailable') {
              attempts.push({ key, value, outcome: 'refused' });
              return undefined;
            }
            if (e instanceof StorageError) {
              falseErrors.push(`${key}: ${e.code} ${e.message}`);
              return undefined;
            }
            attempts.push({ key, value, outcome: 'ambiguous' });
            return undefined;
          }
        };
        const readBack = async (key: string) => {
          for (;;) {
            try {
              return await store.get(key);
            } catch {
              // faults on the read: try again
            }
          }
        };

        for (let j = 0; j < KEYS_PER_WRITER; j++) {
          const key = `${PREFIX}w${w}-k${j}`;
          const value = JSON.stringify({ w, j, spec: { nodeName: `n${(w + j) % 2}` } });
          await attempt(key, value, () => store.create(key, value));
          if (j % 3 === 0 && (await readBack(key))) await attempt(key, undefined, () => store.delete(key));
        }

        const chain = `${PREFIX}w${w}-chain`;
        const first = JSON.stringify({ w, seq: 0, spec: { nodeName: 'n0' } });
        let cur = (await attempt(chain, first, () => store.create(chain, first))) ?? (await readBack(chain));
        for (let seq = 1; seq <= UPDATES_PER_WRITER && cur; seq++) {
          const value = JSON.stringify({ w, seq, spec: { nodeName: `n${seq % 2}` } });
          const expected = cur.modRevision;
          cur = (await attempt(chain, value, () => store.update(chain, value, expected))) ?? (await readBack(chain));
        }
      };
      await Promise.all(Array.from({ length: WRITERS }, (_, w) => writer(w)));
      proxy.setEnabled(false);

      // The faults happened: at least one transaction was applied and its answer lost.
      const injected = Object.fromEntries(proxy.injected);
      console.log('fault.dynamodb: faults injected', injected, 'requests', Object.fromEntries(proxy.requests));
      expect(injected['TransactWriteItems/dropAfter'] ?? 0).toBeGreaterThan(0);
      expect((injected['TransactWriteItems/conflict'] ?? 0) + (injected['TransactWriteItems/throttle'] ?? 0)).toBeGreaterThan(0);

      expect(falseErrors).toEqual([]);
      const acked = attempts.filter((a) => a.outcome === 'ok');
      expect(acked.length).toBeGreaterThan(WRITERS * (KEYS_PER_WRITER + UPDATES_PER_WRITER) * 0.8);

      // The final state and the whole log, read without faults.
      const reader = new DynamoBackend({ client: ddb!.newClient(), tableName, pollIntervalMs: 50 });
      const state = await reader.list(PREFIX);
      const head = await reader.currentRevision();
      expect(state.revision).toBe(head);
      const events: WatchEvent[] = [];
      const revisions: number[] = [];
      const ctl = new AbortController();
      for await (const batch of reader.watch(PREFIX, 0, ctl.signal, 200)) {
        for (const e of batch.events) {
          events.push(e);
          revisions.push(e.kv.modRevision);
        }
        if (batch.revision >= head) break;
      }
      ctl.abort();

      // In order, each revision once, none past the head. Revisions a write abandoned (it lost a race or a
      // fault after taking one) are gaps the watch skips; how many there were is printed.
      expect(revisions.every((r, i) => r > (revisions[i - 1] ?? 0) && r <= head)).toBe(true);
      console.log(`fault.dynamodb: ${revisions.length} events over ${head} revisions (${head - revisions.length} abandoned)`);

      // The log replays to exactly the listed state.
      const replayed = new Map<string, string>();
      for (const e of events) {
        if (e.type === 'delete') replayed.delete(e.kv.key);
        else replayed.set(e.kv.key, e.kv.value);
      }
      expect(Object.fromEntries(state.kvs.map((kv) => [kv.key, kv.value]))).toEqual(Object.fromEntries(replayed));

      // Each write is applied at most once, and each acknowledged one exactly once.
      const applied = new Map<string, number>();
      for (const e of events) {
        const id = `${e.type === 'delete' ? 'delete' : 'put'} ${e.kv.key} ${e.type === 'delete' ? '' : e.kv.value}`;
        applied.set(id, (applied.get(id) ?? 0) + 1);
      }
      for (const [id, n] of applied) expect(n, id).toBe(1);
      const idOf = (a: Attempt) => (a.value === undefined ? `delete ${a.key} ` : `put ${a.key} ${a.value}`);
      for (const a of acked) expect(applied.get(idOf(a)), `acknowledged ${idOf(a)}`).toBe(1);
      for (const a of attempts.filter((x) => x.outcome === 'refused')) expect(applied.get(idOf(a)), `refused ${idOf(a)}`).toBeUndefined();

      // Every acknowledged write is in the final state: the last write to each key says what it holds.
      const final = new Map(state.kvs.map((kv) => [kv.key, kv.value]));
      const lastAcked = new Map<string, Attempt>();
      for (const a of acked) lastAcked.set(a.key, a);
      for (const [key, a] of lastAcked) {
        const later = attempts.slice(attempts.indexOf(a) + 1).some((b) => b.key === key && b.outcome === 'ambiguous');
        if (!later) expect(final.get(key), key).toBe(a.value);
      }

      // The index agrees with the objects: each node's list through it is the filtered full list.
      for (const node of ['n0', 'n1']) {
        const indexed = await reader.list(PREFIX, { filter: onNode(node), index: { name: 'pods-by-node', value: node } });
        expect(indexed.kvs, node).toEqual(state.kvs.filter(onNode(node)));
        expect(indexed.kvs.length).toBeGreaterThan(0);
      }
      await reader.close();
    } finally {
      for (const c of clients) c.destroy();
      await proxy.close();
    }
  }, 90_000);

  it('a write throttled past the SDK\'s retries is refused as Unavailable (429, retry), having written nothing', async () => {
    const tableName = uniqueTableName('skiff-fault-throttle');
    await ensureTable(ddb!.client, tableName);
    const proxy = await startFaultyProxy({ target: ddb!.endpoint, seed: SEED, rates: { throttle: 1 }, ops: ['TransactWriteItems'] });
    const client = new DynamoDBClient({ endpoint: proxy.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' }, maxAttempts: 2 });
    try {
      const store = new DynamoBackend({ client, tableName });
      const err = await store.create(`${PREFIX}throttled`, '{}').catch((e) => e);
      expect(err).toBeInstanceOf(StorageError);
      expect(err.code).toBe('Unavailable');
      expect(err.message).toContain('ProvisionedThroughputExceededException');
      const answer = errorResponse(err);
      expect(answer.status).toBe(429);
      expect(answer.headers['retry-after']).toBe('1');
      expect(proxy.injected.get('TransactWriteItems/throttle')).toBe(2); // the SDK's two attempts
      const reader = new DynamoBackend({ client: ddb!.newClient(), tableName });
      expect(await reader.get(`${PREFIX}throttled`)).toBeUndefined();
      // The revision it took is a gap: no event, nothing in a list.
      const head = await reader.currentRevision();
      expect(head).toBeLessThanOrEqual(1);
      expect((await reader.list(PREFIX)).kvs).toEqual([]);
      const ctl = new AbortController();
      for await (const batch of reader.watch(PREFIX, 0, ctl.signal, 100)) {
        expect(batch.events).toEqual([]);
        if (batch.revision >= head) break;
      }
      ctl.abort();
    } finally {
      client.destroy();
      await proxy.close();
    }
  }, 30_000);
});
