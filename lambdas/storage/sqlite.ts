// The embedded backend for local clusters, in the manner of k3s' kine on SQLite.
//
// Layout:
//   log   one row per write, rev = the write's revision (INTEGER PRIMARY KEY AUTOINCREMENT, so a revision
//         is never reused, even after the newest row is deleted or compacted away). A row carries the new
//         value (for a delete: the last value), the key's create revision and the previous row's revision.
//         A watch event's prevKv is that previous row, joined by revision: compaction always keeps it (it
//         is the newest row of its key at or below any compaction point a replayable row is above), so
//         the previous value is not stored twice. (Files written before this carry it in prev_value,
//         which is still read first.)
//   live  key -> rev of the latest row, for keys that exist now (fast get and list at the latest revision).
//   meta  'compact_rev': revisions at or below it are no longer replayable.
//   counted  key -> its count group, for live keys created with CreateOptions.count.
//   counts   group -> how many live keys it holds. Both change inside the write's transaction, so a count
//         is exact and costs two primary-key lookups per counted write. Keys of a file from before
//         counting are in no group (never counted, never subtracted) until countExisting() puts them in
//         one: `skiff up` does so once at start (Registry.countExistingObjects).
//   charged  (key, group) -> amount, for live keys created with CreateOptions.charges (quota): the
//         group's total is its row in counts, moved by the amount in the same transaction as the key.
//   expiry   key -> when it expires (ms since the epoch), for live keys last written with ttlSeconds
//         (Events): set or cleared in the write's transaction; a sweep every expiryIntervalMs deletes the
//         keys whose time has come, each as a delete at a new revision (Backend's Expiry).
//
// Writes: each write reads the current revision, checks the key and inserts, atomically, serialized
// also against other processes on the same file (SQLite's write lock; busy_timeout waits for it). Reads
// that need a consistent view (list, watch) run inside a read transaction, which in WAL mode is a snapshot.
//
// Group commit. Every commit is fsynced (synchronous = FULL, below), and better-sqlite3 is synchronous:
// the fsync blocks the event loop, the API and the control loops with it. A profile of `skiff up`
// scheduling 6,000 pods (bench:vs-kube) spent 35% of its time in commits. So writes are queued and
// committed together: the writes asked for in two turns of the event loop (the requests read from the
// sockets in two poll phases, the loops' writes of one slice) run in one IMMEDIATE transaction, each in
// its own savepoint, and share one fsync; each is answered only after that commit, so an answered write
// is as durable as before. A write refused by its own check (KeyExists, Conflict, ...) rolls back its
// savepoint only. If the transaction itself fails (a full or failing disk, the lock held by another
// process too long), every write of the batch is run again alone, so each gets its own answer.
//
// Watches are woken in-process after commits, and by a shared timer that checks PRAGMA data_version
// (which changes when another connection commits) so a second process writing the same file is seen
// within pollIntervalMs. The in-process wake-up comes once per committed batch, so a burst of writes
// is read by each watch as one batch, with one query, rather than one query per write per watch.
//
// Statements are prepared once and the transaction wrappers built once: at thousands of writes a second,
// per-call preparation and wrapper building are a measurable share of a write.
//
// Reads remembered (ReadMemo, below): gets, count groups, small lists and first pages of up to 100 items
// (kubectl get, an informer's list) at the latest revision are answered from memory while nothing they
// cover has changed. Admission reads the same namespace, ServiceAccount, PriorityClasses and quota counters
// for every pod created: ~5% of `skiff up`'s CPU scheduling 10,000 pods (bench:vs-kube) went to reading
// them again. It is exact, not a time-to-live: this connection's writes
// remove what they touch as they are made, and a commit by any other connection (PRAGMA data_version,
// looked at once per turn of the event loop and before every read from the store) empties it all.

import type Database from 'better-sqlite3';
import { createRequire } from 'node:module';

// Loaded when a store is opened, not when this module is: the node agent's bundle (dist/node/, for EC2
// nodes without node_modules) carries this module inside `skiff up` but never opens a store, and a native
// addon can't be bundled.
const loadDatabase = (): typeof Database => createRequire(import.meta.url)('better-sqlite3');
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
} from './backend.ts';

export interface SqliteOptions {
  /** Compaction keeps at least this many latest revisions replayable (default 10 000). */
  retainRevisions?: number;
  /** How often compaction runs (default 60 s); 0 disables the timer (compact() can still be called). */
  compactIntervalMs?: number;
  /** How often open watches look for commits made by other processes (default 200 ms). */
  pollIntervalMs?: number;
  /** How often keys past their expiry are deleted (default 1 s); 0 disables the timer (expire() still runs it). */
  expiryIntervalMs?: number;
}

interface LogRow {
  rev: number;
  key: string;
  value: string;
  create_rev: number;
  prev_rev: number | null;
  prev_value: string | null;
  deleted: number;
}

/** An open watch, as the commits that wake it see it. */
interface WatchListener {
  readonly prefix: string;
  /** The revision the watch has read up to. */
  last: number;
  wake(): void;
}

/** Most rows one watch batch carries; a bigger backlog is delivered in several batches. */
const BATCH_ROWS = 1000;
/** Most writes committed in one transaction (group commit); more queued wait for the next. */
const COMMIT_BATCH = 256;

interface QueuedWrite {
  key: string;
  decide: Decide;
  resolve: (kv: KeyValue) => void;
  reject: (e: unknown) => void;
}

export class SqliteBackend implements Backend {
  private readonly db: Database.Database;
  private readonly retain: number;
  private readonly pollMs: number;
  private readonly compactTimer?: NodeJS.Timeout;
  private readonly expiryTimer?: NodeJS.Timeout;
  private pollTimer?: NodeJS.Timeout;
  /** The last PRAGMA data_version the watches' timer saw. */
  private dataVersion = 0;
  /** PRAGMA data_version now: changed since the last look iff another connection committed. */
  private readonly readDataVersion: () => number;
  /** Open watches: what each follows, how far it has read, how to wake it. */
  private readonly listeners = new Set<WatchListener>();
  private closed = false;
  private readonly sql: ReturnType<typeof prepare>;
  private readonly writeTx: (key: string, decide: Decide) => LogRow;
  /** One write in a savepoint of the batch's transaction (better-sqlite3 nests transactions so). */
  private readonly writeInBatch: (key: string, decide: Decide) => LogRow;
  private readonly batchTx: (batch: QueuedWrite[]) => (LogRow | StorageError)[];
  /** Writes waiting for the next group commit. */
  private queued: QueuedWrite[] = [];
  private commitScheduled = false;
  private readonly changesTx: (prefix: string, after: number) => WatchBatch;
  /**
   * The log read after a revision for all keys, shared by the watches woken together: when every write
   * woke every open watch (a local cluster has one per kind its loops follow, ~40), each reading the log
   * for its own prefix made a write cost ~40 read transactions (a third of `skiff up`'s CPU under
   * creates); a commit still wakes several (a kind's informer, a client's watch, the Events of a pod).
   * Caught-up watches all read after the same revision, so the first reads for all and the rest filter.
   * Emptied by every commit (this process's or another's), so it never hides one.
   */
  private shared = new Map<number, WatchBatch>();
  /** The revision the last read reached: where caught-up watches stand. */
  private readHead = 0;
  private readonly memo: ReadMemo;
  private readonly listTx: (prefix: string, opts: ListOptions) => ListResult;

  constructor(path: string, opts: SqliteOptions = {}) {
    this.retain = opts.retainRevisions ?? 10_000;
    this.pollMs = opts.pollIntervalMs ?? 200;
    this.db = new (loadDatabase())(path);
    this.db.pragma('journal_mode = WAL');
    // FULL: each commit is fsynced to the WAL before the write is answered, as etcd fsyncs before it
    // acknowledges. NORMAL survived a process crash but not the OS losing the page cache: a disk that
    // went read-only (ext4 errors=remount-ro), a power cut or a kernel crash lost every write since the
    // last checkpoint, though each had been answered 201 (test/fault.disk.test.ts). It costs an fsync
    // per write (0.11 -> 0.44 ms per create on this project's test machine).
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS log (
        rev INTEGER PRIMARY KEY AUTOINCREMENT,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        create_rev INTEGER NOT NULL,
        prev_rev INTEGER,
        prev_value TEXT,
        deleted INTEGER NOT NULL DEFAULT 0
      );
      CREATE INDEX IF NOT EXISTS log_key_rev ON log (key, rev);
      CREATE TABLE IF NOT EXISTS live (key TEXT PRIMARY KEY, rev INTEGER NOT NULL) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS counted (key TEXT PRIMARY KEY, grp TEXT NOT NULL) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS counts (grp TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS charged (key TEXT NOT NULL, grp TEXT NOT NULL, amount INTEGER NOT NULL, PRIMARY KEY (key, grp)) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS expiry (key TEXT PRIMARY KEY, at INTEGER NOT NULL) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS expiry_at ON expiry (at);
    `);
    this.sql = prepare(this.db);
    const dataVersion = this.db.prepare('PRAGMA data_version').pluck();
    this.readDataVersion = () => dataVersion.get() as number;
    this.memo = new ReadMemo(this.readDataVersion);
    const writeOne = (key: string, decide: Decide): LogRow => {
      const head = this.sql.writeHead.get(key) as LogRow & { seq: number | null };
      const rev = (head.seq ?? 0) + 1;
      const cur = head.rev === null ? undefined : head;
      const next: LogRow = { rev, ...decide(cur, rev) };
      this.memo.written(key);
      this.sql.insert.run(next);
      if (next.deleted) this.sql.unlive.run(key);
      else this.sql.live.run(key, rev);
      return next;
    };
    // .immediate: take the write lock up front, so there is no read-then-upgrade deadlock between processes.
    this.writeTx = this.db.transaction(writeOne).immediate;
    this.writeInBatch = this.db.transaction(writeOne);
    this.batchTx = this.db.transaction((batch: QueuedWrite[]) =>
      batch.map((w) => {
        try {
          return this.writeInBatch(w.key, w.decide);
        } catch (e) {
          // The write's own refusal: its savepoint is rolled back, the others commit. Anything else
          // (an SQLite error) fails the whole batch, which is then retried write by write.
          if (e instanceof StorageError) return e;
          throw e;
        }
      }),
    ).immediate;
    // One read transaction: the revision and the rows come from the same snapshot.
    this.listTx = this.db.transaction((prefix: string, opts: ListOptions): ListResult => {
      const current = this.revision();
      // A revision beyond the current one reads the current state (nothing newer exists yet).
      const at = opts.revision !== undefined && opts.revision < current ? opts.revision : current;
      if (opts.revision !== undefined) this.assertReplayable(prefix, opts.revision);
      // Keys in order within the prefix, after startAfter. Without a filter the statement reads exactly
      // the rows answered (limit+1: the extra one only tells whether there is `more`) in one call (~1.4 µs
      // a row of a ConfigMap list, where stepping through them one by one took 2-3); with one, rows are
      // stepped through until limit+1 have passed it.
      const n = opts.limit && !opts.filter ? opts.limit + 1 : -1; // -1: no LIMIT in SQLite
      const params = { prefix, end: prefixEnd(prefix), after: opts.startAfter ?? '', at, n };
      const stmt = at === current ? this.sql.listLatest : this.sql.listAt;
      const rows = (opts.filter ? stmt.iterate(params) : stmt.all(params)) as Iterable<KeyValue>;
      // Every key of the prefix at the latest revision, while few: what the memo keeps.
      // (Only when list() asked the memo first, which looked at data_version before this read.)
      const shape = memoShape(opts);
      let whole: KeyValue[] | undefined = shape === 'whole' ? [] : undefined;
      const kvs: KeyValue[] = [];
      let more = false;
      for (const kv of rows) {
        if (whole && whole.length === MEMO_LIST_MAX) whole = undefined; // too many to remember
        whole?.push(kv);
        if (opts.filter && !opts.filter(kv)) continue;
        if (opts.limit && kvs.length === opts.limit) {
          more = true;
          break;
        }
        kvs.push(kv);
      }
      if (whole) this.memo.rememberList(prefix, whole);
      // A first page at the latest revision with no filter (kubectl get, an informer's list) is kept too.
      else if (shape === 'page' && opts.limit! <= MEMO_LIST_MAX) this.memo.rememberList(prefix, kvs, { limit: opts.limit!, more });
      return { kvs, revision: at, more };
    });
    this.changesTx = this.db.transaction((prefix: string, after: number): WatchBatch => {
      const { seq, compacted } = this.sql.heads.get() as { seq: number | null; compacted: number | null };
      this.assertReplayable(prefix, after, compacted ?? 0); // a slow watcher may have fallen behind compaction
      const rows = this.sql.changes.all(after, prefix, prefix) as LogRow[];
      const revision = rows.length === BATCH_ROWS ? rows[rows.length - 1]!.rev : (seq ?? 0);
      return { events: rows.map(toEvent), revision };
    });
    const interval = opts.compactIntervalMs ?? 60_000;
    if (interval > 0) {
      this.compactTimer = setInterval(() => this.compact(), interval);
      this.compactTimer.unref(); // compaction alone must not keep the process alive
    }
    const expiryInterval = opts.expiryIntervalMs ?? 1000;
    if (expiryInterval > 0) {
      this.expiryTimer = setInterval(() => void this.expire().catch(() => undefined), expiryInterval);
      this.expiryTimer.unref();
    }
  }

  // ---- reads ----

  async currentRevision(): Promise<number> {
    return this.revision();
  }

  async get(key: string): Promise<KeyValue | undefined> {
    const known = this.memo.get(key);
    if (known !== undefined) return known ?? undefined;
    const row = this.liveRow(key);
    const kv = row && toKv(row);
    this.memo.rememberGet(key, kv);
    return kv;
  }

  async list(prefix: string, opts: ListOptions = {}): Promise<ListResult> {
    // A list of the whole prefix at the latest revision may be remembered (small ones only: see listTx).
    const shape = memoShape(opts);
    if (shape) {
      const known = this.memo.list(prefix, shape === 'page' ? opts.limit : undefined);
      // (A whole list is remembered unfiltered; a page only when asked for without a filter.)
      if (known) return { kvs: opts.filter ? known.kvs.filter(opts.filter) : known.kvs, revision: this.revision(), more: known.more };
    }
    return this.listTx(prefix, opts);
  }

  // ---- writes ----

  async create(key: string, value: string, opts: CreateOptions = {}): Promise<KeyValue> {
    checkSize(key, value);
    return this.write(key, (cur, rev) => {
      if (cur) throw new StorageError('KeyExists', key);
      if (opts.count) this.countIn(key, opts.count);
      for (const c of opts.charges ?? []) this.chargeIn(key, c);
      if (opts.ttlSeconds !== undefined) this.expireAfter(key, opts.ttlSeconds); // a new key has no expiry to clear
      return { key, value, create_rev: rev, prev_rev: null, prev_value: null, deleted: 0 };
    });
  }

  async count(group: string): Promise<number> {
    const known = this.memo.count(group);
    if (known !== undefined) return known;
    const n = (this.sql.count.get(group) as { n: number } | undefined)?.n ?? 0;
    this.memo.rememberCount(group, n);
    return n;
  }

  async countExisting(key: string, group: string): Promise<boolean> {
    return this.db
      .transaction((): boolean => {
        if (!this.liveRow(key) || this.sql.countedGroup.get(key)) return false;
        this.countIn(key, { group, limit: Infinity });
        return true;
      })
      .immediate();
  }

  // decide() runs inside the write's transaction: these count changes commit or roll back with the write.

  /** Adds key to its group, or throws LimitExceeded when the group is full. */
  private countIn(key: string, { group, limit }: CountOptions): void {
    // One statement adds 1 unless the group is full (then it changes no row).
    this.memo.counted(group);
    if (limit <= 0 || this.sql.incCount.run({ group, limit }).changes === 0) {
      throw new StorageError('LimitExceeded', key, `${key}: count group ${group} holds its limit of ${limit} keys`);
    }
    this.sql.countKey.run(key, group);
  }

  /** Adds the charge to its group's total, or throws LimitExceeded when that would pass the limit. */
  private chargeIn(key: string, { group, amount, limit }: Charge): void {
    // One statement adds the amount unless the total would pass the limit (then it changes no row).
    this.memo.counted(group);
    if (amount > limit || this.sql.incCharge.run({ group, amount, limit }).changes === 0) {
      throw new StorageError('LimitExceeded', key, `${key}: charging ${amount} to ${group} would pass its limit of ${limit}`);
    }
    this.sql.chargeKey.run(key, group, amount);
  }

  async chargeExisting(key: string, charges: Charge[]): Promise<string[]> {
    return this.db
      .transaction((): string[] => {
        if (!this.liveRow(key)) return [];
        const have = new Set((this.sql.keyCharges.all(key) as { grp: string }[]).map((r) => r.grp));
        const added: string[] = [];
        for (const c of charges) {
          if (have.has(c.group)) continue;
          this.memo.counted(c.group);
          this.sql.incCharge.run({ group: c.group, amount: c.amount, limit: Number.MAX_SAFE_INTEGER });
          this.sql.chargeKey.run(key, c.group, c.amount);
          added.push(c.group);
        }
        return added;
      })
      .immediate();
  }

  /** An update's charges (UpdateOptions): each named group's total moves by the difference, rises within their limits. */
  private recharge(key: string, charges: Charge[]): void {
    const had = new Map((this.sql.keyCharges.all(key) as { grp: string; amount: number }[]).map((r) => [r.grp, r.amount]));
    for (const { group, amount, limit } of charges) {
      const rise = amount - (had.get(group) ?? 0);
      this.memo.counted(group);
      if (rise > 0 && (amount > limit || this.sql.incCharge.run({ group, amount: rise, limit }).changes === 0)) {
        throw new StorageError('LimitExceeded', key, `${key}: charging ${rise} more to ${group} would pass its limit of ${limit}`);
      }
      if (rise < 0) this.sql.decCharge.run(-rise, group);
      if (amount > 0) this.sql.setKeyCharge.run(key, group, amount);
      else this.sql.unchargeKeyGroup.run(key, group);
    }
  }

  /** Gives back what the key was charged (its delete). */
  private unchargeAll(key: string): void {
    for (const r of this.sql.keyCharges.all(key) as { grp: string; amount: number }[]) {
      this.memo.counted(r.grp);
      this.sql.decCharge.run(r.amount, r.grp);
    }
    this.sql.unchargeKey.run(key);
  }

  /** Takes key out of the group it was created in, if any. */
  private countOut(key: string): void {
    const row = this.sql.countedGroup.get(key) as { grp: string } | undefined;
    if (!row) return;
    this.sql.uncountKey.run(key);
    this.memo.counted(row.grp);
    this.sql.decCount.run(row.grp);
  }

  async update(key: string, value: string, expectedModRevision: number, opts: UpdateOptions = {}): Promise<KeyValue> {
    checkSize(key, value);
    return this.write(key, (cur) => {
      if (!cur) throw new StorageError('NotFound', key);
      if (cur.rev !== expectedModRevision) throw conflict(key, cur.rev);
      if (opts.charges) this.recharge(key, opts.charges);
      this.expireAfter(key, opts.ttlSeconds);
      return { key, value, create_rev: cur.create_rev, prev_rev: cur.rev, prev_value: null, deleted: 0 };
    });
  }

  async delete(key: string, expectedModRevision?: number): Promise<KeyValue> {
    return this.write(key, (cur) => {
      if (!cur) throw new StorageError('NotFound', key);
      if (expectedModRevision !== undefined && cur.rev !== expectedModRevision) throw conflict(key, cur.rev);
      return this.deleteRow(key, cur);
    });
  }

  /** The row of key's delete, with its count, charges and expiry given back (inside the write). */
  private deleteRow(key: string, cur: LogRow): Omit<LogRow, 'rev'> {
    this.countOut(key);
    this.unchargeAll(key);
    this.sql.unexpire.run(key);
    // The delete row repeats the last value: the delete event's kv is the last state.
    return { key, value: cur.value, create_rev: cur.create_rev, prev_rev: cur.rev, prev_value: null, deleted: 1 };
  }

  /** Sets (or, without ttlSeconds, clears) when key expires (inside the write). */
  private expireAfter(key: string, ttlSeconds: number | undefined): void {
    if (ttlSeconds === undefined) this.sql.unexpire.run(key);
    else this.sql.expireAt.run(key, Date.now() + ttlSeconds * 1000);
  }

  /**
   * Deletes the keys whose expiry has come, each at a new revision, as etcd does when a key's lease runs
   * out (the sweep's timer calls it; so can a test). A key written again meanwhile with a later expiry, or
   * none, stays: the delete checks the expiry inside its own write. Returns how many it deleted.
   */
  async expire(now = Date.now()): Promise<number> {
    if (this.closed) return 0;
    const due = this.sql.dueExpiries.all(now) as { key: string }[];
    const gone = await Promise.all(
      due.map(({ key }) =>
        this.write(key, (cur) => {
          const at = (this.sql.expiryOf.get(key) as { at: number } | undefined)?.at;
          if (!cur || at === undefined || at > now) throw new StorageError('NotFound', key); // not due any more
          return this.deleteRow(key, cur);
        }).then(
          () => 1,
          (e) => {
            if (e instanceof StorageError) return 0;
            throw e;
          },
        ),
      ),
    );
    return gone.reduce((a: number, b) => a + b, 0);
  }

  /**
   * Runs decide against the key's current row and appends its row as the next revision, atomically;
   * answered once committed with the other writes of this turn of the event loop (group commit, above).
   */
  private write(key: string, decide: Decide): Promise<KeyValue> {
    if (this.closed) return Promise.reject(new Error('the SQLite store is closed'));
    return new Promise((resolve, reject) => {
      this.queued.push({ key, decide, resolve, reject });
      if (this.commitScheduled) return;
      this.commitScheduled = true;
      // After this turn's poll phase and the next one, so the requests read from the sockets in both join:
      // answering a batch makes its clients send their next requests, which the next poll phase reads.
      // Creating ConfigMaps at 32 clients, batches grew from 10.5 writes to 15.8 on average and creates/s
      // by 6-12% (three alternating pairs of skiff up runs); one loop iteration more did not show at one
      // client. A write costs the store ~130 µs of CPU alone, ~35 in a batch of 8, ~27 in one of 32.
      setImmediate(() => setImmediate(() => this.commitQueued()));
    });
  }

  /** Commits the queued writes, COMMIT_BATCH at a time, one transaction (one fsync) each. */
  private commitQueued(): void {
    this.commitScheduled = false;
    while (this.queued.length) {
      const batch = this.queued.splice(0, COMMIT_BATCH);
      let results: (LogRow | StorageError)[];
      try {
        results = this.batchTx(batch);
      } catch {
        // The transaction failed as a whole: each write alone, with its own answer.
        results = batch.map((w) => {
          try {
            return this.writeTx(w.key, w.decide);
          } catch (e) {
            return e as StorageError;
          }
        });
      }
      const written: LogRow[] = [];
      batch.forEach((w, i) => {
        const r = results[i]!;
        if (r instanceof Error) return w.reject(r);
        written.push(r);
        w.resolve(toKv(r));
      });
      if (written.length) this.wake(written);
    }
  }

  // ---- watch ----

  async *watch(prefix: string, fromRevision: number, signal: AbortSignal, progressIntervalMs = 5000): AsyncIterable<WatchBatch> {
    this.assertReplayable(prefix, fromRevision); // runs on the first next(), before anything is yielded
    let dirty = true; // set by every wake-up; cleared before each read so none is missed
    let wakeUp: (() => void) | undefined;
    // `last`: the revision this watch has read up to; a commit with nothing under its prefix moves it on.
    const listener: WatchListener = {
      prefix,
      last: fromRevision,
      wake: () => {
        dirty = true;
        wakeUp?.();
      },
    };
    this.listeners.add(listener);
    this.startPolling();
    let lastSent = Date.now();
    try {
      while (!signal.aborted && !this.closed) {
        if (dirty) {
          dirty = false;
          const { batch, more } = this.changesAfter(prefix, listener.last);
          listener.last = batch.revision;
          if (batch.events.length > 0) {
            yield batch;
            lastSent = Date.now();
            dirty ||= more; // the log had more rows than one batch carries
            continue;
          }
          dirty ||= more;
        }
        const wait = lastSent + progressIntervalMs - Date.now();
        if (wait <= 0) {
          yield { events: [], revision: listener.last };
          lastSent = Date.now();
          continue;
        }
        await new Promise<void>((resolve) => {
          const done = () => {
            clearTimeout(timer);
            signal.removeEventListener('abort', done);
            wakeUp = undefined;
            resolve();
          };
          const timer = setTimeout(done, wait);
          signal.addEventListener('abort', done);
          wakeUp = done;
          if (dirty || signal.aborted) done();
        });
      }
    } finally {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.stopPolling();
    }
  }

  /**
   * Events under prefix after `after`, read from one snapshot; revision = how far they cover; `more`:
   * the read stopped at its row limit. A watch at the caught-up revision shares one read of all keys
   * (see `shared`); one behind (resumed from an old revision) reads its own prefix.
   */
  private changesAfter(prefix: string, after: number): { batch: WatchBatch; more: boolean } {
    let all = this.shared.get(after);
    if (!all && after === this.readHead) {
      all = this.changesTx('', after);
      this.shared.set(after, all);
      this.readHead = all.revision;
    }
    if (!all) {
      const batch = this.changesTx(prefix, after);
      const more = batch.events.length === BATCH_ROWS;
      if (!more) this.readHead = Math.max(this.readHead, batch.revision); // it read up to the head
      return { batch, more };
    }
    const events = all.events.filter((e) => e.kv.key.startsWith(prefix));
    return { batch: { events, revision: all.revision }, more: all.events.length === BATCH_ROWS };
  }

  /**
   * After a committed batch, in the commit's own turn (its writers are answered first: their promises were
   * resolved first), wakes the watches with a written key under their prefix; waking a turn later, as it
   * did, only added that turn to every event's delivery. A watch that had read up to the batch and follows
   * none of its keys is moved past it without waking: every commit woke every watch (a local cluster has
   * one per kind its loops follow, ~40), each to find nothing and wait again (6% of `skiff up`'s CPU under
   * creates at one client, in a profile). That needs the batch's revisions consecutive, as one transaction
   * makes them; writes run again one by one (a failed batch) may have another connection's in between, and
   * wake every watch.
   */
  private wake(written: readonly LogRow[]): void {
    this.shared.clear();
    const first = written[0]!.rev;
    const last = written[written.length - 1]!.rev;
    if (last - first + 1 !== written.length) return this.wakeNow();
    // Caught-up watches stand just before the batch (those moved past earlier ones too): the woken ones
    // share one read from there.
    this.readHead = first - 1;
    for (const l of this.listeners) {
      if (l.last >= first - 1 && !written.some((w) => w.key.startsWith(l.prefix))) l.last = Math.max(l.last, last);
      else l.wake();
    }
  }

  /** Wakes every open watch (another connection committed, or the store closes). */
  private wakeNow(): void {
    for (const l of this.listeners) l.wake();
  }

  /** One timer for all watches: PRAGMA data_version changes when another connection commits. */
  private startPolling(): void {
    if (this.pollTimer) return;
    this.dataVersion = this.readDataVersion();
    this.pollTimer = setInterval(() => {
      const v = this.readDataVersion();
      if (v !== this.dataVersion) {
        this.dataVersion = v;
        this.shared.clear();
        this.wakeNow();
      }
    }, this.pollMs);
    this.pollTimer.unref();
  }

  private stopPolling(): void {
    clearInterval(this.pollTimer);
    this.pollTimer = undefined;
  }

  // ---- compaction ----

  /**
   * Forgets history at or below `revision` (default: all but the latest retainRevisions revisions):
   * rows superseded by a newer row at or below it, and deletes at or below it. The newest row of every
   * key up to that point stays, so any revision >= the compaction point still reads exactly.
   * Returns the compaction point.
   */
  compact(revision?: number): number {
    return this.db
      .transaction((): number => {
        const target = Math.min(revision ?? this.revision() - this.retain, this.revision());
        const done = this.compactRevision();
        if (target <= done) return done;
        this.stmt(
          `DELETE FROM log WHERE rev <= @target AND (deleted = 1 OR EXISTS
             (SELECT 1 FROM log n WHERE n.key = log.key AND n.rev > log.rev AND n.rev <= @target))`,
        ).run({ target });
        this.stmt(`INSERT OR REPLACE INTO meta (name, value) VALUES ('compact_rev', ?)`).run(target);
        return target;
      })
      .immediate();
  }

  private assertReplayable(key: string, revision: number, compacted = this.compactRevision()): void {
    if (revision < compacted) {
      throw new StorageError('Compacted', key, `revision ${revision} is compacted (oldest available: ${compacted})`, compacted);
    }
  }

  // ---- helpers ----

  private revision(): number {
    const row = this.sql.revision.get() as { seq: number } | undefined;
    return row?.seq ?? 0;
  }

  private compactRevision(): number {
    const row = this.sql.compacted.get() as { value: number } | undefined;
    return row?.value ?? 0;
  }

  private liveRow(key: string): LogRow | undefined {
    return this.sql.liveRow.get(key) as LogRow | undefined;
  }

  private readonly statements = new Map<string, Database.Statement>();
  private stmt(sql: string): Database.Statement {
    let s = this.statements.get(sql);
    if (!s) this.statements.set(sql, (s = this.db.prepare(sql)));
    return s;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.commitQueued(); // writes asked for before close are committed and answered
    this.closed = true;
    clearInterval(this.compactTimer);
    clearInterval(this.expiryTimer);
    this.stopPolling();
    this.wakeNow(); // open watches end
    this.db.close();
  }
}

type Decide = (cur: LogRow | undefined, rev: number) => Omit<LogRow, 'rev'>;

/** Most gets remembered (the oldest go first), and the largest value remembered. */
const MEMO_GETS = 1024;
const MEMO_VALUE_MAX = 32 * 1024;
/** Most lists remembered (each write compares its key with every remembered prefix), and their most keys. */
const MEMO_LISTS = 64;
const MEMO_LIST_MAX = 100;
const MEMO_COUNTS = 1024;

/** A remembered list's key: its prefix, or for a first page its limit and prefix. */
const listKey = (prefix: string, limit?: number): string => (limit ? `${limit} ${prefix}` : prefix);

/**
 * What this connection read, for as long as it is still true (see the header). Answers from memory look
 * at PRAGMA data_version (1.6 µs against 6-16 µs for the read it saves) first: when another connection
 * has committed since, everything is forgotten. They look once per turn of the event loop (a macrotask
 * and the microtasks it makes), and again before every read the memo cannot answer, which then goes to
 * the store. Once per turn is exact: no request, reply or timer reaches this process inside a turn, so a
 * commit by another process made during it cannot have been caused by anything this process saw since
 * the look, and this connection's writes are answered in a turn of their own (setImmediate, above);
 * a read that goes to the store looks first, so it never sees a newer state than the memo's later answers.
 * With one look per answer, the looks were 1.4% of `skiff up`'s CPU scheduling 10,000 pods.
 * Writes on this connection call written() and counted() inside their transaction; a transaction rolled
 * back only made the memo forget more.
 */
class ReadMemo {
  private version = -1;
  /** Looked at data_version in this turn already (cleared by a nextTick: after the turn's microtasks). */
  private looked = false;
  private readonly endTurn = (): void => {
    this.looked = false;
  };
  private readonly gets = new Map<string, KeyValue | null>();
  /** By listKey: the prefix, or the limit and prefix of a first page. */
  private readonly lists = new Map<string, { prefix: string; kvs: KeyValue[]; more: boolean }>();
  private readonly counts = new Map<string, number>();

  constructor(private readonly dataVersion: () => number) {}

  // A miss is followed by the caller's read of the store: it looks first, unless current() just did.

  /** null: remembered as absent; undefined: not remembered. */
  get(key: string): KeyValue | null | undefined {
    const lookedNow = this.current();
    const kv = this.gets.get(key);
    if (kv === undefined && !lookedNow) this.look();
    return kv && { ...kv }; // a copy: a caller changing it must not change the next answer
  }

  /** The whole prefix, or (with a limit) its first page. */
  list(prefix: string, limit?: number): { kvs: KeyValue[]; more: boolean } | undefined {
    const lookedNow = this.current();
    const known = this.lists.get(listKey(prefix, limit));
    if (known === undefined && !lookedNow) this.look();
    return known && { kvs: known.kvs.map((kv) => ({ ...kv })), more: known.more };
  }

  count(group: string): number | undefined {
    const lookedNow = this.current();
    const n = this.counts.get(group);
    if (n === undefined && !lookedNow) this.look();
    return n;
  }

  // What the store answered right after get(), list() or count() missed: those looked at data_version
  // first, so the answer is at least as new as the version the memo holds.
  rememberGet(key: string, kv: KeyValue | undefined): void {
    if (kv && kv.value.length > MEMO_VALUE_MAX) return;
    bounded(this.gets, MEMO_GETS).set(key, kv ? { ...kv } : null);
  }

  rememberList(prefix: string, kvs: KeyValue[], page?: { limit: number; more: boolean }): void {
    if (kvs.some((kv) => kv.value.length > MEMO_VALUE_MAX)) return;
    const entry = { prefix, kvs: kvs.map((kv) => ({ ...kv })), more: page?.more ?? false };
    bounded(this.lists, MEMO_LISTS).set(listKey(prefix, page?.limit), entry);
  }

  rememberCount(group: string, n: number): void {
    bounded(this.counts, MEMO_COUNTS).set(group, n);
  }

  /** This connection writes key: its get and every list whose prefix holds it are forgotten. */
  written(key: string): void {
    this.gets.delete(key);
    for (const [k, { prefix }] of this.lists) if (key.startsWith(prefix)) this.lists.delete(k);
  }

  /** This connection changes group's total. */
  counted(group: string): void {
    this.counts.delete(group);
  }

  /** The turn's look, if not made yet (true if made now). */
  private current(): boolean {
    if (this.looked) return false;
    this.looked = true;
    process.nextTick(this.endTurn);
    this.look();
    return true;
  }

  /** Forgets everything if another connection has committed since the last look. */
  private look(): void {
    const v = this.dataVersion();
    if (v === this.version) return;
    this.version = v;
    this.gets.clear();
    this.lists.clear();
    this.counts.clear();
  }
}

/** The map, with its oldest entry dropped when it holds max already. */
function bounded<K, V>(m: Map<K, V>, max: number): Map<K, V> {
  if (m.size >= max) m.delete(m.keys().next().value as K);
  return m;
}

/** The statements run on every read and write, prepared once per connection. */
function prepare(db: Database.Database) {
  return {
    revision: db.prepare(`SELECT seq FROM sqlite_sequence WHERE name = 'log'`),
    compacted: db.prepare(`SELECT value FROM meta WHERE name = 'compact_rev'`),
    /** The current revision and the compaction point in one read. */
    heads: db.prepare(`SELECT (SELECT seq FROM sqlite_sequence WHERE name = 'log') AS seq,
                              (SELECT value FROM meta WHERE name = 'compact_rev') AS compacted`),
    liveRow: db.prepare('SELECT l.* FROM live c JOIN log l ON l.rev = c.rev WHERE c.key = ?'),
    /** A list's rows, as KeyValues: the keys in [@prefix, @end) after @after, at most @n of them (-1: all). */
    listLatest: db.prepare(`SELECT l.key, l.value, l.create_rev AS createRevision, l.rev AS modRevision
                            FROM live c JOIN log l ON l.rev = c.rev
                            WHERE c.key >= @prefix AND c.key < @end AND c.key > @after ORDER BY c.key LIMIT @n`),
    /** The state at an older revision: per key, the newest row at or below it, unless a delete. */
    listAt: db.prepare(`SELECT l.key, l.value, l.create_rev AS createRevision, l.rev AS modRevision FROM log l
                        WHERE l.key >= @prefix AND l.key < @end AND l.key > @after AND l.rev <= @at
                          AND NOT EXISTS (SELECT 1 FROM log n WHERE n.key = l.key AND n.rev > l.rev AND n.rev <= @at)
                          AND l.deleted = 0
                        ORDER BY l.key LIMIT @n`),
    /** A write's reads in one statement: the current revision and the key's live row (columns null if none). */
    writeHead: db.prepare(`SELECT (SELECT seq FROM sqlite_sequence WHERE name = 'log') AS seq, l.*
                           FROM (SELECT 1) LEFT JOIN live c ON c.key = ? LEFT JOIN log l ON l.rev = c.rev`),
    insert: db.prepare(`INSERT INTO log (rev, key, value, create_rev, prev_rev, prev_value, deleted)
                        VALUES (@rev, @key, @value, @create_rev, @prev_rev, @prev_value, @deleted)`),
    live: db.prepare('INSERT OR REPLACE INTO live (key, rev) VALUES (?, ?)'),
    unlive: db.prepare('DELETE FROM live WHERE key = ?'),
    count: db.prepare('SELECT n FROM counts WHERE grp = ?'),
    incCount: db.prepare('INSERT INTO counts (grp, n) VALUES (@group, 1) ON CONFLICT (grp) DO UPDATE SET n = n + 1 WHERE n < @limit'),
    decCount: db.prepare('UPDATE counts SET n = n - 1 WHERE grp = ?'),
    countKey: db.prepare('INSERT INTO counted (key, grp) VALUES (?, ?)'),
    countedGroup: db.prepare('SELECT grp FROM counted WHERE key = ?'),
    uncountKey: db.prepare('DELETE FROM counted WHERE key = ?'),
    incCharge: db.prepare(
      'INSERT INTO counts (grp, n) VALUES (@group, @amount) ON CONFLICT (grp) DO UPDATE SET n = n + @amount WHERE n + @amount <= @limit',
    ),
    decCharge: db.prepare('UPDATE counts SET n = n - ? WHERE grp = ?'),
    chargeKey: db.prepare('INSERT INTO charged (key, grp, amount) VALUES (?, ?, ?)'),
    keyCharges: db.prepare('SELECT grp, amount FROM charged WHERE key = ?'),
    unchargeKey: db.prepare('DELETE FROM charged WHERE key = ?'),
    setKeyCharge: db.prepare('INSERT INTO charged (key, grp, amount) VALUES (?, ?, ?) ON CONFLICT (key, grp) DO UPDATE SET amount = excluded.amount'),
    unchargeKeyGroup: db.prepare('DELETE FROM charged WHERE key = ? AND grp = ?'),
    expireAt: db.prepare('INSERT INTO expiry (key, at) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET at = excluded.at'),
    unexpire: db.prepare('DELETE FROM expiry WHERE key = ?'),
    expiryOf: db.prepare('SELECT at FROM expiry WHERE key = ?'),
    /** Keys past their expiry, a bounded number per sweep (the next takes the rest). */
    dueExpiries: db.prepare('SELECT key FROM expiry WHERE at <= ? ORDER BY at LIMIT 1000'),
    /** Rows under a prefix after a revision, each with its previous value (stored, or the previous row's). */
    changes: db.prepare(`SELECT l.rev, l.key, l.value, l.create_rev, l.prev_rev, COALESCE(l.prev_value, p.value) AS prev_value, l.deleted
                         FROM log l LEFT JOIN log p ON p.rev = l.prev_rev
                         WHERE l.rev > ? AND substr(l.key, 1, length(?)) = ? ORDER BY l.rev LIMIT ${BATCH_ROWS}`),
  };
}

function conflict(key: string, stored: number): StorageError {
  return new StorageError('Conflict', key, `${key}: modRevision is ${stored}`, stored);
}

/**
 * What of a list the read memo may hold: the whole prefix at the latest revision (a filter is applied to
 * it after), or a first page of it asked for without a filter; undefined for any other (a later page, an
 * older revision, a filtered page).
 */
function memoShape(opts: ListOptions): 'whole' | 'page' | undefined {
  if (opts.startAfter || opts.revision !== undefined) return undefined;
  if (!opts.limit) return 'whole';
  return opts.filter ? undefined : 'page';
}

/** The least string above every string that starts with prefix (keys are compared byte by byte). */
function prefixEnd(prefix: string): string {
  if (!prefix) return '\u{10FFFF}';
  return prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
}

function toKv(row: LogRow): KeyValue {
  return { key: row.key, value: row.value, createRevision: row.create_rev, modRevision: row.rev };
}

function toEvent(row: LogRow): WatchEvent {
  const kv = toKv(row);
  if (row.prev_rev === null) return { type: 'create', kv };
  const prevKv = { key: row.key, value: row.prev_value!, createRevision: row.create_rev, modRevision: row.prev_rev };
  return { type: row.deleted ? 'delete' : 'update', kv, prevKv };
}

/**
 * Largest value stored: etcd's default request limit (--max-request-bytes, 1.5 MiB), which bounds an
 * object in Kubernetes. Without it a patch could grow an object past the 3 MiB request body limit,
 * again and again, into memory and into every watcher's stream.
 */
export const MAX_VALUE_BYTES = 1.5 * 1024 * 1024;

function checkSize(key: string, value: string): void {
  const n = Buffer.byteLength(value);
  if (n > MAX_VALUE_BYTES) throw new StorageError('TooLarge', key, `the object is ${n} bytes, over the SQLite backend's limit of ${MAX_VALUE_BYTES} bytes`);
}
