// The production backend: one DynamoDB table, shared by every apiserver Lambda.
//
// Items (pk, sk are strings):
//   object   pk = "obj#/{a}/{b}/{c}/"  sk = rest of the key   z (the value, compressed: value-codec.ts;
//            items from before hold it as the string `value`), createRev, modRev
//            Keys look like /registry/{group}/{resource}/{namespace}/{name}: the first three segments name
//            the collection (one partition key), so list(prefix) is a Query. Keys and list prefixes must
//            therefore have at least three segments and a slash: "/registry/core/pods/" is the shortest
//            prefix list accepts.
//            and countGroup, when created with CreateOptions.count (kept by updates).
//   counter  pk = "meta" sk = "revision"   rev: the last revision handed out.
//   settled  pk = "meta" sk = "settled"   rev: every revision up to this one is known committed or abandoned
//            (a shared watermark, see currentRevision). Next to the counter, so one Query reads both for one
//            read unit; each is written about once per cluster write, so at the top of the range DynamoDB
//            must split the partition between the two items (split for heat does, by sort key).
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
//            and ttl, when written with ttlSeconds (Events): from then on reads treat it as absent, and the
//            table's TTL deletes it later (Backend's Expiry).
//   index    pk = "idx#<index>#<value>" sk = the object's full key   z, createRev, modRev: one per indexed
//            object, put in the object's own transaction by every write that leaves it with an indexed value
//            and deleted by the one that takes it away, so a consistent Query of one value's partition holds
//            exactly the objects with that value, as they are (a covering index: a node's list of its pods
//            is one Query of its pods' values, where a BatchGetItem read each pod for a read unit of its
//            own). "meta"/"index#<name>" marks an index complete: new tables are (ensureTable), older ones
//            once indexExisting() has indexed what they hold. Its `values` attribute says every index item
//            carries its object's value: items put before 2026-12-07 named the key alone (a bind put them,
//            status writes left them), so until indexExisting() has given each its value, and for any item
//            still without one, the objects are read by key.
//   change   pk = "chg#<collection prefix>" sk = revision, zero-padded   key, ttl: one per write to a collection
//            with a change feed (storage/indexes.ts FEEDS: Services, Endpoints), in the write's
//            transaction, so a watch of that collection Queries its own changes instead of reading every
//            write of the cluster. A change of up to FEED_CARRY_BYTES also carries its log item's
//            attributes but the previous value (type, z, createRev, prevRev): the Query then reads the
//            changes themselves, not a log item per change (every node reads every Endpoints change); a
//            bigger one's log item is read, and so is an update's or delete's when a watch asks for
//            previous values (WatchOptions.prevKv: a selector's). "meta"/"feed#<prefix>" holds the revision the feed is complete from (0 on new
//            tables; startFeeds() marks older ones at deploy).
//   tombstone pk = "del#<collection prefix>" sk = rest of the key   rev, ttl: the revision of the key's last
//            delete, put in the delete's transaction; a create's transaction checks that its revision is
//            above it (see writeItems). Expires with the log: a create holds its revision for seconds.
//   log      pk = "log#<revision mod 16>"  sk = revision, zero-padded to 20 digits   key, type, z (the value,
//            compressed; for a delete: the last value), createRev, prevRev, zp (the previous one), ttl. When value and prevValue together
//            would not fit in one item, prevValue goes to a companion item sk = "<padded revision>#prev". A
//            revision handed out but never committed holds a gap item instead (gap = true). Sixteen
//            partitions because one DynamoDB partition takes 1,000 write units a second and the log gets
//            every write of the cluster (a 3 KB pod update is ~12 units in a transaction). Tables written
//            before the shards kept the log under pk = "log": readers look there for a revision no shard has.
//
// A write takes its revision from the counter with one UpdateItem ADD (atomic, never a conflict), then
// commits ONE TransactWriteItems of the object (condition: its modRev, or that it does not exist and its
// tombstone is below the revision) and the revision's log item(s) (condition: the slot is empty). Writes therefore commit out of revision order,
// and a revision handed out may never commit (the object's condition failed, the writer died): the writer
// fills its own abandoned slot with a gap item, and a reader that finds a slot still empty after
// gapTimeoutMs fills it (kine's design). Whoever fills first wins: a writer whose slot was filled sees its
// transaction cancelled and writes again with a new revision. Readers only ever use a revision once every
// revision up to it is settled (committed or a gap), so lists and watches agree on one order and a watch
// resumed from any revision misses nothing. The counter item takes one small write per cluster write:
// DynamoDB's per-item limit (1,000 writes/s) is the cluster's write ceiling, against ~1 / (transaction
// latency) when every write was a transaction conditioned on the counter's value.
//
// Reads: get is a consistent GetItem. A list with an index hint (ListOptions.index) of a complete index
// Queries the value's index partition and reads those objects (BatchGetItem, consistent), then replays the
// log like any list: a node's list of its pods reads its pods, not the cluster's.
// list is otherwise a consistent Query made exact by the log: it reads the
// settled revision before and after, and replays the log in between over what the Query saw, so the result is the
// state at one revision. Undoing later log entries (each carries the previous value) also serves lists at
// an older revision, as long as the log still holds them. A watch polls the settled revision (one counter
// read per interval for all the watches of this process) and reads new log items when it moves. The log is the history
// window: log items expire by DynamoDB TTL after logRetentionSeconds, and a revision whose successor's log
// item has expired (or is gone) is Compacted.

import { itemBytes, itemPrevValue, itemValue, prevValueAttribute, valueAttribute } from './value-codec.ts';
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
  UpdateItemCommand,
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
  type WatchOptions,
} from './backend.ts';
import { FEEDS, INDEXES, feedOfKey, indexOfKey, type KeyIndex } from './indexes.ts';

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
/**
 * Largest change feed item that carries its change (see the layout above): two write units at most, one
 * more than a bare one in the write's transaction, where each node's catch-up then saves the read of a
 * log item (a Service's or a 10-address Endpoints' update carried is ~0.6 KB, one unit).
 */
const FEED_CARRY_BYTES = 2048;
const MAX_WRITE_ATTEMPTS = 50;
/** DynamoDB's answers to too many requests (the SDK retries them a few times before giving up). */
const THROTTLING_ERRORS = new Set(['ProvisionedThroughputExceededException', 'ThrottlingException', 'RequestLimitExceeded']);
/** Most revisions one watch batch covers. */
const BATCH_REVISIONS = 1000;
/** How long, and for how many objects, a process remembers what it read or wrote (DynamoBackend.recent). */
const RECENT_MS = 2000;
const RECENT_MAX = 1000;
/** Partitions of the log (see the header): a log item's partition is its revision modulo this. */
const LOG_SHARDS = 16;

export interface DynamoOptions {
  client: DynamoDBClient;
  tableName: string;
  /** How long a write stays replayable from the log (default 3600 s). TTL deletes log items afterwards. */
  logRetentionSeconds?: number;
  /** How often open watches look for new writes (default 150 ms). */
  pollIntervalMs?: number;
  /** A list at an older revision undoes at most this many later writes, else Compacted (default 10 000). */
  maxListReplay?: number;
  /**
   * How long a revision may stay handed out but uncommitted before a reader fills it with a gap (default
   * 1000 ms). A write takes one transaction after taking its revision: tens of milliseconds, unless its
   * writer died or is throttled; a writer whose revision was filled writes again with a new one.
   */
  gapTimeoutMs?: number;
}

type Item = Record<string, AttributeValue>;

interface LogEntry {
  type: WatchEventType;
  kv: KeyValue;
  prevKv?: KeyValue;
}

/** A settled revision's place in the log: its entry, or none for a gap (handed out, never committed). */
interface Slot {
  rev: number;
  /** When the log item expires (epoch seconds). */
  ttl: number;
  entry?: LogEntry;
}

/** What settling reads of a log item (readLog's keysOnly): that its slot is filled, whether by a gap, and when it expires. */
const SLOT_KEYS = { ProjectionExpression: 'pk, sk, gap, #ttl', ExpressionAttributeNames: { '#ttl': 'ttl' } };

const COUNTER_KEY: Item = { pk: { S: 'meta' }, sk: { S: 'revision' } };
const SETTLED_KEY: Item = { pk: { S: 'meta' }, sk: { S: 'settled' } };
/** The log's partition of a revision; "log" is where tables from before the shards keep theirs. */
const logPk = (rev: number) => `log#${rev % LOG_SHARDS}`;
const LEGACY_LOG_PK = 'log';
const logKey = (rev: number, pk = logPk(rev)): Item => ({ pk: { S: pk }, sk: { S: pad(rev) } });
const countKey = (group: string): Item => ({ pk: { S: 'count' }, sk: { S: group } });

/** An object as stored: its KeyValue, the count group it was created in, its charges and its indexed value. */
type Stored = KeyValue & { countGroup?: string; charges?: string; indexed?: string };

const indexMarkerKey = (index: KeyIndex): Item => ({ pk: { S: 'meta' }, sk: { S: `index#${index.name}` } });
const indexPk = (index: KeyIndex, value: string) => `idx#${index.name}#${value}`;
const feedMarkerKey = (feed: string): Item => ({ pk: { S: 'meta' }, sk: { S: `feed#${feed}` } });
const feedPk = (feed: string) => `chg#${feed}`;

/** What a write does, as decide() judges it against the stored object. */
interface Change {
  type: WatchEventType;
  value: string;
  /** create: the group to join, within its limit. */
  count?: CountOptions;
  /** create: the quota charges, each within its limit; update: the charges that replace the object's. */
  charges?: Charge[];
  /** The object expires this long after the write (Backend's Expiry). */
  ttlSeconds?: number;
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
  /** Each change feed's recent changes, shared by this process's catch-ups of the whole collection. */
  private readonly feedWindows = new Map<string, FeedWindow>();
  private readonly gapTimeoutMs: number;
  private closed = false;
  /** Every revision up to this one is settled (committed or a gap), as this process has seen. */
  private settled = 0;
  /** When this process first found a revision's log slot empty (the gap timeout runs from then). */
  private readonly missingSince = new Map<number, number>();
  /** Indexes known complete (their marker read), and whether their items carry values: both stay so. */
  private readonly completeIndexes = new Map<string, 'keys' | 'values'>();
  /** When an index was last found incomplete (looked at again after a minute). */
  private readonly incompleteSince = new Map<string, number>();
  /** The revision each change feed is complete from, as read from its marker (a feed stays complete). */
  private readonly feedStarts = new Map<string, number>();
  /**
   * Objects this process read or wrote in the last RECENT_MS, by key (see recentAt): an update or delete
   * whose expected modRev is the one seen here skips its own read of the object. The usual request reads
   * the object, then writes it (a PATCH, a status PUT after its GET, a Lease renewal): one GetItem, one
   * read unit and one round trip less each. A stale entry cannot do harm: the transaction holds the object
   * to that modRev, count group, charges and index value, and a write that finds it moved re-reads it.
   */
  private readonly recent = new Map<string, { stored: Stored; at: number }>();

  constructor(opts: DynamoOptions) {
    this.client = opts.client;
    this.table = opts.tableName;
    this.retentionSeconds = opts.logRetentionSeconds ?? 3600;
    this.maxListReplay = opts.maxListReplay ?? 10_000;
    this.gapTimeoutMs = opts.gapTimeoutMs ?? 1000;
    this.feed = new RevisionFeed(() => this.currentRevision(), opts.pollIntervalMs ?? 150);
    this.recentLog = new LogWindow((after, upTo) => this.readLog('watch', after, upTo));
  }

  // ---- reads ----

  /**
   * The newest settled revision: the counter's, once every revision up to it is committed or a gap. The
   * counter says what was handed out; the shared watermark (usually at the counter: writers move it) and
   * else the log slots between it and the counter say what settled.
   */
  async currentRevision(): Promise<number> {
    const { head, shared } = await this.heads();
    if (shared > this.settled) this.settled = Math.min(shared, head);
    while (this.settled < head) {
      const from = this.settled;
      const upTo = Math.min(head, from + BATCH_REVISIONS);
      try {
        // Waits for writes in flight and fills abandoned revisions. Only whether each slot is filled
        // matters here, so the slots' keys are read, not their values (a list's replay and a watch read
        // the values they use, through the window, when they do).
        await this.readLog('watch', from, upTo, true);
      } catch (e) {
        // Expired from the log: long settled (a revision is in flight for one transaction, not an hour).
        if (!(e instanceof StorageError && e.code === 'Compacted' && e.revision !== undefined && e.revision > from)) throw e;
        if (this.settled < e.revision) this.settled = Math.min(e.revision, head);
        continue;
      }
      if (this.settled < upTo) this.settled = upTo;
    }
    // Other processes settle from the shared watermark: spare them the log read this one just made.
    if (head > shared) await this.publishSettled(head);
    return head;
  }

  /** The counter (the last revision handed out) and the settled watermark: one Query, one read unit. */
  private async heads(): Promise<{ head: number; shared: number }> {
    const r = await this.client.send(
      new QueryCommand({
        TableName: this.table,
        ConsistentRead: true,
        KeyConditionExpression: 'pk = :pk AND sk BETWEEN :lo AND :hi',
        ExpressionAttributeValues: { ':pk': COUNTER_KEY.pk!, ':lo': COUNTER_KEY.sk!, ':hi': SETTLED_KEY.sk! },
      }),
    );
    const rev = (key: Item) => num(r.Items?.find((it) => it.sk!.S === key.sk!.S)?.rev);
    return { head: rev(COUNTER_KEY), shared: rev(SETTLED_KEY) };
  }

  /**
   * Moves the shared watermark up to `rev` (never down); with `after`, only from exactly that revision (a
   * writer that knows nothing of the revisions below its own). Best effort: a failure only costs a later
   * reader a longer read.
   */
  private async publishSettled(rev: number, after?: number): Promise<void> {
    const condition = after === undefined ? 'attribute_not_exists(rev) OR rev < :s' : after === 0 ? 'attribute_not_exists(rev)' : 'rev = :a';
    await this.client
      .send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: SETTLED_KEY,
          UpdateExpression: 'SET rev = :s',
          ConditionExpression: condition,
          ExpressionAttributeValues: { ':s': { N: String(rev) }, ...(after ? { ':a': { N: String(after) } } : {}) },
        }),
      )
      .catch(() => undefined);
  }

  async get(key: string): Promise<KeyValue | undefined> {
    const cur = await this.getStored(key);
    return cur && objectOnly(cur);
  }

  async list(prefix: string, opts: ListOptions = {}): Promise<ListResult> {
    const index = opts.index && INDEXES.find((i) => i.name === opts.index!.name && prefix.startsWith(i.prefix));
    if (index && opts.startAfter === undefined && opts.revision === undefined && (await this.indexComplete(index))) {
      // A first page (a client paging its list, as client-go's informers do) is the whole answer when the
      // value's keys fit in it: a node's pods do. Otherwise the pages come from the collection's Query.
      const all = await this.listIndexed(prefix, index, opts.index!.value, opts.filter);
      if (!opts.limit || all.kvs.length <= opts.limit) return all;
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
      undo.push(...entriesOf(await this.readLog(prefix, target, rev)));
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
        if ((after === undefined || k > after) && !expired(it)) items.set(k, objectKv(k, it));
      }
      cursor = page.LastEvaluatedKey;
      exhausted = !cursor;
      if (cursor) scannedTo = fullKey(cursor);

      // Bring the scanned range to the counter's value now: a key there is either unchanged since the
      // Query read it, or changed by writes at or below `now`, which the log holds in order.
      const now = await this.currentRevision();
      if (now > rev) {
        const entries = await this.logRange(prefix, rev, now);
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
    const covering = this.completeIndexes.get(index.name) === 'values';
    const items = new Map<string, KeyValue>();
    // Objects whose index item names only their key (see the layout above) are read by key.
    const keys: string[] = [];
    for (const it of await this.queryAll({ KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': { S: indexPk(index, value) } } })) {
      const k = it.sk!.S!;
      if (!k.startsWith(prefix)) continue;
      if (covering && itemValue(it) !== undefined) items.set(k, objectKv(k, it));
      else keys.push(k);
    }
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
      for (const e of await this.logRange(prefix, rev, now)) {
        if (!e.kv.key.startsWith(prefix)) continue;
        if (e.type === 'delete') items.delete(e.kv.key);
        else items.set(e.kv.key, e.kv);
      }
    }
    const kvs = [...items.values()].filter((kv) => !filter || filter(kv)).sort(byKey);
    return { kvs, revision: now, more: false };
  }

  private async indexComplete(index: KeyIndex): Promise<boolean> {
    const known = this.completeIndexes.get(index.name);
    if (known === 'values') return true;
    if (performance.now() - (this.incompleteSince.get(index.name) ?? -Infinity) < 60_000) return known !== undefined;
    const r = await this.client.send(new GetItemCommand({ TableName: this.table, Key: indexMarkerKey(index), ConsistentRead: true }));
    // Complete but not yet covering: looked at again after a minute, as an incomplete one is.
    if (r.Item) this.completeIndexes.set(index.name, r.Item.values?.BOOL ? 'values' : 'keys');
    if (!r.Item?.values?.BOOL) this.incompleteSince.set(index.name, performance.now());
    return !!r.Item;
  }

  /**
   * Indexes every object stored before its collection's index existed or before index items carried
   * values (a table of an older Skiff), then marks the index complete and covering; until then lists read
   * the whole collection, or the objects by key. Safe while the cluster serves (each index item is put on
   * the condition that its object is unchanged; one that changed was indexed by its own write) and again.
   * Returns how many index items it put.
   */
  async indexExisting(): Promise<number> {
    let n = 0;
    for (const index of INDEXES) {
      await this.indexComplete(index);
      if (this.completeIndexes.get(index.name) === 'values') continue;
      const { pk } = splitKey(index.prefix, true);
      for (const it of await this.queryAll({ KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': { S: pk } } })) {
        const value = index.valueOf(itemValue(it)!);
        if (value === undefined) continue;
        const indexItem: Item = { pk: { S: indexPk(index, value) }, sk: { S: fullKey(it) }, ...valueAttribute(itemValue(it)!), createRev: it.createRev!, modRev: it.modRev! };
        // An indexed object keeps its idx; one not yet indexed gets it, on the same condition.
        const indexed = it.idx?.S === value;
        try {
          await this.client.send(
            new TransactWriteItemsCommand({
              TransactItems: [
                indexed
                  ? { ConditionCheck: { TableName: this.table, Key: { pk: it.pk!, sk: it.sk! }, ConditionExpression: 'modRev = :m AND idx = :v', ExpressionAttributeValues: { ':v': { S: value }, ':m': it.modRev! } } }
                  : {
                      Update: {
                        TableName: this.table,
                        Key: { pk: it.pk!, sk: it.sk! },
                        UpdateExpression: 'SET idx = :v',
                        ConditionExpression: 'modRev = :m AND attribute_not_exists(idx)',
                        ExpressionAttributeValues: { ':v': { S: value }, ':m': it.modRev! },
                      },
                    },
                { Put: { TableName: this.table, Item: indexItem } },
              ],
            }),
          );
          n++;
        } catch (e) {
          if ((e as Error).name !== 'TransactionCanceledException') throw e; // changed meanwhile: its write indexed it
        }
      }
      await this.client.send(new PutItemCommand({ TableName: this.table, Item: { ...indexMarkerKey(index), values: { BOOL: true } } }));
      this.completeIndexes.set(index.name, 'values');
    }
    return n;
  }

  // ---- writes ----

  async create(key: string, value: string, opts: CreateOptions = {}): Promise<KeyValue> {
    checkSize(key, value);
    // The groups a create joins are known before its read: their totals are read alongside.
    const groups = [...(opts.count ? [opts.count.group] : []), ...(opts.charges ?? []).filter((c) => c.amount > 0).map((c) => c.group)];
    return this.write(
      key,
      (cur) => {
        if (cur) throw new StorageError('KeyExists', key);
        return { type: 'create', value, count: opts.count, charges: opts.charges, ttlSeconds: opts.ttlSeconds };
      },
      groups,
    );
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

  /** get, with the object's count group, charges and index value (remembered: see `recent`). */
  private async getStored(key: string): Promise<Stored | undefined> {
    const r = await this.client.send(new GetItemCommand({ TableName: this.table, Key: objectKey(key), ConsistentRead: true }));
    const cur = r.Item && liveStored(key, r.Item);
    this.remember(key, cur);
    return cur;
  }

  private remember(key: string, cur: Stored | undefined): void {
    this.recent.delete(key);
    if (!cur) return;
    this.recent.set(key, { stored: cur, at: Date.now() });
    // Oldest first (insertion order): a bounded, short memory, not a cache of the table.
    while (this.recent.size > RECENT_MAX) this.recent.delete(this.recent.keys().next().value!);
  }

  /** The object as this process last saw it at modRev `rev`, if it did within RECENT_MS. */
  private recentAt(key: string, rev: number | undefined): Stored | undefined {
    const hit = this.recent.get(key);
    if (!hit || rev === undefined || hit.stored.modRevision !== rev || Date.now() - hit.at > RECENT_MS) return undefined;
    return hit.stored;
  }

  async update(key: string, value: string, expectedModRevision: number, opts: UpdateOptions = {}): Promise<KeyValue> {
    checkSize(key, value);
    return this.write(
      key,
      (cur) => {
        if (!cur) throw new StorageError('NotFound', key);
        if (cur.modRevision !== expectedModRevision) throw conflict(key, cur.modRevision);
        return { type: 'update', value, charges: opts.charges, ttlSeconds: opts.ttlSeconds };
      },
      [],
      expectedModRevision,
    );
  }

  async delete(key: string, expectedModRevision?: number): Promise<KeyValue> {
    return this.write(
      key,
      (cur) => {
        if (!cur) throw new StorageError('NotFound', key);
        if (expectedModRevision !== undefined && cur.modRevision !== expectedModRevision) throw conflict(key, cur.modRevision);
        return { type: 'delete', value: cur.value };
      },
      [],
      expectedModRevision,
    );
  }

  /**
   * Reads the object, lets decide() judge the change against it (it throws the StorageError), takes a
   * revision and commits the change at it. Writes of one process run concurrently: nothing is contended
   * but the objects themselves.
   */
  private async write(key: string, decide: (cur: Stored | undefined) => Change, groups: string[] = [], expectedModRevision?: number): Promise<KeyValue> {
    // Marks this write's log item, so an attempt whose answer was lost can be recognised (see claim()).
    const writeId = randomUUID();
    // An object read here just now at the expected modRev is not read again (see `recent`).
    const seen = this.recentAt(key, expectedModRevision);
    let [cur, prefetched] = await Promise.all([seen ?? this.getStored(key), groups.length ? this.totals(groups) : undefined]);
    for (let attempt = 1; ; attempt++) {
      const { type, value, count, charges: newCharges, ttlSeconds } = decide(cur);
      // The object's charges: made on create, kept by updates unless replaced, given back by the delete;
      // `moves` says how each group's total moves (a rise is checked against its limit first).
      const { charges, moves } = chargeMoves(type, cur?.charges, newCharges);
      const over = moves.find((m) => m.delta > 0 && m.limit !== undefined && m.delta > m.limit);
      if (over) throw limitExceeded(key, over);
      // The object's count group: joined on create, kept by updates, left by the delete.
      const group = type === 'create' ? count?.group : cur!.countGroup;
      // A rise past a limit is refused before a revision is taken (a refused write takes none), from the
      // totals now; the transaction's own conditions still hold it exactly when writers race.
      const rises: Move[] = [...(type === 'create' && count ? [{ group: count.group, delta: 1, limit: count.limit }] : []), ...moves.filter((m) => m.delta > 0 && m.limit !== undefined)];
      if (rises.length) {
        const totals = prefetched && rises.every((m) => groups.includes(m.group)) ? prefetched : await this.totals(rises.map((m) => m.group));
        prefetched = undefined; // a retry reads them again
        const past = rises.find((m) => (totals.get(m.group) ?? 0) + m.delta > m.limit!);
        if (past) throw limitExceeded(key, past, count);
      }
      // Taken after the read: a revision handed out after the object's last write is above its modRev.
      const rev = await this.allocate(key);
      const entry: LogEntry = {
        type,
        kv: { key, value, createRevision: type === 'create' ? rev : cur!.createRevision, modRevision: rev },
        prevKv: type === 'create' ? undefined : cur && objectOnly(cur),
      };
      try {
        await this.client.send(
          new TransactWriteItemsCommand({
            // A counted object never expires: the table's TTL would take it out without its count (an
            // Event stored before Events expired, written again now).
            TransactItems: this.writeItems(entry, group, count?.limit, writeId, cur?.charges, charges, moves, cur?.indexed, group === undefined ? ttlSeconds : undefined),
            ClientRequestToken: randomUUID(),
          }),
        );
        const indexed = indexedOf(key, entry);
        this.remember(key, type === 'delete' ? undefined : { ...entry.kv, ...(group !== undefined ? { countGroup: group } : {}), ...(charges !== undefined ? { charges } : {}), ...(indexed !== undefined ? { indexed } : {}) });
        await this.settledOwn(rev);
        return entry.kv;
      } catch (e) {
        // Not committed, or not known: the SDK sent the transaction more than once (a dropped connection, a
        // 500 after committing) or gave up with no answer. Real DynamoDB answers a retry carrying the same
        // ClientRequestToken with success and applies nothing; moto ignores the token and re-runs it, which
        // cancels on our own log item. claim() settles it: it fills the revision's slot with a gap unless a
        // log item is there, and that item's writeId says whether it is ours.
        const cancelled = (e as Error).name === 'TransactionCanceledException';
        const tries = (e as { $metadata?: { attempts?: number } }).$metadata?.attempts ?? 1;
        const outcome = await this.claim(rev, writeId);
        if (outcome !== undefined) await this.settledOwn(rev);
        if (outcome === 'mine') return entry.kv;
        // Whether it committed cannot be told: no false answer either way (readers fill the slot later).
        if (outcome === undefined && !(cancelled && tries === 1)) throw e;
        if (!cancelled) {
          // Not committed. Throttled past the SDK's retries: refused, 429 with Retry-After (clients retry).
          if (THROTTLING_ERRORS.has((e as Error).name)) throw new StorageError('Unavailable', key, `${key}: DynamoDB is throttling writes (${(e as Error).name})`);
          throw e;
        }
        if (attempt >= MAX_WRITE_ATTEMPTS) {
          throw new StorageError('Unavailable', key, `${key}: write gave up after ${attempt} attempts`);
        }
        // Reasons are in TransactItems order: object, log, count, charges. "None" means that item was fine.
        // Without reasons (an emulator that omits them), everything is re-read.
        const reasons = (e as { CancellationReasons?: CancellationReason[] }).CancellationReasons;
        const [object, , quota] = reasons ?? [];
        const stale = (r?: CancellationReason) => r?.Code === 'ConditionalCheckFailed';
        if (count && (stale(quota) || (!reasons && (await this.count(count.group)) >= count.limit))) {
          throw limitExceeded(key, { group: count.group, delta: 1, limit: count.limit }, count);
        }
        // The charge items follow the count item (when there is one), in the order of moves.
        const chargeStart = group !== undefined && type !== 'update' ? 3 : 2;
        for (const [i, m] of moves.entries()) {
          if (m.delta <= 0 || m.limit === undefined) continue;
          if (reasons ? stale(reasons[chargeStart + i]) : (await this.count(m.group)) + m.delta > m.limit) throw limitExceeded(key, m);
        }
        // A stale object is settled by re-reading it. Otherwise our slot was filled (we were slower than
        // the gap timeout) or the transaction conflicted with another on the object: back off, try again.
        if (!stale(object)) await backoff(attempt);
        // ALL_OLD returns the item, when there is one, with a failed condition.
        cur = object?.Code === 'None' ? cur : stale(object) && object!.Item ? liveStored(key, object!.Item) : await this.getStored(key);
      }
    }
  }

  /**
   * After this process's write settled `rev` (committed, or its slot filled with a gap): if every revision
   * below was settled already, so is `rev`, and readers need not read the log to know it. Writes one after
   * another keep the watermark at the counter this way; concurrent ones leave the rest to readers.
   */
  private async settledOwn(rev: number): Promise<void> {
    if (this.settled === rev - 1) this.settled = rev;
    // Awaited, though the write is done: a Lambda instance is frozen once it answers, and a watermark
    // left behind until its next invocation would send every other reader to the log meanwhile.
    await this.publishSettled(rev, rev - 1);
    this.feed.poke();
  }

  /** The totals of count groups (0 for a group never used), in one consistent read. */
  private async totals(groups: string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    let want: Item[] = [...new Set(groups)].map(countKey);
    while (want.length) {
      const r = await this.client.send(new BatchGetItemCommand({ RequestItems: { [this.table]: { Keys: want, ConsistentRead: true } } }));
      for (const it of r.Responses?.[this.table] ?? []) out.set(it.sk!.S!, num(it.n));
      want = r.UnprocessedKeys?.[this.table]?.Keys ?? [];
      if (want.length) await sleep(50); // throttled: DynamoDB asks to back off
    }
    return out;
  }

  /** The next revision, from the counter (one atomic ADD: writers never conflict on it). */
  private async allocate(key: string): Promise<number> {
    try {
      const r = await this.client.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: COUNTER_KEY,
          UpdateExpression: 'ADD rev :one',
          ExpressionAttributeValues: { ':one': { N: '1' } },
          ReturnValues: 'UPDATED_NEW',
        }),
      );
      return num(r.Attributes?.rev);
    } catch (e) {
      if (THROTTLING_ERRORS.has((e as Error).name)) throw new StorageError('Unavailable', key, `${key}: DynamoDB is throttling writes (${(e as Error).name})`);
      throw e;
    }
  }

  /**
   * After a write that did not plainly succeed: fills its revision's slot with a gap, unless a log item is
   * there already. 'mine': our write committed; 'lost': it did not and now never will (the slot is taken);
   * undefined: neither could be told (DynamoDB did not answer).
   */
  private async claim(rev: number, writeId: string): Promise<'mine' | 'lost' | undefined> {
    try {
      if (await this.fillGap(rev)) return 'lost';
      const r = await this.client.send(new GetItemCommand({ TableName: this.table, Key: logKey(rev), ConsistentRead: true, ProjectionExpression: 'writeId' }));
      return r.Item?.writeId?.S === writeId ? 'mine' : 'lost';
    } catch {
      return undefined;
    }
  }

  /** Puts a gap item in the revision's empty slot; false when the slot holds an item already. */
  private async fillGap(rev: number): Promise<boolean> {
    try {
      await this.client.send(
        new PutItemCommand({
          TableName: this.table,
          Item: { ...logKey(rev), gap: { BOOL: true }, ttl: this.ttl() },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
      return true;
    } catch (e) {
      if ((e as Error).name === 'ConditionalCheckFailedException') return false;
      throw e;
    }
  }

  private ttl(): AttributeValue {
    return { N: String(Math.ceil(Date.now() / 1000) + this.retentionSeconds) };
  }

  private writeItems(
    e: LogEntry,
    group: string | undefined,
    limit: number | undefined,
    writeId: string,
    readCharges: string | undefined,
    charges: string | undefined,
    moves: Move[],
    readIndexed: string | undefined,
    ttlSeconds: number | undefined,
  ): TransactWriteItem[] {
    const { key, value, createRevision, modRevision: rev } = e.kv;
    const TableName = this.table;
    // The object's indexed value from now on, and the index items that move with it (appended last).
    const index = indexOfKey(key);
    const indexed = indexedOf(key, e);
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
                ...valueAttribute(value),
                createRev: { N: String(createRevision) },
                modRev: { N: String(rev) },
                ...(group !== undefined ? { countGroup: { S: group } } : {}),
                ...(charges !== undefined ? { charges: { S: charges } } : {}),
                ...(indexed !== undefined ? { idx: { S: indexed } } : {}),
                ...(ttlSeconds !== undefined ? { ttl: { N: String(Math.ceil(Date.now() / 1000 + ttlSeconds)) } } : {}),
              },
              // A create may take the place of an expired object the table's TTL has not removed yet.
              ConditionExpression: e.prevKv ? `modRev = :m${sameGroup}${sameCharges}${sameIndex}` : 'attribute_not_exists(pk) OR #ttl <= :now',
              ExpressionAttributeNames: e.prevKv ? undefined : { '#ttl': 'ttl' },
              ExpressionAttributeValues: e.prevKv ? { ':m': { N: String(e.prevKv.modRevision) }, ...groupValue } : { ':now': { N: String(nowSeconds()) } },
              ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
            },
          };
    const ttl = this.ttl();
    const log: Item = {
      ...logKey(rev),
      key: { S: key },
      type: { S: e.type },
      ...valueAttribute(value),
      createRev: { N: String(createRevision) },
      writeId: { S: writeId },
      ttl,
    };
    // The slot must be empty: a reader that gave up waiting for this revision filled it with a gap.
    const items: TransactWriteItem[] = [object, { Put: { TableName, Item: log, ConditionExpression: 'attribute_not_exists(pk)' } }];
    if (group !== undefined && e.type !== 'update') {
      // Third, so its cancellation reason has a fixed place (see write).
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
      const prevValue = prevValueAttribute(e.prevKv.value);
      // Sizes as stored (compressed): the log item holds both values when they fit.
      if (log.z!.B!.length + prevValue.zp!.B!.length + Buffer.byteLength(key) <= INLINE_LOG_BYTES) Object.assign(log, prevValue);
      else items.push({ Put: { TableName, Item: { pk: { S: logPk(rev) }, sk: { S: `${pad(rev)}#prev` }, ...prevValue, ttl } } });
    }
    if (index) {
      if (readIndexed !== undefined && readIndexed !== indexed) items.push({ Delete: { TableName, Key: { pk: { S: indexPk(index, readIndexed) }, sk: { S: key } } } });
      // Every write keeps the index item's copy of the value current (a status write too): lists by the
      // index read these copies, not the objects.
      if (indexed !== undefined) {
        const Item: Item = { pk: { S: indexPk(index, indexed) }, sk: { S: key }, ...valueAttribute(value), createRev: { N: String(createRevision) }, modRev: { N: String(rev) } };
        items.push({ Put: { TableName, Item } });
      }
    }
    const feed = feedOfKey(key);
    if (feed) items.push({ Put: { TableName, Item: feedItem(feed, log) } });
    // A delete leaves the key's tombstone, and a create commits only above it. A create takes its revision
    // after reading the key absent; another writer may create and delete the key before its transaction
    // lands, with later revisions. The key is absent again then, so the object's own condition holds:
    // committed at its older revision, the log would say created, created, deleted, while the table holds
    // the object. Cancelled here instead, the create writes again under a revision above the delete.
    if (e.type === 'delete') items.push({ Put: { TableName, Item: { ...tombstoneKey(key), rev: { N: String(rev) }, ttl } } });
    if (e.type === 'create') {
      items.push({
        ConditionCheck: {
          TableName,
          Key: tombstoneKey(key),
          ConditionExpression: 'attribute_not_exists(pk) OR rev < :rev',
          ExpressionAttributeValues: { ':rev': { N: String(rev) } },
        },
      });
    }
    return items;
  }

  // ---- watch ----

  async *watch(prefix: string, fromRevision: number, signal: AbortSignal, progressIntervalMs = 5000, opts: WatchOptions = {}): AsyncIterable<WatchBatch> {
    const withPrev = opts.prevKv !== false;
    const head = await this.currentRevision();
    this.feed.observe(head);
    if (fromRevision < head && !(await this.available(fromRevision + 1))) throw await this.compacted(prefix, fromRevision, head);
    // A collection with a change feed complete since fromRevision: read its changes, not every write.
    const feed = FEEDS.find((f) => prefix.startsWith(f));
    const fed = feed !== undefined && fromRevision >= ((await this.feedStart(feed)) ?? Infinity);
    let last = fromRevision;
    let lastSent = Date.now();
    while (!signal.aborted && !this.closed) {
      const known = await this.feed.next(last, lastSent + progressIntervalMs - Date.now(), signal);
      if (signal.aborted || this.closed) return;
      if (known > last) {
        // A feed's changes are few: read them up to the newest revision at once.
        const upTo = fed ? known : Math.min(known, last + BATCH_REVISIONS);
        const entries = fed ? await this.changesOf(feed!, prefix, last, upTo, withPrev) : await this.logRange(prefix, last, upTo);
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

  // ---- change feeds ----

  /** The revision a collection's feed is complete from; undefined while it is not (a table from before). */
  private async feedStart(feed: string): Promise<number | undefined> {
    const known = this.feedStarts.get(feed);
    if (known !== undefined) return known;
    const r = await this.client.send(new GetItemCommand({ TableName: this.table, Key: feedMarkerKey(feed), ConsistentRead: true }));
    if (!r.Item) return undefined;
    this.feedStarts.set(feed, num(r.Item.rev));
    return num(r.Item.rev);
  }

  /**
   * Starts the change feeds of a table from before them: each is complete from the counter's value now
   * (this process writes them from now on; run it once the code that writes them serves every write: the
   * bootstrap does, at deploy). Watches from an earlier revision read the log instead. Idempotent.
   */
  async startFeeds(): Promise<void> {
    const head = await this.currentRevision();
    for (const feed of FEEDS) {
      if ((await this.feedStart(feed)) !== undefined) continue;
      await this.client
        .send(new PutItemCommand({ TableName: this.table, Item: { ...feedMarkerKey(feed), rev: { N: String(head) } }, ConditionExpression: 'attribute_not_exists(pk)' }))
        .catch((e) => {
          if ((e as Error).name !== 'ConditionalCheckFailedException') throw e; // marked meanwhile
        });
    }
  }

  /**
   * The log entries under prefix in (after, upTo] from a collection's feed: one Query of its changes,
   * then the log items of those that do not carry themselves (BatchGetItem). A change carries its new
   * value only (feedItem): with withPrev, an update's or delete's log item is read for its previous value.
   * Every revision up to upTo is settled, so the feed is complete there; a change whose log item is gone
   * expired with it (TTL): Compacted.
   */
  private async changesOf(feed: string, prefix: string, after: number, upTo: number, withPrev: boolean): Promise<LogEntry[]> {
    // Every deployed agent catches up on the whole collection (no selector: no previous values), each from
    // where it last looked: read through the process's window of the feed, each change is read once per
    // warm function, not once per node (issue #16: a node's cost flat as the cluster grows).
    if (prefix === feed && !withPrev) {
      let w = this.feedWindows.get(feed);
      if (!w) this.feedWindows.set(feed, (w = new FeedWindow((a, b) => this.readChanges(feed, prefix, a, b, false))));
      return w.read(after, upTo);
    }
    return this.readChanges(feed, prefix, after, upTo, withPrev);
  }

  /** changesOf's read: the feed's Query, and the log items of changes that do not carry themselves. */
  private async readChanges(feed: string, prefix: string, after: number, upTo: number, withPrev: boolean): Promise<LogEntry[]> {
    const changes = (
      await this.queryAll({
        KeyConditionExpression: 'pk = :pk AND sk BETWEEN :lo AND :hi',
        ExpressionAttributeValues: { ':pk': { S: feedPk(feed) }, ':lo': { S: pad(after + 1) }, ':hi': { S: pad(upTo) } },
      })
    ).filter((it) => it.key!.S!.startsWith(prefix));
    if (changes.length === 0) return [];
    // A change that carries itself is its log entry; for the others (too big to carry, written before
    // changes were carried, or whose previous value is asked for and not carried) the log items are read.
    // Items written before 2026-12-06 carry the previous value too (zp).
    const carried = (it: Item) => it.type !== undefined && (!withPrev || it.type.S === 'create' || it.zp !== undefined);
    const slots = new Map<number, Slot>();
    const bare = changes.filter((it) => !carried(it)).map((it) => Number(it.sk!.S!));
    if (bare.length) addSlots(slots, await this.getSlots(bare));
    const entries = changes.map((it) => (carried(it) ? feedEntry(it) : slots.get(Number(it.sk!.S!))?.entry));
    if (entries.some((e) => !e)) throw await this.compacted(prefix, after, upTo);
    return entries as LogEntry[];
  }

  // ---- the log ----

  /** The log entries of (after, upTo] through the shared window: what lists and watches replay. */
  private async logRange(what: string, after: number, upTo: number): Promise<LogEntry[]> {
    return this.recentLog.read(after, upTo).catch((e) => {
      // The shared read's Compacted, naming this reader's prefix.
      throw e instanceof StorageError && e.code === 'Compacted' ? new StorageError('Compacted', what, e.message, e.revision) : e;
    });
  }

  /**
   * The slots of revisions (after, upTo], every one of them (every key), in order: an entry or a gap.
   * A slot still empty is a write in flight: read again until it commits, and after gapTimeoutMs fill it
   * with a gap (its writer died, or will write again under a new revision). Compacted if the log lost it.
   * `keysOnly`: only that each slot is filled (and when it expires), as settling needs; the slots come
   * back without their entries. DynamoDB charges the same read units, but the answers are a few bytes a
   * slot instead of the values and previous values.
   */
  private async readLog(what: string, after: number, upTo: number, keysOnly = false): Promise<Slot[]> {
    const slots = new Map<number, Slot>();
    // One Query per partition the range touches, at once.
    const pks = new Set<string>();
    for (let rev = after + 1; rev <= upTo && pks.size < LOG_SHARDS; rev++) pks.add(logPk(rev));
    const range = (pk: string, lo: number, hi: number) => ({
      KeyConditionExpression: 'pk = :pk AND sk BETWEEN :lo AND :hi',
      ExpressionAttributeValues: { ':pk': { S: pk }, ':lo': { S: pad(lo) }, ':hi': { S: keysOnly ? pad(hi) : `${pad(hi)}#prev` } },
      ...(keysOnly ? SLOT_KEYS : {}),
    });
    const add = (items: Item[], legacy = false) => addSlots(slots, items, legacy, keysOnly);
    add((await Promise.all([...pks].map((pk) => this.queryAll(range(pk, after + 1, upTo))))).flat());
    let missing = missingRevisions(slots, after, upTo);
    // A table from before the shards: its log items are in the one old partition.
    if (missing.length) add(await this.queryAll(range(LEGACY_LOG_PK, missing[0]!, missing.at(-1)!)), true);
    for (let attempt = 1; (missing = missingRevisions(slots, after, upTo)).length > 0; attempt++) {
      const first = missing[0]!;
      // Expired, not in flight: the slot after it has lived most of its retention (TTL takes the log from
      // its old end, so what follows an expired run is old too), or the writers are long gone.
      const next = [...slots.values()].filter((sl) => sl.rev > first).sort((x, y) => x.rev - y.rev)[0];
      if (next && next.ttl * 1000 - Date.now() < (this.retentionSeconds * 1000) / 2) throw await this.compacted(what, after, upTo);
      const now = Date.now();
      for (const rev of missing) if (!this.missingSince.has(rev)) this.missingSince.set(rev, now);
      const overdue = missing.filter((rev) => now - this.missingSince.get(rev)! >= this.gapTimeoutMs);
      if (overdue.length) await Promise.all(overdue.map((rev) => this.fillGap(rev)));
      else await sleep(Math.min(100, 5 * 2 ** attempt));
      add(await this.getSlots(missing, keysOnly));
      if (attempt > 10_000) throw new StorageError('Unavailable', what, `log slots ${missing.join(', ')} never settled`);
    }
    for (let rev = after + 1; rev <= upTo; rev++) this.missingSince.delete(rev);
    return [...slots.values()].sort((x, y) => x.rev - y.rev);
  }

  /** The log items of these revisions (with their companions, unless `keysOnly`), read consistently. */
  private async getSlots(revs: number[], keysOnly = false): Promise<Item[]> {
    const out: Item[] = [];
    // Settling (keysOnly) needs the slot, not the previous value's companion item.
    const keysOf = (rev: number): Item[] => (keysOnly ? [logKey(rev)] : [logKey(rev), { pk: { S: logPk(rev) }, sk: { S: `${pad(rev)}#prev` } }]);
    for (let i = 0; i < revs.length; i += 50) {
      let want: Item[] = revs.slice(i, i + 50).flatMap(keysOf);
      while (want.length) {
        const r = await this.client.send(new BatchGetItemCommand({ RequestItems: { [this.table]: { Keys: want, ConsistentRead: true, ...(keysOnly ? SLOT_KEYS : {}) } } }));
        out.push(...(r.Responses?.[this.table] ?? []));
        want = r.UnprocessedKeys?.[this.table]?.Keys ?? [];
        if (want.length) await sleep(50);
      }
    }
    return out;
  }

  /** Whether the log item of `rev` exists and has not expired (expired items may linger until TTL runs). */
  private async available(rev: number): Promise<boolean> {
    for (const pk of [logPk(rev), LEGACY_LOG_PK]) {
      const r = await this.client.send(
        new GetItemCommand({
          TableName: this.table,
          Key: logKey(rev, pk),
          ConsistentRead: true,
          ProjectionExpression: '#t',
          ExpressionAttributeNames: { '#t': 'ttl' },
        }),
      );
      if (r.Item) return num(r.Item.ttl) * 1000 > Date.now();
    }
    return false;
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

  // ---- the loops' resync marks (controllers/stream.ts ResyncLog) ----
  // An item `meta`/`resync#<name>` per function: outside the revisioned store (no revision, no log item),
  // in no stream filter. It holds how far the function's last resync read the log, when it last read
  // everything, and the keys its loops asked to see again (requeues, failures).

  async resyncMark(name: string): Promise<ResyncMark | undefined> {
    const r = await this.client.send(new GetItemCommand({ TableName: this.table, Key: resyncMarkKey(name), ConsistentRead: true }));
    if (!r.Item) return undefined;
    return { revision: num(r.Item.rev), fullAt: num(r.Item.fullAt), pending: r.Item.pending?.SS ?? [] };
  }

  /**
   * Moves the mark to `revision`, never back (a resync running late or twice leaves a later one's mark),
   * with `fullAt` when it read everything, and forgets the pending keys it has reconciled (`done`; keys
   * added meanwhile stay).
   */
  async moveResyncMark(name: string, revision: number, fullAt: number | undefined, done: string[]): Promise<void> {
    const forget: { del: string; values: Item } = done.length ? { del: ' DELETE pending :done', values: { ':done': { SS: done } } } : { del: '', values: {} };
    try {
      await this.client.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: resyncMarkKey(name),
          UpdateExpression: `SET rev = :rev${fullAt !== undefined ? ', fullAt = :full' : ''}${forget.del}`,
          ConditionExpression: 'attribute_not_exists(rev) OR rev <= :rev',
          ExpressionAttributeValues: { ':rev': { N: String(revision) }, ...(fullAt !== undefined ? { ':full': { N: String(fullAt) } } : {}), ...forget.values },
        }),
      );
    } catch (e) {
      if ((e as Error).name !== 'ConditionalCheckFailedException') throw e;
      // Another resync read further: its mark stays; the keys done here are still done.
      if (done.length) await this.client.send(new UpdateItemCommand({ TableName: this.table, Key: resyncMarkKey(name), UpdateExpression: 'DELETE pending :done', ExpressionAttributeValues: forget.values }));
    }
  }

  /** Keys for the next resync to reconcile ("<controller> <key>"): one write, whatever else is pending. */
  async addResyncPending(name: string, keys: string[]): Promise<void> {
    if (!keys.length) return;
    await this.client.send(new UpdateItemCommand({ TableName: this.table, Key: resyncMarkKey(name), UpdateExpression: 'ADD pending :k', ExpressionAttributeValues: { ':k': { SS: [...new Set(keys)] } } }));
  }

  /**
   * Every change after `after` up to the newest settled revision (returned), given to `each` in pages of
   * at most BATCH_REVISIONS revisions, in order: the log, as a watch reads it. Compacted when the log no
   * longer holds `after + 1` (expired by TTL), without looking for the oldest revision it does hold.
   */
  async changesSince(after: number, each: (events: WatchEvent[]) => void): Promise<number> {
    const head = await this.currentRevision();
    if (after > head) throw new StorageError('Compacted', RESYNC_WHAT, `revision ${after} is ahead of the store (${head})`);
    if (after === head) return head;
    if (!(await this.available(after + 1))) throw new StorageError('Compacted', RESYNC_WHAT, `revision ${after} is compacted`);
    for (let from = after; from < head; ) {
      const upTo = Math.min(head, from + BATCH_REVISIONS);
      each(entriesOf(await this.readLog(RESYNC_WHAT, from, upTo)));
      from = upTo;
    }
    return head;
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
  // A new table holds nothing unindexed: its indexes are complete and covering from the start.
  if (created) for (const index of INDEXES) await client.send(new PutItemCommand({ TableName: tableName, Item: { ...indexMarkerKey(index), values: { BOOL: true } } }));
  // And its change feeds complete from the first revision.
  if (created) for (const feed of FEEDS) await client.send(new PutItemCommand({ TableName: tableName, Item: { ...feedMarkerKey(feed), rev: { N: '0' } } }));
}

/**
 * The log's recent entries, read once for all of this process's watches. Every write moves every watch
 * (they wait on the one RevisionFeed), and each read the log range itself: with the ~30 watches a process
 * of loops keeps (one per kind), a write cost ~30 Queries. Watches that wait on the same range now share
 * one read (in flight, then from this window); the entries are shared and never mutated.
 */
class LogWindow {
  private readonly slots = new Map<number, Slot>();
  private readonly inFlight = new Map<string, Promise<Slot[]>>();

  constructor(
    private readonly readRange: (after: number, upTo: number) => Promise<Slot[]>,
    // Two watch batches: enough for watches moving in step; one far behind reads its own range again.
    private readonly capacity = 2 * BATCH_REVISIONS,
  ) {}

  async read(after: number, upTo: number): Promise<LogEntry[]> {
    let from = after;
    while (from < upTo && this.slots.has(from + 1)) from++;
    if (from < upTo) {
      const id = `${from}:${upTo}`;
      let p = this.inFlight.get(id);
      if (!p) {
        p = this.readRange(from, upTo).finally(() => this.inFlight.delete(id));
        this.inFlight.set(id, p);
      }
      const fresh = await p;
      for (const sl of fresh) this.slots.set(sl.rev, sl);
      // Oldest first out (insertion order is close enough to revision order for a window).
      for (const rev of this.slots.keys()) {
        if (this.slots.size <= this.capacity) break;
        this.slots.delete(rev);
      }
      if (from === after) return entriesOf(fresh);
    }
    const out: LogEntry[] = [];
    for (let rev = after + 1; rev <= upTo; rev++) {
      const sl = this.slots.get(rev);
      if (!sl) return entriesOf(await this.readRange(after, upTo)); // evicted meanwhile: read it all
      if (sl.entry) out.push(sl.entry);
    }
    return out;
  }
}

/**
 * A change feed's entries over one run of revisions (start, end], complete there (the feed's Query of a
 * settled range), for the catch-ups of one process: with every node asking what changed since its own
 * last look, each read only what lies past the window's end, and the window grows to cover it. A read
 * from before the window (a node far behind, a fresh process) reads its whole range, which becomes the
 * window when it joins or passes it. The oldest entries go past `capacity`; entries are never mutated.
 */
export class FeedWindow {
  private start = 0;
  private end = -1; // empty: no range covered
  private entries: LogEntry[] = [];

  constructor(
    private readonly readRange: (after: number, upTo: number) => Promise<LogEntry[]>,
    private readonly capacity = 2 * BATCH_REVISIONS,
    // And at most this many bytes of values: an Endpoints of a thousand addresses is ~100 KB of JSON.
    private readonly capacityBytes = 16 * 1024 * 1024,
  ) {}

  /** The entries in (after, upTo], every revision up to upTo settled. */
  async read(after: number, upTo: number): Promise<LogEntry[]> {
    if (upTo <= after) return [];
    if (this.end < 0 || after < this.start || after > this.end) {
      const fresh = await this.readRange(after, upTo);
      this.merge(after, upTo, fresh);
      return fresh;
    }
    // From the window up to its end as it is now (a read in flight may move it), the rest from the store.
    const known = Math.min(this.end, upTo);
    const held = this.entries.filter((e) => e.kv.modRevision > after && e.kv.modRevision <= known);
    if (known === upTo) return held;
    const tail = await this.readRange(known, upTo);
    this.merge(known, upTo, tail);
    return [...held, ...tail];
  }

  /** Takes in a complete read of (after, upTo]: joined to the window when they touch, else the newer of the two. */
  private merge(after: number, upTo: number, fresh: LogEntry[]): void {
    const rev = (e: LogEntry) => e.kv.modRevision;
    if (this.end >= 0 && after <= this.end && upTo >= this.start) {
      this.entries = [...this.entries.filter((e) => rev(e) <= after), ...fresh, ...this.entries.filter((e) => rev(e) > upTo)];
      this.start = Math.min(this.start, after);
      this.end = Math.max(this.end, upTo);
    } else if (upTo > this.end) {
      this.entries = [...fresh];
      this.start = after;
      this.end = upTo;
    }
    let bytes = this.entries.reduce((n, e) => n + e.kv.value.length, 0);
    let drop = Math.max(0, this.entries.length - this.capacity);
    for (let i = 0; i < drop; i++) bytes -= this.entries[i]!.kv.value.length;
    while (drop < this.entries.length && bytes > this.capacityBytes) bytes -= this.entries[drop++]!.kv.value.length;
    if (drop > 0) this.start = rev(this.entries.splice(0, drop).at(-1)!);
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
  private cutSleep?: () => void;

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

  /** Reads now instead of at the end of the interval (this process wrote: there is something to see). */
  poke(): void {
    this.cutSleep?.();
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
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, this.intervalMs);
          this.cutSleep = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.cutSleep = undefined;
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

/** Where a key's last delete is remembered (its tombstone): beside its collection, outside every list's partition. */
function tombstoneKey(key: string): Item {
  const { pk, rest } = splitKey(key);
  return { pk: { S: `del#${pk.slice('obj#'.length)}` }, sk: { S: rest } };
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
  return { key, value: itemValue(it)!, createRevision: num(it.createRev), modRevision: num(it.modRev) };
}

/** The time DynamoDB's TTL compares an item's `ttl` with: seconds since the epoch. */
const nowSeconds = () => Math.floor(Date.now() / 1000);

/** An object item past its expiry (Backend's Expiry): read as absent until the table's TTL deletes it. */
function expired(it: Item): boolean {
  return it.ttl?.N !== undefined && Number(it.ttl.N) <= nowSeconds();
}

/** storedKv of an object item, unless it has expired. */
function liveStored(key: string, it: Item): Stored | undefined {
  return expired(it) ? undefined : storedKv(key, it);
}

function storedKv(key: string, it: Item): Stored {
  const kv: Stored = objectKv(key, it);
  if (it.countGroup?.S !== undefined) kv.countGroup = it.countGroup.S;
  if (it.charges?.S !== undefined) kv.charges = it.charges.S;
  if (it.idx?.S !== undefined) kv.indexed = it.idx.S;
  return kv;
}

/** The index value an object has after a write (storage/indexes.ts), as writeItems puts it. */
function indexedOf(key: string, e: LogEntry): string | undefined {
  const index = indexOfKey(key);
  return index && e.type !== 'delete' ? index.valueOf(e.kv.value) : undefined;
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

/** Adds log items (and their prevValue companions) to slots; a revision already there is kept. */
function addSlots(slots: Map<number, Slot>, items: Item[], legacy = false, keysOnly = false): void {
  for (const it of items) {
    const sk = it.sk!.S!;
    if (sk.endsWith('#prev')) continue;
    const rev = Number(sk);
    // The old partition holds every revision of an older table's log, not only the ones asked for.
    if (slots.has(rev) || (legacy && it.gap?.BOOL)) continue;
    // Items read without their values (readLog's keysOnly) say only that the slot is filled.
    slots.set(rev, { rev, ttl: num(it.ttl), entry: it.gap?.BOOL || keysOnly ? undefined : logEntry(it) });
  }
  for (const it of items) {
    const sk = it.sk!.S!;
    if (!sk.endsWith('#prev')) continue;
    const prev = slots.get(Number(sk.slice(0, -'#prev'.length)))?.entry?.prevKv;
    if (prev) prev.value = itemPrevValue(it)!;
  }
}

/** The revisions of (after, upTo] that have no slot. */
function missingRevisions(slots: Map<number, Slot>, after: number, upTo: number): number[] {
  const out: number[] = [];
  for (let rev = after + 1; rev <= upTo; rev++) if (!slots.has(rev)) out.push(rev);
  return out;
}

/** What a resync knows of where it stopped (DynamoBackend.resyncMark). */
export interface ResyncMark {
  /** The revision up to which the last resync reconciled every change. */
  revision: number;
  /** When the last full re-read ran (epoch ms). */
  fullAt: number;
  /** Keys its loops asked to see again, "<controller> <key>". */
  pending: string[];
}

const RESYNC_WHAT = 'resync';
const resyncMarkKey = (name: string): Item => ({ pk: { S: 'meta' }, sk: { S: `resync#${name}` } });

/**
 * A write's item in its collection's change feed: the revision and key, and the change itself (the log
 * item's attributes but its own key, writeId and previous value) when that fits in FEED_CARRY_BYTES.
 * The previous value stays in the log item: a watch without a selector never reads it (every node's
 * agent follows every Endpoints change, so carrying it doubled what each of them read per change, and
 * the feed item's write), and one that asks for it (WatchOptions.prevKv) reads the log item.
 */
function feedItem(feed: string, log: Item): Item {
  const bare: Item = { pk: { S: feedPk(feed) }, sk: log.sk!, key: log.key!, ttl: log.ttl! };
  const { pk: _pk, sk: _sk, writeId: _w, zp: _zp, ...change } = log;
  const full: Item = { ...bare, ...change };
  return itemBytes(full) <= FEED_CARRY_BYTES ? full : bare;
}

/** A carried change's entry: with its previous value only on items written before feedItem left it out. */
function feedEntry(it: Item): LogEntry {
  const e = logEntry(it);
  return it.zp === undefined ? { type: e.type, kv: e.kv } : e;
}

function entriesOf(slots: Slot[]): LogEntry[] {
  return slots.flatMap((sl) => (sl.entry ? [sl.entry] : []));
}

function logEntry(it: Item): LogEntry {
  const rev = Number(it.sk!.S!);
  const key = it.key!.S!;
  const type = it.type!.S! as WatchEventType;
  const createRevision = num(it.createRev);
  const kv = { key, value: itemValue(it)!, createRevision, modRevision: rev };
  if (type === 'create') return { type, kv };
  // A companion item fills in prevValue when it did not fit here.
  return { type, kv, prevKv: { key, value: itemPrevValue(it) ?? '', createRevision, modRevision: num(it.prevRev) } };
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

/** LimitExceeded for a rise past its group's limit: the object count's wording when it is the count group. */
function limitExceeded(key: string, m: Move, count?: CountOptions): StorageError {
  if (count && m.group === count.group && m.delta === 1) return new StorageError('LimitExceeded', key, `${key}: count group ${m.group} holds its limit of ${m.limit} keys`);
  return new StorageError('LimitExceeded', key, `${key}: charging ${m.delta} to ${m.group} would pass its limit of ${m.limit}`);
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
  if (!image?.pk?.S?.startsWith(OBJECT_PK_PREFIX) || image.sk?.S === undefined || (image.z?.B === undefined && image.value?.S === undefined)) return undefined;
  return objectKv(fullKey(image), image);
}

/** The backend a Lambda function uses: the table named by SKIFF_TABLE (endpoint override for emulators). */
export function backendFromEnv(env: NodeJS.ProcessEnv = process.env): DynamoBackend {
  const tableName = env.SKIFF_TABLE;
  if (!tableName) throw new Error('SKIFF_TABLE is not set');
  const endpoint = env.SKIFF_DYNAMODB_ENDPOINT;
  return new DynamoBackend({ client: new DynamoDBClient(endpoint ? { endpoint } : {}), tableName });
}
