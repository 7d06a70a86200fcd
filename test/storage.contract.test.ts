// The storage contract (lambdas/storage/backend.ts), one suite run against every backend: SQLite on a
// file in a temp dir, and DynamoDB on moto server (or SKIFF_DYNAMODB_ENDPOINT). A second handle on the
// same file or table stands for a second process; closing and opening a new handle is a restart.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { StorageError, type Backend, type KeyValue, type ListResult, type StorageErrorCode, type WatchBatch, type WatchEvent } from '../lambdas/storage/backend.ts';
import { SqliteBackend } from '../lambdas/storage/sqlite.ts';
import { DynamoBackend, ensureTable, MAX_VALUE_BYTES } from '../lambdas/storage/dynamodb.ts';
import { dynamoTestEndpoint, uniqueTableName } from './support/dynamodb.ts';

interface Store {
  backend: Backend;
  /** Another handle on the same store, as another process (or the same one, restarted) would open it. */
  open(): Promise<Backend>;
}

interface Subject {
  name: string;
  skip: boolean;
  fresh(): Promise<Store>;
  /** A fresh store whose compact() makes every revision below the current one unavailable. */
  freshCompacting(): Promise<Store & { compact(): Promise<void> }>;
}

const PODS = '/registry/core/pods/';
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---- subjects ----

const opened: Backend[] = [];
const tempDirs: string[] = [];
afterEach(async () => {
  for (const b of opened.splice(0)) await b.close();
});
afterAll(() => {
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});
function track<B extends Backend>(b: B): B {
  opened.push(b);
  return b;
}

const sqlite: Subject = {
  name: 'SqliteBackend',
  skip: false,
  async fresh() {
    const dir = mkdtempSync(join(tmpdir(), 'skiff-storage-'));
    tempDirs.push(dir);
    const file = join(dir, 'skiff.db');
    return { backend: track(new SqliteBackend(file)), open: async () => track(new SqliteBackend(file)) };
  },
  async freshCompacting() {
    const dir = mkdtempSync(join(tmpdir(), 'skiff-storage-'));
    tempDirs.push(dir);
    const file = join(dir, 'skiff.db');
    const backend = track(new SqliteBackend(file, { compactIntervalMs: 0 }));
    return {
      backend,
      open: async () => track(new SqliteBackend(file)),
      compact: async () => void backend.compact(await backend.currentRevision()),
    };
  },
};

const ddb = await dynamoTestEndpoint();
afterAll(async () => ddb?.stop());

const dynamo: Subject = {
  name: 'DynamoBackend',
  skip: !ddb,
  async fresh() {
    const tableName = uniqueTableName();
    await ensureTable(ddb!.client, tableName);
    return {
      backend: track(new DynamoBackend({ client: ddb!.client, tableName, pollIntervalMs: 50 })),
      // A second process: its own client and its own backend on the same table.
      open: async () => track(new DynamoBackend({ client: ddb!.newClient(), tableName, pollIntervalMs: 50 })),
    };
  },
  async freshCompacting() {
    const tableName = uniqueTableName();
    await ensureTable(ddb!.client, tableName);
    // History lives as long as the log items: 1 s here. Waiting past it is compaction.
    const make = () => track(new DynamoBackend({ client: ddb!.client, tableName, pollIntervalMs: 50, logRetentionSeconds: 1 }));
    return { backend: make(), open: async () => make(), compact: () => sleep(2100) };
  },
};

// ---- helpers ----

async function storageError(p: Promise<unknown>, code: StorageErrorCode): Promise<StorageError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e, `expected StorageError ${code}`).toBeInstanceOf(StorageError);
  expect((e as StorageError).code).toBe(code);
  return e as StorageError;
}

/** Consumes a watch until a batch covers `until`; returns the batches. */
async function watchUntil(b: Backend, prefix: string, from: number, until: () => number | undefined, progressMs = 100): Promise<WatchBatch[]> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), 30_000);
  const batches: WatchBatch[] = [];
  try {
    for await (const batch of b.watch(prefix, from, ac.signal, progressMs)) {
      batches.push(batch);
      const u = until();
      if (u !== undefined && batch.revision >= u) return batches;
    }
    throw new Error(`watch ended before revision ${until()} (aborted: ${ac.signal.aborted})`);
  } finally {
    clearTimeout(timer);
    ac.abort();
  }
}

interface Write {
  type: WatchEvent['type'];
  kv: KeyValue;
}

/**
 * Two writers per handle create, update and delete random keys among `keys` (and write a neighbouring
 * collection, "/registry/core/podtemplates/", that a watch on pods must not see), until stop().
 * Every successful write is appended to `written`; losing a race (a StorageError) is expected.
 */
function startWriters(handles: Backend[], keys: string[], written: Write[] = []) {
  let stopped = false;
  let failure: unknown;
  const writer = async (h: Backend, w: number) => {
    for (let i = 0; !stopped; i++) {
      const key = i % 4 === 3 ? `/registry/core/podtemplates/ns/t${w}` : keys[Math.floor(Math.random() * keys.length)]!;
      const value = `w${w}-${i}`;
      try {
        const cur = await h.get(key);
        if (!cur) written.push({ type: 'create', kv: await h.create(key, value) });
        else if (Math.random() < 0.7 || !key.startsWith(PODS)) written.push({ type: 'update', kv: await h.update(key, value, cur.modRevision) });
        else written.push({ type: 'delete', kv: await h.delete(key, cur.modRevision) });
      } catch (e) {
        if (!(e instanceof StorageError)) throw e;
      }
      await sleep(Math.random() * 5);
    }
  };
  const running = handles.flatMap((h, i) => [writer(h, 2 * i), writer(h, 2 * i + 1)]).map((p) => p.catch((e) => void (failure ??= e)));
  return {
    written,
    /** Waits until n more writes have succeeded. */
    async waitFor(n: number) {
      const target = written.length + n;
      while (written.length < target && !failure) await sleep(5);
      if (failure) throw failure;
    },
    async stop() {
      stopped = true;
      await Promise.all(running);
      if (failure) throw failure;
    },
  };
}

/** The keys under prefix at revision rev, by replaying a complete write history. */
function stateAt(history: Write[], prefix: string, rev: number): KeyValue[] {
  const state = new Map<string, KeyValue>();
  for (const w of [...history].sort((x, y) => x.kv.modRevision - y.kv.modRevision)) {
    if (w.kv.modRevision > rev || !w.kv.key.startsWith(prefix)) continue;
    if (w.type === 'delete') state.delete(w.kv.key);
    else state.set(w.kv.key, w.kv);
  }
  return [...state.values()].sort(byKey);
}

const byKey = (x: KeyValue, y: KeyValue) => (x.key < y.key ? -1 : x.key > y.key ? 1 : 0);
const events = (batches: WatchBatch[]) => batches.flatMap((b) => b.events);
const keysOf = (kvs: KeyValue[]) => kvs.map((kv) => kv.key);

// ---- the contract ----

function contract(s: Subject) {
  describe.skipIf(s.skip)(s.name, () => {
    it('expiry: a key written with ttlSeconds is gone after it, its name free again; a later write sets or ends its expiry', async () => {
      const { backend: b, open } = await s.fresh();
      const EV = '/registry/core/events/';
      const k = (n: string) => `${EV}ns/${n}`;
      await b.create(k('short'), 'a', { ttlSeconds: 1 });
      const kept = await b.create(k('kept'), 'b', { ttlSeconds: 1 });
      const longer = await b.create(k('longer'), 'c', { ttlSeconds: 1 });
      await b.create(k('plain'), 'd');
      expect(keysOf((await b.list(EV)).kvs)).toEqual([k('kept'), k('longer'), k('plain'), k('short')]);
      await b.update(k('kept'), 'b2', kept.modRevision); // no ttlSeconds: kept for ever
      await b.update(k('longer'), 'c2', longer.modRevision, { ttlSeconds: 60 });
      const t0 = Date.now();
      while ((await b.get(k('short'))) && Date.now() - t0 < 10_000) await sleep(100);
      expect(await b.get(k('short'))).toBeUndefined();
      // Gone for every reader (another process too), and from lists; the others stay.
      const other = await open();
      expect(await other.get(k('short'))).toBeUndefined();
      expect(keysOf((await other.list(EV)).kvs)).toEqual([k('kept'), k('longer'), k('plain')]);
      expect((await b.get(k('longer')))?.value).toBe('c2');
      // Its name can be taken again, with no expiry this time.
      const again = await b.create(k('short'), 'a2');
      expect(again.value).toBe('a2');
      await sleep(1200);
      expect((await other.get(k('short')))?.value).toBe('a2');
      expect(keysOf((await b.list(EV)).kvs)).toEqual([k('kept'), k('longer'), k('plain'), k('short')]);
    });

    it('a list with an index hint (pods by node) returns what the filter alone returns, through binds, status writes, deletes', async () => {
      const { backend: b } = await s.fresh();
      const pod = (node?: string, phase = 'Pending') => JSON.stringify({ spec: node ? { nodeName: node } : {}, status: { phase } });
      const onN1 = (kv: KeyValue) => kv.value.startsWith('{') && (JSON.parse(kv.value) as { spec: { nodeName?: string } }).spec.nodeName === 'n1';
      const k = (n: string) => `${PODS}ns/${n}`;
      await b.create(k('p1'), pod('n1'));
      await b.create(k('p2'), pod('n2'));
      const p3 = await b.create(k('p3'), pod()); // unbound, then bound to n1
      await b.update(k('p3'), pod('n1'), p3.modRevision);
      const p1 = (await b.get(k('p1')))!;
      await b.update(k('p1'), pod('n1', 'Running'), p1.modRevision); // a status write keeps it on n1
      await b.delete(k('p2'));
      const p4 = await b.create(k('p4'), pod('n1'));
      await b.delete(k('p4'), p4.modRevision);
      await b.create(k('p5'), 'not json'); // no indexed value: never in the index, never matched
      const hinted = await b.list(PODS, { filter: onN1, index: { name: 'pods-by-node', value: 'n1' } });
      const plain = await b.list(PODS, { filter: onN1 });
      expect(keysOf(hinted.kvs)).toEqual([k('p1'), k('p3')]);
      expect(hinted.kvs).toEqual(plain.kvs);
      expect(hinted.revision).toBe(plain.revision);
      const onN2 = (kv: KeyValue) => kv.value.includes('"n2"');
      expect((await b.list(PODS, { filter: onN2, index: { name: 'pods-by-node', value: 'n2' } })).kvs).toEqual([]); // p2 is gone
    });

    it('create, get, update, delete: semantics and errors', async () => {
      const { backend: b } = await s.fresh();
      const k = `${PODS}default/web-1`;
      expect(await b.currentRevision()).toBe(0);
      expect(await b.get(k)).toBeUndefined();

      const c = await b.create(k, '{"v":1}');
      expect(c).toEqual({ key: k, value: '{"v":1}', createRevision: 1, modRevision: 1 });
      expect(await b.get(k)).toEqual(c);
      await storageError(b.create(k, 'again'), 'KeyExists');

      const u = await b.update(k, '{"v":2}', 1);
      expect(u).toEqual({ key: k, value: '{"v":2}', createRevision: 1, modRevision: 2 });
      const stale = await storageError(b.update(k, '{"v":3}', 1), 'Conflict');
      expect(stale.revision).toBe(2);
      await storageError(b.update(`${PODS}default/nope`, 'x', 1), 'NotFound');
      await storageError(b.delete(`${PODS}default/nope`), 'NotFound');
      expect((await storageError(b.delete(k, 1), 'Conflict')).revision).toBe(2);
      expect(await b.get(k)).toEqual(u); // failed writes change nothing...
      expect(await b.currentRevision()).toBe(2); // ...and use no revision

      const d = await b.delete(k, 2);
      expect(d).toEqual({ key: k, value: '{"v":2}', createRevision: 1, modRevision: 3 });
      expect(await b.get(k)).toBeUndefined();
      await storageError(b.update(k, 'x', 3), 'NotFound');

      const again = await b.create(k, 'reborn'); // a new life: a new createRevision
      expect(again).toEqual({ key: k, value: 'reborn', createRevision: 4, modRevision: 4 });
      expect((await b.delete(k)).modRevision).toBe(5); // unconditional delete
      expect(await b.currentRevision()).toBe(5);
    });

    it('concurrent writes to different keys get distinct, gap-free revisions', async () => {
      const { backend: b, open } = await s.fresh();
      const other = await open();
      const made = await Promise.all(Array.from({ length: 16 }, (_, i) => (i % 2 ? b : other).create(`${PODS}ns/k${i}`, String(i))));
      expect(made.map((kv) => kv.modRevision).sort((x, y) => x - y)).toEqual(Array.from({ length: 16 }, (_, i) => i + 1));
      expect(await b.currentRevision()).toBe(16);
    });

    it('list: prefix, order, filter, limit, startAfter, more', async () => {
      const { backend: b } = await s.fresh();
      const keys = ['ns1/c', 'ns1/a', 'ns10/x', 'ns2/a', 'ns1/b'].map((k) => PODS + k);
      for (const [i, k] of keys.entries()) await b.create(k, JSON.stringify({ n: i }));
      await b.create('/registry/core/podtemplates/ns1/t', '{}'); // shares the string "/registry/core/pod"
      await b.create('/registry/core/services/ns1/s', '{}');
      const rev = await b.currentRevision();

      const all = await b.list(PODS);
      expect(keysOf(all.kvs)).toEqual([...keys].sort());
      expect(all.revision).toBe(rev);
      expect(all.more).toBe(false);
      expect(all.kvs.find((kv) => kv.key === `${PODS}ns1/a`)).toEqual({ key: `${PODS}ns1/a`, value: '{"n":1}', createRevision: 2, modRevision: 2 });
      expect(keysOf((await b.list(`${PODS}ns1/`)).kvs)).toEqual([`${PODS}ns1/a`, `${PODS}ns1/b`, `${PODS}ns1/c`]);
      expect((await b.list(`${PODS}nope/`)).kvs).toEqual([]);

      // Paging: limit counts returned items, more says whether another follows.
      const p1 = await b.list(PODS, { limit: 2 });
      expect(keysOf(p1.kvs)).toEqual([`${PODS}ns1/a`, `${PODS}ns1/b`]);
      expect(p1.more).toBe(true);
      const p2 = await b.list(PODS, { limit: 2, startAfter: p1.kvs[1]!.key });
      expect(keysOf(p2.kvs)).toEqual([`${PODS}ns1/c`, `${PODS}ns10/x`]);
      expect(p2.more).toBe(true);
      const p3 = await b.list(PODS, { limit: 2, startAfter: p2.kvs[1]!.key });
      expect(keysOf(p3.kvs)).toEqual([`${PODS}ns2/a`]);
      expect(p3.more).toBe(false);
      expect((await b.list(PODS, { limit: 5 })).more).toBe(false); // exactly limit left: no more
      expect((await b.list(PODS, { startAfter: `${PODS}zzz` })).kvs).toEqual([]);

      // The filter decides what counts against limit.
      const even = (kv: KeyValue) => JSON.parse(kv.value).n % 2 === 0; // n = 0, 2, 4: ns1/c, ns10/x, ns1/b
      const f1 = await b.list(PODS, { limit: 1, filter: even });
      expect(keysOf(f1.kvs)).toEqual([`${PODS}ns1/b`]);
      expect(f1.more).toBe(true);
      const f2 = await b.list(PODS, { limit: 2, filter: even, startAfter: f1.kvs[0]!.key });
      expect(keysOf(f2.kvs)).toEqual([`${PODS}ns1/c`, `${PODS}ns10/x`]);
      expect(f2.more).toBe(false);
    });

    it('list at an older revision pages through the state of that revision while writes go on', async () => {
      const { backend: b } = await s.fresh();
      for (const n of ['a', 'b', 'c', 'd', 'e', 'f']) await b.create(`${PODS}ns/${n}`, `${n}0`);
      const before = await b.list(PODS);
      const p1 = await b.list(PODS, { limit: 2 });
      const R = p1.revision;
      // Later writes in every page's range: updates, a delete, a create, a delete and re-create.
      const cur = async (n: string) => (await b.get(`${PODS}ns/${n}`))!.modRevision;
      await b.update(`${PODS}ns/a`, 'a1', await cur('a'));
      await b.update(`${PODS}ns/c`, 'c1', await cur('c'));
      await b.delete(`${PODS}ns/d`);
      await b.create(`${PODS}ns/cc`, 'new');
      await b.delete(`${PODS}ns/f`);
      await b.create(`${PODS}ns/f`, 'f-reborn');

      const p2 = await b.list(PODS, { limit: 2, startAfter: p1.kvs[1]!.key, revision: R });
      const p3 = await b.list(PODS, { limit: 2, startAfter: p2.kvs[1]!.key, revision: R });
      expect([p1.revision, p2.revision, p3.revision]).toEqual([R, R, R]);
      expect([...p1.kvs, ...p2.kvs, ...p3.kvs]).toEqual(before.kvs);
      expect([p1.more, p2.more, p3.more]).toEqual([true, true, false]);
      expect((await b.list(PODS, { revision: R })).kvs).toEqual(before.kvs);
      expect((await b.list(PODS, { revision: R, filter: (kv) => kv.value.endsWith('0'), limit: 3 })).kvs).toEqual(before.kvs.slice(0, 3));

      const now = await b.list(PODS);
      expect(now.kvs.map((kv) => kv.value)).toEqual(['a1', 'b0', 'c1', 'new', 'e0', 'f-reborn']);
      expect(now.revision).toBe(R + 6);
    });

    it('no lost update: 16 concurrent writers x 10 compare-and-swap increments', async () => {
      const { backend: b, open } = await s.fresh();
      const handles = [b, await open()]; // half of the writers write through another handle (process)
      const key = `${PODS}default/counter`;
      const start = await b.create(key, JSON.stringify({ count: 0 }));
      let conflicts = 0;
      await Promise.all(
        Array.from({ length: 16 }, async (_, w) => {
          const h = handles[w % 2]!;
          for (let i = 0; i < 10; i++) {
            for (let attempt = 1; ; attempt++) {
              const kv = (await h.get(key))!;
              const next = JSON.stringify({ count: JSON.parse(kv.value).count + 1 });
              try {
                await h.update(key, next, kv.modRevision);
                break;
              } catch (e) {
                if (!(e instanceof StorageError && e.code === 'Conflict')) throw e;
                conflicts++;
                await sleep(Math.random() * Math.min(50, 2 ** attempt)); // as a controller would back off
              }
            }
          }
        }),
      );
      const end = (await b.get(key))!;
      expect(JSON.parse(end.value).count).toBe(160);
      expect(await b.currentRevision()).toBe(end.modRevision);
      expect(conflicts).toBeGreaterThan(0); // the writers really did race
      // One event per successful write, in order: the history holds the 160 increments and nothing else
      // (a backend may skip revisions a losing writer took: DynamoDB's abandoned ones are gaps).
      const batches = await watchUntil(b, key, start.modRevision, () => end.modRevision);
      const events = batches.flatMap((x) => x.events);
      expect(events.map((e) => JSON.parse(e.kv.value).count)).toEqual(Array.from({ length: 160 }, (_, i) => i + 1));
      expect(events.every((e, i) => e.type === 'update' && e.prevKv!.modRevision === (i ? events[i - 1]!.kv.modRevision : start.modRevision))).toBe(true);
    });

    it('count groups: a full group refuses creates and writes nothing; updates keep a key in, deletes free room', async () => {
      const { backend: b, open } = await s.fresh();
      const count = { group: 'ns-a', limit: 2 };
      expect(await b.count('ns-a')).toBe(0);
      const a1 = await b.create(`${PODS}ns-a/p1`, '1', { count });
      await b.create(`/registry/core/services/ns-a/s1`, '2', { count }); // a group spans collections
      expect(await b.count('ns-a')).toBe(2);
      const rev = await b.currentRevision();
      const full = await storageError(b.create(`${PODS}ns-a/p3`, '3', { count }), 'LimitExceeded');
      expect(full.key).toBe(`${PODS}ns-a/p3`);
      expect(await b.get(`${PODS}ns-a/p3`)).toBeUndefined(); // nothing written...
      expect(await b.currentRevision()).toBe(rev); // ...not even a revision
      // Other groups and keys created without a group are not held back by a full one.
      await b.create(`${PODS}ns-b/p1`, '1', { count: { group: 'ns-b', limit: 2 } });
      await b.create(`${PODS}ns-a/uncounted`, 'x');
      expect(await b.count('ns-a')).toBe(2);
      expect(await b.count('ns-b')).toBe(1);
      // An update keeps the key in its group: the group stays full, and its delete still frees room.
      const u = await b.update(a1.key, '1b', a1.modRevision);
      expect(await b.count('ns-a')).toBe(2);
      await storageError(b.create(`${PODS}ns-a/p3`, '3', { count }), 'LimitExceeded');
      // The delete need not name the group (the store remembers it), and may come from another process.
      const other = await open();
      await other.delete(u.key, u.modRevision);
      expect(await b.count('ns-a')).toBe(1);
      await b.create(`${PODS}ns-a/p3`, '3', { count });
      expect(await other.count('ns-a')).toBe(2);
      // An uncounted key's delete changes no count; emptying the group brings it back to 0.
      await b.delete(`${PODS}ns-a/uncounted`);
      expect(await b.count('ns-a')).toBe(2);
      await b.delete(`${PODS}ns-a/p3`);
      await b.delete(`/registry/core/services/ns-a/s1`);
      expect(await b.count('ns-a')).toBe(0);
      // A failed delete (stale revision) takes nothing out.
      const p4 = await b.create(`${PODS}ns-a/p4`, '4', { count });
      await storageError(b.delete(p4.key, p4.modRevision + 100), 'Conflict');
      expect(await b.count('ns-a')).toBe(1);
      // A restarted store keeps its counts.
      const restarted = await open();
      expect(await restarted.count('ns-a')).toBe(1);
      expect(await restarted.count('ns-b')).toBe(1);
    });

    it('countExisting puts a key stored without a group into one, once, without a new revision', async () => {
      const { backend: b, open } = await s.fresh();
      const old = await b.create(`${PODS}up/old`, 'v'); // as a store written before counting holds it
      const counted = await b.create(`${PODS}up/new`, 'v', { count: { group: 'up', limit: 10 } });
      const rev = await b.currentRevision();
      expect(await b.countExisting(old.key, 'up')).toBe(true);
      expect(await b.count('up')).toBe(2);
      expect(await b.get(old.key)).toEqual(old); // value and revisions untouched...
      expect(await b.currentRevision()).toBe(rev); // ...and no write in the history
      expect(await b.countExisting(old.key, 'up')).toBe(false); // again: nothing
      expect(await b.countExisting(counted.key, 'other')).toBe(false); // already in a group
      expect(await b.countExisting(`${PODS}up/absent`, 'up')).toBe(false);
      expect(await b.count('up')).toBe(2);
      expect(await b.count('other')).toBe(0);
      // From then on it is counted like any other: updates keep it in, its delete takes it out.
      const u = await b.update(old.key, 'v2', old.modRevision);
      await storageError(b.create(`${PODS}up/third`, 'v', { count: { group: 'up', limit: 2 } }), 'LimitExceeded');
      await (await open()).delete(u.key, u.modRevision);
      expect(await b.count('up')).toBe(1);
    });

    // The SQLite backend answers repeated gets, small lists and counts from memory (ReadMemo): the same
    // reads, made again right after another handle's write, must see it, with no wait.
    it('a read repeated right after another handle wrote sees the write: get, a small list, a first page, a count', async () => {
      const { backend: a, open } = await s.fresh();
      const b = await open();
      const NS = '/registry/core/namespaces/';
      const first = await a.create(`${NS}one`, '{"v":1}', { count: { group: 'g', limit: 10 } });
      const read = async () => ({
        got: (await a.get(`${NS}one`))?.value,
        absent: await a.get(`${NS}two`),
        listed: (await a.list(NS)).kvs.map((kv) => `${kv.key.slice(NS.length)}=${kv.value}`),
        page: await a.list(NS, { limit: 1 }).then((r) => ({ items: r.kvs.map((kv) => `${kv.key.slice(NS.length)}=${kv.value}`), more: r.more })),
        count: await a.count('g'),
      });
      const before = { got: '{"v":1}', absent: undefined, listed: ['one={"v":1}'], page: { items: ['one={"v":1}'], more: false }, count: 1 };
      expect(await read()).toEqual(before);
      expect(await read()).toEqual(before); // now remembered
      await b.update(`${NS}one`, '{"v":2}', first.modRevision);
      await b.create(`${NS}two`, '{"v":1}', { count: { group: 'g', limit: 10 } });
      expect(await read()).toEqual({
        got: '{"v":2}',
        absent: expect.objectContaining({ value: '{"v":1}' }),
        listed: ['one={"v":2}', 'two={"v":1}'],
        page: { items: ['one={"v":2}'], more: true },
        count: 2,
      });
      await b.delete(`${NS}one`);
      const after = await read();
      expect(after.got).toBeUndefined();
      expect(after.listed).toEqual(['two={"v":1}']);
      expect(after.page).toEqual({ items: ['two={"v":1}'], more: false });
      expect(after.count).toBe(1);
      // And its own writes, through the same handle.
      await a.create(`${NS}three`, '{"v":3}', { count: { group: 'g', limit: 10 } });
      expect((await a.list(NS)).kvs.map((kv) => kv.key.slice(NS.length))).toEqual(['three', 'two']);
      expect(await a.list(NS, { limit: 1 }).then((r) => [r.kvs.map((kv) => kv.key.slice(NS.length)), r.more])).toEqual([['three'], true]);
      expect(await a.count('g')).toBe(2);
      expect((await a.get(`${NS}three`))?.value).toBe('{"v":3}');
      // A caller changing what it was given does not change the next answer.
      const kv = (await a.get(`${NS}three`))!;
      kv.value = 'changed';
      (await a.list(NS)).kvs[0]!.value = 'changed';
      expect((await a.get(`${NS}three`))?.value).toBe('{"v":3}');
      expect((await a.list(NS)).kvs[0]!.value).toBe('{"v":3}');
      (await a.list(NS, { limit: 1 })).kvs[0]!.value = 'changed';
      expect((await a.list(NS, { limit: 1 })).kvs[0]!.value).toBe('{"v":3}');
      // A page of another size is its own answer.
      expect(await a.list(NS, { limit: 2 }).then((r) => [r.kvs.map((kv) => kv.key.slice(NS.length)), r.more])).toEqual([['three', 'two'], false]);
    });

    it('50 concurrent creates (two processes) into a group with a limit of 3 leave exactly 3', async () => {
      const { backend: b, open } = await s.fresh();
      const handles = [b, await open()];
      const count = { group: 'race', limit: 3 };
      const results = await Promise.allSettled(
        Array.from({ length: 50 }, (_, i) => handles[i % 2]!.create(`${PODS}race/p${i}`, String(i), { count })),
      );
      const made = results.filter((r) => r.status === 'fulfilled');
      const refused = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
      expect(made).toHaveLength(3);
      for (const e of refused) expect((e as StorageError).code).toBe('LimitExceeded');
      expect((await b.list(`${PODS}race/`)).kvs).toHaveLength(3);
      expect(await b.count('race')).toBe(3);
      // Concurrent deletes and creates keep it exact: delete all 3 while 20 more race for the room.
      const live = (await b.list(`${PODS}race/`)).kvs;
      await Promise.allSettled([
        ...live.map((kv, i) => handles[i % 2]!.delete(kv.key)),
        ...Array.from({ length: 20 }, (_, i) => handles[i % 2]!.create(`${PODS}race/q${i}`, String(i), { count })),
      ]);
      const after = (await b.list(`${PODS}race/`)).kvs.length;
      expect(after).toBeLessThanOrEqual(3);
      expect(await b.count('race')).toBe(after);
    });

    it('every list under concurrent writes is exactly the state at its revision, paged or not', async () => {
      const { backend: b, open } = await s.fresh();
      const names = Array.from({ length: 10 }, (_, i) => `${PODS}ns/p${i}`);
      const history: Write[] = [];
      for (const k of names.slice(0, 5)) history.push({ type: 'create', kv: await b.create(k, 'seed') });
      const writers = startWriters([b, await open()], names, history);
      const seen: { revision: number; kvs: KeyValue[] }[] = [];
      try {
        for (let i = 0; i < 10; i++) {
          await writers.waitFor(2);
          seen.push(await b.list(PODS));
          // The same, in pages of 3 at the first page's revision.
          let page = await b.list(PODS, { limit: 3 });
          const kvs = [...page.kvs];
          while (page.more) {
            page = await b.list(PODS, { limit: 3, startAfter: kvs[kvs.length - 1]!.key, revision: page.revision });
            kvs.push(...page.kvs);
          }
          seen.push({ revision: page.revision, kvs });
        }
      } finally {
        await writers.stop(); // after this, history holds every write
      }
      expect(new Set(seen.map((l) => l.revision)).size).toBeGreaterThan(5); // the lists did see writes going on
      for (const l of seen) expect(l.kvs, `list at ${l.revision}`).toEqual(stateAt(history, PODS, l.revision));
    });

    it('a watch from a list revision delivers every later change once, in order (concurrent writers, two handles)', async () => {
      const { backend: b, open } = await s.fresh();
      const names = Array.from({ length: 12 }, (_, i) => `${PODS}ns/p${i}`);
      for (const k of names.slice(0, 6)) await b.create(k, 'seed');
      // Four writers, two per handle: the watch must see writes made through the other handle too.
      const writers = startWriters([b, await open()], names);

      let listed: Awaited<ReturnType<Backend['list']>>;
      let batches: WatchBatch[];
      let finalRevision: number | undefined;
      let watchStart: number;
      try {
        await writers.waitFor(8);
        listed = await b.list(PODS);
        await writers.waitFor(8); // these land between the list and the watch
        watchStart = await b.currentRevision();
        const watching = watchUntil(b, PODS, listed.revision, () => finalRevision);
        await writers.waitFor(20); // and these while the watch is open
        await writers.stop();
        finalRevision = await b.currentRevision();
        batches = await watching;
      } finally {
        await writers.stop();
      }

      const after = writers.written.filter((w) => w.kv.modRevision > listed.revision && w.kv.key.startsWith(PODS));
      expect(after.some((w) => w.kv.modRevision <= watchStart)).toBe(true);
      expect(after.some((w) => w.kv.modRevision > watchStart)).toBe(true);

      const got = events(batches);
      after.sort((x, y) => x.kv.modRevision - y.kv.modRevision);
      expect(got.map((e) => [e.type, e.kv])).toEqual(after.map((w) => [w.type, w.kv]));

      // Batch revisions never go back, and replaying the events over the list gives the final state,
      // each prevKv being exactly the state the event replaced.
      for (let i = 1; i < batches.length; i++) expect(batches[i]!.revision).toBeGreaterThanOrEqual(batches[i - 1]!.revision);
      const state = new Map(listed.kvs.map((kv) => [kv.key, kv]));
      for (const e of got) {
        const prev = state.get(e.kv.key);
        if (e.type === 'create') expect(prev).toBeUndefined();
        else expect(e.prevKv).toEqual(prev);
        if (e.type === 'delete') state.delete(e.kv.key);
        else state.set(e.kv.key, e.kv);
      }
      expect([...state.values()].sort(byKey)).toEqual((await b.list(PODS)).kvs);
    });

    it('many watches at once, on different prefixes and from different revisions, each get exactly their changes in order', async () => {
      // A local cluster keeps ~40 watches open and every write wakes them all (SQLite shares one read of
      // the log among the watches that are caught up): each must still see its own prefix only, whether
      // it started at the head, from an older revision, or on a prefix nobody writes.
      const { backend: b, open } = await s.fresh();
      const pods = Array.from({ length: 8 }, (_, i) => `${PODS}ns/p${i}`);
      const writers = startWriters([b, await open()], pods);
      const TEMPLATES = '/registry/core/podtemplates/';
      const QUIET = '/registry/core/secrets/';
      let finalRevision: number | undefined;
      try {
        await writers.waitFor(10);
        const early = await b.currentRevision();
        await writers.waitFor(10);
        const now = await b.currentRevision();
        const until = () => finalRevision;
        const watching = [
          watchUntil(b, PODS, now, until),
          watchUntil(b, PODS, early, until),
          watchUntil(b, TEMPLATES, now, until),
          watchUntil(b, TEMPLATES, early, until),
          watchUntil(b, QUIET, now, until),
          watchUntil(b, '/registry/core/', now, until),
        ];
        await writers.waitFor(30);
        await writers.stop();
        finalRevision = await b.currentRevision();
        const got = await Promise.all(watching);
        const expected = (prefix: string, from: number) =>
          writers.written
            .filter((w) => w.kv.modRevision > from && w.kv.key.startsWith(prefix))
            .sort((x, y) => x.kv.modRevision - y.kv.modRevision)
            .map((w) => [w.type, w.kv]);
        const wanted = [expected(PODS, now), expected(PODS, early), expected(TEMPLATES, now), expected(TEMPLATES, early), [], expected('/registry/core/', now)];
        expect(wanted[0]!.length).toBeGreaterThan(0);
        expect(wanted[3]!.length).toBeGreaterThan(wanted[2]!.length);
        got.forEach((batches, i) => expect(events(batches).map((e) => [e.type, e.kv])).toEqual(wanted[i]));
      } finally {
        await writers.stop();
      }
    });

    it('a restart loses nothing: keys, revision, replayable history', async () => {
      const s1 = await s.fresh();
      const b = s1.backend;
      await b.create(`${PODS}ns/a`, 'a');
      await b.create(`${PODS}ns/b`, 'b');
      await b.update(`${PODS}ns/a`, 'a2', 1);
      await b.create(`${PODS}ns/z`, 'z');
      await b.delete(`${PODS}ns/z`); // the newest write deletes the newest key
      const before = await b.list(PODS);
      await b.close();

      const b2 = await s1.open();
      expect(await b2.currentRevision()).toBe(5);
      expect(await b2.list(PODS)).toEqual(before);
      expect(await b2.get(`${PODS}ns/a`)).toEqual({ key: `${PODS}ns/a`, value: 'a2', createRevision: 1, modRevision: 3 });
      const replay = events(await watchUntil(b2, PODS, 0, () => 5));
      expect(replay.map((e) => [e.type, e.kv.key, e.kv.modRevision])).toEqual([
        ['create', `${PODS}ns/a`, 1],
        ['create', `${PODS}ns/b`, 2],
        ['update', `${PODS}ns/a`, 3],
        ['create', `${PODS}ns/z`, 4],
        ['delete', `${PODS}ns/z`, 5],
      ]);
      expect(replay[2]!.prevKv).toEqual({ key: `${PODS}ns/a`, value: 'a', createRevision: 1, modRevision: 1 });
      expect((await b2.create(`${PODS}ns/z`, 'z2')).modRevision).toBe(6); // revision 5 is not reused
    });

    it('progress batches while idle carry the current revision, and the watch ends on abort', async () => {
      const { backend: b } = await s.fresh();
      await b.create(`${PODS}ns/a`, 'a');
      const ac = new AbortController();
      const got: { at: number; batch: WatchBatch }[] = [];
      const t0 = Date.now();
      const done = (async () => {
        for await (const batch of b.watch(PODS, 1, ac.signal, 200)) {
          got.push({ at: Date.now() - t0, batch });
          if (got.length === 2) await b.create('/registry/core/services/ns/s', 's'); // not under the prefix
        }
      })();
      while (got.length < 4) await sleep(10);
      ac.abort();
      const abortedAt = Date.now();
      await done;
      expect(Date.now() - abortedAt).toBeLessThan(1000);
      expect(got.every((g) => g.batch.events.length === 0)).toBe(true);
      expect(got.slice(0, 2).map((g) => g.batch.revision)).toEqual([1, 1]);
      expect(got.slice(2).map((g) => g.batch.revision)).toEqual([2, 2]); // progress covers writes outside the prefix
      expect(got[0]!.at).toBeGreaterThanOrEqual(150);
      expect(got[3]!.at).toBeLessThan(3000);
    });

    it('Compacted for a revision older than the history kept; live keys survive compaction', async () => {
      const { backend: b, compact } = await s.freshCompacting();
      await b.create(`${PODS}ns/a`, 'a1'); // 1
      await b.update(`${PODS}ns/a`, 'a2', 1); // 2
      await b.create(`${PODS}ns/b`, 'b'); // 3
      await b.delete(`${PODS}ns/b`); // 4
      await b.create(`${PODS}ns/c`, 'c'); // 5
      await compact();

      const listErr = await storageError(b.list(PODS, { revision: 1 }), 'Compacted');
      expect(listErr.revision).toBe(5);
      const ac = new AbortController();
      const watchErr = await storageError(b.watch(PODS, 2, ac.signal)[Symbol.asyncIterator]().next(), 'Compacted');
      expect(watchErr.revision).toBe(5);
      expect(keysOf((await b.list(PODS)).kvs)).toEqual([`${PODS}ns/a`, `${PODS}ns/c`]);
      expect(await b.get(`${PODS}ns/a`)).toEqual({ key: `${PODS}ns/a`, value: 'a2', createRevision: 1, modRevision: 2 });

      // From the revision the error names, a watch works again.
      let d: KeyValue | undefined;
      const watching = watchUntil(b, PODS, watchErr.revision!, () => d?.modRevision, 50);
      await sleep(100);
      d = await b.create(`${PODS}ns/d`, 'd');
      expect(events(await watching).map((e) => [e.type, e.kv.key, e.kv.modRevision])).toEqual([['create', `${PODS}ns/d`, 6]]);
    });
  });
}

contract(sqlite);
contract(dynamo);

// ---- what only one backend has ----

describe('SqliteBackend only', () => {
  it('an expired key is deleted at a new revision, which a watch sees, as etcd deletes a key whose lease ran out', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'skiff-storage-'));
    tempDirs.push(dir);
    const b = track(new SqliteBackend(join(dir, 'db'), { expiryIntervalMs: 0 }));
    const ev = await b.create('/registry/core/events/ns/e', 'x', { ttlSeconds: 60 });
    const refreshed = await b.create('/registry/core/events/ns/r', 'y', { ttlSeconds: 60 });
    await b.update('/registry/core/events/ns/r', 'y2', refreshed.modRevision, { ttlSeconds: 600 });
    const R = ev.modRevision;
    const watching = watchUntil(b, '/registry/core/events/', R, () => R + 3);
    expect(await b.expire(Date.now() + 59_000)).toBe(0); // not yet
    expect(await b.expire(Date.now() + 61_000)).toBe(1); // e's minute is up; r was written again for ten
    expect(await b.get('/registry/core/events/ns/e')).toBeUndefined();
    expect(events(await watching).map((e) => [e.type, e.kv.key, e.kv.modRevision])).toEqual([
      ['create', '/registry/core/events/ns/r', R + 1],
      ['update', '/registry/core/events/ns/r', R + 2],
      ['delete', '/registry/core/events/ns/e', R + 3],
    ]);
  });

  it('compaction keeps the latest retainRevisions revisions replayable', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'skiff-storage-'));
    tempDirs.push(dir);
    const b = track(new SqliteBackend(join(dir, 'db'), { retainRevisions: 5, compactIntervalMs: 0 }));
    for (let i = 0; i < 20; i++) await b.create(`${PODS}ns/k${i}`, String(i));
    expect(b.compact()).toBe(15);
    await storageError(b.list(PODS, { revision: 14 }), 'Compacted');
    expect((await b.list(PODS, { revision: 15 })).kvs).toHaveLength(15);
    expect(events(await watchUntil(b, PODS, 15, () => 20)).map((e) => e.kv.modRevision)).toEqual([16, 17, 18, 19, 20]);
    // A key written before the compaction point and again after it still reads right at the point.
    await b.update(`${PODS}ns/k0`, 'changed', 1);
    const at15 = await b.list(PODS, { revision: 15, limit: 1 });
    expect(at15.kvs).toEqual([{ key: `${PODS}ns/k0`, value: '0', createRevision: 1, modRevision: 1 }]);
  });
});

describe.skipIf(!ddb)('DynamoBackend only', () => {
  it('rejects values over the item limit; a near-limit update keeps its previous value in the log', async () => {
    const { backend: b } = await dynamo.fresh();
    const k = `${PODS}ns/big`;
    await storageError(b.create(k, 'x'.repeat(MAX_VALUE_BYTES + 1)), 'TooLarge');
    const big1 = 'a'.repeat(300 * 1024);
    const big2 = 'b'.repeat(300 * 1024);
    await b.create(k, big1);
    await b.update(k, big2, 1); // value + previous value: 600 KB, more than one item holds
    const [create, update] = events(await watchUntil(b, PODS, 0, () => 2));
    expect(create!.kv.value).toBe(big1);
    expect(update!.kv.value).toBe(big2);
    expect(update!.prevKv).toEqual({ key: k, value: big1, createRevision: 1, modRevision: 1 });
  });

  it('a list at the current revision stays at it when a write lands while the Query runs', async () => {
    // The paged-list race CI once hit: page 2 asked for revision R while R was still the newest; a write
    // committed during its Query; the page must still be the state at R, and say so.
    const tableName = uniqueTableName();
    await ensureTable(ddb!.client, tableName);
    const writer = track(new DynamoBackend({ client: ddb!.newClient(), tableName }));
    for (const n of ['a', 'b']) await writer.create(`${PODS}ns/${n}`, `${n}0`);
    const client = ddb!.newClient();
    let writeDuringQuery = false;
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const out = await next(args);
        if (writeDuringQuery && context.commandName === 'QueryCommand') {
          writeDuringQuery = false;
          await writer.update(`${PODS}ns/b`, 'b1', (await writer.get(`${PODS}ns/b`))!.modRevision);
        }
        return out;
      },
      { step: 'initialize' },
    );
    const b = track(new DynamoBackend({ client, tableName }));
    const rev = await b.currentRevision();
    writeDuringQuery = true;
    const page = await b.list(PODS, { startAfter: `${PODS}ns/a`, revision: rev });
    expect(writeDuringQuery).toBe(false); // the write did happen during the list
    expect(page.revision).toBe(rev);
    expect(page.kvs.map((kv) => kv.value)).toEqual(['b0']);
    expect((await b.list(PODS)).kvs.map((kv) => kv.value)).toEqual(['a0', 'b1']);
  });

  it('a node\'s list of its pods is one Query of the index, exact while other writers bind, move, write and delete pods', async () => {
    const tableName = uniqueTableName();
    await ensureTable(ddb!.client, tableName);
    const pod = (node: string, i: number) => JSON.stringify({ spec: { nodeName: node }, status: { i } });
    const nodeOf = (kv: KeyValue) => (JSON.parse(kv.value) as { spec: { nodeName: string } }).spec.nodeName;
    const writers = [0, 1].map(() => track(new DynamoBackend({ client: ddb!.newClient(), tableName })));
    // 40 pods on n2, 3 on n1: the list of n1 must not read n2's.
    for (let i = 0; i < 40; i++) await writers[0]!.create(`${PODS}ns/n2-${i}`, pod('n2', 0));
    for (let i = 0; i < 3; i++) await writers[0]!.create(`${PODS}ns/n1-${i}`, pod('n1', 0));
    const client = ddb!.newClient();
    const calls: string[] = [];
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as { ExpressionAttributeValues?: Record<string, { S?: string }>; RequestItems?: Record<string, { Keys: unknown[] }> };
        if (context.commandName === 'QueryCommand') calls.push(`Query ${input.ExpressionAttributeValues?.[':pk']?.S}`);
        if (context.commandName === 'BatchGetItemCommand') calls.push(`BatchGetItem ${Object.values(input.RequestItems!)[0]!.Keys.length}`);
        return next(args);
      },
      { step: 'initialize' },
    );
    const reader = track(new DynamoBackend({ client, tableName }));
    const n1 = { filter: (kv: KeyValue) => nodeOf(kv) === 'n1', index: { name: 'pods-by-node', value: 'n1' } };
    const quiet = await reader.list(PODS, n1);
    expect(quiet.kvs).toHaveLength(3);
    // Not the 43 pods' collection, no read of each pod (the index items carry their values), and no log
    // (the writer left the settled watermark at the counter): the counter and the watermark are one Query
    // of "meta", before and after.
    expect(calls).toEqual(['Query meta', 'Query idx#pods-by-node#n1', 'Query meta']);
    // A first page that holds them all (an informer paging its list) reads the same way...
    calls.length = 0;
    expect((await reader.list(PODS, { ...n1, limit: 500 })).kvs).toEqual(quiet.kvs);
    expect(calls).toEqual(['Query meta', 'Query idx#pods-by-node#n1', 'Query meta']);
    // ...and a page smaller than the node's pods comes from the collection, with the rest to follow.
    const page = await reader.list(PODS, { ...n1, limit: 2 });
    expect(page.kvs).toEqual(quiet.kvs.slice(0, 2));
    expect(page.more).toBe(true);

    // Writers move pods between the nodes, write them where they are (a status write: the index item's
    // copy must follow), create and delete, while the reader lists: every list is the state at its
    // revision (replayed from the complete history), values included.
    const history: Write[] = [];
    let stop = false;
    const churn = async (w: DynamoBackend, id: number) => {
      for (let i = 0; !stop; i++) {
        const key = `${PODS}ns/c${id}-${i % 6}`;
        try {
          const cur = await w.get(key);
          if (!cur) history.push({ type: 'create', kv: await w.create(key, pod(i % 2 ? 'n1' : 'n2', i)) });
          else if (i % 5 === 0) history.push({ type: 'delete', kv: await w.delete(key, cur.modRevision) });
          else if (i % 3 === 0) history.push({ type: 'update', kv: await w.update(key, pod(nodeOf(cur), i), cur.modRevision) });
          else history.push({ type: 'update', kv: await w.update(key, pod(nodeOf(cur) === 'n1' ? 'n2' : 'n1', i), cur.modRevision) });
        } catch (e) {
          if (!(e instanceof StorageError)) throw e;
        }
      }
    };
    const before = await reader.list(PODS);
    const running = writers.map((w, id) => churn(w, id));
    const lists: ListResult[] = [];
    try {
      for (let round = 0; round < 8; round++) {
        lists.push(await reader.list(PODS, n1));
        await sleep(20);
      }
    } finally {
      stop = true;
      await Promise.all(running);
    }
    // Judged once every write has returned: a write committed at or below a list's revision may still be
    // in flight (moving the watermark) when the list returns.
    const all = [...before.kvs.map((kv) => ({ type: 'create' as const, kv })), ...history];
    for (const got of lists) expect(got.kvs).toEqual(stateAt(all, PODS, got.revision).filter((kv) => nodeOf(kv) === 'n1'));
  });

  it('a table from before the index: lists read the whole collection until indexExisting() has indexed it, then the index', async () => {
    const tableName = uniqueTableName();
    await ensureTable(ddb!.client, tableName);
    const b = track(new DynamoBackend({ client: ddb!.newClient(), tableName }));
    await b.create(`${PODS}ns/new`, JSON.stringify({ spec: { nodeName: 'n1' } }));
    // What an older Skiff wrote: object items with no index, and no marker saying the index is complete.
    const { PutItemCommand, DeleteItemCommand } = await import('@aws-sdk/client-dynamodb');
    for (const name of ['old-a', 'old-b']) {
      await ddb!.client.send(new PutItemCommand({ TableName: tableName, Item: { pk: { S: 'obj#/registry/core/pods/' }, sk: { S: `ns/${name}` }, value: { S: JSON.stringify({ spec: { nodeName: 'n1' } }) }, createRev: { N: '1' }, modRev: { N: '1' } } }));
    }
    await ddb!.client.send(new DeleteItemCommand({ TableName: tableName, Key: { pk: { S: 'meta' }, sk: { S: 'index#pods-by-node' } } }));
    const onN1 = { filter: (kv: KeyValue) => kv.value.includes('"n1"'), index: { name: 'pods-by-node', value: 'n1' } };
    const fresh = () => track(new DynamoBackend({ client: ddb!.newClient(), tableName })); // its own view of the marker
    expect(keysOf((await fresh().list(PODS, onN1)).kvs)).toEqual([`${PODS}ns/new`, `${PODS}ns/old-a`, `${PODS}ns/old-b`]);
    expect(await b.indexExisting()).toBe(3); // the two old ones indexed, the new one's item given its value
    expect(await b.indexExisting()).toBe(0); // again: nothing more
    expect(keysOf((await fresh().list(PODS, onN1)).kvs)).toEqual([`${PODS}ns/new`, `${PODS}ns/old-a`, `${PODS}ns/old-b`]);
    // An old object written again moves its index entry like any other.
    const a = (await b.get(`${PODS}ns/old-a`))!;
    await b.update(`${PODS}ns/old-a`, JSON.stringify({ spec: { nodeName: 'n2' } }), a.modRevision);
    expect(keysOf((await fresh().list(PODS, onN1)).kvs)).toEqual([`${PODS}ns/new`, `${PODS}ns/old-b`]);
  });

  it('index items from before they carried values: read by key until indexExisting() gives each its value', async () => {
    const tableName = uniqueTableName();
    await ensureTable(ddb!.client, tableName);
    const { PutItemCommand, GetItemCommand } = await import('@aws-sdk/client-dynamodb');
    const b = track(new DynamoBackend({ client: ddb!.newClient(), tableName }));
    const pod = (i: number) => JSON.stringify({ spec: { nodeName: 'n1' }, status: { i } });
    for (const name of ['a', 'b']) await b.create(`${PODS}ns/${name}`, pod(0));
    // What the last Skiff wrote: index items naming the key alone, a marker without `values`, and an
    // object written since (its status) whose index item was left as it was.
    for (const name of ['a', 'b']) {
      await ddb!.client.send(new PutItemCommand({ TableName: tableName, Item: { pk: { S: 'idx#pods-by-node#n1' }, sk: { S: `${PODS}ns/${name}` } } }));
    }
    await ddb!.client.send(new PutItemCommand({ TableName: tableName, Item: { pk: { S: 'meta' }, sk: { S: 'index#pods-by-node' } } }));
    const client = ddb!.newClient();
    let batchGets = 0;
    client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'BatchGetItemCommand') batchGets++;
        return next(args);
      },
      { step: 'initialize' },
    );
    const onN1 = { filter: () => true, index: { name: 'pods-by-node', value: 'n1' } };
    const reader = track(new DynamoBackend({ client, tableName }));
    // A value written by this Skiff into such a table is not trusted until the marker says all are there:
    // an older instance's status write would have left it behind.
    // Here: pod a's item holds its first value, as if an older instance had written a's status since.
    const a = (await b.get(`${PODS}ns/a`))!;
    await b.update(`${PODS}ns/a`, pod(1), a.modRevision);
    const { valueAttribute } = await import('../lambdas/storage/value-codec.ts');
    await ddb!.client.send(new PutItemCommand({ TableName: tableName, Item: { pk: { S: 'idx#pods-by-node#n1' }, sk: { S: `${PODS}ns/a` }, ...valueAttribute(pod(0)), createRev: { N: String(a.createRevision) }, modRev: { N: String(a.modRevision) } } }));
    const want = (await b.list(PODS)).kvs;
    expect(want.map((kv) => kv.value)).toEqual([pod(1), pod(0)]);
    expect((await reader.list(PODS, onN1)).kvs).toEqual(want);
    expect(batchGets).toBe(1);
    expect(await b.indexExisting()).toBe(2);
    batchGets = 0;
    const fresh = track(new DynamoBackend({ client, tableName }));
    expect((await fresh.list(PODS, onN1)).kvs).toEqual(want);
    expect(batchGets).toBe(0);
    const marker = await ddb!.client.send(new GetItemCommand({ TableName: tableName, Key: { pk: { S: 'meta' }, sk: { S: 'index#pods-by-node' } } }));
    expect(marker.Item?.values?.BOOL).toBe(true);
  });

  it('list prefixes must name a collection: /{a}/{b}/{c}/', async () => {
    const { backend: b } = await dynamo.fresh();
    await expect(b.list('/registry/core/')).rejects.toThrow(/must start with/);
    await expect(b.create('/registry/core/pods', 'x')).rejects.toThrow(/must start with/);
  });
});
