// The production backend: one DynamoDB table, shared by every apiserver Lambda.
//
// Items (pk, sk are strings):
//   object   pk = "obj#/{a}/{b}/{c}/"  sk = rest of the key   value, createRev, modRev
//            Keys look like /registry/{group}/{resource}/{namespace}/{name}: the first three segments name
//            the collection (one partition key), so list(prefix) is a Query. Keys and list prefixes must
//            therefore have at least three segments and a slash: "/registry/core/pods/" is the shortest
//            prefix list accepts.
//            and countGroup, when created with CreateOptions.count (kept by updates).
//   counter  pk = "meta" sk = "revision"   rev: the revision of the latest write.
//   count    pk = "count" sk = group   n: how many object items hold that countGroup. The same transaction
//            that creates or deletes a counted object adds 1 (on the condition n < limit) or -1, so the
//            count is exact for one more item written per counted write, never a Query. Objects stored
//            before counting have no countGroup (never counted, never subtracted) until countExisting()
//            gives them one: scripts/count-objects.ts, once per table after the upgrade. A write to an
//            existing object is conditional on the group it read, so it never undoes countExisting().
//            and charges (JSON [{group, amount}]), when created with CreateOptions.charges (quota): each
//            group's total is a count item too, moved by the amount (ADD, on the condition that the total
//            stays within the limit) in the same transaction as the object's create or delete, or by the
//            difference in an update that brings new charges (UpdateOptions.charges).
//            and idx, the object's value in the index covering its collection (storage/indexes.ts).
//   index    pk = "idx#<index>#<value>" sk = the object's full key   (nothing else): one per indexed object,
//            put and deleted in the object's own transaction whenever its indexed value changes (a pod's
//            bind and delete; its status writes leave it), so a consistent Query of one value's partition
//            names exactly the keys with that value. "meta"/"index#<name>" marks an index complete: new
//            tables are (ensureTable), older ones once indexExisting() has indexed what they hold.
//   log      pk = "log"  sk = revision, zero-padded to 20 digits   key, type, value (for a delete: the last
//            value), createRev, prevRev, prevValue, ttl. When value and prevValue together would not fit in
//            one item, prevValue goes to a companion item sk = "<padded revision>#prev".
//
// Every write is ONE TransactWriteItems of the counter (condition: it still holds the revision we read,
// so revisions are gap-free and commit in order), the object (condition on its modRev or existence) and
// the log item(s). A cancelled transaction's CancellationReasons tell a stale object (-> KeyExists,
// NotFound, Conflict) from a counter another writer moved first (-> retry with the next revision). The
// single counter item serializes all writes of the cluster: it is what limits write throughput.
//
// Reads: get is a consistent GetItem. A list with an index hint (ListOptions.index) of a complete index
// Queries the value's index partition and reads those objects (BatchGetItem, consistent), then replays the
// log like any list: a node's list of its pods reads its pods, not the cluster's.
// list is otherwise a consistent Query made exact by the log: it reads the
// counter before and after, and replays the log in between over what the Query saw, so the result is the
// state at one revision. Undoing later log entries (each carries the previous value) also serves lists at
// an older revision, as long as the log still holds them. A watch polls the counter (one read per interval
// for all the watches of this process) and reads new log items when it moves. The log is the history
// window: log items expire by DynamoDB TTL after logRetentionSeconds, and a revision whose successor's log
// item has expired (or is gone) is Compacted.

import { randomUUID } from 'node:crypto';
import {
  BatchGetItemCommand,
  CreateTableCommand,
  PutItemCommand,
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
  GetItemCommand,
  QueryCommand,
  TransactWriteItemsCommand,
  UpdateTimeToLiveCommand,
  type AttributeValue,
  type CancellationReason,
  DynamoDBClient,
  type TransactWriteItem,
} from '@aws-sdk/client-dynamodb';
import {
  StorageError,
  type Backend,
  type Charge,
  type CountOptions,
  type CreateOptions,
  type UpdateOptions,
  type KeyValue,
  type ListOptions,
  type ListResult,
  type WatchBatch,
  type WatchEvent,
  type WatchEventType,
} from './backend.ts';
import { INDEXES, indexOfKey, type KeyIndex } from './indexes.ts';

/** The table's definition, shared with the CDK stack. */
export const tableSchema = {
  partitionKey: { name: 'pk', type: 'S' },
  sortKey: { name: 'sk', type: 'S' },
  timeToLiveAttribute: 'ttl',
  billingMode: 'PAY_PER_REQUEST',
  streamViewType: 'NEW_AND_OLD_IMAGES',
} as const;

/** Largest value accepted: an object item must stay under DynamoDB's 400 KB item limit. */
export const MAX_VALUE_BYTES = 350 * 1024;
/** Above this, a log item's prevValue moves to a companion item (value + prevValue + ~1 KB of the rest). */
const INLINE_LOG_BYTES = 390 * 1024;
const MAX_WRITE_ATTEMPTS = 50;
/** DynamoDB's answers to too many requests (the SDK retries them a few times before giving up). */
const THROTTLING_ERRORS = new Set(['ProvisionedThroughputExceededException', 'ThrottlingException', 'RequestLimitExceeded']);
/** Most revisions one watch batch covers. */
const BATCH_REVISIONS = 1000;

export interface DynamoOptions {
  client: DynamoDBClient;
  tableName: string;
  /** How long a write stays replayable from the log (default 3600 s). TTL deletes log items afterwards. */
  logRetentionSeconds?: number;
  /** How often open watches look for new writes (default 150 ms). */
  pollIntervalMs?: number;
  /** A list at an older revision undoes at most this many later writes, else Compacted (default 10 000). */
  maxListReplay?: number;
}

type Item = Record<string, AttributeValue>;

interface LogEntry {
  type: WatchEventType;
  kv: KeyValue;
  prevKv?: KeyValue;
}

const COUNTER_KEY: Item = { pk: { S: 'meta' }, sk: { S: 'revision' } };
const countKey = (group: string): Item => ({ pk: { S: 'count' }, sk: { S: group } });

/** An object as stored: its KeyValue, the count group it was created in, its charges and its indexed value. */
type Stored = KeyValue & { countGroup?: string; charges?: string; indexed?: string };

const indexMarkerKey = (index: KeyIndex): Item => ({ pk: { S: 'meta' }, sk: { S: `index#${index.name}` } });
const indexPk = (index: KeyIndex, value: string) => `idx#${index.name}#${value}`;

/** What a write does, as decide() judges it against the stored object. */
interface Change {
  type: WatchEventType;
  value: string;
  /** create: the group to join, within its limit. */
  count?: CountOptions;
  /** create: the quota charges, each within its limit; update: the charges that replace the object's. */
  charges?: Charge[];
}

/** How one group's total moves in a write: a rise is held to the limit. */
interface Move {
  group: string;
  delta: number;
  limit?: number;
}

export class DynamoBackend implements Backend {
  private readonly client: DynamoDBClient;
  private readonly table: string;
  private readonly retentionSeconds: number;
  private readonly maxListReplay: number;
  private readonly feed: RevisionFeed;
  private readonly recentLog: LogWindow;
  private closed = false;
  private writeQueue: Promise<unknown> = Promise.resolve();
  /** Indexes known complete (their marker read): a complete index stays so. */
  private readonly completeIndexes = new Set<string>();
  /** When an index was last found incomplete (looked at again after a minute). */
  private readonly incompleteSince = new Map<string, number>();

  constructor(opts: DynamoOptions) {
    this.client = opts.client;
    this.table = opts.tableName;
    this.retentionSeconds = opts.logRetentionSeconds ?? 3600;
    this.maxListReplay = opts.maxListReplay ?? 10_000;
    this.feed = new RevisionFeed(() => this.currentRevision(), opts.pollIntervalMs ?? 150);
    this.recentLog = new LogWindow((after, upTo) => this.readLog('watch', after, upTo));
  }

  // ---- reads ----

  async currentRevision(): Promise<number> {
    const r = await this.client.send(new GetItemCommand({ TableName: this.table, Key: COUNTER_KEY, ConsistentRead: true }));
    return num(r.Item?.rev);
  }

  async get(key: string): Promise<KeyValue | undefined> {
    const r = await this.client.send(new GetItemCommand({ TableName: this.table, Key: objectKey(key), ConsistentRead: true }));
    return r.Item && objectKv(key, r.Item);
  }

  async list(prefix: string, opts: ListOptions = {}): Promise<ListResult> {
    const index = opts.index && INDEXES.find((i) => i.name === opts.index!.name && prefix.startsWith(i.prefix));
    if (index && !opts.limit && opts.startAfter === undefined && opts.revision === undefined && (await this.indexComplete(index))) {
      return this.listIndexed(prefix, index, opts.index!.value, opts.filter);
    }
    const { pk, rest } = splitKey(prefix, true);
    const limit = opts.limit || 0;
    let rev = await this.currentRevision();
    // A list at a given revision (a later page of a paged list) is the state at exactly that revision, even
    // when it is the newest now: writes committed while the Query runs move `rev` on and are undone below.
    const target = opts.revision !== undefined && opts.revision <= rev ? opts.revision : undefined;
    // The log entries in (target, rev], to undo over the current state.
    const undo: LogEntry[] = [];
    if (target !== undefined && target < rev) {
      await this.assertListable(prefix, target, rev);
      undo.push(...(await this.readLog(prefix, target, rev)));
    }
    const after = opts.startAfter !== undefined && opts.startAfter >= prefix ? opts.startAfter : undefined;
    // A startAfter above the prefix without starting with it sorts after every key under the prefix.
    if (after !== undefined && !after.startsWith(prefix)) return { kvs: [], revision: target ?? rev, more: false };

    // `items` holds the state at revision `rev` of every key in the scanned range: keys under prefix,
    // after startAfter, up to `scannedTo` (all of them once the Query is exhausted).
    const items = new Map<string, KeyValue>();
    let scannedTo = '';
    let exhausted = false;
    let cursor: Item | undefined;
    const inRange = (k: string) => k.startsWith(prefix) && (after === undefined || k > after) && (exhausted || k <= scannedTo);
    for (;;) {
      // One page of the Query. Items change while we read; the replay below fixes that.
      const page = await this.client.send(
        new QueryCommand({
          TableName: this.table,
          ConsistentRead: true,
          ExclusiveStartKey: cursor,
          Limit: limit ? Math.max(limit + 1, 100) : undefined,
          ...skCondition(pk, rest, after?.slice(pk.length - 'obj#'.length)),
        }),
      );
      for (const it of page.Items ?? []) {
        const k = fullKey(it);
        if (after === undefined || k > after) items.set(k, objectKv(k, it));
      }
      cursor = page.LastEvaluatedKey;
      exhausted = !cursor;
      if (cursor) scannedTo = fullKey(cursor);

      // Bring the scanned range to the counter's value now: a key there is either unchanged since the
      // Query read it, or changed by writes at or below `now`, which the log holds in order.
      const now = await this.currentRevision();
      if (now > rev) {
        const entries = await this.readLog(prefix, rev, now);
        for (const e of entries) {
          if (!inRange(e.kv.key)) continue;
          if (e.type === 'delete') items.delete(e.kv.key);
          else items.set(e.kv.key, e.kv);
        }
        if (target !== undefined) undo.push(...entries);
        rev = now;
      }

      if (!exhausted && !limit) continue; // everything is wanted: no need to look before the end

      // At an older revision: undo, newest first, the writes after it (each log entry has the value before).
      let view = items;
      if (target !== undefined) {
        view = new Map(items);
        for (let i = undo.length - 1; i >= 0; i--) {
          const e = undo[i]!;
          if (!inRange(e.kv.key)) continue;
          if (e.type === 'create') view.delete(e.kv.key);
          else view.set(e.kv.key, e.prevKv!);
        }
      }
      const matched = [...view.values()].filter((kv) => !opts.filter || opts.filter(kv)).sort(byKey);
      if (exhausted || (limit && matched.length > limit)) {
        return { kvs: limit ? matched.slice(0, limit) : matched, revision: target ?? rev, more: limit > 0 && matched.length > limit };
      }
    }
  }

  /**
   * The keys under prefix whose indexed value is `value` (and whatever the log says changed meanwhile),
   * through the filter: the state at one revision, as list's. The index partition is read consistently,
   * and each of its objects was indexed in its own write's transaction, so an object with that value at
   * the counter's first read is among them; what changed after is replayed from the log.
   */
  private async listIndexed(prefix: string, index: KeyIndex, value: string, filter: ListOptions['filter']): Promise<ListResult> {
    const rev = await this.currentRevision();
    const keys = (await this.queryAll({ KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': { S: indexPk(index, value) } } }))
      .map((it) => it.sk!.S!)
      .filter((k) => k.startsWith(prefix));
    const items = new Map<string, KeyValue>();
    for (let i = 0; i < keys.length; i += 100) {
      let want: Item[] = keys.slice(i, i + 100).map(objectKey);
      while (want.length) {
        const r = await this.client.send(new BatchGetItemCommand({ RequestItems: { [this.table]: { Keys: want, ConsistentRead: true } } }));
        for (const it of r.Responses?.[this.table] ?? []) items.set(fullKey(it), objectKv(fullKey(it), it));
        want = r.UnprocessedKeys?.[this.table]?.Keys ?? [];
        if (want.length) await sleep(50); // throttled: DynamoDB asks to back off
      }
    }
    // Objects read here may be newer than `rev`; the log brings every key to `now`.
    const now = await this.currentRevision();
    if (now > rev) {
      for (const e of await this.readLog(prefix, rev, now)) {
        if (!e.kv.key.startsWith(prefix)) continue;
        if (e.type === 'delete') items.delete(e.kv.key);
        else items.set(e.kv.key, e.kv);
      }
    }
    const kvs = [...items.values()].filter((kv) => !filter || filter(kv)).sort(byKey);
    return { kvs, revision: now, more: false };
  }

  private async indexComplete(index: KeyIndex): Promise<boolean> {
    if (this.completeIndexes.has(index.name)) return true;
    if (performance.now() - (this.incompleteSince.get(index.name) ?? -Infinity) < 60_000) return false;
    const r = await this.client.send(new GetItemCommand({ TableName: this.table, Key: indexMarkerKey(index), ConsistentRead: true }));
    if (r.Item) this.completeIndexes.add(index.name);
    else this.incompleteSince.set(index.name, performance.now());
    return !!r.Item;
  }

  /**
   * Indexes every object stored before its collection's index existed (a table of an older Skiff), then
   * marks the index complete; until then lists read the whole collection. Safe while the cluster serves
   * (each object is indexed on the condition that it is unchanged; one that changed was indexed by its
   * own write) and again. Returns how many objects it indexed.
   */
  async indexExisting(): Promise<number> {
    let n = 0;
    for (const index of INDEXES) {
      if (await this.indexComplete(index)) continue;
      const { pk } = splitKey(index.prefix, true);
      for (const it of await this.queryAll({ KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': { S: pk } } })) {
        const value = index.valueOf(it.value!.S!);
        if (value === undefined || it.idx?.S === value) continue;
        try {
          await this.client.send(
            new TransactWriteItemsCommand({
              TransactItems: [
                {
                  Update: {
                    TableName: this.table,
                    Key: { pk: it.pk!, sk: it.sk! },
                    UpdateExpression: 'SET idx = :v',
                    ConditionExpression: 'modRev = :m AND attribute_not_exists(idx)',
                    ExpressionAttributeValues: { ':v': { S: value }, ':m': it.modRev! },
                  },
                },
                { Put: { TableName: this.table, Item: { pk: { S: indexPk(index, value) }, sk: { S: fullKey(it) } } } },
              ],
            }),
          );
          n++;
        } catch (e) {
          if ((e as Error).name !== 'TransactionCanceledException') throw e; // changed meanwhile: its write indexed it
        }
      }
      await this.client.send(new PutItemCommand({ TableName: this.table, Item: indexMarkerKey(index) }));
      this.completeIndexes.add(index.name);
    }
    return n;
  }

  // ---- writes ----

  async create(key: string, value: string, opts: CreateOptions = {}): Promise<KeyValue> {
    checkSize(key, value);
    return this.write(key, (cur) => {
      if (cur) throw new StorageError('KeyExists', key);
      return { type: 'create', value, count: opts.count, charges: opts.charges };
    });
  }

  async count(group: string): Promise<number> {
    const r = await this.client.send(new GetItemCommand({ TableName: this.table, Key: countKey(group), ConsistentRead: true }));
    return num(r.Item?.n);
  }

  async countExisting(key: string, group: string): Promise<boolean> {
    // The object item gains its group and the count grows, together. No revision, no log item: the
    // value is unchanged (the table's stream does carry a MODIFY of the same object, a no-op to the loops).
    try {
      await this.client.send(
        new TransactWriteItemsCommand({
          TransactItems: [
            {
              Update: {
                TableName: this.table,
                Key: objectKey(key),
                UpdateExpression: 'SET countGroup = :g',
                ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(countGroup)',
                ExpressionAttributeValues: { ':g': { S: group } },
              },
            },
            { Update: { TableName: this.table, Key: countKey(group), UpdateExpression: 'ADD n :one', ExpressionAttributeValues: { ':one': { N: '1' } } } },
          ],
          ClientRequestToken: randomUUID(),
        }),
      );
      return true;
    } catch (e) {
      const reasons = (e as { CancellationReasons?: CancellationReason[] }).CancellationReasons;
      if ((e as Error).name === 'TransactionCanceledException' && reasons?.[0]?.Code === 'ConditionalCheckFailed') return false;
      throw e;
    }
  }

  async chargeExisting(key: string, charges: Charge[]): Promise<string[]> {
    // The object item gains the charges it lacks and the totals grow, together, conditional on the charges
    // it was read with (a concurrent chargeExisting or delete makes us re-read). No revision, no log item.
    for (let attempt = 1; ; attempt++) {
      const cur = await this.getStored(key);
      if (!cur) return [];
      const have = parseCharges(cur.charges);
      const add = charges.filter((c) => !have.some((h) => h.group === c.group));
      if (add.length === 0) return [];
      const next = JSON.stringify([...have, ...add.map(({ group, amount }) => ({ group, amount }))]);
      try {
        await this.client.send(
          new TransactWriteItemsCommand({
            TransactItems: [
              {
                Update: {
                  TableName: this.table,
                  Key: objectKey(key),
                  UpdateExpression: 'SET charges = :next',
                  ConditionExpression: cur.charges === undefined ? 'attribute_exists(pk) AND attribute_not_exists(charges)' : 'charges = :old',
                  ExpressionAttributeValues: { ':next': { S: next }, ...(cur.charges === undefined ? {} : { ':old': { S: cur.charges } }) },
                },
              },
              ...add.map((c) => ({ Update: { TableName: this.table, Key: countKey(c.group), UpdateExpression: 'ADD n :a', ExpressionAttributeValues: { ':a': { N: String(c.amount) } } } })),
            ],
            ClientRequestToken: randomUUID(),
          }),
        );
        return add.map((c) => c.group);
      } catch (e) {
        if ((e as Error).name !== 'TransactionCanceledException' || attempt >= MAX_WRITE_ATTEMPTS) throw e;
        await backoff(attempt);
      }
    }
  }

  /** get, with the object's count group. */
  private async getStored(key: string): Promise<Stored | undefined> {
    const r = await this.client.send(new GetItemCommand({ TableName: this.table, Key: objectKey(key), ConsistentRead: true }));
    return r.Item && storedKv(key, r.Item);
  }

  async update(key: string, value: string, expectedModRevision: number, opts: UpdateOptions = {}): Promise<KeyValue> {
    checkSize(key, value);
    return this.write(key, (cur) => {
      if (!cur) throw new StorageError('NotFound', key);
      if (cur.modRevision !== expectedModRevision) throw conflict(key, cur.modRevision);
      return { type: 'update', value, charges: opts.charges };
    });
  }

  async delete(key: string, expectedModRevision?: number): Promise<KeyValue> {
    return this.write(key, (cur) => {
      if (!cur) throw new StorageError('NotFound', key);
      if (expectedModRevision !== undefined && cur.modRevision !== expectedModRevision) throw conflict(key, cur.modRevision);
      return { type: 'delete', value: cur.value };
    });
  }

  /**
   * Reads the counter and the object, lets decide() judge the change against the object (it throws the
   * StorageError), and commits it as revision counter+1. Retries while only the counter was stale.
   */
  /**
   * This process's writes go one at a time: they would otherwise only race each other for the counter.
   * Contention is then left to writers in other processes (other Lambda instances).
   */
  private write(key: string, decide: (cur: Stored | undefined) => Change): Promise<KeyValue> {
    const run = this.writeQueue.then(() => this.writeNow(key, decide));
    this.writeQueue = run.catch(() => undefined);
    return run;
  }

  private async writeNow(key: string, decide: (cur: Stored | undefined) => Change): Promise<KeyValue> {
    // Marks this write's log item, so an attempt whose answer was lost can be recognised (see committed()).
    const writeId = randomUUID();
    let [head, cur] = await Promise.all([this.currentRevision(), this.getStored(key)]);
    for (let attempt = 1; ; attempt++) {
      const { type, value, count, charges: newCharges } = decide(cur);
      // The object's charges: made on create, kept by updates unless replaced, given back by the delete;
      // `moves` says how each group's total moves (a rise is checked against its limit first).
      const { charges, moves } = chargeMoves(type, cur?.charges, newCharges);
      const over = moves.find((m) => m.delta > 0 && m.limit !== undefined && m.delta > m.limit);
      if (over) throw new StorageError('LimitExceeded', key, `${key}: charging ${over.delta} to ${over.group} would pass its limit of ${over.limit}`);
      const rev = head + 1;
      const entry: LogEntry = {
        type,
        kv: { key, value, createRevision: type === 'create' ? rev : cur!.createRevision, modRevision: rev },
        prevKv: type === 'create' ? undefined : cur && objectOnly(cur),
      };
      // The object's count group: joined on create, kept by updates, left by the delete.
      const group = type === 'create' ? count?.group : cur!.countGroup;
      try {
        await this.client.send(
          new TransactWriteItemsCommand({
            TransactItems: this.writeItems(head, entry, group, count?.limit, writeId, cur?.charges, charges, moves, cur?.indexed),
            ClientRequestToken: randomUUID(),
          }),
        );
        this.feed.observe(rev);
        return entry.kv;
      } catch (e) {
        // The SDK sent this transaction more than once (a dropped connection, a 500 after committing), or
        // gave up with no answer: an earlier try may have committed. Real DynamoDB answers a retry carrying
        // the same ClientRequestToken (the SDK keeps it across its retries) with success and applies
        // nothing, for 10 minutes; moto ignores the token, re-runs the transaction and cancels it on the
        // counter's condition, which would report our own write as a KeyExists/Conflict/NotFound and lose
        // its acknowledgement. Either way, the log item at `rev` carrying our writeId says it committed.
        const cancelled = (e as Error).name === 'TransactionCanceledException';
        const tries = (e as { $metadata?: { attempts?: number } }).$metadata?.attempts ?? 1;
        const mine = !cancelled || tries > 1 ? await this.committed(rev, writeId) : false;
        if (mine) {
          this.feed.observe(rev);
          return entry.kv;
        }
        if (mine === undefined) throw e; // whether it committed cannot be told: no false answer either way
        if (!cancelled) {
          // Not committed. Throttled past the SDK's retries: refused, 429 with Retry-After (clients retry).
          if (THROTTLING_ERRORS.has((e as Error).name)) throw new StorageError('Unavailable', key, `${key}: DynamoDB is throttling writes (${(e as Error).name})`);
          throw e;
        }
        if (attempt >= MAX_WRITE_ATTEMPTS) {
          throw new StorageError('Unavailable', key, `${key}: write gave up after ${attempt} attempts (revision counter contention)`);
        }
        // Reasons are in TransactItems order: counter, object, log, count. "None" means that item was fine.
        // Without reasons (an emulator that omits them), everything is re-read.
        const reasons = (e as { CancellationReasons?: CancellationReason[] }).CancellationReasons;
        const [counter, object, , quota] = reasons ?? [];
        const stale = (r?: CancellationReason) => r?.Code === 'ConditionalCheckFailed';
        if (count && (stale(quota) || (!reasons && (await this.count(count.group)) >= count.limit))) {
          throw new StorageError('LimitExceeded', key, `${key}: count group ${count.group} holds its limit of ${count.limit} keys`);
        }
        // The charge items follow the count item (when there is one), in the order of moves.
        const chargeStart = group !== undefined && type !== 'update' ? 4 : 3;
        for (const [i, m] of moves.entries()) {
          if (m.delta <= 0 || m.limit === undefined) continue;
          if (reasons ? stale(reasons[chargeStart + i]) : (await this.count(m.group)) + m.delta > m.limit) {
            throw new StorageError('LimitExceeded', key, `${key}: charging ${m.delta} to ${m.group} would pass its limit of ${m.limit}`);
          }
        }
        // A stale object is settled by re-reading it; anything else is contention: let the winners through.
        if (!stale(object)) await backoff(attempt);
        [head, cur] = await Promise.all([
          counter?.Code === 'None' ? head : stale(counter) && counter!.Item ? num(counter!.Item.rev) : this.currentRevision(),
          // ALL_OLD returns the item, when there is one, with a failed condition.
          object?.Code === 'None' ? cur : stale(object) && object!.Item ? storedKv(key, object!.Item) : this.getStored(key),
        ]);
      }
    }
  }

  /** Whether the log item of `rev` is this write's; undefined when that cannot be read now either. */
  private async committed(rev: number, writeId: string): Promise<boolean | undefined> {
    try {
      const r = await this.client.send(
        new GetItemCommand({ TableName: this.table, Key: { pk: { S: 'log' }, sk: { S: pad(rev) } }, ConsistentRead: true, ProjectionExpression: 'writeId' }),
      );
      return r.Item?.writeId?.S === writeId;
    } catch {
      return undefined;
    }
  }

  private writeItems(
    head: number,
    e: LogEntry,
    group: string | undefined,
    limit: number | undefined,
    writeId: string,
    readCharges: string | undefined,
    charges: string | undefined,
    moves: Move[],
    readIndexed: string | undefined,
  ): TransactWriteItem[] {
    const { key, value, createRevision, modRevision: rev } = e.kv;
    const TableName = this.table;
    // The object's indexed value from now on, and the index items that move with it (appended last).
    const index = indexOfKey(key);
    const indexed = index && e.type !== 'delete' ? index.valueOf(value) : undefined;
    // A write to an existing object also holds it to the count group it was read with, so an object
    // countExisting() moves into a group meanwhile is re-read, not written back without its group.
    const sameGroup = group === undefined ? ' AND attribute_not_exists(countGroup)' : ' AND countGroup = :g';
    const groupValue: Item = group === undefined ? {} : { ':g': { S: group } };
    // Likewise held to the charges it was read with (chargeExisting may add some meanwhile).
    const sameCharges = e.type === 'create' ? '' : readCharges === undefined ? ' AND attribute_not_exists(charges)' : ' AND charges = :c';
    Object.assign(groupValue, e.type !== 'create' && readCharges !== undefined ? { ':c': { S: readCharges } } : {});
    // And to the indexed value it was read with (indexExisting may set one meanwhile): the index item to delete.
    const sameIndex = e.type === 'create' || !index ? '' : readIndexed === undefined ? ' AND attribute_not_exists(idx)' : ' AND idx = :ix';
    Object.assign(groupValue, e.type !== 'create' && index && readIndexed !== undefined ? { ':ix': { S: readIndexed } } : {});
    const counter: TransactWriteItem = {
      Put: {
        TableName,
        Item: { ...COUNTER_KEY, rev: { N: String(rev) } },
        ConditionExpression: head === 0 ? 'attribute_not_exists(pk)' : 'rev = :head',
        ExpressionAttributeValues: head === 0 ? undefined : { ':head': { N: String(head) } },
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      },
    };
    const object: TransactWriteItem =
      e.type === 'delete'
        ? {
            Delete: {
              TableName,
              Key: objectKey(key),
              ConditionExpression: `modRev = :m${sameGroup}${sameCharges}${sameIndex}`,
              ExpressionAttributeValues: { ':m': { N: String(e.prevKv!.modRevision) }, ...groupValue },
              ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
            },
          }
        : {
            Put: {
              TableName,
              Item: {
                ...objectKey(key),
                value: { S: value },
                createRev: { N: String(createRevision) },
                modRev: { N: String(rev) },
                ...(group !== undefined ? { countGroup: { S: group } } : {}),
                ...(charges !== undefined ? { charges: { S: charges } } : {}),
                ...(indexed !== undefined ? { idx: { S: indexed } } : {}),
              },
              ConditionExpression: e.prevKv ? `modRev = :m${sameGroup}${sameCharges}${sameIndex}` : 'attribute_not_exists(pk)',
              ExpressionAttributeValues: e.prevKv ? { ':m': { N: String(e.prevKv.modRevision) }, ...groupValue } : undefined,
              ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
            },
          };
    const ttl = { N: String(Math.ceil(Date.now() / 1000) + this.retentionSeconds) };
    const log: Item = {
      pk: { S: 'log' },
      sk: { S: pad(rev) },
      key: { S: key },
      type: { S: e.type },
      value: { S: value },
      createRev: { N: String(createRevision) },
      writeId: { S: writeId },
      ttl,
    };
    const items: TransactWriteItem[] = [counter, object, { Put: { TableName, Item: log } }];
    if (group !== undefined && e.type !== 'update') {
      // Fourth, so its cancellation reason has a fixed place (see writeNow).
      const join = e.type === 'create';
      items.push({
        Update: {
          TableName,
          Key: countKey(group),
          UpdateExpression: 'ADD n :d',
          ConditionExpression: join && limit !== undefined ? 'attribute_not_exists(n) OR n < :limit' : undefined,
          ExpressionAttributeValues: { ':d': { N: join ? '1' : '-1' }, ...(join && limit !== undefined ? { ':limit': { N: String(limit) } } : {}) },
        },
      });
    }
    // Then the charges' totals: a rise within its limit, a fall given back.
    for (const m of moves) {
      const limited = m.delta > 0 && m.limit !== undefined;
      items.push({
        Update: {
          TableName,
          Key: countKey(m.group),
          UpdateExpression: 'ADD n :a',
          ConditionExpression: limited ? 'attribute_not_exists(n) OR n <= :max' : undefined,
          ExpressionAttributeValues: { ':a': { N: String(m.delta) }, ...(limited ? { ':max': { N: String(m.limit! - m.delta) } } : {}) },
        },
      });
    }
    if (e.prevKv) {
      log.prevRev = { N: String(e.prevKv.modRevision) };
      const prevValue = { S: e.prevKv.value };
      if (Buffer.byteLength(value) + Buffer.byteLength(e.prevKv.value) + Buffer.byteLength(key) <= INLINE_LOG_BYTES) log.prevValue = prevValue;
      else items.push({ Put: { TableName, Item: { pk: { S: 'log' }, sk: { S: `${pad(rev)}#prev` }, prevValue, ttl } } });
    }
    if (index && indexed !== readIndexed) {
      if (readIndexed !== undefined) items.push({ Delete: { TableName, Key: { pk: { S: indexPk(index, readIndexed) }, sk: { S: key } } } });
      if (indexed !== undefined) items.push({ Put: { TableName, Item: { pk: { S: indexPk(index, indexed) }, sk: { S: key } } } });
    }
    return items;
  }

  // ---- watch ----

  async *watch(prefix: string, fromRevision: number, signal: AbortSignal, progressIntervalMs = 5000): AsyncIterable<WatchBatch> {
    const head = await this.currentRevision();
    this.feed.observe(head);
    if (fromRevision < head && !(await this.available(fromRevision + 1))) throw await this.compacted(prefix, fromRevision, head);
    let last = fromRevision;
    let lastSent = Date.now();
    while (!signal.aborted && !this.closed) {
      const known = await this.feed.next(last, lastSent + progressIntervalMs - Date.now(), signal);
      if (signal.aborted || this.closed) return;
      if (known > last) {
        const upTo = Math.min(known, last + BATCH_REVISIONS);
        const entries = await this.recentLog.read(last, upTo).catch((e) => {
          // The shared read's Compacted, naming this watch's prefix.
          throw e instanceof StorageError && e.code === 'Compacted' ? new StorageError('Compacted', prefix, e.message, e.revision) : e;
        });
        last = upTo;
        const events: WatchEvent[] = entries.filter((e) => e.kv.key.startsWith(prefix));
        if (events.length > 0) {
          yield { events, revision: last };
          lastSent = Date.now();
          continue;
        }
      }
      if (Date.now() - lastSent >= progressIntervalMs) {
        yield { events: [], revision: last };
        lastSent = Date.now();
      }
    }
  }

  // ---- the log ----

  /** Log entries of revisions (after, upTo], all of them (every key), in order; Compacted if any is gone. */
  private async readLog(what: string, after: number, upTo: number): Promise<LogEntry[]> {
    for (let attempt = 1; ; attempt++) {
      const items = await this.queryAll({
        KeyConditionExpression: 'pk = :pk AND sk BETWEEN :lo AND :hi',
        ExpressionAttributeValues: { ':pk': { S: 'log' }, ':lo': { S: pad(after + 1) }, ':hi': { S: `${pad(upTo)}#prev` } },
      });
      const entries: LogEntry[] = [];
      for (const it of items) {
        if (it.sk!.S!.endsWith('#prev')) {
          // Sorts right after its own log item.
          const prev = entries[entries.length - 1]?.prevKv;
          if (prev) prev.value = it.prevValue!.S!;
          continue;
        }
        entries.push(logEntry(it));
      }
      // Every revision up to upTo is committed (the counter said so), and each has exactly one log item.
      if (entries.length === upTo - after) return entries;
      if (attempt === 2) throw await this.compacted(what, after, upTo);
      await sleep(50); // once more, in case a read raced a just-committed transaction
    }
  }

  /** Whether the log item of `rev` exists and has not expired (expired items may linger until TTL runs). */
  private async available(rev: number): Promise<boolean> {
    const r = await this.client.send(
      new GetItemCommand({
        TableName: this.table,
        Key: { pk: { S: 'log' }, sk: { S: pad(rev) } },
        ConsistentRead: true,
        ProjectionExpression: '#t',
        ExpressionAttributeNames: { '#t': 'ttl' },
      }),
    );
    return r.Item !== undefined && num(r.Item.ttl) * 1000 > Date.now();
  }

  /** Compacted, carrying the oldest revision one can still watch or list from (found by bisection). */
  private async compacted(what: string, from: number, head: number): Promise<StorageError> {
    let lo = from + 1;
    let hi = head + 1; // hi = head + 1: nothing in (from, head] is available
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      if (await this.available(mid)) hi = mid;
      else lo = mid + 1;
    }
    const oldest = Math.min(lo - 1, head);
    return new StorageError('Compacted', what, `revision ${from} is compacted (oldest available: ${oldest})`, oldest);
  }

  private async assertListable(prefix: string, target: number, head: number): Promise<void> {
    if (head - target > this.maxListReplay) {
      const oldest = head - this.maxListReplay;
      throw new StorageError('Compacted', prefix, `revision ${target} is too old to list (oldest: ${oldest})`, oldest);
    }
    if (!(await this.available(target + 1))) throw await this.compacted(prefix, target, head);
  }

  private async queryAll(q: { KeyConditionExpression: string; ExpressionAttributeValues: Item }): Promise<Item[]> {
    const out: Item[] = [];
    let cursor: Item | undefined;
    do {
      const r = await this.client.send(new QueryCommand({ TableName: this.table, ConsistentRead: true, ExclusiveStartKey: cursor, ...q }));
      out.push(...(r.Items ?? []));
      cursor = r.LastEvaluatedKey;
    } while (cursor);
    return out;
  }

  async close(): Promise<void> {
    // The client belongs to the caller. Open watches end now.
    this.closed = true;
    this.feed.wakeAll();
  }
}

/** Creates the table if it does not exist, waits until it is ACTIVE, and turns TTL on. */
export async function ensureTable(client: DynamoDBClient, tableName: string): Promise<void> {
  const s = tableSchema;
  let created = false;
  try {
    await client.send(
      new CreateTableCommand({
        TableName: tableName,
        BillingMode: s.billingMode,
        KeySchema: [
          { AttributeName: s.partitionKey.name, KeyType: 'HASH' },
          { AttributeName: s.sortKey.name, KeyType: 'RANGE' },
        ],
        AttributeDefinitions: [
          { AttributeName: s.partitionKey.name, AttributeType: s.partitionKey.type },
          { AttributeName: s.sortKey.name, AttributeType: s.sortKey.type },
        ],
        StreamSpecification: { StreamEnabled: true, StreamViewType: s.streamViewType },
      }),
    );
    created = true;
  } catch (e) {
    if ((e as Error).name !== 'ResourceInUseException') throw e; // it exists already
  }
  const deadline = Date.now() + 5 * 60_000;
  for (;;) {
    const d = await client.send(new DescribeTableCommand({ TableName: tableName }));
    if (d.Table?.TableStatus === 'ACTIVE') break;
    if (Date.now() > deadline) throw new Error(`table ${tableName} is not ACTIVE after 5 minutes (${d.Table?.TableStatus})`);
    await sleep(500);
  }
  const ttl = await client.send(new DescribeTimeToLiveCommand({ TableName: tableName }));
  const status = ttl.TimeToLiveDescription?.TimeToLiveStatus;
  if (status !== 'ENABLED' && status !== 'ENABLING') {
    await client.send(
      new UpdateTimeToLiveCommand({ TableName: tableName, TimeToLiveSpecification: { AttributeName: s.timeToLiveAttribute, Enabled: true } }),
    );
  }
  // A new table holds nothing unindexed: its indexes are complete from the start.
  if (created) for (const index of INDEXES) await client.send(new PutItemCommand({ TableName: tableName, Item: indexMarkerKey(index) }));
}

/**
 * The log's recent entries, read once for all of this process's watches. Every write moves every watch
 * (they wait on the one RevisionFeed), and each read the log range itself: with the ~30 watches a process
 * of loops keeps (one per kind), a write cost ~30 Queries. Watches that wait on the same range now share
 * one read (in flight, then from this window); the entries are shared and never mutated.
 */
class LogWindow {
  private readonly entries = new Map<number, LogEntry>();
  private readonly inFlight = new Map<string, Promise<LogEntry[]>>();

  constructor(
    private readonly readRange: (after: number, upTo: number) => Promise<LogEntry[]>,
    // Two watch batches: enough for watches moving in step; one far behind reads its own range again.
    private readonly capacity = 2 * BATCH_REVISIONS,
  ) {}

  async read(after: number, upTo: number): Promise<LogEntry[]> {
    let from = after;
    while (from < upTo && this.entries.has(from + 1)) from++;
    if (from < upTo) {
      const id = `${from}:${upTo}`;
      let p = this.inFlight.get(id);
      if (!p) {
        p = this.readRange(from, upTo).finally(() => this.inFlight.delete(id));
        this.inFlight.set(id, p);
      }
      const fresh = await p;
      for (const e of fresh) this.entries.set(e.kv.modRevision, e);
      // Oldest first out (insertion order is close enough to revision order for a window).
      for (const rev of this.entries.keys()) {
        if (this.entries.size <= this.capacity) break;
        this.entries.delete(rev);
      }
      if (from === after) return fresh;
    }
    const out: LogEntry[] = [];
    for (let rev = after + 1; rev <= upTo; rev++) {
      const e = this.entries.get(rev);
      if (!e) return this.readRange(after, upTo); // evicted meanwhile: read it all
      out.push(e);
    }
    return out;
  }
}

/**
 * The newest revision this process knows of, shared by all its watches: one counter read per interval
 * however many watches wait, and an immediate wake-up for writes made by this process.
 */
class RevisionFeed {
  private known = 0;
  private readonly waiters = new Set<{ above: number; wake: (err?: unknown) => void }>();
  private polling = false;

  constructor(
    private readonly read: () => Promise<number>,
    private readonly intervalMs: number,
  ) {}

  observe(rev: number): void {
    if (rev <= this.known) return;
    this.known = rev;
    for (const w of this.waiters) if (w.above < rev) w.wake();
  }

  wakeAll(): void {
    for (const w of this.waiters) w.wake();
  }

  /** The newest known revision, once it exceeds `above`, or when timeoutMs passes or signal aborts. */
  async next(above: number, timeoutMs: number, signal: AbortSignal): Promise<number> {
    if (this.known > above || signal.aborted) return this.known;
    await new Promise<void>((resolve, reject) => {
      const w = {
        above,
        wake: (err?: unknown) => {
          clearTimeout(timer);
          signal.removeEventListener('abort', onAbort);
          this.waiters.delete(w);
          if (err) reject(err);
          else resolve();
        },
      };
      const onAbort = () => w.wake();
      const timer = setTimeout(onAbort, Math.max(0, timeoutMs));
      signal.addEventListener('abort', onAbort);
      this.waiters.add(w);
      void this.poll();
    });
    return this.known;
  }

  private async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      while (this.waiters.size > 0) {
        try {
          this.observe(await this.read());
        } catch (err) {
          for (const w of this.waiters) w.wake(err); // the watches end with the error
        }
        await sleep(this.intervalMs);
      }
    } finally {
      this.polling = false;
    }
  }
}

// ---- keys and items ----

const COLLECTION = /^(\/[^/]+\/[^/]+\/[^/]+\/)(.*)$/s;

/** "/registry/core/pods/default/web-1" -> pk "obj#/registry/core/pods/", rest "default/web-1". */
function splitKey(key: string, isPrefix = false): { pk: string; rest: string } {
  const m = COLLECTION.exec(key);
  if (!m || (!isPrefix && m[2] === '')) {
    throw new Error(`DynamoBackend: ${isPrefix ? 'list prefix' : 'key'} ${JSON.stringify(key)} must start with /{a}/{b}/{c}/`);
  }
  return { pk: `obj#${m[1]}`, rest: m[2]! };
}

function objectKey(key: string): Item {
  const { pk, rest } = splitKey(key);
  return { pk: { S: pk }, sk: { S: rest } };
}

function fullKey(it: Item): string {
  return it.pk!.S!.slice('obj#'.length) + it.sk!.S!;
}

/** The Query's key condition: the collection, narrowed to the prefix's rest and to keys after startAfter. */
function skCondition(pk: string, rest: string, afterRest: string | undefined) {
  const values: Item = { ':pk': { S: pk } };
  if (afterRest !== undefined) {
    // BETWEEN is inclusive: the startAfter item itself is dropped by the caller. "\u{10FFFF}" sorts after
    // any character a key can continue with.
    values[':lo'] = { S: afterRest };
    values[':hi'] = { S: `${rest}\u{10FFFF}` };
    return { KeyConditionExpression: 'pk = :pk AND sk BETWEEN :lo AND :hi', ExpressionAttributeValues: values };
  }
  if (rest === '') return { KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: values };
  values[':rest'] = { S: rest };
  return { KeyConditionExpression: 'pk = :pk AND begins_with(sk, :rest)', ExpressionAttributeValues: values };
}

function objectKv(key: string, it: Item): KeyValue {
  return { key, value: it.value!.S!, createRevision: num(it.createRev), modRevision: num(it.modRev) };
}

function storedKv(key: string, it: Item): Stored {
  const kv: Stored = objectKv(key, it);
  if (it.countGroup?.S !== undefined) kv.countGroup = it.countGroup.S;
  if (it.charges?.S !== undefined) kv.charges = it.charges.S;
  if (it.idx?.S !== undefined) kv.indexed = it.idx.S;
  return kv;
}

function objectOnly({ countGroup: _g, charges: _c, indexed: _i, ...kv }: Stored): KeyValue {
  return kv;
}

function parseCharges(s: string | undefined): { group: string; amount: number }[] {
  return s ? (JSON.parse(s) as { group: string; amount: number }[]) : [];
}

/**
 * A write's charges: what the object carries after it (undefined: none) and how each group's total
 * moves. A create makes its charges, a delete gives back the stored ones, an update keeps them or, given
 * charges, sets each named group's (0: none) and moves its total by the difference.
 */
function chargeMoves(type: WatchEventType, stored: string | undefined, given: Charge[] | undefined): { charges: string | undefined; moves: Move[] } {
  const had = parseCharges(stored);
  const encode = (cs: { group: string; amount: number }[]) => (cs.length ? JSON.stringify(cs.map(({ group, amount }) => ({ group, amount }))) : undefined);
  if (type === 'create') return { charges: encode(given ?? []), moves: (given ?? []).map((c) => ({ group: c.group, delta: c.amount, limit: c.limit })) };
  if (type === 'delete') return { charges: stored, moves: had.map((c) => ({ group: c.group, delta: -c.amount })) };
  if (!given) return { charges: stored, moves: [] };
  const after = new Map(had.map((c) => [c.group, c.amount]));
  const moves: Move[] = [];
  for (const c of given) {
    const delta = c.amount - (after.get(c.group) ?? 0);
    if (delta !== 0) moves.push({ group: c.group, delta, limit: c.limit });
    if (c.amount > 0) after.set(c.group, c.amount);
    else after.delete(c.group);
  }
  return { charges: encode([...after].map(([group, amount]) => ({ group, amount }))), moves };
}

function logEntry(it: Item): LogEntry {
  const rev = Number(it.sk!.S!);
  const key = it.key!.S!;
  const type = it.type!.S! as WatchEventType;
  const createRevision = num(it.createRev);
  const kv = { key, value: it.value!.S!, createRevision, modRevision: rev };
  if (type === 'create') return { type, kv };
  // A companion item fills in prevValue when it did not fit here.
  return { type, kv, prevKv: { key, value: it.prevValue?.S ?? '', createRevision, modRevision: num(it.prevRev) } };
}

function num(v: AttributeValue | undefined): number {
  return v?.N ? Number(v.N) : 0;
}

function pad(rev: number): string {
  return String(rev).padStart(20, '0');
}

function byKey(a: KeyValue, b: KeyValue): number {
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

function checkSize(key: string, value: string): void {
  const n = Buffer.byteLength(value);
  if (n > MAX_VALUE_BYTES) throw new StorageError('TooLarge', key, `the object is ${n} bytes, over the DynamoDB backend's limit of ${MAX_VALUE_BYTES} bytes`);
}

function conflict(key: string, stored: number): StorageError {
  return new StorageError('Conflict', key, `${key}: modRevision is ${stored}`, stored);
}

/** Jittered exponential back-off: 2 ms, 4 ms, ... capped at 100 ms, times a random factor in [0.5, 1.5). */
function backoff(attempt: number): Promise<void> {
  return sleep(Math.min(100, 2 ** attempt) * (0.5 + Math.random()));
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Partition keys of object items start with this; stream filters select a kind by `obj#/registry/{group}/{resource}/`. */
export const OBJECT_PK_PREFIX = 'obj#';

/**
 * The object an item image from the table's stream holds (NewImage/OldImage of a DynamoDB stream
 * record); undefined for counter and log items. Controllers in the cloud read changes this way.
 */
export function objectFromImage(image: Record<string, AttributeValue> | undefined): KeyValue | undefined {
  if (!image?.pk?.S?.startsWith(OBJECT_PK_PREFIX) || image.sk?.S === undefined || image.value?.S === undefined) return undefined;
  return objectKv(fullKey(image), image);
}

/** The backend a Lambda function uses: the table named by SKIFF_TABLE (endpoint override for emulators). */
export function backendFromEnv(env: NodeJS.ProcessEnv = process.env): DynamoBackend {
  const tableName = env.SKIFF_TABLE;
  if (!tableName) throw new Error('SKIFF_TABLE is not set');
  const endpoint = env.SKIFF_DYNAMODB_ENDPOINT;
  return new DynamoBackend({ client: new DynamoDBClient(endpoint ? { endpoint } : {}), tableName });
}
