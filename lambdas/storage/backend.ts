// The storage contract, shaped after k3s' kine Backend: opaque values under string keys, one global
// revision that every write advances, and a watch that replays every change after a revision in order.
// Revisions only increase; a backend may skip some (kine and the DynamoDB backend do, for a write that
// lost a race after taking its revision), never for a write refused up front (KeyExists, NotFound, a
// stale modRevision read before, a full count group): clients treat revisions as opaque and ordered.
// Everything Kubernetes-specific (resourceVersion, selectors, finalizers) lives above this line, in the
// apiserver's registry; a backend only stores bytes and revisions.
//
// Two implementations: sqlite.ts (embedded, local clusters) and dynamodb.ts (production). Both pass the
// same contract suite in test/storage.contract.test.ts.

export interface KeyValue {
  key: string;
  /** The stored bytes (UTF-8 JSON for Skiff objects). */
  value: string;
  /** Revision of the write that created this key (survives updates). */
  createRevision: number;
  /** Revision of the last write to this key. For a delete event: the revision of the delete. */
  modRevision: number;
}

export type WatchEventType = 'create' | 'update' | 'delete';

export interface WatchEvent {
  type: WatchEventType;
  /** For create/update: the new value. For delete: the last value, with modRevision = the delete's revision. */
  kv: KeyValue;
  /** The value before this change (update and delete only). */
  prevKv?: KeyValue;
}

export interface WatchOptions {
  /** Whether events need their previous value (default true). */
  prevKv?: boolean;
}

export interface WatchBatch {
  /** Changes under the watched prefix, in revision order, each exactly once. */
  events: WatchEvent[];
  /**
   * Every change up to and including this revision has been delivered (to this or an earlier batch).
   * A batch with no events is a progress notification: the apiserver turns it into a watch BOOKMARK.
   */
  revision: number;
}

export interface ListOptions {
  /** At most this many matching items; 0 or absent means all. */
  limit?: number;
  /** Return keys strictly greater than this one (the continue position). */
  startAfter?: string;
  /** Read as of this revision (for consistent paging); absent means the latest. */
  revision?: number;
  /** Only items for which this returns true are returned and counted against limit. */
  filter?: (kv: KeyValue) => boolean;
  /**
   * A hint with the filter: only keys whose value in this index (storage/indexes.ts) is `value` can
   * pass it. A backend that keeps the index may read just those; the result is the same without it.
   */
  index?: { name: string; value: string };
}

export interface ListResult {
  /** Sorted by key. */
  kvs: KeyValue[];
  /** The revision this list reflects: a watch from it misses nothing and repeats nothing. */
  revision: number;
  /** True when more matching keys follow the last one returned (only when a limit was given). */
  more: boolean;
}

export type StorageErrorCode =
  | 'KeyExists' // create of a key that exists
  | 'NotFound' // update/delete of a key that does not exist
  | 'Conflict' // update/delete whose expected modRevision is not the stored one
  | 'Compacted' // read or watch from a revision older than the backend still keeps
  | 'Unavailable' // the write could not be completed now (e.g. contention); safe to retry
  | 'TooLarge' // the value is larger than this backend stores (create/update); nothing was written
  | 'LimitExceeded'; // create into a count group that holds its limit already; nothing was written

export class StorageError extends Error {
  constructor(
    readonly code: StorageErrorCode,
    readonly key: string,
    message?: string,
    /** For Compacted: the oldest revision still available. For Conflict: the stored modRevision. */
    readonly revision?: number,
  ) {
    super(message ?? `${code}: ${key}`);
    this.name = 'StorageError';
  }
}

/**
 * Counting, the store's guard against runaway writes: a key created with `count` joins `group`, and the
 * create fails with LimitExceeded (writing nothing) when the group already holds `limit` keys. The
 * backend remembers the group with the key, so whoever deletes the key (with or without knowing of
 * groups) takes it out again; updates keep it in. The count changes in the same atomic write as the key,
 * so it is exact under any concurrency, and costs O(1) per write: one counter per group, never a scan.
 * The registry counts namespaced objects per namespace (ApiServerOptions.maxObjectsPerNamespace).
 * Keys created without `count` (and keys stored before counting existed) are in no group.
 */
export interface CountOptions {
  group: string;
  limit: number;
}

/**
 * A charge against a quota (ResourceQuota admission): like counting, but by any whole amount. The create
 * adds `amount` to `group`'s total unless that would take it past `limit` (then LimitExceeded, nothing
 * written); the backend remembers the charges with the key, and the key's delete gives them back, in the
 * same atomic write. Updates keep them, unless they bring new ones (UpdateOptions.charges: a pod that
 * ends, a claim resized). Totals are read with count(group). Amounts are whole numbers
 * (the quota code charges CPU in millicores, everything else in its base unit).
 */
export interface Charge {
  group: string;
  amount: number;
  limit: number;
}

export interface CreateOptions {
  count?: CountOptions;
  /** Charges made in the create's own atomic write (distinct groups, none the count's group). */
  charges?: Charge[];
  /** The key expires this long after this write (see Expiry). */
  ttlSeconds?: number;
}

export interface UpdateOptions {
  /**
   * The key's charge in each named group from now on (0: none), in the update's own atomic write: each
   * group's total moves by the difference, a rise held to its limit (else LimitExceeded, nothing
   * written). Groups not named keep their charge (a quota the writer did not know of, charged meanwhile).
   */
  charges?: Charge[];
  /** The key expires this long after this write (see Expiry); without it, an update ends the key's expiry. */
  ttlSeconds?: number;
}

// Expiry (etcd's leases as kube-apiserver uses them for Events, --event-ttl): a key written with
// `ttlSeconds` is gone that long after its last write. SQLite deletes it, at a new revision that
// watches see, within a second or so of the time; DynamoDB stops reading it at that time (get, list and
// a create of the same key see none) and the table's TTL removes the item later, at no write cost, with
// no revision and no watch event (a watcher learns of it from its next list). Keys that expire must not
// be counted, charged or indexed: they leave without a write that would give those back.

export interface Backend {
  /** The revision of the latest write (0 for an empty store). */
  currentRevision(): Promise<number>;
  get(key: string): Promise<KeyValue | undefined>;
  /** Keys that start with prefix, sorted by key. */
  list(prefix: string, opts?: ListOptions): Promise<ListResult>;
  /** Fails with KeyExists when the key is present, LimitExceeded when opts.count's group is full. */
  create(key: string, value: string, opts?: CreateOptions): Promise<KeyValue>;
  /** How many keys the count group holds now (0 for a group never used). */
  count(group: string): Promise<number>;
  /**
   * Puts an existing key that is in no count group into `group`, beyond any limit and without a new
   * revision (its value and modRevision stay): how keys stored before counting existed get counted.
   * Returns false when the key is absent or already in a group, so running it again changes nothing.
   */
  countExisting(key: string, group: string): Promise<boolean>;
  /**
   * Adds to an existing key the charges whose groups it does not carry yet, beyond any limit and without
   * a new revision: how objects stored before a quota existed get charged to it. Returns the groups it
   * charged now (none when the key is absent or carries them all), so running it again changes nothing.
   */
  chargeExisting(key: string, charges: Charge[]): Promise<string[]>;
  /** Compare-and-swap on modRevision. Fails with NotFound or Conflict (carrying the stored revision). */
  update(key: string, value: string, expectedModRevision: number, opts?: UpdateOptions): Promise<KeyValue>;
  /**
   * Deletes the key; with expectedModRevision, only if it still has that revision. Returns the deleted
   * value with modRevision set to the revision of the delete. A key in a count group leaves it.
   */
  delete(key: string, expectedModRevision?: number): Promise<KeyValue>;
  /**
   * Every change under prefix with revision > fromRevision, in order, each once, then live changes,
   * until signal aborts. Throws Compacted (before yielding) if fromRevision is too old to replay.
   * Emits an empty batch at least every progressIntervalMs (default 5 s) while idle.
   * opts.prevKv false (etcd's watch without WithPrevKV): updates and deletes may come without prevKv,
   * which spares a backend reading previous values no one looks at; by default they carry it.
   */
  watch(prefix: string, fromRevision: number, signal: AbortSignal, progressIntervalMs?: number, opts?: WatchOptions): AsyncIterable<WatchBatch>;
  close(): Promise<void>;
}
