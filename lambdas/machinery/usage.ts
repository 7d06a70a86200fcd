// Cost per namespace (issue #17 item 6): what each namespace causes the control plane to spend, counted
// where it happens and priced by the cost model (infra/cost-model.ts priceUsage: one place for prices);
// and what no namespace causes, counted as overhead (OVERHEAD), so namespaces + overhead = the bill.
//
// Who pays: the bucket in the async context (a slot of machinery/context.ts) of the work. The apiserver
// runs each request in its path's namespace ("" = cluster-scoped), held until the user is known: a node's
// own requests (Lease, Node, its cluster-scoped lists) are overhead, heartbeats or agent polls. The loops
// run each reconcile in its key's namespace; a stream batch's invocation is shared among its records'
// namespaces (one share a record); a wake-up is its key's; the scheduled resync is overhead, all of it.
// Counted per bucket: apiserver requests (one Lambda invocation each; through CloudFront when its header
// says so; a watch's open time, Lambda time deployed), other invocations, storage requests and units, object history entries, push-channel SQS
// requests (shared among the pods' namespaces that sent the message), audit event bytes (as the sink wrote
// them), the resync's log line, Scheduler invocations. Storage requests are counted at the one narrow
// point every read and write passes, the Backend (meteredBackend), in DynamoDB's terms: the requests and
// read/write request units the DynamoDB backend makes for that Backend call, by DynamoDB's billing rules
// on the stored bytes (reads 1 RRU per 4 KB, a list's items summed before rounding; writes 2 WRU per KB
// of the object and of its change-log item in one transaction, plus the revision counter's and the
// settled watermark's 1 WRU each). The same counting runs over SQLite (`skiff up`), so a local cluster's
// counts are priced as if it were deployed (it has no stream invocations, push channel nor resync).

import { AsyncResource } from 'node:async_hooks';
import { CREATE_TOMBSTONE_CHECK_RRU, WATCH_COUNTER_POLL_MS, transactionWriteUnits } from '../../infra/cost-model.ts';
import { contextSlot } from './context.ts';
import type { Backend } from '../storage/backend.ts';
import type { HistoryStore } from '../storage/history.ts';

/**
 * Who pays for the work in an async context: a namespace ("" = the cluster), or an overhead bucket (a name
 * starting with "@", which no namespace can). `held`: an apiserver request's counts until it is known
 * whose they are (settle()). `pinned`: reconciles inside keep it (the scheduled resync is overhead).
 */
interface Scope {
  namespace: string;
  held?: UsageCounts;
  pinned?: boolean;
}
const scope = contextSlot<Scope>('usage');

/**
 * What no namespace caused, each its own line in the report (apiserver/cost.ts; the names are `npm run
 * cost`'s sources): the nodes' Lease renewals and Node status, their other cluster-scoped requests (their
 * pods' list, Services and Endpoints catch-ups), the loops' scheduled resync, the counting's own flushes,
 * and whatever ran outside any request or reconcile (a process's start, a local informer's first list).
 */
export const OVERHEAD = {
  heartbeats: '@heartbeats',
  polls: '@agent polls',
  resync: '@resync',
  counting: '@cost per namespace counting',
  other: '@other',
} as const;

/** Whether a bucket of counts is overhead (no namespace). */
export const isOverhead = (bucket: string): boolean => bucket.startsWith('@');

/** Runs fn with its storage requests charged to namespace ("" = cluster-scoped; or an OVERHEAD bucket). */
export function chargedTo<T>(namespace: string, fn: () => T): T {
  return scope.run({ namespace }, fn);
}

/** Runs fn as overhead: everything in it, reconciles included, is charged to `bucket` (an OVERHEAD name). */
export function asOverhead<T>(bucket: string, fn: () => T): T {
  return scope.run({ namespace: bucket, pinned: true }, fn);
}

/** The bucket the current work is charged to (OVERHEAD.other outside any request or reconcile). */
export function currentNamespace(): string {
  return scope.getStore()?.namespace ?? OVERHEAD.other;
}

/**
 * A node's own requests are overhead, not a namespace's: its Lease and Node (heartbeats) and its other
 * cluster-scoped requests (polls). What a node does in a namespace (its pods' status, their events) is
 * that namespace's.
 */
export function nodeOverhead(groups: readonly string[], namespace: string, path: string): string | undefined {
  if ((namespace !== '' && namespace !== 'kube-node-lease') || !groups.includes('system:nodes')) return undefined;
  return /^\/api\/v1\/nodes(\/|$)|\/leases(\/|$)/.test(path) ? OVERHEAD.heartbeats : OVERHEAD.polls;
}

/**
 * What one namespace (or overhead bucket) caused in one minute. Fractions are shares: a stream
 * invocation's among the namespaces of its records, a push message's among its pods' namespaces.
 */
export interface UsageCounts {
  /** apiserver requests: one Lambda invocation each deployed. */
  apiRequests: number;
  /** Control-loop reconciles (their storage requests are counted; their invocations in `invocations`). */
  reconciles: number;
  dynamoRequests: number;
  rru: number;
  wru: number;
  /** DynamoDB requests by kind: "read", "list", "write", "history" (an object history entry's PutItem). */
  byKind: Record<string, number>;
  /** Lambda invocations besides apiserver requests: stream batches (shared), wake-ups, resyncs. */
  invocations: number;
  /** Object history entries written (storage/history.ts): in dynamoRequests and wru too. */
  historyWrites: number;
  /** SQS requests of the push channel to nodes: per message sent, its send, receive and delete. */
  sqsRequests: number;
  /** Audit events as CloudWatch Logs bills them (each event's JSON and 26 bytes). */
  auditBytes: number;
  /** The functions' own log lines (the resync's summary). */
  logBytes: number;
  /** EventBridge Scheduler invocations (wake-ups of a CronJob, a Job, an HPA). */
  schedulerInvocations: number;
  /** apiserver requests that came through the CloudFront front door (CloudFront's x-amz-cf-id header). */
  cloudFrontRequests: number;
  /** Seconds apiserver answers stayed open (watches): deployed, the function runs all along. */
  watchSeconds: number;
}

/** The numeric fields of UsageCounts (byKind aside): what the store keeps and reports add. */
export const COUNT_FIELDS = ['apiRequests', 'reconciles', 'dynamoRequests', 'rru', 'wru', 'invocations', 'historyWrites', 'sqsRequests', 'auditBytes', 'logBytes', 'schedulerInvocations', 'cloudFrontRequests', 'watchSeconds'] as const;

export const emptyCounts = (): UsageCounts => ({
  apiRequests: 0,
  reconciles: 0,
  dynamoRequests: 0,
  rru: 0,
  wru: 0,
  byKind: {},
  invocations: 0,
  historyWrites: 0,
  sqsRequests: 0,
  auditBytes: 0,
  logBytes: 0,
  schedulerInvocations: 0,
  cloudFrontRequests: 0,
  watchSeconds: 0,
});

export function addCounts(into: UsageCounts, c: UsageCounts, share = 1): UsageCounts {
  for (const f of COUNT_FIELDS) into[f] += (c[f] ?? 0) * share;
  for (const [k, n] of Object.entries(c.byKind)) into.byKind[k] = (into.byKind[k] ?? 0) + n * share;
  return into;
}

const MINUTE_MS = 60_000;
/** Minutes of counts kept in memory (a week). */
const KEEP_MINUTES = 7 * 24 * 60;
/** CloudWatch Logs bills each event's bytes and 26 more. */
const LOG_EVENT_OVERHEAD = 26;

/** Per-namespace counters in one-minute buckets (this process's; kept a week). */
export class UsageMeter {
  private readonly minutes = new Map<number, Map<string, UsageCounts>>();
  /** Counts not yet flushed to a shared store (deployed: usage-store.ts), by hour (epoch hours) and namespace. */
  private pending = new Map<number, Map<string, UsageCounts>>();
  private lastDrain = Date.now();
  readonly started = Date.now();
  /** Whether nodes long-poll SQS queues (the push channel: deployed with nodes); reports price their idle polls. */
  pushChannel = false;
  /** shared: keep counts for drain() (a deployed instance's, flushed to the table); locally nothing drains. */
  constructor(private readonly now: () => number = Date.now, private readonly shared = false) {}

  /** Applies f to the namespace's counts of this minute (kept in memory) and of this hour's unflushed ones. */
  private bump(namespace: string, f: (c: UsageCounts) => void): void {
    const minute = Math.floor(this.now() / MINUTE_MS);
    let m = this.minutes.get(minute);
    if (!m) {
      this.minutes.set(minute, (m = new Map()));
      for (const old of this.minutes.keys()) if (old <= minute - KEEP_MINUTES) this.minutes.delete(old);
    }
    let c = m.get(namespace);
    if (!c) m.set(namespace, (c = emptyCounts()));
    const hour = Math.floor(minute / 60);
    let p = this.pending.get(hour);
    if (!p && this.shared) this.pending.set(hour, (p = new Map()));
    let q = p?.get(namespace);
    if (!q && p) p.set(namespace, (q = emptyCounts()));
    f(c);
    if (q) f(q);
  }

  /** Applies f to the current work's counts: a request's held ones, or its namespace's. */
  private charge(f: (c: UsageCounts) => void): void {
    const s = scope.getStore();
    if (s?.held) f(s.held);
    else this.bump(s?.namespace ?? OVERHEAD.other, f);
  }

  /** Applies f to each namespace's share (1/n of the whole per time it is named; none named: the current work's). */
  private share(namespaces: readonly string[], f: (c: UsageCounts, share: number) => void): void {
    if (!namespaces.length) return this.charge((c) => f(c, 1));
    const n = new Map<string, number>();
    for (const ns of namespaces) n.set(ns, (n.get(ns) ?? 0) + 1);
    for (const [ns, k] of n) this.bump(ns, (c) => f(c, k / namespaces.length));
  }

  /**
   * The counts since the last drain, by epoch hour and namespace, when `everyMs` have passed since it
   * (undefined otherwise): what a deployed instance adds to the shared store (usage-store.ts).
   */
  drain(everyMs = 0): Map<number, Map<string, UsageCounts>> | undefined {
    if (this.now() - this.lastDrain < everyMs || !this.pending.size) return undefined;
    const out = this.pending;
    this.pending = new Map();
    this.lastDrain = this.now();
    return out;
  }

  apiRequest(namespace: string): void {
    this.bump(namespace, (c) => c.apiRequests++);
  }

  /**
   * Runs an apiserver request, charged to `namespace` (its path's) unless settle() names another bucket
   * once the user is known (a node's heartbeats and polls: nodeOverhead); `viaCloudFront` when it came
   * through the front door.
   */
  request<T>(namespace: string, viaCloudFront: boolean, fn: () => Promise<T>): Promise<T> {
    const held = emptyCounts();
    held.apiRequests = 1;
    if (viaCloudFront) held.cloudFrontRequests = 1;
    return scope.run({ namespace, held }, async () => {
      try {
        return await fn();
      } finally {
        this.settle();
      }
    });
  }

  /** The current request's counts so far (and what it does from now on) to `bucket`, or to its namespace. */
  settle(bucket?: string): void {
    const s = scope.getStore();
    if (!s?.held) return;
    if (bucket !== undefined) s.namespace = bucket;
    const held = s.held;
    s.held = undefined;
    this.bump(s.namespace, (c) => addCounts(c, held));
  }

  reconcile(namespace: string): void {
    this.bump(namespace, (c) => c.reconciles++);
  }

  storage(kind: 'read' | 'list' | 'write' | 'history', requests: number, rru: number, wru: number): void {
    this.charge((c) => {
      c.dynamoRequests += requests;
      c.rru += rru;
      c.wru += wru;
      c.byKind[kind] = (c.byKind[kind] ?? 0) + requests;
    });
  }

  /** An object history entry of `bytes` (as stored): one PutItem, 1 WRU per KB. */
  history(bytes: number): void {
    this.storage('history', 1, 0, Math.max(1, Math.ceil(bytes / 1024)));
    this.charge((c) => c.historyWrites++);
  }

  /** Audit events written, `bytes` of JSON each (as the sink serialized them), `events` of them. */
  audit(bytes: number, events: number): void {
    this.charge((c) => (c.auditBytes += bytes + events * LOG_EVENT_OVERHEAD));
  }

  /** A function's own log line of `bytes`. */
  log(bytes: number): void {
    this.charge((c) => (c.logBytes += bytes + LOG_EVENT_OVERHEAD));
  }

  /**
   * One Lambda invocation besides an apiserver request, shared among `namespaces` (a stream batch: each
   * record's object's namespace, one share per record), or the current work's; `scheduled` when EventBridge
   * Scheduler made it (a wake-up: its invocation is billed too).
   */
  invocation(namespaces: readonly string[] = [], scheduled = false): void {
    this.share(namespaces, (c, k) => {
      c.invocations += k;
      if (scheduled) c.schedulerInvocations += k;
    });
  }

  /**
   * A streamed answer (a watch, a followed log), charged when it ends for the time it was open: deployed
   * the apiserver function runs all along, and a watch reads the revision counter every
   * WATCH_COUNTER_POLL_MS (1 RRU each, estimated from the time: the store's own poll is not a Backend call).
   */
  streamed<T>(body: AsyncIterable<T>, watch: boolean): AsyncIterable<T> {
    const t0 = performance.now();
    const done = AsyncResource.bind(() => {
      const seconds = (performance.now() - t0) / 1000;
      this.charge((c) => {
        c.watchSeconds += seconds;
        if (watch) c.rru += Math.ceil((seconds * 1000) / WATCH_COUNTER_POLL_MS);
      });
    });
    return (async function* () {
      try {
        yield* body;
      } finally {
        done();
      }
    })();
  }

  /** SQS requests, shared among `namespaces` (the pods' whose change sent a message) or the current work's. */
  sqs(requests: number, namespaces: readonly string[] = []): void {
    this.share(namespaces, (c, k) => (c.sqsRequests += requests * k));
  }

  /** Counts per namespace since `sinceMs` (epoch ms), summed over minutes. */
  since(sinceMs: number): Map<string, UsageCounts> {
    const from = Math.floor(sinceMs / MINUTE_MS);
    const out = new Map<string, UsageCounts>();
    for (const [minute, m] of this.minutes) {
      if (minute < from) continue;
      for (const [ns, c] of m) addCounts(out.get(ns) ?? out.set(ns, emptyCounts()).get(ns)!, c);
    }
    return out;
  }
}

/** Read units of `bytes` read strongly consistently (all of Skiff's reads): 1 per 4 KB, at least 1. */
const readUnits = (bytes: number) => Math.max(1, Math.ceil(bytes / 4096));
/** An item's key and other attributes (revisions, expiry...) beside its value: ~150 bytes. */
const ITEM_OVERHEAD = 150;
/**
 * The DynamoDB backend stores values deflated with a dictionary (storage/value-codec.ts): a pod's 2.5 KB
 * of JSON is ~300 bytes. An item's stored size is estimated at a sixth of its JSON rather than deflated
 * again to count it (~50 µs a pod, 15% of a local create): units are 1 per KB written and 4 KB read, so
 * the estimate is exact for all but objects near a boundary (the moto test's writes matched to the unit).
 */
const storedBytes = (key: string, value: string) => Math.ceil(Buffer.byteLength(value) / 6) + key.length + ITEM_OVERHEAD;

/**
 * A write as the DynamoDB backend makes it: the counter's ADD (1 WRU), one TransactWriteItems of the
 * object item and its change-log item (2 WRU per KB each; an update's log item holds the value and the
 * previous one; the namespace's count item 2 more when counted; a delete's tombstone 2 more), and the
 * settled watermark's SET (1 WRU): 3 requests. A create first reads its count group's item (a
 * BatchGetItem, 1 RRU), and its transaction checks its key's tombstone (CREATE_TOMBSTONE_CHECK_RRU).
 */
function writeUnits(bytes: number, type: 'create' | 'update' | 'delete', counted: boolean): number {
  const log = type === 'update' ? 2 * bytes : bytes;
  return 1 + transactionWriteUnits(bytes, log, (counted ? 1 : 0) + (type === 'delete' ? 1 : 0)) + 1;
}

/** The store, counted: each call's DynamoDB requests and units, charged to the current namespace. */
export function meteredBackend(backend: Backend, meter: UsageMeter): Backend {
  return {
    // The revision counter and the settled watermark, read together: one Query, 1 RRU.
    currentRevision: async () => {
      meter.storage('read', 1, 1, 0);
      return backend.currentRevision();
    },
    get: async (key) => {
      const kv = await backend.get(key);
      meter.storage('read', 1, readUnits(kv ? storedBytes(key, kv.value) : 0), 0);
      return kv;
    },
    list: async (prefix, opts) => {
      const r = await backend.list(prefix, opts);
      const bytes = r.kvs.reduce((s, kv) => s + storedBytes(kv.key, kv.value), 0);
      // The counter read before and after (2 Queries, 1 RRU each) and the collection's Query(s), 1 MB each.
      meter.storage('list', 2 + Math.max(1, Math.ceil(bytes / 1048576)), 2 + readUnits(bytes), 0);
      return r;
    },
    create: async (key, value, opts) => {
      const kv = await backend.create(key, value, opts);
      meter.storage('write', 3, CREATE_TOMBSTONE_CHECK_RRU, writeUnits(storedBytes(key, value), 'create', !!opts?.count));
      meter.storage('read', 1, 1, 0);
      return kv;
    },
    count: async (group) => {
      meter.storage('read', 1, 1, 0);
      return backend.count(group);
    },
    countExisting: async (key, group) => {
      meter.storage('write', 1, 0, 2);
      return backend.countExisting(key, group);
    },
    chargeExisting: async (key, charges) => {
      meter.storage('write', 1, 0, 2 * (1 + charges.length));
      return backend.chargeExisting(key, charges);
    },
    update: async (key, value, rev, opts) => {
      const kv = await backend.update(key, value, rev, opts);
      meter.storage('write', 3, 0, writeUnits(storedBytes(key, value), 'update', false));
      return kv;
    },
    delete: async (key, rev) => {
      const kv = await backend.delete(key, rev);
      meter.storage('write', 3, 0, writeUnits(storedBytes(key, kv.value), 'delete', true));
      return kv;
    },
    watch: (prefix, from, signal, progress, opts) => backend.watch(prefix, from, signal, progress, opts),
    close: () => backend.close(),
  };
}

/** The namespace a request path names (/api/v1/namespaces/<ns>/..., /apis/g/v/namespaces/<ns>/...), or "". */
export function namespaceOfPath(path: string): string {
  const m = /^\/apis?\/(?:[^/]+\/)?[^/]+\/namespaces\/([^/]+)\/[^/]/.exec(path);
  return m ? decodeURIComponent(m[1]!) : '';
}

/** The namespace of a loop's key ("ns/name"; a cluster-scoped object's key has no slash: ""). */
export function namespaceOfKey(key: string): string {
  const i = key.indexOf('/');
  return i > 0 ? key.slice(0, i) : '';
}

/** A control loop's reconcile of key, its storage requests charged to the key's namespace (in a resync: to the resync). */
export function reconcileCharged<T>(meter: UsageMeter | undefined, key: string, fn: () => Promise<T>): Promise<T> {
  const pinned = scope.getStore();
  if (pinned?.pinned) {
    meter?.reconcile(pinned.namespace);
    return fn();
  }
  const ns = namespaceOfKey(key);
  meter?.reconcile(ns);
  return chargedTo(ns, fn);
}

/** A stream record's object's namespace, from its key alone (sk: "ns/name", or "name" when cluster-scoped). */
export function namespaceOfRecordKey(sk: string | undefined): string {
  return sk === undefined ? OVERHEAD.other : namespaceOfKey(sk);
}

/**
 * The history store, counted: each entry written as its PutItem (1 WRU per KB of the item: the value at a
 * sixth of its JSON, as stored compressed, the key twice, the writer and ~80 bytes of attributes), each
 * read as a Query; charged to the write's namespace (a request's, a reconcile's).
 */
export function meteredHistory(store: HistoryStore, meter: UsageMeter): HistoryStore {
  return {
    record: async (e) => {
      await store.record(e);
      let actor = 0;
      if (e.actor) {
        actor = 40 + e.actor.username.length + (e.actor.uid?.length ?? 0) + (e.actor.impersonatedBy?.length ?? 0);
        for (const g of e.actor.groups) actor += g.length + 3;
      }
      meter.history(Math.ceil(Buffer.byteLength(e.value) / 6) + e.key.length + (e.verb?.length ?? 0) + actor + 80);
    },
    read: async (key, opts) => {
      const entries = await store.read(key, opts);
      const bytes = entries.reduce((n, e) => n + Math.ceil(e.value.length / 6) + key.length + 150, 0);
      meter.storage('list', 1, readUnits(bytes), 0);
      return entries;
    },
    expire: (now) => store.expire(now),
    close: () => store.close(),
  };
}
