// Cost per namespace (issue #17 item 6): the control-plane requests each namespace causes, counted where
// they happen and priced by the cost model's PRICES (infra/cost-model.ts priceUsage: one place for prices).
//
// Who pays: the namespace in the async context (AsyncLocalStorage) of the work that made the request. The
// apiserver runs each request in its namespace's context (cluster-scoped requests: "", the cluster); the
// control loops run each reconcile in the context of the object's namespace. Storage requests are counted
// at the one narrow point every read and write passes, the Backend (meteredBackend), in DynamoDB's terms:
// the requests and read/write request units the DynamoDB backend makes for that Backend call, by
// DynamoDB's billing rules on the stored bytes (reads 1 RRU per 4 KB, a list's items summed before
// rounding; writes 2 WRU per KB of the object and of its change-log item in one transaction, plus the
// revision counter's and the settled watermark's 1 WRU each). The same counting runs over SQLite
// (`skiff up`), so a local cluster's counts are priced as if it were deployed.

import { AsyncLocalStorage } from 'node:async_hooks';
import type { Backend } from '../storage/backend.ts';

/** Who a request or reconcile is charged to: a namespace, or "" for the cluster. */
const scope = new AsyncLocalStorage<{ namespace: string }>();

/** Runs fn with its storage requests charged to namespace ("" = cluster-scoped). */
export function chargedTo<T>(namespace: string, fn: () => T): T {
  return scope.run({ namespace }, fn);
}

/** The namespace the current work is charged to ("" when none: the cluster). */
export function currentNamespace(): string {
  return scope.getStore()?.namespace ?? '';
}

/** What one namespace caused in one minute. `requests` counts DynamoDB requests by "Command kind of call". */
export interface UsageCounts {
  /** apiserver requests: one Lambda invocation each deployed. */
  apiRequests: number;
  /** Control-loop reconciles (their invocations are the stream's, shared: priced by their storage requests). */
  reconciles: number;
  dynamoRequests: number;
  rru: number;
  wru: number;
  /** DynamoDB requests by kind: "read", "list", "write". */
  byKind: Record<string, number>;
}

export const emptyCounts = (): UsageCounts => ({ apiRequests: 0, reconciles: 0, dynamoRequests: 0, rru: 0, wru: 0, byKind: {} });

export function addCounts(into: UsageCounts, c: UsageCounts): UsageCounts {
  into.apiRequests += c.apiRequests;
  into.reconciles += c.reconciles;
  into.dynamoRequests += c.dynamoRequests;
  into.rru += c.rru;
  into.wru += c.wru;
  for (const [k, n] of Object.entries(c.byKind)) into.byKind[k] = (into.byKind[k] ?? 0) + n;
  return into;
}

const MINUTE_MS = 60_000;
/** Minutes of counts kept in memory (a week). */
const KEEP_MINUTES = 7 * 24 * 60;

/** Per-namespace counters in one-minute buckets (this process's; kept a week). */
export class UsageMeter {
  private readonly minutes = new Map<number, Map<string, UsageCounts>>();
  /** Counts not yet flushed to a shared store (deployed: usage-store.ts), by hour (epoch hours) and namespace. */
  private pending = new Map<number, Map<string, UsageCounts>>();
  private lastDrain = Date.now();
  readonly started = Date.now();
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

  reconcile(namespace: string): void {
    this.bump(namespace, (c) => c.reconciles++);
  }

  storage(kind: 'read' | 'list' | 'write', requests: number, rru: number, wru: number): void {
    this.bump(currentNamespace(), (c) => {
      c.dynamoRequests += requests;
      c.rru += rru;
      c.wru += wru;
      c.byKind[kind] = (c.byKind[kind] ?? 0) + requests;
    });
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
 * previous one; the namespace's count item 2 more when counted), and the settled watermark's SET (1 WRU):
 * 3 requests. A create first reads its count group's item (a BatchGetItem, 1 RRU).
 */
function writeUnits(bytes: number, type: 'create' | 'update' | 'delete', counted: boolean): number {
  const log = type === 'update' ? 2 * bytes : bytes;
  return 1 + 2 * (Math.max(1, Math.ceil(bytes / 1024)) + Math.ceil(log / 1024) + (counted ? 1 : 0)) + 1;
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
      meter.storage('write', 3, 0, writeUnits(storedBytes(key, value), 'create', !!opts?.count));
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
    watch: (prefix, from, signal, progress) => backend.watch(prefix, from, signal, progress),
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

/** A control loop's reconcile of key, its storage requests charged to the key's namespace. */
export function reconcileCharged<T>(meter: UsageMeter | undefined, key: string, fn: () => Promise<T>): Promise<T> {
  const ns = namespaceOfKey(key);
  meter?.reconcile(ns);
  return chargedTo(ns, fn);
}
