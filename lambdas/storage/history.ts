// Object history (issue #17 item 5): every recorded change of an object, who made it, and the object as
// the change left it, kept for a retention period. The store holds entries by the object's storage key
// and revision; what an entry means (a create, an update, a delete, by whom) is decided by its writer
// (apiserver/history.ts, which records each write the registry makes through the store) and the diff
// between consecutive entries is computed when read.
//
// Two implementations, as for the object store:
// - SqliteHistoryStore (skiff up): one table in its own file next to skiff.db (`history.db`), so the
//   object store's write path, its group commit and its fsync per write, is untouched. Expired entries
//   are deleted by a periodic sweep (every minute by default) and never read after their expiry.
// - DynamoHistoryStore (the cloud): items in the cluster's table under their own partition per object,
//   pk "hist#<key>", sk the revision zero-padded, with the table's TTL attribute `ttl`, so DynamoDB
//   deletes expired entries itself (within a day or two of expiry, at no cost: reads filter on `ttl`
//   until then). The controllers' stream filters name the object partitions ("obj#...") only, so
//   history items never wake a loop.

import { itemValue, valueAttribute } from './value-codec.ts';
import { createRequire } from 'node:module';
import type Database from 'better-sqlite3';
import { DynamoDBClient, PutItemCommand, QueryCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';

/** Who made a change: the request's user (after impersonation), or the control loop's identity. */
export interface HistoryActor {
  username: string;
  uid?: string;
  groups: string[];
  /** The authenticated user who impersonated `username` (kube's audit: user vs impersonatedUser). */
  impersonatedBy?: string;
}

export type HistoryOperation = 'create' | 'update' | 'delete';

export interface HistoryEntry {
  /** The object's storage key (/registry/{group}/{resource}/[{namespace}/]{name}). */
  key: string;
  /** The revision of the write (the object's resourceVersion after it). */
  revision: number;
  /**
   * The revision the write replaced (the object's previous resourceVersion), when the writer knew it:
   * an entry whose previous revision is not the entry before it follows a change that was not recorded.
   */
  previousRevision?: number;
  /** What the store did. */
  operation: HistoryOperation;
  /** The API verb of the request that made the write (patch, update, delete...), when it came from one. */
  verb?: string;
  /** The request's subresource (status, scale...), when it had one. */
  subresource?: string;
  /** Unset when the write came from no request and no control loop (the apiserver's own start-up writes). */
  actor?: HistoryActor;
  /** When it was recorded, RFC 3339 with milliseconds. */
  time: string;
  /** The stored object after the change (for a delete: its last value), as the store holds it. */
  value: string;
  /** Seconds since the epoch after which the entry is gone. */
  expires: number;
}

export interface HistoryReadOptions {
  /** Only the newest `limit` entries (0 or unset: all), still oldest first. */
  limit?: number;
  /** Entries that expired by this time (seconds since the epoch) are not returned. Default: now. */
  now?: number;
}

export interface HistoryStore {
  record(entry: HistoryEntry): Promise<void>;
  /** The key's entries not yet expired, oldest first. */
  read(key: string, opts?: HistoryReadOptions): Promise<HistoryEntry[]>;
  /** Deletes what expired by `now` (seconds since the epoch); returns how many. DynamoDB's TTL does this itself. */
  expire(now?: number): Promise<number>;
  close(): Promise<void>;
}

const nowSeconds = () => Math.floor(Date.now() / 1000);

/** better-sqlite3 is loaded when a store is opened, as sqlite.ts does (a node's bundle carries no native addon). */
const loadDatabase = (): typeof Database => createRequire(import.meta.url)('better-sqlite3');

interface Row {
  key: string;
  rev: number;
  prev: number | null;
  op: HistoryOperation;
  verb: string | null;
  sub: string | null;
  actor: string | null;
  time: string;
  value: string;
  expires: number;
}

function entryOfRow(r: Row): HistoryEntry {
  return {
    key: r.key,
    revision: r.rev,
    ...(r.prev !== null ? { previousRevision: r.prev } : {}),
    operation: r.op,
    ...(r.verb !== null ? { verb: r.verb } : {}),
    ...(r.sub !== null ? { subresource: r.sub } : {}),
    ...(r.actor !== null ? { actor: JSON.parse(r.actor) as HistoryActor } : {}),
    time: r.time,
    value: r.value,
    expires: r.expires,
  };
}

export interface SqliteHistoryOptions {
  /** How often expired entries are deleted (default 60 s; 0: only when expire() is called). */
  sweepIntervalMs?: number;
}

export class SqliteHistoryStore implements HistoryStore {
  private readonly db: Database.Database;
  private readonly insert: Database.Statement;
  private readonly selectNewest: Database.Statement;
  private readonly deleteExpired: Database.Statement;
  private readonly sweep?: NodeJS.Timeout;

  constructor(path: string, opts: SqliteHistoryOptions = {}) {
    this.db = new (loadDatabase())(path);
    this.db.pragma('journal_mode = WAL');
    // NORMAL: an entry survives the process, not the OS losing its page cache. History is recorded after
    // the object's own (fsynced) write and is best effort either way (see apiserver/history.ts).
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    // A rowid table with an index on (key, rev), not a WITHOUT ROWID table keyed so: entries hold whole
    // objects (2 KB a pod), and SQLite's WITHOUT ROWID tables suit small rows; inserting into one cost
    // ~60 µs an entry against ~19 here (scratch measurement, 2 KB values). A file made before keeps its
    // WITHOUT ROWID table (CREATE IF NOT EXISTS), which reads and writes the same.
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS history (
        key TEXT NOT NULL,
        rev INTEGER NOT NULL,
        prev INTEGER,
        op TEXT NOT NULL,
        verb TEXT,
        sub TEXT,
        actor TEXT,
        time TEXT NOT NULL,
        value TEXT NOT NULL,
        expires INTEGER NOT NULL
      );
      CREATE INDEX IF NOT EXISTS history_expires ON history (expires);
    `);
    const table = this.db.prepare("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'history'").get() as { sql: string };
    if (!/WITHOUT ROWID/i.test(table.sql)) this.db.exec('CREATE UNIQUE INDEX IF NOT EXISTS history_key_rev ON history (key, rev)');
    this.insert = this.db.prepare(
      'INSERT OR REPLACE INTO history (key, rev, prev, op, verb, sub, actor, time, value, expires) VALUES (@key, @rev, @prev, @op, @verb, @sub, @actor, @time, @value, @expires)',
    );
    this.insertAll = this.db.transaction((entries: HistoryEntry[]) => {
      for (const e of entries)
        this.insert.run({
          key: e.key,
          rev: e.revision,
          prev: e.previousRevision ?? null,
          op: e.operation,
          verb: e.verb ?? null,
          sub: e.subresource ?? null,
          actor: e.actor ? JSON.stringify(e.actor) : null,
          time: e.time,
          value: e.value,
          expires: e.expires,
        });
    });
    this.selectNewest = this.db.prepare('SELECT * FROM history WHERE key = ? AND expires > ? ORDER BY rev DESC LIMIT ?');
    this.deleteExpired = this.db.prepare('DELETE FROM history WHERE expires <= ?');
    const every = opts.sweepIntervalMs ?? 60_000;
    if (every > 0) {
      this.sweep = setInterval(() => {
        try {
          this.deleteExpired.run(nowSeconds());
        } catch (e) {
          console.error(`history: the sweep of expired entries failed: ${(e as Error).message}`);
        }
      }, every);
      this.sweep.unref();
    }
  }

  /**
   * Entries are written in one transaction per turn of the event loop: a commit per entry was 8% of
   * `skiff up`'s CPU under 32 concurrent creates (profiled), and every write of the cluster records one.
   * Answered once queued, not once written: every read and expiry writes the queue first, so none misses
   * an entry, and the write being recorded need not wait a turn more for it (ConfigMap creates at one
   * client, skiff up alone, p50 1.13-1.16 ms and p90 2.0 when they waited, 0.95-1.09 and 1.5-1.7 now). A batch
   * that fails to be written is logged, as a failed record always was; the file is synchronous = NORMAL,
   * so a crash could lose its last entries either way.
   */
  async record(e: HistoryEntry): Promise<void> {
    this.queued.push(e);
    if (this.queued.length > 1) return;
    setImmediate(() => {
      const n = this.queued.length;
      try {
        this.flush();
      } catch (err) {
        console.error(`history: ${n} entries were stored but not recorded: ${(err as Error).message}`);
      }
    });
  }

  private queued: HistoryEntry[] = [];

  /** Writes the queued entries (reads call it first, so they see every entry recorded before them). */
  private flush(): void {
    const batch = this.queued;
    if (batch.length === 0) return;
    this.queued = [];
    this.insertAll(batch);
  }

  private readonly insertAll: (batch: HistoryEntry[]) => void;

  async read(key: string, opts: HistoryReadOptions = {}): Promise<HistoryEntry[]> {
    this.flush();
    const rows = this.selectNewest.all(key, opts.now ?? nowSeconds(), opts.limit && opts.limit > 0 ? opts.limit : -1) as Row[];
    return rows.reverse().map(entryOfRow);
  }

  async expire(now = nowSeconds()): Promise<number> {
    this.flush();
    return this.deleteExpired.run(now).changes;
  }

  async close(): Promise<void> {
    if (this.sweep) clearInterval(this.sweep);
    this.flush();
    this.db.close();
  }
}

/** The partition of a key's history in the cluster's table. */
export const HISTORY_PK_PREFIX = 'hist#';
/** Revisions as sort keys: zero-padded so that string order is revision order (2^53 has 16 digits). */
const padRevision = (rev: number) => String(rev).padStart(16, '0');

export interface DynamoHistoryOptions {
  client: DynamoDBClient;
  tableName: string;
}

export class DynamoHistoryStore implements HistoryStore {
  private readonly client: DynamoDBClient;
  private readonly table: string;

  constructor(opts: DynamoHistoryOptions) {
    this.client = opts.client;
    this.table = opts.tableName;
  }

  async record(e: HistoryEntry): Promise<void> {
    const item: Record<string, AttributeValue> = {
      pk: { S: HISTORY_PK_PREFIX + e.key },
      sk: { S: padRevision(e.revision) },
      op: { S: e.operation },
      time: { S: e.time },
      // Compressed as the object items are (a write unit per KB).
      ...valueAttribute(e.value),
      ttl: { N: String(e.expires) },
    };
    if (e.previousRevision !== undefined) item.prev = { N: String(e.previousRevision) };
    if (e.verb !== undefined) item.verb = { S: e.verb };
    if (e.subresource !== undefined) item.sub = { S: e.subresource };
    if (e.actor) item.actor = { S: JSON.stringify(e.actor) };
    await this.client.send(new PutItemCommand({ TableName: this.table, Item: item }));
  }

  async read(key: string, opts: HistoryReadOptions = {}): Promise<HistoryEntry[]> {
    const want = opts.limit && opts.limit > 0 ? opts.limit : Infinity;
    const out: HistoryEntry[] = [];
    let start: Record<string, AttributeValue> | undefined;
    do {
      // Newest first, so a limit reads only what it returns; TTL deletes lazily, so expiry is filtered here.
      const page = await this.client.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'pk = :pk',
          FilterExpression: '#ttl > :now',
          ExpressionAttributeNames: { '#ttl': 'ttl' },
          ExpressionAttributeValues: { ':pk': { S: HISTORY_PK_PREFIX + key }, ':now': { N: String(opts.now ?? nowSeconds()) } },
          ScanIndexForward: false,
          ConsistentRead: true,
          ExclusiveStartKey: start,
        }),
      );
      for (const it of page.Items ?? []) {
        if (out.length >= want) break;
        out.push({
          key,
          revision: Number(it.sk!.S),
          ...(it.prev?.N !== undefined ? { previousRevision: Number(it.prev.N) } : {}),
          operation: it.op!.S as HistoryOperation,
          ...(it.verb?.S !== undefined ? { verb: it.verb.S } : {}),
          ...(it.sub?.S !== undefined ? { subresource: it.sub.S } : {}),
          ...(it.actor?.S !== undefined ? { actor: JSON.parse(it.actor.S) as HistoryActor } : {}),
          time: it.time!.S!,
          value: itemValue(it)!,
          expires: Number(it.ttl!.N),
        });
      }
      start = page.LastEvaluatedKey;
    } while (start && out.length < want);
    return out.reverse();
  }

  /** DynamoDB's TTL deletes expired items; reads skip them until it does. */
  async expire(): Promise<number> {
    return 0;
  }

  async close(): Promise<void> {}
}

/** A retention such as "24h", "90m", "3600s", "7d" or a plain number of seconds; "0" turns history off. */
export function parseRetention(text: string, what = 'history retention'): number {
  const m = /^(\d+)(s|m|h|d)?$/.exec(text.trim());
  const n = m ? Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[(m[2] ?? 's') as 's' | 'm' | 'h' | 'd'] : NaN;
  if (!Number.isSafeInteger(n)) throw new Error(`${what} must be a duration such as 24h, 90m or 3600s (0: off), got ${JSON.stringify(text)}`);
  return n;
}

/** How long history is kept by default: a day. */
export const DEFAULT_HISTORY_RETENTION_SECONDS = 24 * 3600;
/** A deployed function's history retention (infra may set it; default a day, "0" off). */
export const HISTORY_RETENTION_ENV = 'SKIFF_HISTORY_RETENTION';

/** The cloud's history: the cluster's table (SKIFF_TABLE) and the retention of SKIFF_HISTORY_RETENTION; undefined when off. */
export function dynamoHistoryFromEnv(env: NodeJS.ProcessEnv = process.env): { store: HistoryStore; retentionSeconds: number } | undefined {
  const v = env[HISTORY_RETENTION_ENV];
  const retentionSeconds = v === undefined || v === '' ? DEFAULT_HISTORY_RETENTION_SECONDS : parseRetention(v, HISTORY_RETENTION_ENV);
  if (retentionSeconds === 0) return undefined;
  const tableName = env.SKIFF_TABLE;
  if (!tableName) throw new Error('SKIFF_TABLE is not set');
  const endpoint = env.SKIFF_DYNAMODB_ENDPOINT;
  return { store: new DynamoHistoryStore({ client: new DynamoDBClient(endpoint ? { endpoint } : {}), tableName }), retentionSeconds };
}
