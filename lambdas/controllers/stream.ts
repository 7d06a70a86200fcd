// Controllers in the cloud: a Lambda handler for batches of DynamoDB stream records, and one for the
// scheduled resync. Both drive the same Controller objects `skiff up` runs locally.
//
// A batch becomes ChangeEvents (object items only; the counter and log items are skipped), each
// controller turns its events into keys, and each distinct key is reconciled once per batch: a key
// changed ten times in a batch costs one reconcile, and a redelivered batch costs no-op reconciles.
// A key whose reconcile fails is reported as a batch item failure at the sequence number of the first
// record that produced it, so Lambda retries the batch from there (ReportBatchItemFailures); records
// before it are done. Work a controller asks to requeue is picked up by the next scheduled resync.
//
// Why a failing or busy loop cannot spin here (issue #11): a failed key's batch is retried by Lambda
// at most retryAttempts (10) times, split in halves on error (bisectBatchOnError), and then goes to
// the dead-letter queue (infra/skiff-cluster.ts), so one poisonous key costs a bounded number of
// invocations, not a loop; the resync retries it once per period. A requeue is never re-invoked on its
// own. A reconcile does bounded work (at most 500 pods, batch.ts); the rest of a large scale-up is
// reached because its own writes come back on the stream (each created pod maps to its RC's key), one
// bounded reconcile per batch: progress, each step paid for by the pods it made. Unbounded growth of a
// valid spec (replicas 2147483647) is for the guard against runaway writes (a per-namespace object
// limit in storage, issue #11 item 3) to stop, not for the loops.

import type { AttributeValue as LambdaAttributeValue, DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { objectFromImage, OBJECT_PK_PREFIX } from '../storage/dynamodb.ts';
import { decode } from '../apiserver/registry.ts';
import { apiVersionOf, findResource, RESOURCES, resourcePrefix, type ResourceInfo } from '../machinery/resources.ts';
import { RESERVATION_NAMESPACE, RESERVATION_PREFIX } from '../scheduler/reservation.ts';
import { StoreReader } from './cache.ts';
import { contextFor, type ChangeEvent, type ChangesSince, type Controller, type ControllerContext, type ResyncLog } from './controller.ts';
import { asOverhead, namespaceOfRecordKey, OVERHEAD, reconcileCharged, type UsageMeter } from '../machinery/usage.ts';
import { StorageError, type WatchEvent } from '../storage/backend.ts';

/** The resource a storage key belongs to: /registry/{group|core}/{resource}/... */
export function resourceOfKey(key: string): ResourceInfo | undefined {
  return RESOURCES.find((r) => key.startsWith(resourcePrefix(r)));
}

type Image = Record<string, AttributeValue>;
const image = (i: { [k: string]: LambdaAttributeValue } | undefined) => i as unknown as Image | undefined;

/** One stream record as a ChangeEvent, or undefined for items that are not objects. */
export function changeEventOf(record: DynamoDBRecord): ChangeEvent | undefined {
  const next = objectFromImage(image(record.dynamodb?.NewImage));
  const prev = objectFromImage(image(record.dynamodb?.OldImage));
  const kv = next ?? prev;
  if (!kv) return undefined;
  const resource = resourceOfKey(kv.key);
  if (!resource) return undefined;
  const typeMeta = { apiVersion: apiVersionOf(resource), kind: resource.kind };
  const object = { ...typeMeta, ...decode(kv) };
  const type = record.eventName === 'REMOVE' ? 'DELETED' : record.eventName === 'INSERT' ? 'ADDED' : 'MODIFIED';
  // The old image: loops that index by a field (a pod's labels) also reach what it used to match.
  const oldObject = type === 'MODIFIED' && prev ? { ...typeMeta, ...decode(prev) } : undefined;
  return { type, resource, object, ...(oldObject ? { oldObject } : {}) };
}

/** A context whose reads (objects, and which kinds are served) are made at most once in one batch. */
function forOneBatch(ctx: ControllerContext, pageSize = 0): ControllerContext {
  let kinds: Promise<readonly ResourceInfo[]> | undefined;
  return {
    ...ctx,
    cache: new StoreReader(ctx.registry, pageSize),
    ...(ctx.kinds ? { kinds: () => (kinds ??= ctx.kinds!()) } : {}),
  };
}

export interface BatchResult extends DynamoDBBatchResponse {
  /** For logs and tests: how many distinct keys each controller reconciled. */
  reconciled: Record<string, number>;
}

/** Runs every controller over one batch of stream records. */
export async function handleStreamBatch(controllers: Controller[], ctx: ControllerContext, records: DynamoDBRecord[]): Promise<BatchResult> {
  // One reader for the batch: each kind and namespace a loop reads is listed once, whatever the records.
  ctx = forOneBatch(ctx);
  // The invocation (its request and base time) is shared by the namespaces of its records, one share each.
  ctx.usage?.invocation(records.map((r) => namespaceOfRecordKey(r.dynamodb?.Keys?.sk?.S)));
  const failures = new Map<string, string>(); // sequence number → (kept once)
  const reconciled: Record<string, number> = {};
  // Keys a loop asked to see again: the next scheduled resync reconciles them (no function runs meanwhile).
  const again: string[] = [];
  for (const c of controllers) {
    // key → the sequence number of the first record that asked for it
    const keys = new Map<string, string>();
    for (const r of records) {
      const ev = changeEventOf(r);
      if (!ev || !c.watches.includes(ev.resource)) continue;
      for (const k of c.keys(ev)) if (!keys.has(k)) keys.set(k, r.dynamodb?.SequenceNumber ?? '');
    }
    reconciled[c.name] = keys.size;
    const cctx = contextFor(c, ctx);
    await eachConcurrently([...keys], c.concurrency, async ([key, seq]) => {
      try {
        const r = await reconcileCharged(cctx.usage, key, () => c.reconcile(key, cctx));
        // (A loop whose every key each resync sees anyway needs no note of it.)
        if (r?.requeueAfterMs !== undefined && !c.resyncAlways) again.push(pendingKey(c, key));
      } catch (e) {
        console.error(`controller ${c.name}: reconcile ${key} failed`, e);
        failures.set(seq, seq);
      }
    });
  }
  await ctx.resyncLog?.addResyncPending(resyncName(controllers), again);
  // Lambda restarts from the lowest failed sequence number; report them all, lowest first.
  const batchItemFailures = [...failures.keys()].sort(compareSequence).map((itemIdentifier) => ({ itemIdentifier }));
  return { batchItemFailures, reconciled };
}

/**
 * Runs `fn` over distinct keys, up to `concurrency` (a controller's, default 1) at once, as the local
 * runner does: a scheduler's keys are mostly round trips to DynamoDB, and one at a time they made a
 * stream batch of 100 pods a hundred binds in a row.
 */
async function eachConcurrently<T>(items: T[], concurrency: number | undefined, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(items.length, Math.max(1, concurrency ?? 1)) }, worker));
}

function compareSequence(a: string, b: string): number {
  // Sequence numbers are decimal strings of up to 40 digits: compare by length, then lexically.
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}

/** How often a resync reads everything rather than the log since the last one (`fullEveryMs`). */
export const FULL_RESYNC_MS = 3600_000;
/** The full re-read lists each kind in pages of so many items, one after another. */
export const RESYNC_PAGE = 500;

export interface ResyncOptions {
  /** The mark's name (one per function); default: the one controller's name, or "controller-manager". */
  name?: string;
  fullEveryMs?: number;
  pageSize?: number;
}

/** The name of a function's resync mark, and of its pending keys. */
export function resyncName(controllers: Pick<Controller, 'name'>[]): string {
  return controllers.length === 1 ? controllers[0]!.name : 'controller-manager';
}
const pendingKey = (c: Pick<Controller, 'name'>, key: string) => `${c.name} ${key}`;

/**
 * The scheduled resync (so nothing missed stays missed, and node lifecycle's clock). Deployed
 * (ctx.resyncLog), it costs what changed: it reconciles the keys of every change in the store's log
 * since the revision its last run reached (the table's `meta`/`resync#<name>` item), which covers stream
 * records lost or failed, plus the keys loops asked to see again (requeues) and every key of the loops
 * with work on a clock (`resyncAlways`). Every `fullEveryMs` (an hour), when the log since the mark has
 * expired (Compacted), or with no mark yet, it reads everything instead: every key of every loop, each
 * kind listed in pages. The mark is the revision read before the reconciles, so a change made during
 * them is the next run's too; reconciles are idempotent, so overlapping a stream batch or another run
 * costs no-ops. Without a log (tests, SQLite) every run reads everything.
 * Its cost, the invocation and every read and reconcile in it, is overhead (usage.ts OVERHEAD.resync):
 * it runs on a clock, whatever the namespaces did.
 */
export function resyncAll(controllers: Controller[], ctx: ControllerContext, o: ResyncOptions = {}): Promise<Record<string, number>> {
  return asOverhead(OVERHEAD.resync, async () => {
    ctx.usage?.invocation();
    const log = ctx.resyncLog;
    if (!log) return resyncEvery(controllers, forOneBatch(ctx, o.pageSize ?? RESYNC_PAGE));
    const name = o.name ?? resyncName(controllers);
    const mark = await log.resyncMark(name);
    const now = ctx.now().getTime();
    const pending = new Set(mark?.pending ?? []);
    const again: string[] = [];
    let done: Record<string, number> | undefined;
    let head: number | undefined;
    let full = !mark || now - mark.fullAt >= (o.fullEveryMs ?? FULL_RESYNC_MS);
    if (!full) {
      const changed = new Map<Controller, Set<string>>(controllers.map((c) => [c, new Set()]));
      try {
        head = await log.changesSince(mark!.revision, (events) => {
          for (const e of events) {
            const ev = changeEventOfEntry(e);
            if (!ev) continue;
            for (const c of controllers) if (c.watches.includes(ev.resource)) for (const k of c.keys(ev)) changed.get(c)!.add(k);
          }
        });
      } catch (e) {
        if (!(e instanceof StorageError && e.code === 'Compacted')) throw e;
        console.log(`resync: ${e.message}; reading everything`);
        full = true;
      }
      if (!full) {
        const rctx = forOneBatch(ctx, o.pageSize ?? RESYNC_PAGE);
        done = await resyncKeys(controllers, rctx, async (c, cctx) => [...changed.get(c)!, ...(c.resyncAlways ? await c.allKeys(cctx) : [])], pending, again);
      }
    }
    if (full) {
      head = await log.currentRevision();
      done = await resyncKeys(controllers, forOneBatch(ctx, o.pageSize ?? RESYNC_PAGE), (c, cctx) => c.allKeys(cctx), pending, again);
    }
    await log.moveResyncMark(name, head!, full ? now : undefined, [...pending].filter((k) => !again.includes(k)));
    await log.addResyncPending(name, again);
    return { ...done!, ...(full ? { full: 1 } : {}) };
  });
}

/** Every key of every controller, without a mark (no log to read). */
function resyncEvery(controllers: Controller[], ctx: ControllerContext): Promise<Record<string, number>> {
  return resyncKeys(controllers, ctx, (c, cctx) => c.allKeys(cctx), new Set(), []);
}

/**
 * Reconciles each controller's keys (from `keysOf`) and its pending ones, each distinct key once. A key
 * that fails or asks to be requeued goes to `again`, for the next run.
 */
async function resyncKeys(
  controllers: Controller[],
  ctx: ControllerContext,
  keysOf: (c: Controller, cctx: ControllerContext) => Promise<string[]>,
  pending: Set<string>,
  again: string[],
): Promise<Record<string, number>> {
  const done: Record<string, number> = {};
  for (const c of controllers) {
    const cctx = contextFor(c, ctx);
    const own = [...pending].filter((p) => p.startsWith(`${c.name} `)).map((p) => p.slice(c.name.length + 1));
    const keys = [...new Set([...(await keysOf(c, cctx)), ...own])];
    await eachConcurrently(keys, c.concurrency, async (k) => {
      try {
        const r = await reconcileCharged(cctx.usage, k, () => c.reconcile(k, cctx));
        if (r?.requeueAfterMs !== undefined && !c.resyncAlways) again.push(pendingKey(c, k));
      } catch (e) {
        console.error(`controller ${c.name}: resync of ${k} failed`, e);
        if (!c.resyncAlways) again.push(pendingKey(c, k));
      }
    });
    done[c.name] = keys.length;
  }
  return done;
}

/**
 * The resync's log with its DynamoDB requests counted by the meter, as meteredBackend counts the store's
 * (estimates by the same rules: a value stored at about a sixth of its JSON): the mark's read and writes,
 * the counter, and a run's log reads (is the next revision still there; a Query per partition touched).
 */
export function meteredResyncLog(log: ResyncLog, meter: UsageMeter | undefined): ResyncLog {
  if (!meter) return log;
  return {
    currentRevision: async () => {
      meter.storage('read', 1, 1, 0);
      return log.currentRevision();
    },
    resyncMark: async (name) => {
      meter.storage('read', 1, 1, 0);
      return log.resyncMark(name);
    },
    moveResyncMark: async (name, revision, fullAt, done) => {
      meter.storage('write', 1, 0, 1);
      return log.moveResyncMark(name, revision, fullAt, done);
    },
    addResyncPending: async (name, keys) => {
      if (keys.length) meter.storage('write', 1, 0, 1);
      return log.addResyncPending(name, keys);
    },
    changesSince: async (after, each) => {
      let revisions = 0;
      let bytes = 0;
      const head = await log.changesSince(after, (events) => {
        for (const e of events) {
          revisions++;
          bytes += Math.ceil((Buffer.byteLength(e.kv.value) + (e.prevKv ? Buffer.byteLength(e.prevKv.value) : 0)) / 6) + 100;
        }
        each(events);
      });
      const queries = Math.min(16, revisions);
      meter.storage('read', 1 + (revisions ? 1 + queries : 0), 1 + (revisions ? 1 + Math.max(queries, Math.ceil(bytes / 4096)) : 0), 0);
      return head;
    },
  };
}

/**
 * The log's changes after a revision as ChangeEvents, only those of the `kinds` given (the others are not
 * decoded), up to the returned revision: what a warm scheduler's snapshot catches up with.
 */
export function changeEventsSince(log: ResyncLog, kinds: ResourceInfo[]): ChangesSince {
  return (after, each) =>
    log.changesSince(after, (events) => {
      for (const e of events) {
        const ev = changeEventOfEntry(e, kinds);
        if (ev) each(ev);
      }
    });
}

/** A log entry (DynamoBackend.changesSince) as the ChangeEvent its stream record would have made. */
function changeEventOfEntry(e: WatchEvent, kinds?: ResourceInfo[]): ChangeEvent | undefined {
  const resource = resourceOfKey(e.kv.key);
  if (!resource || (kinds && !kinds.includes(resource))) return undefined;
  const typeMeta = { apiVersion: apiVersionOf(resource), kind: resource.kind };
  const object = { ...typeMeta, ...decode(e.kv) };
  const type = e.type === 'create' ? 'ADDED' : e.type === 'delete' ? 'DELETED' : 'MODIFIED';
  const oldObject = e.type === 'update' && e.prevKv ? { ...typeMeta, ...decode(e.prevKv) } : undefined;
  return { type, resource, object, ...(oldObject ? { oldObject } : {}) };
}

/**
 * The event source mapping filter for controllers: only object items of the kinds they watch (one
 * Lambda FilterCriteria pattern lists them all: a mapping allows few patterns), so a pod write never
 * wakes the namespace controller.
 * Leases are the exception. Node heartbeats are most of an idle cluster's writes, and waking two functions
 * for each would be most of its bill (`npm run cost`), so only the scheduler's reservation Leases pass
 * (`kube-node-lease/skiff-alloc-*`). Whoever watches Leases for anything else sees them on the scheduled
 * resync instead: node lifecycle (its clock is the resync anyway), and garbage collection of Leases.
 * EndpointSlices wake nothing: the endpoints controller writes them on Service and pod changes (two
 * writes per change with Endpoints, and the second would only wake the garbage collector for a Service
 * it has just read as live); the garbage collector deletes them through their Service's own DELETED or
 * foreground-deletion events, and finds a user's slice with a vanished owner on the resync.
 */
export function streamFilterPatterns(...cs: Pick<Controller, 'watches'>[]): string[] {
  const leasesPk = `${OBJECT_PK_PREFIX}${resourcePrefix(leases)}`;
  const slicesPk = `${OBJECT_PK_PREFIX}${resourcePrefix(endpointSlices)}`;
  const pks = [...new Set(cs.flatMap((c) => c.watches.map((r) => `${OBJECT_PK_PREFIX}${resourcePrefix(r)}`)))].filter((pk) => pk !== slicesPk);
  const others = pks.filter((pk) => pk !== leasesPk);
  return [
    ...(others.length ? [JSON.stringify({ dynamodb: { Keys: { pk: { S: others } } } })] : []),
    ...(pks.includes(leasesPk)
      ? [JSON.stringify({ dynamodb: { Keys: { pk: { S: [leasesPk] }, sk: { S: [{ prefix: `${RESERVATION_NAMESPACE}/${RESERVATION_PREFIX}` }] } } } })]
      : []),
  ];
}

const leases = findResource('coordination.k8s.io', 'v1', 'leases')!;
const endpointSlices = findResource('discovery.k8s.io', 'v1', 'endpointslices')!;

/** A Lambda entry that takes both a stream batch and the scheduled resync (an EventBridge event). */
export function dispatchHandler(h: ReturnType<typeof createControllerHandlers>) {
  return async (event: DynamoDBStreamEvent | { source?: string }): Promise<DynamoDBBatchResponse | void> =>
    'Records' in event && Array.isArray(event.Records) ? h.stream(event) : h.resync();
}

/** Builds the two Lambda handlers for a set of controllers over a context made once per cold start. */
export function createControllerHandlers(controllers: Controller[], context: () => Promise<ControllerContext>) {
  return {
    async stream(event: DynamoDBStreamEvent): Promise<DynamoDBBatchResponse> {
      const { batchItemFailures } = await handleStreamBatch(controllers, await context(), event.Records);
      return { batchItemFailures };
    },
    async resync(): Promise<void> {
      const ctx = await context();
      const line = `resync ${JSON.stringify(await resyncAll(controllers, ctx))}`;
      console.log(line);
      asOverhead(OVERHEAD.resync, () => ctx.usage?.log(line.length));
    },
  };
}
